"""Sharded runs on Prefect: the `run-shard` flow, and the waiting side that starts one flow
run of its deployment per shard.

`run_shard` runs one shard's pairs of an open run (those without a result: a retry, or a
second attempt of the same shard, resumes from what was stored) and leaves the run open.
`run_sharded` is what a gate or monitor run does for a run with `shards > 1`: one flow
run of `run-shard/run-shard` per shard, picked up by whichever worker is free; it waits
for all of them, publishes their progress as a Prefect artifact, and closes the run once.

Prefect retries a shard that raised (the flow's own `retries`). A worker that dies leaves
its flow run Crashed, which no flow retry covers: the waiting side schedules that flow
run again, up to `CRASH_RETRIES` times. A shard that still fails is recorded on the run
(`FAILED_SHARDS_KEY`), which makes its verdict inconclusive, naming the shard. Without a
`run-shard` deployment on the server the shards run in the waiting process, one after
another, through the same shard path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.context import FlowRunContext, TaskRunContext
from prefect.deployments.flow_runs import arun_deployment
from prefect.events import Event
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Scheduled
from sqlalchemy.engine import Engine

from evalcore.results.verdict import ShardFailure
from evalcore.run import RunSetupError, Shard, execute_run, execute_shards, full_url, run_for_resume
from evalcore.run.shards import (
    ShardProgress,
    case_samples_of,
    close_sharded_run,
    shard_count,
    shard_progress,
    shards_of,
)
from evalcore.settings import get_settings
from evalcore.store.engine import get_engine
from evalcore.store.repository import get_run, run_totals, set_run_status
from evalcore.store.tables import RunRow
from evalcore.suite import KnownDataset, Suite, load_suite
from flows.events import follow_events

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

SHARD_FLOW = "run-shard"
SHARD_DEPLOYMENT = "run-shard"
# How many times a shard whose flow run crashed (its worker died) is scheduled again.
CRASH_RETRIES = 2
# A flow run a worker took (Pending) but never started within this long: that worker died
# while starting it (Prefect marks only a Running flow run Crashed, from its heartbeats),
# so it is scheduled again for another worker, counted as one of the crash retries.
PENDING_TIMEOUT_S = 60.0
# A shard's flow run that no worker has started by then is cancelled and counted failed,
# so a deployment nobody serves cannot keep a gate waiting for ever.
START_TIMEOUT_S = 600.0
# The waiting side reads its shards' flow runs (one request for all of them) as soon as
# Prefect emits an event for one of them (a state change), and at least this often: a
# shard's end reaches the verdict this much later at most if the event stream drops.
POLL_S = 0.5

Log = Callable[[str], None]


@flow(
    name=SHARD_FLOW,
    persist_result=False,
    log_prints=False,
    retries=2,
    retry_delay_seconds=5,
)
async def run_shard(
    run_id: str,
    shard: int,
    shards: int,
    suite: str | None = None,
    files_digest: str | None = None,
) -> dict[str, int]:
    """Call, score and store the pairs of shard `shard` of `shards` of run `run_id` that
    have no result yet; the run stays open for whoever waits for all its shards.

    The run's URLs are stored masked; a masked one is completed from EVALCORE_TARGET_URL /
    EVALCORE_JUDGE_URL of the worker, as a served gate does. `files_digest`: the
    `Suite.files_digest` of the suite the run was opened from; when this worker reads the
    same bytes with the same code, the run's dataset hash stands without hashing every
    case again (anything else is hashed and checked as before).
    """
    logger = get_run_logger()
    engine = get_engine()
    stored = get_run(engine, run_id)
    if stored is None:
        raise RunSetupError(f"no run with id {run_id!r} in the store this worker uses")
    if shard_count(stored.settings) != shards:
        raise RunSetupError(
            f"run {run_id[:12]} is split into {shard_count(stored.settings)} shards, not {shards}"
        )
    settings = get_settings()
    mine = Shard(shard, shards)
    known = KnownDataset(files_digest, stored.dataset_hash) if files_digest else None
    # The files the gate read (the same digest): only this shard's cases are validated.
    loaded = load_suite(Path(suite or settings.suite), known=known, only=mine.wants)
    # Checks the suite still has the run's dataset and scorecard, and keeps the full URLs.
    run = run_for_resume(
        engine,
        loaded,
        run_id,
        target_url=_full(
            stored.settings.get("target_url"), "EVALCORE_TARGET_URL", settings.target_url
        ),
        judge_url=_full(stored.settings.get("judge_url"), "EVALCORE_JUDGE_URL", settings.judge_url),
    )
    report = await execute_run(engine, loaded, run, shard=mine)
    counters = report.counters
    logger.info(
        "run %s %s: %s new results in %.2f s (%s of its %s pairs already stored)",
        run_id[:12],
        mine,
        report.written,
        report.elapsed_s,
        counters.skipped,
        counters.planned,
    )
    return {"planned": counters.planned, "skipped": counters.skipped, "written": report.written}


def _full(stored: str | None, variable: str, setting: str | None) -> str | None:
    """The URL to call for one a run stored (masked when it had credentials: completed
    from this worker's `variable`); None when the run called the scorecard's."""
    return full_url(stored, option=variable, fallback=setting) if stored else None


def artifact_key(run_id: str) -> str:
    return f"shards-{run_id[:12]}"


@dataclass
class _ShardRun:
    """One shard's flow run as the waiting side follows it."""

    shard: Shard
    flow_run_id: UUID
    crashes: int = 0
    failure: ShardFailure | None = None
    done: bool = False
    # Since when the flow run waits for a worker (None while one runs it).
    waiting_since: float | None = field(default_factory=time.monotonic)
    # Since when a worker holds it Pending without starting it (None when it is not).
    pending_since: float | None = None


@dataclass
class _Progress:
    """The run's progress artifact: stored pairs over planned, updated as they come.
    Published only from a flow or task run (Prefect keeps artifacts with one)."""

    run: RunRow
    engine: Engine
    artifact_id: UUID | None = None
    shown: float = -1.0
    last_update: float = field(default=0.0)
    published: bool = field(
        default_factory=lambda: FlowRunContext.get() is not None or TaskRunContext.get() is not None
    )

    async def update(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.published or (not force and now - self.last_update < 5.0):
            return
        self.last_update = now
        stored = run_totals(self.engine, self.run.id).results
        percent = min(100.0, 100.0 * stored / self.run.planned) if self.run.planned else 100.0
        if percent == self.shown:
            return
        self.shown = percent
        description = f"run {self.run.id[:12]}: {stored} of {self.run.planned} pairs stored"
        if self.artifact_id is None:
            self.artifact_id = await acreate_progress_artifact(
                progress=percent, key=artifact_key(self.run.id), description=description
            )
        else:
            await aupdate_progress_artifact(self.artifact_id, percent, description=description)

    async def table(self, progress: list[ShardProgress] | None = None) -> None:
        """Per shard: planned and stored pairs, and what became of it (`progress`, when
        the caller has it already)."""
        if not self.published:
            return
        if progress is None:
            run = get_run(self.engine, self.run.id) or self.run
            progress = shard_progress(self.engine, run)
        await acreate_table_artifact(
            table=[p.as_json() for p in progress],
            key=f"{artifact_key(self.run.id)}-table",
            description=f"run {self.run.id[:12]}: its shards",
        )


async def _shard_deployment(client: PrefectClient) -> UUID | None:
    try:
        deployment = await client.read_deployment_by_name(f"{SHARD_FLOW}/{SHARD_DEPLOYMENT}")
    except ObjectNotFound:
        return None
    return deployment.id


async def _follow(client: PrefectClient, followed: _ShardRun, flow_run: FlowRun, log: Log) -> None:
    """Look at a shard's flow run once: done, failed, scheduled again after a crash, or
    cancelled when no worker ever started it."""
    state = flow_run.state
    if state is None:
        return
    shard = followed.shard
    if state.is_completed():
        followed.done = True
        log(f"{shard} completed ({flow_run.name})")
    elif state.is_crashed() and followed.crashes < CRASH_RETRIES:
        followed.waiting_since = time.monotonic()
        await _schedule_again(
            client,
            followed,
            log,
            f"{shard} crashed ({flow_run.name}: {state.message})",
            f"{shard} crashed",
        )
    elif state.is_final():
        followed.done = True
        why = f"its flow run {flow_run.name} ended {state.name}"
        if state.message:
            why += f": {state.message}"
        followed.failure = ShardFailure(shard.index, shard.of, why)
        log(f"{shard} failed: {why}")
    elif state.is_running():
        followed.waiting_since = None
        followed.pending_since = None
    elif state.is_pending() and followed.pending_since is None:
        followed.pending_since = time.monotonic()
    elif (
        state.is_pending()
        and followed.pending_since is not None
        and time.monotonic() - followed.pending_since > PENDING_TIMEOUT_S
        and followed.crashes < CRASH_RETRIES
    ):
        followed.pending_since = None
        await _schedule_again(
            client,
            followed,
            log,
            f"{shard}: the worker that took {flow_run.name} never started it in "
            f"{PENDING_TIMEOUT_S:.0f} s",
            f"{shard} was never started",
        )
    elif followed.waiting_since is None:
        followed.waiting_since = time.monotonic()
    elif time.monotonic() - followed.waiting_since > START_TIMEOUT_S:
        message = f"no worker started its flow run {flow_run.name} within {START_TIMEOUT_S:.0f} s"
        await client.set_flow_run_state(
            followed.flow_run_id, Cancelled(message=message), force=True
        )
        followed.done = True
        followed.failure = ShardFailure(shard.index, shard.of, message)
        log(f"{shard} failed: {message} (is a worker serving the run-shard deployment?)")


async def _schedule_again(
    client: PrefectClient, followed: _ShardRun, log: Log, why: str, state_message: str
) -> None:
    """Count one more of the shard's retries and put its flow run back to Scheduled, for
    whichever worker is free."""
    followed.crashes += 1
    retry = f"{followed.crashes} of {CRASH_RETRIES}"
    log(f"{why}; scheduled again, {retry} retries")
    await client.set_flow_run_state(
        followed.flow_run_id, Scheduled(message=f"{state_message}; retry {retry}"), force=True
    )


class _Wakeup:
    """Set when one of the followed flow runs changes state, so the waiting side reads
    them at once rather than at its next poll."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def set(self) -> None:
        self._changed.set()

    async def wait(self, timeout_s: float) -> None:
        """Until a change, or `timeout_s` without one."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        self._changed.clear()


# A shard's flow run starting, or alive: nothing the waiting side acts on before its poll
# (a worker that holds a run Pending too long is a matter of a minute). Each of them would
# otherwise be one more read of every shard's flow run, on the server, while they start.
_NOT_WORTH_A_READ = tuple(
    f"prefect.flow-run.{name}"
    for name in ("Pending", "Submitting", "Running", "Retrying", "heartbeat")
)


def state_changes_filter(flow_run_ids: list[UUID]) -> EventFilter:
    """The events of these flow runs that the waiting side reads them for at once."""
    return EventFilter(
        event=EventNameFilter(prefix=["prefect.flow-run."], exclude_name=list(_NOT_WORTH_A_READ)),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{i}" for i in flow_run_ids]),
    )


@contextlib.asynccontextmanager
async def _state_changes(flow_run_ids: list[UUID]) -> AsyncIterator[_Wakeup]:
    """A `_Wakeup` set by Prefect's events for these flow runs (`prefect.flow-run.*` but
    `_NOT_WORTH_A_READ`: an end, a crash, a cancellation, a retry scheduled); if
    the event stream cannot be had or drops, it subscribes again later and the poll alone
    carries on meanwhile."""
    wakeup = _Wakeup()
    changes = state_changes_filter(flow_run_ids)

    async def wake(_: Event) -> None:
        wakeup.set()

    listener = asyncio.create_task(follow_events(changes, wake))
    try:
        yield wakeup
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


_PAGE = 200  # flow runs read in one request (the API's default page)


async def _follow_page(client: PrefectClient, page: list[_ShardRun], log: Log) -> None:
    """`_follow` each of these shards from one read of their flow runs; a shard whose flow
    run is no longer on the server (deleted) failed."""
    by_id = {f.flow_run_id: f for f in page}
    read = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(by_id))), limit=len(page)
    )
    for flow_run in read:
        await _follow(client, by_id.pop(flow_run.id), flow_run, log)
    for gone in by_id.values():
        gone.done = True
        gone.failure = ShardFailure(gone.shard.index, gone.shard.of, "its flow run was deleted")
        log(f"{gone.shard} failed: its flow run was deleted")


async def run_sharded(
    engine: Engine,
    suite: Suite,
    run: RunRow,
    *,
    log: Log,
    poll_s: float = POLL_S,
) -> list[ShardFailure]:
    """Run every shard of `run` as its own `run-shard` flow run, wait for all of them, and
    close the run once; returns the shards that failed (recorded on the run). Without a
    `run-shard` deployment the shards run here, one after another."""
    progress = _Progress(run, engine)
    async with get_client() as client:
        deployment_id = await _shard_deployment(client)
        if deployment_id is None:
            log(
                f"no {SHARD_FLOW}/{SHARD_DEPLOYMENT} deployment on the Prefect server: the "
                f"{shard_count(run.settings)} shards of run {run.id[:12]} run in this process, "
                "one after another"
            )
            sharded = await execute_shards(engine, suite, run)
            await progress.update(force=True)
            await progress.table()
            return sharded.failures
        if run.status != "running":  # a failed or interrupted run, resumed
            set_run_status(engine, run.id, "running")
        root = str(suite.root.resolve())

        async def submit(shard: Shard) -> _ShardRun:
            flow_run = await arun_deployment(
                deployment_id,
                client=client,
                parameters={
                    "run_id": run.id,
                    "shard": shard.index,
                    "shards": shard.of,
                    "suite": root,
                    "files_digest": suite.files_digest or None,
                },
                flow_run_name=f"{run.id[:12]}-shard-{shard.index}-of-{shard.of}",
                tags=["evalcore", SHARD_FLOW],
                timeout=0,
            )
            return _ShardRun(shard, flow_run.id)

        # All at once: with many shards, one after another would hold the last one back.
        followed = list(await asyncio.gather(*(submit(shard) for shard in shards_of(run))))
        log(f"run {run.id[:12]}: {len(followed)} shard flow runs submitted to {SHARD_FLOW}")
        await progress.update(force=True)
        async with _state_changes([f.flow_run_id for f in followed]) as changed:
            while not all(f.done for f in followed):
                await changed.wait(poll_s)
                waiting = [f for f in followed if not f.done]
                for start in range(0, len(waiting), _PAGE):
                    await _follow_page(client, waiting[start : start + _PAGE], log)
                await progress.update()
    failures = [f.failure for f in followed if f.failure is not None]
    closed = close_sharded_run(engine, run, failures, case_samples_of(suite, run))
    await asyncio.gather(progress.update(force=True), progress.table(closed.progress))
    return closed.failures
