"""`python -m deployments.worker`: Prefect's process worker with its flow runs forked from a
warm fork server. On a real Prefect server, with a deployment of a probe flow: a flow run
completes in a process of its own whose parent is the worker's fork server, with the
flows already imported, the deployment's job variables in its environment and its
working directory set by the pull step; a flow that raises is Failed, a flow run whose
process is killed is Crashed, a cancelled one is Cancelled and its process gone; and a
stock `prefect worker start` runs the same deployment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from evalcore.local.stack import ManagedProcess, online_workers, wait_ready

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys, time
from pathlib import Path
from prefect import flow

WARM = "flows.run_shard" in sys.modules  # before anything here imports it


@flow(name="probe", persist_result=False)
def probe(out: str, mode: str = "ok") -> None:
    Path(out).write_text(json.dumps({
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "warm": WARM,
        "cwd": os.getcwd(),
        "job_env": os.environ.get("PROBE_JOB_VARIABLE"),
        "flow_run_id": os.environ.get("PREFECT__FLOW_RUN_ID"),
    }))
    if mode == "fail":
        raise RuntimeError("the probe was told to fail")
    if mode == "wait":
        time.sleep(600)
"""


def _deploy(api: str, source: Path, pool: str) -> str:
    """A deployment of the probe flow on `pool` (created as a process pool); its id."""
    from prefect import Flow, flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    (source / "probe.py").write_text(PROBE)
    with temporary_settings({PREFECT_API_URL: api}):
        _api("POST", f"{api}/work_pools/", {"name": pool, "type": "process"})
        probe = flow.from_source(source=str(source), entrypoint="probe.py:probe")
        assert isinstance(probe, Flow)  # called from sync code: the flow, not a coroutine
        deployment_id = probe.deploy(
            name="probe",
            work_pool_name=pool,
            job_variables={"env": {"PROBE_JOB_VARIABLE": "from the job"}},
            print_next_steps=False,
            ignore_warnings=True,
        )
    return str(deployment_id)


@contextmanager
def _worker(
    api: str, pool: str, home: Path, *command: str, project: Path = ROOT, query_s: int = 1
) -> Iterator[ManagedProcess]:
    name = f"w-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_WORKER_QUERY_SECONDS": str(query_s),
        "PREFECT_HOME": str(home / "prefect"),
        "PYTHONPATH": str(project),
    }
    worker = ManagedProcess(
        "worker",
        [*command, "--pool", pool, "--name", name],
        env,
        home / f"{name}.log",
        cwd=project,
    ).start()
    try:
        wait_ready("the worker", lambda: name in online_workers(api, pool), worker, 120)
        yield worker
    finally:
        worker.stop()


def _api(method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """One Prefect API request; the test server on SQLite answers 503 while its database
    is busy (workers polling and heartbeating beside the test), so that is tried again."""
    for _ in range(20):
        response = httpx.request(method, url, json=body, timeout=10)
        if response.status_code != 503:
            break
        time.sleep(0.5)
    response.raise_for_status()
    return response


def _run(api: str, deployment_id: str, **parameters: str) -> str:
    created = _api(
        "POST", f"{api}/deployments/{deployment_id}/create_flow_run", {"parameters": parameters}
    )
    return str(created.json()["id"])


def _cancel(api: str, flow_run_id: str) -> None:
    _api(
        "POST",
        f"{api}/flow_runs/{flow_run_id}/set_state",
        {"state": {"type": "CANCELLING"}, "force": True},
    )


def _state(api: str, flow_run_id: str) -> dict[str, Any]:
    state: dict[str, Any] = _api("GET", f"{api}/flow_runs/{flow_run_id}").json()["state"]
    return state


def _wait(api: str, flow_run_id: str, until: set[str], timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        state = _state(api, flow_run_id)
        if state["type"] in until:
            return state
        assert time.monotonic() < deadline, f"flow run still {state['type']}"
        time.sleep(0.25)


def _wait_for_file(path: Path, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"the probe never wrote {path}"
        time.sleep(0.1)
    found: dict[str, Any] = json.loads(path.read_text())
    return found


def test_the_warm_worker_runs_flow_runs_the_way_prefect_s_process_worker_does(
    prefect_api: str, tmp_path: Path
) -> None:
    pool = f"warm-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "source"
    source.mkdir()
    deployment_id = _deploy(prefect_api, source, pool)
    with _worker(prefect_api, pool, tmp_path, sys.executable, "-m", "deployments.worker") as w:
        assert w.process is not None
        worker = psutil.Process(w.process.pid)

        out = tmp_path / "ok.json"
        done = _run(prefect_api, deployment_id, out=str(out))
        assert _wait(prefect_api, done, {"COMPLETED", "FAILED", "CRASHED"})["type"] == "COMPLETED"
        seen = _wait_for_file(out)
        assert seen["flow_run_id"] == done
        assert seen["warm"] is True, "the flow run did not start from the warm fork server"
        assert seen["pid"] != worker.pid
        fork_server = psutil.Process(seen["ppid"])
        assert fork_server.ppid() == worker.pid  # the worker's fork server, not the worker
        assert "forkserver" in " ".join(fork_server.cmdline())
        assert seen["job_env"] == "from the job"
        assert Path(seen["cwd"]).resolve() == source.resolve()  # the pull step's directory

        failed = _run(prefect_api, deployment_id, out=str(tmp_path / "fail.json"), mode="fail")
        state = _wait(prefect_api, failed, {"COMPLETED", "FAILED", "CRASHED"})
        assert state["type"] == "FAILED"
        assert "the probe was told to fail" in state["message"]

        killed_out = tmp_path / "killed.json"
        killed = _run(prefect_api, deployment_id, out=str(killed_out), mode="wait")
        _wait(prefect_api, killed, {"RUNNING"})
        os.kill(_wait_for_file(killed_out)["pid"], signal.SIGKILL)
        state = _wait(prefect_api, killed, {"COMPLETED", "FAILED", "CRASHED"})
        assert state["type"] == "CRASHED"

        cancelled_out = tmp_path / "cancelled.json"
        cancelled = _run(prefect_api, deployment_id, out=str(cancelled_out), mode="wait")
        _wait(prefect_api, cancelled, {"RUNNING"})
        pid = _wait_for_file(cancelled_out)["pid"]
        _cancel(prefect_api, cancelled)
        assert _wait(prefect_api, cancelled, {"CANCELLED", "CRASHED"})["type"] == "CANCELLED"
        deadline = time.monotonic() + 30
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the cancelled flow run's process lives on"
            time.sleep(0.1)
        assert w.alive(), "the worker stopped"


def test_a_stock_process_worker_serves_the_same_pool(prefect_api: str, tmp_path: Path) -> None:
    pool = f"stock-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "source"
    source.mkdir()
    deployment_id = _deploy(prefect_api, source, pool)
    with _worker(prefect_api, pool, tmp_path, sys.executable, "-m", "prefect", "worker", "start"):
        out = tmp_path / "stock.json"
        done = _run(prefect_api, deployment_id, out=str(out))
        assert _wait(prefect_api, done, {"COMPLETED", "FAILED", "CRASHED"})["type"] == "COMPLETED"
        seen = _wait_for_file(out)
        assert seen["warm"] is False  # a fresh interpreter: nothing imported before the flow
        assert seen["job_env"] == "from the job"


def test_code_edited_under_a_running_worker_is_what_the_next_flow_run_runs(
    prefect_api: str, tmp_path: Path
) -> None:
    """The fork server holds the code it imported; once the checkout changes, a flow run
    starts in a new interpreter instead (with a warning), so it never runs stale code."""
    project = tmp_path / "checkout"
    for package in ("evalcore", "flows", "deployments"):
        shutil.copytree(
            ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    pool = f"edit-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "source"
    source.mkdir()
    deployment_id = _deploy(prefect_api, source, pool)
    command = (sys.executable, "-m", "deployments.worker")
    with _worker(prefect_api, pool, tmp_path, *command, project=project) as worker:
        before = tmp_path / "before.json"
        done = _run(prefect_api, deployment_id, out=str(before))
        assert _wait(prefect_api, done, {"COMPLETED", "FAILED", "CRASHED"})["type"] == "COMPLETED"
        assert _wait_for_file(before)["warm"] is True

        (project / "flows" / "run_shard.py").write_text(
            (project / "flows" / "run_shard.py").read_text() + "\nEDITED = True\n"
        )
        after = tmp_path / "after.json"
        done = _run(prefect_api, deployment_id, out=str(after))
        assert _wait(prefect_api, done, {"COMPLETED", "FAILED", "CRASHED"})["type"] == "COMPLETED"
        assert _wait_for_file(after)["warm"] is False  # a new interpreter, the edited code
        assert "the evalcore code changed since this worker started" in worker.tail(20_000)


def test_a_flow_run_scheduled_in_the_pool_starts_without_waiting_for_the_next_poll(
    prefect_api: str, tmp_path: Path
) -> None:
    """The worker polls every 10 minutes here; the flow run still starts at once, from
    Prefect's `prefect.flow-run.Scheduled` event."""
    pool = f"event-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "source"
    source.mkdir()
    deployment_id = _deploy(prefect_api, source, pool)
    command = (sys.executable, "-m", "deployments.worker")
    with _worker(prefect_api, pool, tmp_path, *command, query_s=600):
        time.sleep(2)  # past the worker's first poll, which happens as it starts
        out = tmp_path / "event.json"
        done = _run(prefect_api, deployment_id, out=str(out))
        state = _wait(prefect_api, done, {"COMPLETED", "FAILED", "CRASHED"}, timeout_s=60)
        assert state["type"] == "COMPLETED"
        assert _wait_for_file(out)["warm"] is True


def test_workers_with_a_limit_spread_flow_runs_between_them(
    prefect_api: str, tmp_path: Path
) -> None:
    """Without a limit one worker may take every waiting flow run (every shard on one
    machine); with `--limit 1` each of two workers takes one of two."""
    pool = f"limit-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "source"
    source.mkdir()
    deployment_id = _deploy(prefect_api, source, pool)
    command = (sys.executable, "-m", "deployments.worker", "--limit", "1")
    with (
        _worker(prefect_api, pool, tmp_path, *command) as first,
        _worker(prefect_api, pool, tmp_path, *command) as second,
    ):
        outs = [tmp_path / f"spread-{n}.json" for n in (1, 2)]
        runs = [_run(prefect_api, deployment_id, out=str(out), mode="wait") for out in outs]
        seen = [_wait_for_file(out) for out in outs]
        owners = set()
        for found in seen:
            fork_server = psutil.Process(found["ppid"])
            owners.add(fork_server.ppid())
        assert first.process is not None and second.process is not None
        assert owners == {first.process.pid, second.process.pid}
        for flow_run_id in runs:
            _cancel(prefect_api, flow_run_id)
        for flow_run_id in runs:
            _wait(prefect_api, flow_run_id, {"CANCELLED", "CRASHED"})
