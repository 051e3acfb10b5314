"""Sharded gates on real parts: a Prefect server, the `run-shard` deployment served from a
process of its own, and `evalcore gate` waiting for the shards in the test's process.

A gate over four shards stores exactly one result per (case, sample) and publishes its
progress; a shard whose flow run keeps crashing (the process running it dies) is
scheduled again, then named in an inconclusive verdict, and the next gate for the
release resumes the same run and completes it. Plus the static check that prefect.yaml
and deployments/serve.py declare the same `run-shard` deployment.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from bench.suites import write_suite
from evalcore.local.reference import ReferenceServer
from evalcore.local.stack import ManagedProcess
from evalcore.local.stack import prefect_api as api_client
from evalcore.run import shard_of
from evalcore.run.shards import planned_pairs
from evalcore.store.engine import get_engine
from evalcore.store.repository import RESULT_TABLE, done_pairs, get_run, list_runs
from evalcore.suite import load_suite
from tests.cli_helpers import evalcore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"


def crash_on_order(case_input: dict[str, Any]) -> dict[str, Any]:
    """Answers right, except that the process dies on the order SHARD_CRASH_ORDER names while
    the file SHARD_CRASH_FLAG exists: a worker killed mid-shard, every time it tries."""
    order, flag = os.environ.get("SHARD_CRASH_ORDER"), os.environ.get("SHARD_CRASH_FLAG")
    message = case_input["messages"][-1]["content"]
    if order and flag and message.startswith(f"Order {order}:") and Path(flag).exists():
        os._exit(3)
    return {"text": "You can return it within 14 days.", "usage": {"prompt_tokens": 9}}


def test_prefect_yaml_declares_the_run_shard_deployment_deployments_serve_serves() -> None:
    from deployments.serve import build_deployments, shard_deployment
    from flows.run_shard import SHARD_DEPLOYMENT, SHARD_FLOW

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (declared,) = [d for d in spec["deployments"] if d["name"] == SHARD_DEPLOYMENT]
    path, _, attribute = declared["entrypoint"].partition(":")
    assert f"async def {attribute}(" in (ROOT / path).read_text()
    assert declared["work_pool"]["name"] == "evalcore"
    assert "triggers" not in declared and "schedules" not in declared  # started per shard
    served = shard_deployment()
    assert (served.name, served.flow_name, sorted(served.tags)) == (
        declared["name"],
        SHARD_FLOW,
        sorted(declared["tags"]),
    )
    assert served.entrypoint == declared["entrypoint"]
    assert SHARD_DEPLOYMENT in [d.name for d in build_deployments()]


@contextmanager
def served_shards(api: str, tmp_path: Path, env: dict[str, str]) -> Iterator[ManagedProcess]:
    """deployments/serve.py's run-shard deployment, served by a process of its own (which
    runs each shard's flow run in a child process, as a worker does); removed after."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EVALCORE_")}
    environ.update(env, PREFECT_API_URL=api, PREFECT_RUNNER_POLL_FREQUENCY="1", CI="1")
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    script = (
        "from prefect import serve; from deployments.serve import shard_deployment; "
        "serve(shard_deployment())"
    )
    runner = ManagedProcess(
        "run-shard", [sys.executable, "-c", script], environ, tmp_path / "serve.log", cwd=ROOT
    ).start()
    deployment = f"{api}/deployments/name/run-shard/run-shard"
    try:
        deadline = time.monotonic() + 90
        while httpx.get(deployment, timeout=5).status_code != 200:
            assert runner.alive(), runner.tail()
            assert time.monotonic() < deadline, f"run-shard not served:\n{runner.tail()}"
            time.sleep(0.25)
        yield runner
    finally:
        runner.stop()
        found = httpx.get(deployment, timeout=5)
        if found.status_code == 200:  # later tests on this server run unsharded
            httpx.delete(f"{api}/deployments/{found.json()['id']}", timeout=5)


def example_with_shards(root: Path, shards: int) -> Path:
    """A copy of the example suite whose scorecard says `run.shards: N`."""
    shutil.copytree(EXAMPLE, root)
    scorecard = root / "scorecard.yaml"
    text = scorecard.read_text()
    scorecard.write_text(text.replace("  retries: 3\n", f"  retries: 3\n  shards: {shards}\n"))
    assert load_suite(root).scorecard.run.shards == shards
    return root


def shard_flow_runs(api: str, run_id: str) -> list[dict[str, Any]]:
    with api_client(api) as client:
        runs = client.post(
            "flow_runs/filter", json={"flow_runs": {"tags": {"all_": ["run-shard"]}}, "limit": 200}
        ).json()
    found = [r for r in runs if r["parameters"].get("run_id") == run_id]
    return sorted(found, key=lambda r: (r["parameters"]["shard"], r["created"]))


def artifacts(api: str, key: str) -> list[dict[str, Any]]:
    with api_client(api) as client:
        return list(
            client.post("artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}}).json()
        )


def stored(db_url: str, run_id: str) -> tuple[int, int]:
    """(rows, distinct (case, sample) pairs) of one run."""
    t = RESULT_TABLE.c
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(
            select(func.count()).select_from(RESULT_TABLE).where(t.run_id == run_id)
        ).scalar_one()
    return rows, len(done_pairs(get_engine(db_url), run_id))


@pytest.mark.slow
def test_a_gate_over_four_shards_stores_one_result_per_pair_and_shows_its_progress(
    tmp_path: Path, prefect_api: str
) -> None:
    suite = example_with_shards(tmp_path / "suite", 4)
    home = tmp_path / "home"
    db_url = f"sqlite:///{home / 'evalcore.db'}"
    env = {"EVALCORE_HOME": str(home), "EVALCORE_DATABASE_URL": db_url}
    with ReferenceServer() as server, served_shards(prefect_api, tmp_path, env):
        done = evalcore(
            *("gate", "--release", "sharded-1", "--suite", str(suite)),
            *("--target-url", server.base_url, "--judge-url", server.base_url),
            cwd=tmp_path,
            home=home,
            env={"PREFECT_API_URL": prefect_api, "EVALCORE_DATABASE_URL": db_url},
        )
        # `evalcore run` outside any flow sends its shards to the same deployment.
        monitored = evalcore(
            *("run", "--set", "monitoring", "--shards", "3", "--suite", str(suite)),
            *("--target-url", server.base_url, "--judge-url", server.base_url),
            cwd=tmp_path,
            home=home,
            env={"PREFECT_API_URL": prefect_api, "EVALCORE_DATABASE_URL": db_url, "CI": "1"},
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verdict: pass" in done.stdout
    assert monitored.returncode == 0, monitored.stdout + monitored.stderr
    (other,) = [r for r in list_runs(get_engine(db_url)) if r.sets == ["monitoring"]]
    assert (other.status, other.settings["shards"]) == ("finished", 3)
    assert stored(db_url, other.id) == (other.planned, other.planned)
    assert [r["state_type"] for r in shard_flow_runs(prefect_api, other.id)] == ["COMPLETED"] * 3
    (run,) = list_runs(get_engine(db_url), release="sharded-1")
    assert (run.status, run.settings["shards"], run.settings["failed_shards"]) == (
        "finished",
        4,
        [],
    )
    assert stored(db_url, run.id) == (run.planned, run.planned)
    flow_runs = shard_flow_runs(prefect_api, run.id)
    assert [(r["parameters"]["shard"], r["state_type"]) for r in flow_runs] == [
        (k, "COMPLETED") for k in range(1, 5)
    ]
    (progress,) = artifacts(prefect_api, f"shards-{run.id[:12]}")
    assert (progress["type"], progress["data"]) == ("progress", 100.0)
    (table,) = artifacts(prefect_api, f"shards-{run.id[:12]}-table")
    rows = json.loads(table["data"])
    assert [(row["shard"], row["state"]) for row in rows] == [(k, "complete") for k in range(1, 5)]
    assert sum(row["done"] for row in rows) == run.planned


@pytest.mark.slow
def test_a_shard_that_keeps_crashing_makes_the_gate_inconclusive_then_a_rerun_completes_it(
    tmp_path: Path, prefect_api: str
) -> None:
    root = write_suite(
        tmp_path / "suite",
        cases=24,
        samples=2,
        set_name="blocking",
        target_yaml="{kind: python, callable: 'tests.flows.test_run_shard:crash_on_order'}",
        run_yaml="{concurrency: 4, timeout_s: 5, retries: 0, shards: 4}",
        scorecard_extra="thresholds:\n  blocking: {min_pass_rate: 1.0}\n",
    )
    # A case whose two samples share a shard, so exactly one shard dies on it.
    order = next(i for i in range(24) if len({shard_of(f"gen-{i:06d}", s, 4) for s in (0, 1)}) == 1)
    crashing = shard_of(f"gen-{order:06d}", 0, 4)
    flag = tmp_path / "crash"
    flag.touch()
    home = tmp_path / "home"
    db_url = f"sqlite:///{home / 'evalcore.db'}"
    served_env = {
        "EVALCORE_HOME": str(home),
        "EVALCORE_DATABASE_URL": db_url,
        "SHARD_CRASH_ORDER": str(order),
        "SHARD_CRASH_FLAG": str(flag),
    }
    gate_env = {"PREFECT_API_URL": prefect_api, "EVALCORE_DATABASE_URL": db_url}
    args = ("gate", "--release", "crashy-1", "--suite", str(root))
    planned = set(planned_pairs((c.id, c.samples) for c in load_suite(root).cases))
    others = {p for p in planned if shard_of(*p, 4) != crashing}
    with served_shards(prefect_api, tmp_path, served_env):
        red = evalcore(*args, cwd=tmp_path, home=home, env=gate_env)
        assert red.returncode == 2, red.stdout + red.stderr
        assert f"shard {crashing} of 4 failed: its flow run" in red.stderr
        (run,) = list_runs(get_engine(db_url), release="crashy-1")
        assert run.status == "failed"
        assert [f["shard"] for f in run.settings["failed_shards"]] == [crashing]
        assert others <= done_pairs(get_engine(db_url), run.id)  # the other shards finished
        rows, distinct = stored(db_url, run.id)
        assert rows == distinct < len(planned)
        attempts = [
            r for r in shard_flow_runs(prefect_api, run.id) if r["parameters"]["shard"] == crashing
        ]
        (crashed,) = attempts  # the same flow run, scheduled again after each crash
        assert (crashed["state_type"], crashed["run_count"]) == ("CRASHED", 3)

        shown = evalcore("runs", "show", run.id, cwd=tmp_path, home=home, env=gate_env)
        assert "Verdict: inconclusive" in shown.stdout
        assert f"shard {crashing} of 4 failed" in shown.stdout

        flag.unlink()  # the route is healthy again: the next gate resumes the same run
        green = evalcore(*args, cwd=tmp_path, home=home, env=gate_env)
    assert green.returncode == 0, green.stdout + green.stderr
    assert f"resumed unfinished run {run.id[:12]} of release crashy-1" in green.stderr
    (again,) = list_runs(get_engine(db_url), release="crashy-1")
    assert (again.id, again.status, again.settings["failed_shards"]) == (run.id, "finished", [])
    assert stored(db_url, run.id) == (len(planned), len(planned))


@pytest.mark.slow
def test_without_a_run_shard_deployment_the_gate_runs_its_shards_itself(
    tmp_path: Path, prefect_api: str
) -> None:
    assert httpx.get(f"{prefect_api}/deployments/name/run-shard/run-shard").status_code == 404
    suite = example_with_shards(tmp_path / "suite", 2)
    home = tmp_path / "home"
    db_url = f"sqlite:///{home / 'evalcore.db'}"
    with ReferenceServer() as server:
        done = evalcore(
            *("gate", "--release", "here-1", "--suite", str(suite)),
            *("--target-url", server.base_url, "--judge-url", server.base_url),
            cwd=tmp_path,
            home=home,
            env={"PREFECT_API_URL": prefect_api, "EVALCORE_DATABASE_URL": db_url},
        )
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = list_runs(get_engine(db_url), release="here-1")
    message = f"the 2 shards of run {run.id[:12]} run in this process, one after another"
    assert message in done.stderr
    assert (run.status, run.settings["failed_shards"]) == ("finished", [])
    assert stored(db_url, run.id) == (run.planned, run.planned)
    assert shard_flow_runs(prefect_api, run.id) == []
    (progress,) = artifacts(prefect_api, f"shards-{run.id[:12]}")
    assert progress["data"] == 100.0


async def test_a_shard_whose_flow_run_is_deleted_fails_named_and_the_run_stays_open(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate follows all its shards with one read; a shard's flow run deleted on the
    server (nobody serves run-shard here) is a failed shard, as is one nobody starts."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import flows.run_shard as sharding
    from deployments.serve import shard_deployment
    from evalcore.run import RunRequest, prepare_run
    from evalcore.suite import EvalSet
    from tests.run.test_shards import sharded_suite

    monkeypatch.setattr(sharding, "START_TIMEOUT_S", 4.0)
    suite = load_suite(sharded_suite(tmp_path / "suite", cases=6, samples=1, shards=3))
    engine = get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    run = prepare_run(engine, suite, RunRequest(sets=(EvalSet.blocking,)))
    said: list[str] = []
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        # Built and applied off the event loop, where Prefect's helpers answer synchronously.
        applied = await asyncio.to_thread(lambda: shard_deployment().apply())
        assert isinstance(applied, UUID)
        try:
            waiting = asyncio.create_task(
                sharding.run_sharded(engine, suite, run, log=said.append, poll_s=0.1)
            )
            async with get_client() as client:
                deadline = time.monotonic() + 30
                while len(runs := shard_flow_runs(prefect_api, run.id)) < 3:
                    assert time.monotonic() < deadline, "the shards' flow runs never appeared"
                    await asyncio.sleep(0.1)
                second = next(r for r in runs if r["parameters"]["shard"] == 2)
                await client.delete_flow_run(second["id"])
                failures = await asyncio.wait_for(waiting, timeout=60)
        finally:
            async with get_client() as client:
                await client.delete_deployment(applied)
    assert [(f.shard, f.error) for f in failures][1] == (2, "its flow run was deleted")
    assert [f.shard for f in failures] == [1, 2, 3]
    assert all("no worker started its flow run" in f.error for f in failures if f.shard != 2)
    assert "shard 2 of 3 failed: its flow run was deleted" in said
    stored = get_run(engine, run.id)
    assert stored is not None and stored.status == "failed"  # the next gate resumes it


@pytest.mark.slow
async def test_the_gate_sees_its_shards_end_from_their_events_not_its_next_poll(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a poll of ten minutes, the waiting side still closes the run moments after its
    shards end: each state change of a shard's flow run wakes it (Prefect's events)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import flows.run_shard as sharding
    from evalcore.run import RunRequest, prepare_run
    from evalcore.suite import EvalSet
    from tests.run.test_shards import sharded_suite

    suite = load_suite(sharded_suite(tmp_path / "suite", cases=6, samples=1, shards=2))
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = get_engine(db_url)
    run = prepare_run(engine, suite, RunRequest(sets=(EvalSet.blocking,)))
    monkeypatch.setenv("EVALCORE_DATABASE_URL", db_url)
    said: list[str] = []
    env = {"EVALCORE_DATABASE_URL": db_url, "EVALCORE_HOME": str(tmp_path / "home")}
    with (
        served_shards(prefect_api, tmp_path, env),
        temporary_settings({PREFECT_API_URL: prefect_api}),
    ):
        failures = await asyncio.wait_for(
            sharding.run_sharded(engine, suite, run, log=said.append, poll_s=600), timeout=120
        )
        ended = max(
            _epoch(r["end_time"]) for r in shard_flow_runs(prefect_api, run.id) if r["end_time"]
        )
        closed = time.time()
    assert failures == [], said
    assert {"shard 1 of 2 completed", "shard 2 of 2 completed"} <= {s.split(" (")[0] for s in said}
    assert closed - ended < 30, f"closed {closed - ended:.1f} s after the last shard ended"
    stored_run = get_run(engine, run.id)
    assert stored_run is not None and stored_run.status == "finished"
    assert stored(db_url, run.id) == (run.planned, run.planned)


def _epoch(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp).timestamp()


def test_the_gate_is_woken_by_its_shards_ending_not_by_them_starting() -> None:
    """While shards start, each of their state changes would be one more read of every
    shard's flow run on a busy server: only an end, or what a retry or a crash leads to,
    wakes the waiting side before its poll."""
    import datetime as dt
    from uuid import uuid4

    from prefect.events import Event

    from flows.run_shard import state_changes_filter

    followed, other = uuid4(), uuid4()
    occurred = dt.datetime.now(dt.UTC)  # before the end of the filter's time window
    changes = state_changes_filter([followed])

    def wakes(name: str, flow_run: UUID = followed) -> bool:
        event = Event(
            occurred=occurred,
            event=f"prefect.flow-run.{name}",
            resource={"prefect.resource.id": f"prefect.flow-run.{flow_run}"},
            id=uuid4(),
        )
        return changes.includes(event)

    for name in ("Completed", "Failed", "Crashed", "Cancelled", "AwaitingRetry", "Scheduled"):
        assert wakes(name), name
    for name in ("Pending", "Submitting", "Running", "Retrying", "heartbeat"):
        assert not wakes(name), name
    assert not wakes("Completed", other)
