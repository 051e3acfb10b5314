"""`evalcore up` / `make serve`: the local stack on loopback, started and stopped as one.

A Prefect server (its own SQLite under EVALCORE_HOME unless PREFECT_HOME or
PREFECT_SERVER_DATABASE_CONNECTION_URL say otherwise), the bundled reference target, and
either `deployments/serve.py` serving the deployments with their triggers, or, with
`workers`, the deployments of `prefect.yaml` applied to the `evalcore` process work pool
(`prefect deploy --all`) and that many workers (`python -m deployments.worker`: Prefect's
process worker, its flow runs forked warm) picking their flow runs up. Each child runs in
its own process group with its output in `EVALCORE_HOME/logs/`, so stopping the stack
stops everything those children started too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from evalcore.local.reference import Knobs, ReferenceServer

GATE_DEPLOYMENT_PATH = "release-gate/release-gate"
WORK_POOL = "evalcore"  # the process work pool prefect.yaml deploys every flow to
# Flow runs on workers send a heartbeat this often (Prefect's least, 30 s); one silent for
# two heartbeats and a margin is marked Crashed (its worker or machine died), so that a
# gate waiting on a shard reschedules it instead of waiting for ever.
HEARTBEAT_S = 30
ZOMBIE_AUTOMATION = "evalcore: crash flow runs that stopped sending heartbeats"


class StackError(Exception):
    """A part of the stack could not start; the message says which and why."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


@dataclass
class ManagedProcess:
    """A child in its own process group, logging to a file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM to the whole group, SIGKILL after `timeout_s`, then to any straggler."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    _signal_group(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
            _signal_group(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_ready(
    what: str, ready: Callable[[], bool], child: ManagedProcess, timeout_s: float
) -> None:
    """Until `ready()`; `StackError` with the child's log if it exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise StackError(f"{what} exited before it was ready; its log:\n{child.tail()}")
        if ready():
            return
        time.sleep(0.25)
    raise StackError(f"{what} was not ready within {timeout_s:g} s; its log:\n{child.tail()}")


def _get_ok(url: str) -> httpx.Response | None:
    try:
        response = httpx.get(url, timeout=2.0)
    except httpx.HTTPError:
        return None
    return response if response.status_code == 200 else None


@dataclass
class Stack:
    api_url: str
    target_url: str | None
    logs: Path
    children: list[ManagedProcess] = field(default_factory=list)
    reference: ReferenceServer | None = None

    def stop(self) -> None:
        """Stop in reverse order of start: deployments or workers, reference target, server."""
        for child in reversed(self.children[1:]):
            child.stop()
        if self.reference is not None:
            self.reference.stop()
            self.reference = None
        if self.children:
            self.children[0].stop()
        self.children.clear()

    def failed_child(self) -> ManagedProcess | None:
        """A child the stack cannot go on without: the server or the served deployments.
        A worker that stops is not one (the others take its flow runs): see `workers_gone`."""
        return next((c for c in self.children if not c.alive() and not _is_worker(c)), None)

    def workers_gone(self) -> list[ManagedProcess]:
        return [c for c in self.children if _is_worker(c) and not c.alive()]


def _is_worker(child: ManagedProcess) -> bool:
    return child.name.startswith("worker ")


def start_stack(
    *,
    home: Path,
    project: Path,
    suite: Path,
    port: int = 4200,
    reference_port: int | None = 8765,
    host: str = "127.0.0.1",
    ui: bool = True,
    startup_timeout_s: float = 90.0,
    workers: int = 0,
    on_step: Callable[[str], None] = lambda _: None,
) -> Stack:
    """Start the server, the reference target (unless `reference_port` is None) and the
    served deployments, or with `workers` the pool's deployments and that many workers;
    on any failure everything already started is stopped again."""
    if port_in_use(host, port):
        raise StackError(
            f"{host}:{port} is already in use (another Prefect server?); choose --port"
        )
    if reference_port is not None and port_in_use(host, reference_port):
        raise StackError(
            f"{host}:{reference_port} is already in use; choose --reference-port or --no-reference"
        )
    logs = home / "logs"
    api_url = f"http://{host}:{port}/api"
    env = prefect_env(home)
    env["PREFECT_API_URL"] = api_url
    env["EVALCORE_HOME"] = str(home.resolve())
    env["EVALCORE_SUITE"] = str(suite.resolve())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project), env.get("PYTHONPATH")]))
    stack = Stack(api_url=api_url, target_url=None, logs=logs)
    try:
        on_step(f"Prefect server on {api_url}")
        stack.children.append(
            start_prefect_server(
                env,
                logs / "prefect-server.log",
                host=host,
                port=port,
                ui=ui,
                cwd=project,
                timeout_s=startup_timeout_s,
            )
        )
        if reference_port is not None:
            on_step(f"reference target on http://{host}:{reference_port}/v1")
            stack.reference = ReferenceServer(Knobs(), port=reference_port, host=host).start()
            stack.target_url = stack.reference.base_url
            env["EVALCORE_TARGET_URL"] = stack.target_url
            env["EVALCORE_JUDGE_URL"] = stack.target_url
        if workers:
            on_step(f"prefect deploy --all: prefect.yaml's deployments on pool {WORK_POOL}")
            deploy_to_pool(env, project)
            env.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_S))
            # A waiting shard is taken within this long (Prefect's default is 10 s).
            env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "1")
            crash_zombie_flow_runs(api_url, int(env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]))
            on_step(f"{workers} worker(s) on pool {WORK_POOL}")
            stack.children += start_workers(env, logs, workers, project, startup_timeout_s)
            return stack
        on_step("deployments/serve.py: release-gate, triggered by release.created")
        started = dt.datetime.now(dt.UTC)
        served = ManagedProcess(
            "deployments",
            [sys.executable, "-m", "deployments.serve"],
            env,
            logs / "serve.log",
            cwd=project,
        ).start()
        stack.children.append(served)
        wait_ready(
            "deployments/serve.py",
            lambda: _polled_since(api_url, GATE_DEPLOYMENT_PATH, started),
            served,
            startup_timeout_s,
        )
    except BaseException:
        stack.stop()
        raise
    return stack


def prefect_env(home: Path) -> dict[str, str]:
    """The environment for Prefect processes of the local stack: state under EVALCORE_HOME
    unless PREFECT_HOME is set, and no telemetry (there is no network to send it to)."""
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str((home / "prefect").resolve()))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def start_prefect_server(
    env: dict[str, str],
    log_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int,
    ui: bool = False,
    cwd: Path | None = None,
    timeout_s: float = 90.0,
) -> ManagedProcess:
    """`prefect server start` on `host:port`, returned once `/api/health` answers."""
    server = ManagedProcess(
        "prefect server",
        [
            *(sys.executable, "-m", "prefect", "server", "start"),
            *("--host", host, "--port", str(port), "--ui" if ui else "--no-ui"),
        ],
        env,
        log_path,
        cwd=cwd,
    ).start()
    api_url = f"http://{host}:{port}/api"
    try:
        wait_ready(
            "the Prefect server",
            lambda: _get_ok(f"{api_url}/health") is not None,
            server,
            timeout_s,
        )
    except BaseException:
        server.stop()
        raise
    return server


def _polled_since(api_url: str, deployment: str, since: dt.datetime) -> bool:
    """The runner has picked the deployment up (it polls as soon as it serves)."""
    response = _get_ok(f"{api_url}/deployments/name/{deployment}")
    if response is None:
        return False
    polled = response.json().get("last_polled")
    return bool(polled) and dt.datetime.fromisoformat(polled) >= since


def deploy_to_pool(env: dict[str, str], project: Path) -> None:
    """The `evalcore` process work pool (kept when it exists) and every deployment of
    `prefect.yaml`, triggers and schedules included, applied from the project's root (the
    workers run flows from there)."""
    _prefect_cli(
        env, project, "work-pool", "create", WORK_POOL, "--type", "process", exists_ok=True
    )
    _prefect_cli(env, project, "--no-prompt", "deploy", "--all")


def _prefect_cli(env: dict[str, str], cwd: Path, *args: str, exists_ok: bool = False) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode == 0 or (exists_ok and "already exists" in done.stdout + done.stderr):
        return
    raise StackError(f"prefect {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}")


def start_workers(
    env: dict[str, str], logs: Path, count: int, project: Path, timeout_s: float
) -> list[ManagedProcess]:
    """`count` workers on the pool, returned once the server lists them all online."""
    workers: list[ManagedProcess] = []
    try:
        for number in range(1, count + 1):
            name = f"evalcore-worker-{number}"
            workers.append(
                ManagedProcess(
                    f"worker {number}",
                    [
                        *(sys.executable, "-m", "deployments.worker", "--pool", WORK_POOL),
                        *("--name", name),
                    ],
                    env,
                    logs / f"{name}.log",
                    cwd=project,
                ).start()
            )
        api_url = env["PREFECT_API_URL"]
        for worker in workers:
            wait_ready(
                worker.name,
                lambda: len(online_workers(api_url)) >= count,
                worker,
                timeout_s,
            )
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return workers


def prefect_api(api_url: str, timeout_s: float = 10.0) -> httpx.Client:
    """A client of the Prefect API that behaves as Prefect's own: an answer of 429, 502 or
    503 is retried with backoff (a Prefect server answers 503 while its SQLite database is
    locked, and expects the call again), any other error is raised. Use it in `with`."""
    from prefect.client.base import PrefectHttpxSyncClient

    return PrefectHttpxSyncClient(base_url=f"{api_url.rstrip('/')}/", timeout=timeout_s)


def start_flow_run(api_url: str, deployment: str, parameters: dict[str, Any] | None = None) -> str:
    """A flow run of `deployment` ("flow/deployment") created on the server, as a trigger
    or a CI job would; its id."""
    with prefect_api(api_url) as api:
        found = api.get(f"deployments/name/{deployment}").json()
        created = api.post(
            f"deployments/{found['id']}/create_flow_run", json={"parameters": parameters or {}}
        )
    return str(created.json()["id"])


def deployment_flow_runs(api_url: str, deployment: str) -> list[dict[str, Any]]:
    """The flow runs of `deployment` ("flow/deployment") the server holds."""
    with prefect_api(api_url) as api:
        found = api.get(f"deployments/name/{deployment}").json()
        response = api.post(
            "flow_runs/filter", json={"deployments": {"id": {"any_": [found["id"]]}}}
        )
    runs: list[dict[str, Any]] = response.json()
    return runs


FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


def final_state(api_url: str, flow_run_id: str, *, timeout_s: float, poll_s: float = 0.5) -> str:
    """The type of the flow run's final state, waited for (StackError after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    with prefect_api(api_url) as api:
        while time.monotonic() < deadline:
            state = api.get(f"flow_runs/{flow_run_id}").json()["state"]
            if state and state["type"] in FINAL_STATES:
                return str(state["type"])
            time.sleep(poll_s)
    raise StackError(f"flow run {flow_run_id} did not end within {timeout_s} s")


def online_workers(api_url: str, pool: str = WORK_POOL) -> list[str]:
    """The names of the pool's workers the server sees online (none while it cannot say)."""
    try:
        with prefect_api(api_url, timeout_s=5.0) as api:
            workers = api.post(f"work_pools/{pool}/workers/filter", json={}).json()
    except httpx.HTTPError:
        return []
    return sorted(w["name"] for w in workers if w.get("status") == "ONLINE")


def crash_zombie_flow_runs(api_url: str, heartbeat_s: int) -> None:
    """The automation Prefect's guide gives for flow runs whose worker died: a flow run
    that started running or sent a heartbeat, and then neither another heartbeat nor a
    final state within two heartbeats and a margin, is marked Crashed. Created once per
    server."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        with prefect_api(api_url) as api:
            existing = api.post("automations/filter", json={}).json()
        if any(a["name"] == ZOMBIE_AUTOMATION for a in existing):
            return
        Automation(
            name=ZOMBIE_AUTOMATION,
            trigger=EventTrigger(
                # From Running too, not only the first heartbeat: a process killed within
                # a second of starting may never have sent one.
                after={"prefect.flow-run.heartbeat", "prefect.flow-run.Running"},
                expect={
                    "prefect.flow-run.heartbeat",
                    "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled",
                    "prefect.flow-run.Crashed",
                },
                match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(seconds=2 * heartbeat_s + 10),
            ),
            actions=[
                ChangeFlowRunState(
                    state=StateType.CRASHED,
                    message=f"its worker stopped: no heartbeat for {2 * heartbeat_s + 10} s",
                )
            ],
        ).create()
