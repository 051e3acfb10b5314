"""Past one process: `evalcore up --workers 2` deploys prefect.yaml to the `evalcore`
process pool and starts two workers; the gate triggered by `release.created`, the nightly
monitor and the weekly digest run on those workers, the Prefect server and the store on
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalcore.gate.steps import RELEASE_EVENT
from evalcore.local.stack import (
    WORK_POOL,
    deployment_flow_runs,
    final_state,
    online_workers,
    prefect_api,
    start_flow_run,
)
from evalcore.results.history import run_verdict
from evalcore.results.verdict import Verdict
from evalcore.store.engine import get_engine
from evalcore.store.repository import list_runs
from tests.cli_helpers import evalcore
from tests.flows.workers_stack import workers_stack

pytestmark = pytest.mark.slow


def _ran_on_a_worker(home: Path, flow_run_id: str) -> list[str]:
    """The workers whose log holds the flow run's own output (its "View at" line): the
    one that ran it. Both may log an attempt to submit it, one of them aborted."""
    return sorted(
        log.stem
        for log in (home / "logs").glob("evalcore-worker-*.log")
        if f"/flow-run/{flow_run_id}" in log.read_text(errors="replace")
    )


def test_two_workers_run_the_gate_and_the_monitor(tmp_path: Path) -> None:
    with workers_stack(tmp_path, workers=2) as stack:
        assert online_workers(stack.api) == ["evalcore-worker-1", "evalcore-worker-2"]
        with prefect_api(stack.api) as client:
            deployments = client.post("deployments/filter", json={}).json()
        pools = {d["name"]: d["work_pool_name"] for d in deployments}
        assert {"release-gate", "nightly-monitor", "weekly-digest"} <= set(pools)
        assert set(pools.values()) == {WORK_POOL}
        assert len(stack.workers()) == 2

        announced = evalcore(
            *("release", "announce", "rel-w1", "--wait", "--timeout", "180"),
            cwd=tmp_path,
            home=stack.home,
            env={"EVALCORE_DATABASE_URL": stack.store_url, "PREFECT_API_URL": stack.api},
        )
        assert announced.returncode == 0, announced.stdout + announced.stderr
        assert ": completed" in announced.stdout
        engine = get_engine(stack.store_url)
        (run,) = list_runs(engine, release="rel-w1")
        assert (run.status, run.trigger) == ("finished", RELEASE_EVENT)
        assert run_verdict(engine, run).verdict is Verdict.passed
        (gate_run,) = deployment_flow_runs(stack.api, "release-gate/release-gate")
        assert gate_run["work_pool_name"] == WORK_POOL
        assert len(_ran_on_a_worker(stack.home, str(gate_run["id"]))) == 1

        flow_run_id = start_flow_run(stack.api, "nightly-monitor/nightly-monitor")
        assert final_state(stack.api, flow_run_id, timeout_s=180) == "COMPLETED"
        assert len(_ran_on_a_worker(stack.home, flow_run_id)) == 1
        monitored = [r for r in list_runs(engine) if r.sets == ["monitoring"]]
        assert [(r.trigger, r.status) for r in monitored] == [("nightly", "finished")]

        # The weekly digest too (no Slack token here: it is written to files, offline).
        flow_run_id = start_flow_run(stack.api, "weekly-digest/weekly-digest")
        assert final_state(stack.api, flow_run_id, timeout_s=180) == "COMPLETED"
        assert len(_ran_on_a_worker(stack.home, flow_run_id)) == 1
        assert list((stack.home / "digests").glob("*.md")), "the digest wrote no file"
