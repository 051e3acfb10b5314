"""A Prefect process worker whose flow runs start warm: forked from a server process that
has Prefect, evalcore and the flows imported already, instead of a fresh Python per run.

A stock process worker starts two interpreters for every flow run (a supervisor that runs
the pull steps, then `python -m prefect.engine`), and each imports Prefect and the flow
before the first line of it runs: about 3-4 s on two busy cores, paid again by every shard
of a sharded run. This worker is Prefect's `ProcessWorker` with two changes. The process
starter: each flow run is a child of a fork server (the standard library's
`multiprocessing` forkserver, started once per worker with the modules below imported)
that runs the same engine entry point as `python -m prefect.engine` — pull steps, flow
loading, heartbeats, cancellation, crash reporting and exit codes are Prefect's own. A
flow run is still a process of its own, so a crash or a kill takes only that run, and
killing the worker with its children kills its runs, as with a stock worker. Once the
code under evalcore/, flows/ or deployments/ changes (a checkout updated under a running
worker), flow runs start the stock way, in a new interpreter, so none runs stale code;
restarting the worker makes them warm again. The fork server also builds once what each
flow run would build at its start (`warm_up_fork_server`). And the pick-up: it takes a
flow run as soon as Prefect schedules one in its pool (the `prefect.flow-run.Scheduled`
event) if it is the one of the pool's online workers to take it first (`first_to_take`),
a second later otherwise, besides polling every PREFECT_WORKER_QUERY_SECONDS.

It serves the same `process` work pool as `prefect worker start --pool evalcore` (which
also works, only slower to start each run):

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.worker --pool evalcore

`evalcore up --workers N` starts N of these.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import hashlib
import importlib.util
import multiprocessing
import multiprocessing.context
import os
import runpy
import ssl
import sys
import tempfile
import warnings
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import certifi
from prefect._internal import version_checking
from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.client.schemas.filters import WorkerFilter, WorkerFilterStatus
from prefect.events import Event
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.flows import load_flow_from_flow_run
from prefect.runner._flow_run_executor import FlowRunExecutorContext
from prefect.runner._process_manager import ProcessHandle
from prefect.settings import (
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
    PREFECT_WORKER_HEARTBEAT_SECONDS,
    PREFECT_WORKER_PREFETCH_SECONDS,
    Settings,
    get_current_settings,
)
from prefect.utilities.processutils import sanitize_subprocess_env
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

from evalcore.collector import keep_heap_frozen
from evalcore.settings import get_settings
from evalcore.store.engine import get_engine
from evalcore.store.repository import get_run
from flows.events import follow_events

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.runner._control_channel import ControlChannel

# Imported once by the fork server, so a flow run starts with them in memory. A module
# that fails to import is skipped there and imported by the flow run itself.
PRELOAD = (
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.deployments.steps",
    "anyio._backends._asyncio",
    # The store's drivers, which SQLAlchemy imports only when an engine is first created.
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "encodings.idna",
    "flows.release_gate",
    "flows.run_shard",
    "flows.nightly_monitor",
    "flows.weekly_digest",
    "flows.triage_replies",
    "flows.intake",
    # This module, which a flow run's process imports again as the worker's `__main__`.
    "deployments.worker",
    # Last: what each flow run would build for itself, built once in the fork server.
    "deployments.fork_server",
)
# The packages whose code the fork server holds in memory: edited after the worker started,
# a flow run starts the stock way (a fresh interpreter importing the new code) instead.
SOURCE_PACKAGES = ("evalcore", "flows", "deployments")
# The event Prefect emits when a flow run is scheduled, which the worker takes runs on.
SCHEDULED_EVENT = "prefect.flow-run.Scheduled"
# How often a worker reads which workers of its pool are online: with them it agrees on
# the one that takes a newly scheduled flow run at once (`first_to_take`).
PEERS_S = 10.0
# How long the other workers leave a newly scheduled flow run to the first to take it
# before they take it themselves (it may be at its limit of flow runs, or gone).
SECOND_TAKE_S = 1.0


def first_to_take(flow_run_id: str, workers: Collection[str]) -> str | None:
    """The one of `workers` that takes this flow run the moment it is scheduled, the same
    in every worker that knows the same names (rendezvous hashing: flow runs spread evenly,
    and a worker joining or leaving moves only its own share); None without workers."""

    def rank(worker: str) -> bytes:
        return hashlib.blake2b(f"{flow_run_id}\0{worker}".encode(), digest_size=8).digest()

    return max(workers, key=rank, default=None)


def source_fingerprint(roots: Iterable[Path]) -> tuple[int, int]:
    """(newest modification time, number of files) of the Python files under `roots`: it
    changes when one is edited, added or removed (a checkout updated under the worker)."""
    newest, count = 0, 0
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                if name.endswith(".py"):
                    count += 1
                    with contextlib.suppress(OSError):  # removed while we look
                        newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
    return newest, count


def source_roots() -> list[Path]:
    """Where `SOURCE_PACKAGES` are imported from, found without importing them."""
    roots: list[Path] = []
    for package in SOURCE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            roots.extend(Path(location) for location in spec.submodule_search_locations)
    return roots


def fork_server() -> multiprocessing.context.ForkServerContext:
    """The fork server context flow runs start from, with `PRELOAD` imported."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


@functools.cache
def _api_tls_context(insecure: bool, cert_file: str | None) -> ssl.SSLContext:
    """The TLS context Prefect's client builds for these settings, built once."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cert_file or certifi.where())


def _with_shared_tls(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def shared(self: object, *args: Any, **kwargs: Any) -> None:
        httpx_settings = dict(kwargs.get("httpx_settings") or {})
        if "verify" not in httpx_settings:
            httpx_settings["verify"] = _api_tls_context(
                bool(PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value()),
                PREFECT_API_SSL_CERT_FILE.value() or None,
            )
            kwargs["httpx_settings"] = httpx_settings
        init(self, *args, **kwargs)

    shared.shares_tls = True  # type: ignore[attr-defined]
    return shared


def share_api_tls_context() -> None:
    """Let Prefect's API clients in this process share one TLS context per TLS setting.

    Prefect builds a new context for every API client it opens (reading and parsing the
    CA bundle: about 18 ms of CPU), tens of times per flow run, even for an http:// API:
    about 0.2 s of a flow run's start on two busy cores. The context is built as
    Prefect builds it (PREFECT_API_TLS_INSECURE_SKIP_VERIFY, PREFECT_API_SSL_CERT_FILE,
    else certifi's bundle); a client given its own `verify` keeps it.
    """
    for client in (PrefectClient, SyncPrefectClient):
        if not getattr(client.__init__, "shares_tls", False):
            client.__init__ = _with_shared_tls(client.__init__)  # type: ignore[method-assign]


def warm_up_fork_server() -> None:
    """In the fork server, once: what every flow run would otherwise build for itself at
    its start. The TLS context for the API of these settings (about 50 ms of CPU each
    time), and the store's engine (`open_store`). A flow run whose settings differ builds
    its own, as before. Nothing here may fail the fork server (its preloads stop only an
    ImportError): what cannot be built now is built, and reported, by each flow run."""
    share_api_tls_context()
    with contextlib.suppress(Exception):  # e.g. a PREFECT_API_SSL_CERT_FILE that is no file
        _api_tls_context(
            bool(PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value()),
            PREFECT_API_SSL_CERT_FILE.value() or None,
        )
    open_store()


def open_store() -> None:
    """The engine of the store EVALCORE_DATABASE_URL names, opened as `get_engine` opens it
    (its schema checked at the newest revision) with a run looked up once, then every
    connection closed, so that none is shared across a fork. A flow run forked after
    finds it open, its lookups compiled: about 0.1 s of CPU it would spend connecting
    twice and checking the schema on its own. Without the variable (the store would be a
    file under EVALCORE_HOME, made on first use) or with the store unreachable, nothing
    is opened here: each flow run opens it, and says why it cannot."""
    if not get_settings().database_url:
        return
    try:
        engine = get_engine()
    except Exception:  # StoreUnavailable and the like: the flow runs will report it
        return
    try:
        get_run(engine, "")
    except Exception:  # compiled or not, the flow runs still work
        pass
    finally:
        engine.dispose()


def checked_api_versions() -> list[tuple[str, str]]:
    """The (API URL, client version) pairs whose server version this process checked
    already (Prefect checks each once per process, with a request and a TLS context)."""
    with version_checking._API_VERSION_CHECK_CACHE_LOCK:
        return sorted(version_checking._API_VERSION_CHECK_CACHE)


def take_api_versions_as_checked(checked: Iterable[tuple[str, str]]) -> None:
    """This process checks no server version its worker checked already."""
    for api_url, client_version in checked:
        version_checking._cache_api_version_check((api_url, client_version))


def _logging_variables() -> dict[str, str]:
    """The variables Prefect's logging configuration reads besides its settings."""
    return {k: v for k, v in os.environ.items() if k.startswith("PREFECT_LOGGING_")}


def refresh_settings(forked: Settings, forked_logging: dict[str, str]) -> bool:
    """Prefect's settings and log levels from this process's environment now (a flow
    run's: the job's variables), as `python -m prefect.engine` reads them at its start.

    Logging was set up by the fork server's `import prefect`, from `forked` settings and
    `forked_logging` variables: it is set up again (as Prefect does, over it) only when
    they changed, since that renders every setting (about 50 ms of CPU). Whether it was.
    """
    from prefect.context import refresh_global_settings_context
    from prefect.logging.configuration import setup_logging

    refresh_global_settings_context()
    if get_current_settings() == forked and _logging_variables() == forked_logging:
        return False
    setup_logging()
    return True


def _run_engine(
    environment: dict[str, str], cwd: str, checked: Iterable[tuple[str, str]] = ()
) -> None:
    """In the forked child: become the process `python -m prefect.engine` would be.

    `checked`: the server versions the worker checked, which hold for its flow runs too."""
    # What the fork server imported stays for the life of the process: out of the cyclic
    # collector's sight, a full collection neither walks it nor writes to every page of
    # it (each write a copy-on-write fault): about 0.15 s of a shard's start otherwise.
    gc.freeze()
    keep_heap_frozen()
    share_api_tls_context()
    forked_settings, forked_logging = get_current_settings(), _logging_variables()
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(cwd)
    take_api_versions_as_checked(checked)
    refresh_settings(forked_settings, forked_logging)
    sys.argv = [sys.executable]
    runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)


_rendered: tuple[Settings, dict[str, str]] | None = None


def settings_environment() -> dict[str, str]:
    """The current Prefect settings as the variables a flow run's process gets, rendered
    once per settings object: Prefect renders them twice per flow run (about 50 ms of CPU
    each time on two busy cores), always the same for a worker."""
    global _rendered
    settings = get_current_settings()
    if _rendered is None or _rendered[0] is not settings:
        _rendered = (settings, settings.to_environment_variables(exclude_unset=True))
    return dict(_rendered[1])


class WarmJobConfiguration(ProcessJobConfiguration):
    """The process job configuration, its base environment rendered once (as above)."""

    @classmethod
    def _base_environment(cls) -> dict[str, str]:
        return settings_environment()


class WarmEngineStarter:
    """Prefect's process-starter protocol (as `EngineCommandStarter`), starting the engine
    in a child of the fork server instead of a new interpreter."""

    def __init__(
        self,
        context: multiprocessing.context.ForkServerContext,
        *,
        cwd: Path,
        env: dict[str, str | None],
        settings: dict[str, str],
        control_channel: ControlChannel | None,
    ) -> None:
        self._context = context
        self._cwd = cwd
        self._env = env
        self._settings = settings
        self._control_channel = control_channel

    def _environment(self, flow_run: FlowRun) -> tuple[dict[str, str], bool]:
        control: dict[str, str] = {}
        registered = False
        if self._control_channel is not None:
            try:
                port, token = self._control_channel.register(flow_run.id)
            except RuntimeError:  # no loopback listener: cancellation falls back to kill
                pass
            else:
                control = {"PREFECT__CONTROL_PORT": str(port), "PREFECT__CONTROL_TOKEN": token}
                registered = True
        env: dict[str, str | None] = {**os.environ}
        env.update(self._env)
        env.update(self._settings)
        env.update(
            {
                "PREFECT__FLOW_RUN_ID": str(flow_run.id),
                "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",
                **control,
            }
        )
        return {k: v for k, v in sanitize_subprocess_env(env).items() if v is not None}, registered

    async def start(
        self,
        flow_run: FlowRun,
        task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        environment, registered = self._environment(flow_run)
        handed_off = False
        try:
            process = self._context.Process(
                target=_run_engine,
                kwargs={
                    "environment": environment,
                    "cwd": str(self._cwd),
                    "checked": checked_api_versions(),
                },
                name=f"flow-run-{flow_run.id}",
            )
            await anyio.to_thread.run_sync(process.start)
            handle = ProcessHandle(process)  # type: ignore[arg-type]
            task_status.started(handle)
            handed_off = True
            # The sentinel becomes readable when the process ends: no thread held per run.
            await anyio.wait_readable(process.sentinel)
            process.join()
        except BaseException:
            if registered and not handed_off and self._control_channel is not None:
                self._control_channel.unregister(flow_run.id)
            raise


# Taking over Prefect's "process" worker type is the point (this is that worker, started
# warm), so Prefect's note that the type's registration is overridden is not a warning.
warnings.filterwarnings(
    "ignore", message=r"Type 'WarmProcessWorker' .* has key 'process'", category=UserWarning
)


class WarmProcessWorker(ProcessWorker):
    """Prefect's process worker, its flow runs started by `WarmEngineStarter`."""

    type = "process"
    job_configuration = WarmJobConfiguration
    _documentation_url = "https://docs.prefect.io/v3/deploy/infrastructure-concepts/workers"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._fork_server = fork_server()
        self._roots = source_roots()
        self._source = source_fingerprint(self._roots)
        self._peers: frozenset[str] = frozenset()  # the pool's online workers, last read

    def _source_changed(self) -> bool:
        return source_fingerprint(self._roots) != self._source

    async def take_new_flow_runs_at_once(self) -> None:
        """Look for flow runs as soon as one is scheduled in this worker's pool (Prefect's
        `prefect.flow-run.Scheduled` event), rather than only every
        PREFECT_WORKER_QUERY_SECONDS: a shard a gate just created starts without waiting
        for the next poll. Of the pool's online workers, only the one `first_to_take`
        names does so, rather than all of them racing for it (each loser's submission is
        aborted by the server, which meanwhile serves it); the others take it
        SECOND_TAKE_S later if it is still scheduled, and the poll goes on as before. If
        the event stream drops, this waits and subscribes again, and the poll alone takes
        the runs meanwhile."""

        async with anyio.create_task_group() as later:

            async def take(event: Event) -> None:
                pool = self._work_pool
                if pool is None or not any(
                    related.id == f"prefect.work-pool.{pool.id}" for related in event.related
                ):
                    return
                flow_run_id = event.resource.id.removeprefix("prefect.flow-run.")
                if self.takes_at_once(flow_run_id):
                    await self._take_scheduled(self.takes_at_once)
                else:
                    later.start_soon(self._take_if_left, flow_run_id)

            await follow_events(EventFilter(event=EventNameFilter(name=[SCHEDULED_EVENT])), take)

    async def _take_scheduled(self, wanted: Callable[[str], bool]) -> None:
        """Submit the flow runs scheduled in the pool now whose ids are `wanted`."""
        if not self._has_successfully_synced:
            return
        scheduled = await self._get_scheduled_flow_runs()
        await self._submit_scheduled_flow_runs(
            [each for each in scheduled if wanted(str(each.flow_run.id))]
        )

    async def _take_if_left(self, flow_run_id: str) -> None:
        """A flow run another worker was first to take, taken after SECOND_TAKE_S if it is
        still scheduled then: that worker is at its limit of flow runs, or gone."""
        await anyio.sleep(SECOND_TAKE_S)
        try:
            await self._take_scheduled(lambda scheduled: scheduled == flow_run_id)
        except Exception:  # the API unreachable a moment: the poll takes it
            self._logger.debug("could not take flow run %s", flow_run_id, exc_info=True)

    def takes_at_once(self, flow_run_id: str) -> bool:
        """Whether this worker takes the flow run the moment it is scheduled: it does
        unless the pool's online workers, this one among them, make another the first."""
        if self.name not in self._peers:
            return True
        return first_to_take(flow_run_id, self._peers) == self.name

    async def follow_peers(self) -> None:
        """Every PEERS_S: the names of the pool's online workers (kept as they were while
        they cannot be read)."""
        online = WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"]))
        while True:
            read = False
            if self._client is not None:  # once the worker has started
                with contextlib.suppress(Exception):
                    workers = await self._client.read_workers_for_work_pool(
                        self._work_pool_name, worker_filter=online
                    )
                    self._peers = frozenset(worker.name for worker in workers)
                    read = True
            await anyio.sleep(PEERS_S if read else 1.0)

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        """`ProcessWorker.run` with `WarmEngineStarter` in place of its starters (Prefect
        has no hook for the starter alone, so its few lines of set-up are repeated)."""
        if configuration._command_configured:  # a command of the pool's own: Prefect's way
            return await super().run(flow_run, configuration, task_status)
        if await anyio.to_thread.run_sync(self._source_changed):
            self.get_flow_run_logger(flow_run).warning(
                "the evalcore code changed since this worker started: this flow run starts "
                "in a new interpreter; restart the worker to start flow runs warm again"
            )
            return await super().run(flow_run, configuration, task_status)
        status = task_status if task_status is not None else anyio.TASK_STATUS_IGNORED
        working = (
            contextlib.nullcontext(configuration.working_dir)
            if configuration.working_dir
            else tempfile.TemporaryDirectory(suffix="prefect")
        )
        with working as working_dir:
            async with FlowRunExecutorContext() as ctx:
                starter = WarmEngineStarter(
                    self._fork_server,
                    cwd=Path(await anyio.Path(working_dir).resolve()),
                    env=dict(configuration.env),
                    settings=settings_environment(),
                    control_channel=ctx.control_channel,
                )
                executor = ctx.create_executor(
                    flow_run,
                    starter,
                    resolve_flow=load_flow_from_flow_run,
                    propose_submitting=False,
                )
                execution = None

                async def execute(
                    *, task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED
                ) -> None:
                    nonlocal execution
                    execution = await executor.submit(task_status=task_status)

                async with anyio.create_task_group() as group:
                    handle = await group.start(execute)
                    if handle.pid is None:
                        raise RuntimeError("the flow run's process has no pid")
                    status.started(handle.pid)
        if execution is None or execution.status_code is None:
            raise RuntimeError("the flow run's process did not start")
        return ProcessWorkerResult(status_code=execution.status_code, identifier=str(handle.pid))


def _warm_up(context: multiprocessing.context.ForkServerContext) -> None:
    """Start the fork server (its imports) now rather than with the first flow run."""
    process = context.Process(target=os.getpid, name="fork-server-warm-up")
    process.start()
    process.join()


async def _serve(pool: str, name: str | None, limit: int | None) -> None:
    worker = WarmProcessWorker(
        work_pool_name=pool,
        name=name,
        limit=limit,
        prefetch_seconds=PREFECT_WORKER_PREFETCH_SECONDS.value(),
        heartbeat_interval_seconds=int(PREFECT_WORKER_HEARTBEAT_SECONDS.value()),
    )
    share_api_tls_context()
    await anyio.to_thread.run_sync(_warm_up, worker._fork_server)
    async with anyio.create_task_group() as group:
        group.start_soon(worker.take_new_flow_runs_at_once)
        group.start_soon(worker.follow_peers)
        await worker.start(printer=print)
        group.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.worker", description=__doc__)
    parser.add_argument("--pool", "-p", required=True, help="the process work pool to serve")
    parser.add_argument("--name", "-n", help="the worker's name (default: Prefect's)")
    parser.add_argument("--limit", "-l", type=int, help="at most this many flow runs at once")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.pool, args.name, args.limit))


if __name__ == "__main__":
    main()
