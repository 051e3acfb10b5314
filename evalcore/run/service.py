"""Starting, resuming and finishing runs: the glue between a suite, its target and the store.

A run is created with everything needed to continue it later (the target config after
command-line overrides, the engine settings, the sets), so `--resume` needs only its id;
except that a URL is stored with its credentials masked (`display_url`), so resuming a
run whose URL carried some asks for the full URL again, as the key variables are read
again from the environment.

A full URL lives only in this process's memory, found by its masked form: a command
hands a flow the masked URL as its parameter (what Prefect stores) and the flow, in the
same process, gets the full one back with `full_url`.

A sharded run (`run.shards` / `--shards`) is run one shard at a time by `execute_run(...,
shard=...)`, in any process, and closed once by whoever waited for all its shards
(`run.shards.close_sharded_run`); `execute_shards` does both in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy.engine import Engine

from evalcore.results.pricing import UNPRICED_KEY, missing_prices
from evalcore.results.run_stats import record_run_stats
from evalcore.results.verdict import ShardFailure
from evalcore.run.engine import Counters, EngineOptions, execute, extra_items, work_items
from evalcore.run.retry import RetryPolicy
from evalcore.run.shards import SHARDS_KEY, Shard, case_samples_of, close_sharded_run, shards_of
from evalcore.scorers._judge import judge_key, judge_secrets
from evalcore.scorers.base import JudgeError, ScoreContext
from evalcore.store.repository import (
    RunTotals,
    create_run,
    done_pairs,
    get_run,
    new_run_id,
    record_dataset_version,
    run_totals,
    set_run_status,
)
from evalcore.store.tables import RunRow
from evalcore.suite import Case, EvalSet, Suite, case_hash
from evalcore.suite.scorecard import HttpJsonTarget, OpenAIChatTarget, TargetConfig
from evalcore.targets import build_target, describe_target
from evalcore.targets.http import display_url, has_masked_parts, make_client


class RunSetupError(Exception):
    """The run cannot start or resume as asked (usage or configuration problem)."""


_FULL_URLS: dict[str, str] = {}


def keep_full_url(url: str | None) -> str | None:
    """The form of `url` that may be stored, logged or passed to a flow (credentials
    masked); the full URL is kept in this process's memory under that form."""
    if url is None:
        return None
    shown = display_url(url)
    if shown != url and not has_masked_parts(url):
        _FULL_URLS[shown] = url
    return shown


def full_url(url: str | None, *, option: str, fallback: str | None = None) -> str | None:
    """The URL to call for `url` (else `fallback`): itself, or for a masked one the full
    URL this process was given, or `fallback` (an environment setting) if it masks the
    same way. A masked URL nobody gave in full is a `RunSetupError` naming `option`."""
    if url is None:
        return fallback
    if not has_masked_parts(url):
        return url
    full = _FULL_URLS.get(url)
    if full is None and fallback is not None and display_url(fallback) == url:
        full = fallback
    if full is None:
        raise RunSetupError(
            f"{url} has its credentials masked (they are never stored) and this process "
            f"was not given the full URL: give it with {option}"
        )
    return full


def flow_url(given: str | None, default: str | None, *, variable: str) -> str | None:
    """What a flow hands its steps for a URL parameter: `given` (else `default`, read from
    `variable` in the environment) masked, the full URL kept in this process."""
    return keep_full_url(full_url(given, option=variable, fallback=default))


@dataclass(frozen=True)
class RunRequest:
    """What the caller asks for; `None` means "as the scorecard says"."""

    sets: tuple[EvalSet, ...] = (EvalSet.monitoring,)
    trigger: str = "cli"
    release: str | None = None
    target_url: str | None = None  # full, or masked by `keep_full_url` in this process
    model: str | None = None
    judge_url: str | None = None
    concurrency: int | None = None
    rps: float | None = None
    timeout_s: float | None = None
    retries: int | None = None
    shards: int | None = None


@dataclass
class RunReport:
    run: RunRow
    totals: RunTotals
    written: int
    elapsed_s: float
    counters: Counters = field(default_factory=Counters)


def override_target(config: TargetConfig, *, url: str | None, model: str | None) -> TargetConfig:
    """Apply `--target-url` / `--model` to the scorecard's target."""
    update: dict[str, Any] = {}
    if url is not None:
        if isinstance(config, OpenAIChatTarget):
            update["base_url"] = url
        elif isinstance(config, HttpJsonTarget):
            update["url"] = url
        else:
            raise RunSetupError("--target-url does not apply to a python target")
    if model is not None:
        update["model"] = model
    return config.model_copy(update=update) if update else config


def _stored_endpoint(dumped: dict[str, Any]) -> dict[str, Any]:
    """Header values may be literal tokens and URLs may carry credentials: keep only
    `${VAR}` references and masked URLs in the database."""
    headers = dumped.get("headers")
    if isinstance(headers, dict):
        dumped["headers"] = {
            name: value if value.startswith("${") and value.endswith("}") else "***"
            for name, value in headers.items()
        }
    for field_name in ("base_url", "url"):
        if isinstance(dumped.get(field_name), str):
            dumped[field_name] = display_url(dumped[field_name])
    return dumped


def record_dataset(engine: Engine, suite: Suite) -> None:
    version = suite.version

    def rows() -> Iterator[dict[str, Any]]:
        for case in suite.cases:
            yield {
                "case_id": case.id,
                "case_hash": case_hash(case),
                "set": case.set.value,
                "severity": case.severity.value,
                "tags": list(case.tags),
                "samples": case.samples,
                "body": case.model_dump(mode="json"),
            }

    record_dataset_version(
        engine,
        version_hash=version.hash,
        git_commit=version.git_commit,
        git_dirty=version.git_dirty,
        cases=rows(),
        case_count=len(suite.cases),
    )


def check_judge_key(suite: Suite, sets: Sequence[EvalSet | str]) -> None:
    """A judge whose key cannot be had (its variable unset, its Prefect Secret block missing
    or unreadable) stops a run of judged cases before anything is called, as a target's
    does, rather than failing every judged case."""
    judge = suite.scorecard.judge
    if judge is None or not any(case.expect.judge for case in suite.select(sets=sets)):
        return
    try:
        judge_key(judge)
    except JudgeError as exc:
        raise RunSetupError(str(exc)) from None


def prepare_run(engine: Engine, suite: Suite, request: RunRequest) -> RunRow:
    """Store the dataset version and a new run row; nothing is called yet."""
    scorecard = suite.scorecard
    target_url = full_url(request.target_url, option="--target-url")
    judge_url = full_url(request.judge_url, option="--judge-url")
    config = override_target(scorecard.target, url=target_url, model=request.model)
    run_settings = scorecard.run
    settings: dict[str, Any] = {
        "concurrency": request.concurrency or run_settings.concurrency,
        "rps": request.rps if request.rps is not None else run_settings.rps,
        "timeout_s": request.timeout_s or run_settings.timeout_s,
        "retries": request.retries if request.retries is not None else run_settings.retries,
        "backoff_base_s": run_settings.backoff_base_s,
        "backoff_max_s": run_settings.backoff_max_s,
        "target_url": keep_full_url(target_url),
        "model": request.model,
        "judge_url": keep_full_url(judge_url),
    }
    shards = request.shards if request.shards is not None else run_settings.shards
    if shards > 1:  # an unsharded run's settings stay as they were
        settings[SHARDS_KEY] = shards
    # A target that cannot be built (missing key variable, bad callable) stops here,
    # before a run row exists that nothing would ever close.
    build_target(config, concurrency=settings["concurrency"], timeout_s=settings["timeout_s"])
    cases = suite.select(sets=request.sets)
    if not cases:
        names = ", ".join(s.value for s in request.sets)
        raise RunSetupError(f"the suite has no cases in set {names}")
    check_judge_key(suite, request.sets)
    record_dataset(engine, suite)
    # What the run cannot price, known now: the model it calls (after --model) and the
    # judge, when a case asks for one, each without an entry under `prices`.
    settings[UNPRICED_KEY] = missing_prices(
        scorecard.prices,
        target_model=config.model,
        judge_model=scorecard.judge.model if scorecard.judge else None,
        judged=scorecard.judge is not None and any(c.expect.judge for c in cases),
    ).as_json()
    stored_scorecard = scorecard.model_dump(mode="json")
    stored_scorecard["target"] = _stored_endpoint(stored_scorecard["target"])
    if stored_scorecard.get("judge"):
        stored_scorecard["judge"] = _stored_endpoint(stored_scorecard["judge"])
    run = RunRow(
        id=new_run_id(),
        route=scorecard.route,
        target=describe_target(config),
        target_config=_stored_endpoint(config.model_dump(mode="json")),
        dataset_hash=suite.version.hash,
        scorecard_version=suite.scorecard_version,
        scorecard=stored_scorecard,
        sets=[s.value for s in request.sets],
        suite_path=str(suite.root.resolve()),
        trigger=request.trigger,
        release=request.release,
        git_commit=suite.version.git_commit,
        settings=settings,
        status="running",
        planned=sum(c.samples for c in cases),
    )
    return create_run(engine, run)


def run_for_resume(
    engine: Engine,
    suite: Suite,
    run_id: str,
    *,
    target_url: str | None = None,
    judge_url: str | None = None,
) -> RunRow:
    """The run to continue, after checking the suite still matches what it started with.

    `target_url` / `judge_url` give back the full URL of one stored masked; each must be
    the URL the run started with, and a masked one must be given.
    """
    run = get_run(engine, run_id)
    if run is None:
        raise RunSetupError(f"no run with id {run_id!r}")
    for option, key, given in (
        ("--target-url", "target_url", target_url),
        ("--judge-url", "judge_url", judge_url),
    ):
        stored = run.settings.get(key)
        if given is not None and (stored is None or display_url(given) != display_url(stored)):
            started_with = display_url(stored) if stored else "the scorecard's"
            raise RunSetupError(
                f"{option} {display_url(given)} is not the URL run {run.id[:12]} started "
                f"with ({started_with}); --resume continues a run with the settings it "
                "started with"
            )
        keep_full_url(given)
        if given is None and stored is not None and has_masked_parts(stored):
            raise RunSetupError(
                f"run {run.id[:12]} started with {option} {stored}, whose credentials are "
                f"never stored: resume it with {option} and the full URL"
            )
    if run.dataset_hash != suite.version.hash:
        raise RunSetupError(
            f"run {run.id[:12]} used dataset {run.dataset_hash[:12]}, but the suite is now "
            f"{suite.version.short}: the cases changed since, so resuming would mix two "
            "datasets; start a new run instead"
        )
    if run.scorecard_version != suite.scorecard_version:
        raise RunSetupError(
            f"run {run.id[:12]} used scorecard {run.scorecard_version[:12]}, but scorecard.yaml "
            "changed since; start a new run instead"
        )
    return run


async def execute_run(
    engine: Engine,
    suite: Suite,
    run: RunRow,
    *,
    counters: Counters | None = None,
    seed: int | None = None,
    batch_size: int = 500,
    extra: Mapping[str, Sequence[int]] | None = None,
    record_stats: bool = True,
    shard: Shard | None = None,
) -> RunReport:
    """Run every (case, sample) of `run` that has no result yet, then close the run.

    With `extra` (case id -> sample indices past the case's own `samples`), only those
    samples are run: the gate's re-sampling of failing cases, stored as further samples
    of the same run. The run is `running` meanwhile, so a gate killed while re-sampling
    is resumed, and `finished` again after. `record_stats=False` leaves the run's stats
    row to the caller (the re-sampling rounds record it once, after the last round).

    With `shard`, only that shard's pairs without a result are run and the run is left
    open: whoever waits for all the shards closes it (`close_sharded_run`).
    """
    counters = counters or Counters()
    settings = run.settings
    # Rebuilt from the scorecard (whose version the run pins) and the full URLs this
    # process was given, so secrets never round-trip through the database.
    target_url = full_url(settings.get("target_url"), option="--target-url")
    judge_url = full_url(settings.get("judge_url"), option="--judge-url")
    config = override_target(suite.scorecard.target, url=target_url, model=settings.get("model"))
    cases: list[Case] = suite.select(sets=[EvalSet(s) for s in run.sets])
    done = done_pairs(engine, run.id)
    if shard is not None:
        mine = {(c.id, s) for c in cases for s in range(c.samples) if shard.contains(c.id, s)}
        items = work_items(cases, done, only=lambda case_id, sample: (case_id, sample) in mine)
        counters.planned = len(mine)
        counters.skipped = len(mine & done)
    elif extra is None:
        items = work_items(cases, done)
        counters.planned = run.planned
        counters.skipped = len(done)
    else:
        cases = [c for c in cases if c.id in extra]
        items = extra_items(cases, extra, done)
        counters.planned = sum(len(samples) for samples in extra.values())
        counters.skipped = sum(1 for c, s in done if s in extra.get(c, ()))
    options = EngineOptions(
        concurrency=settings["concurrency"],
        rps=settings["rps"],
        timeout_s=settings["timeout_s"],
        retry=RetryPolicy(
            retries=settings["retries"],
            base_s=settings["backoff_base_s"],
            max_s=settings["backoff_max_s"],
        ),
        batch_size=batch_size,
        seed=seed,
    )
    scorecard = suite.scorecard
    judge = scorecard.judge
    if judge is not None and judge_url:
        judge = judge.model_copy(update={"base_url": judge_url})
    target = build_target(config, concurrency=options.concurrency, timeout_s=options.timeout_s)
    judge_client = None
    if judge is not None and any(c.expect.judge for c in cases):
        judge_client = make_client(concurrency=options.concurrency, timeout_s=judge.timeout_s)
    context = ScoreContext(
        signals=scorecard.signals,
        judge=judge,
        judge_price=scorecard.price_for(judge.model) if judge else None,
        judge_client=judge_client,
    )
    if run.status != "running":
        set_run_status(engine, run.id, "running")
    # Everything alive now (the suite, imported modules) lives for the whole run: keep
    # the cyclic collector from rescanning it on every full collection.
    gc.freeze()
    started = time.perf_counter()
    status = "failed"
    try:
        written = await execute(
            engine,
            run_id=run.id,
            items=items,
            target=target,
            score_context=context,
            price=scorecard.price_for(target.model),
            options=options,
            counters=counters,
            secrets=(*getattr(target, "secrets", ()), *judge_secrets(judge)),
        )
        status = "finished"
    except BaseException as exc:
        status = (
            "interrupted"
            if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)
            else "failed"
        )
        raise
    finally:
        gc.unfreeze()
        if shard is None:  # a shard leaves the run to whoever waits for all of them
            set_run_status(engine, run.id, status)
        await target.aclose()
        if judge_client is not None:
            await judge_client.aclose()
    elapsed = time.perf_counter() - started
    if record_stats and shard is None:
        record_run_stats(engine, run.id)  # finished: its row for the trends
    refreshed = get_run(engine, run.id)
    assert refreshed is not None
    return RunReport(
        run=refreshed,
        totals=run_totals(engine, run.id),
        written=written,
        elapsed_s=elapsed,
        counters=counters,
    )


ShardWatch = Callable[[Shard, Counters], AbstractAsyncContextManager[object]]


@dataclass
class ShardedReport:
    """A sharded run run here: its report after closing, and the shards that failed."""

    report: RunReport
    failures: list[ShardFailure]


async def execute_shards(
    engine: Engine,
    suite: Suite,
    run: RunRow,
    *,
    watch: ShardWatch | None = None,
    seed: int | None = None,
    batch_size: int = 500,
) -> ShardedReport:
    """Every shard of `run`, one after another in this process (through the same path a
    `run-shard` flow run takes), then the run closed once. A shard that raises is recorded
    as failed and the next one runs; `watch(shard, counters)` wraps each (a progress bar)."""
    started = time.perf_counter()
    written = 0
    total = Counters()
    failures: list[ShardFailure] = []
    if run.status != "running":
        set_run_status(engine, run.id, "running")
    for shard in shards_of(run):
        counters = Counters()
        try:
            async with watch(shard, counters) if watch else _nothing():
                report = await execute_run(
                    engine,
                    suite,
                    run,
                    counters=counters,
                    seed=seed,
                    batch_size=batch_size,
                    shard=shard,
                )
            written += report.written
        except Exception as exc:
            failures.append(ShardFailure(shard.index, shard.of, f"{type(exc).__name__}: {exc}"))
        except BaseException:  # Ctrl-C, a cancelled task: resumable, like an unsharded run
            set_run_status(engine, run.id, "interrupted")
            raise
        for count in fields(Counters):
            setattr(total, count.name, getattr(total, count.name) + getattr(counters, count.name))
    recorded = close_sharded_run(engine, run, failures, case_samples_of(suite, run)).failures
    refreshed = get_run(engine, run.id)
    assert refreshed is not None
    report = RunReport(
        run=refreshed,
        totals=run_totals(engine, run.id),
        written=written,
        elapsed_s=time.perf_counter() - started,
        counters=total,
    )
    return ShardedReport(report, recorded)


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
