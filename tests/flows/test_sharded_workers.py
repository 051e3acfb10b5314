"""The scale-out proof on real parts: `evalcore up --workers 2` (a Prefect server and the
store on PostgreSQL, prefect.yaml on the `evalcore` pool, two worker processes), and a
gate of 2,000 case-samples over 4 shards waiting in its own process.

One worker is killed with SIGKILL, with the flow runs it started, in the middle of the
run, as a machine that dies. Its shards stop sending heartbeats; the stack's automation
marks them Crashed, the gate schedules them again, the other worker resumes them from
what was stored, and the run completes with exactly 2,000 results, no pair twice, its
verdict stored once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

from bench.suites import write_suite
from evalcore.results.history import GATE_VERDICT_KEY
from evalcore.store.engine import get_engine
from evalcore.store.repository import RESULT_TABLE, list_runs
from tests.cli_helpers import process_env
from tests.flows.test_run_shard import shard_flow_runs
from tests.flows.workers_stack import workers_stack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

CASES, SAMPLES, SHARDS = 1_000, 2, 4


def _stored(store_url: str, run_id: str) -> tuple[int, int]:
    """(rows, distinct (case, sample) pairs) stored for the run."""
    table = RESULT_TABLE
    with get_engine(store_url).connect() as conn:
        rows = conn.execute(
            select(func.count()).select_from(table).where(table.c.run_id == run_id)
        ).scalar_one()
        distinct = conn.execute(
            select(func.count()).select_from(
                select(table.c.case_id, table.c.sample)
                .where(table.c.run_id == run_id)
                .distinct()
                .subquery()
            )
        ).scalar_one()
    return int(rows), int(distinct)


def _worker_running(
    stack_workers: list[psutil.Process], home: Path, flow_run_ids: set[str]
) -> psutil.Process | None:
    """A worker whose log shows it running one of these flow runs."""
    for worker in stack_workers:
        name = worker.cmdline()[worker.cmdline().index("--name") + 1]
        log = (home / "logs" / f"{name}.log").read_text(errors="replace")
        if any(f"/flow-run/{flow_run_id}" in log for flow_run_id in flow_run_ids):
            return worker
    return None


def test_a_worker_killed_mid_run_loses_nothing(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path / "suite",
        cases=CASES,
        samples=SAMPLES,
        set_name="blocking",
        target_yaml="{kind: python, callable: 'tests.flows.slow_route:slow_answer'}",
        run_yaml=f"{{concurrency: 8, timeout_s: 10, retries: 1, shards: {SHARDS}}}",
        scorecard_extra="thresholds:\n  blocking: {min_pass_rate: 1.0}\n",
    )
    with workers_stack(tmp_path, workers=2, suite=suite) as stack:
        env = {
            "PREFECT_API_URL": stack.api,
            "EVALCORE_DATABASE_URL": stack.store_url,
            "PYTHONPATH": str(ROOT),  # the route is a function of this module
        }
        gate = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "evalcore",
                "gate",
                "--release",
                "scale-1",
                "--suite",
                str(suite),
            ],
            cwd=tmp_path,
            env=process_env(stack.home, env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        engine = get_engine(stack.store_url)
        deadline = time.monotonic() + 240
        victim = None
        while victim is None:
            assert gate.poll() is None, gate.communicate()
            assert time.monotonic() < deadline, "no shard got going on a worker"
            runs = list_runs(engine, release="scale-1")
            if runs:
                running = {
                    str(r["id"])
                    for r in shard_flow_runs(stack.api, runs[0].id)
                    if r["state_type"] == "RUNNING"
                }
                done, _ = _stored(stack.store_url, runs[0].id)
                if running and 100 <= done < CASES * SAMPLES // 2:
                    victim = _worker_running(stack.workers(), stack.home, running)
            time.sleep(0.2)
        (run,) = list_runs(engine, release="scale-1")
        killed = [victim, *victim.children(recursive=True)]
        for process in killed:
            process.send_signal(signal.SIGKILL)
        psutil.wait_procs(killed, timeout=10)
        out, err = gate.communicate(timeout=480)

        assert gate.returncode == 0, out + err
        assert f"run {run.id[:12]}" in out + err
        assert _stored(stack.store_url, run.id) == (CASES * SAMPLES, CASES * SAMPLES)
        (again,) = list_runs(engine, release="scale-1")
        assert again.status == "finished"
        assert again.settings[GATE_VERDICT_KEY] == "pass"
        attempts = shard_flow_runs(stack.api, run.id)
        assert {r["parameters"]["shard"] for r in attempts} == set(range(1, SHARDS + 1))
        assert any(r["run_count"] > 1 for r in attempts), "no shard had to be run again"
