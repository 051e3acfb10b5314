"""Starting, resuming and finishing runs: the glue between a suite, its target and the store.

A run is created with everything needed to continue it later (the target config after
command-line overrides, the engine settings, the sets), so `--resume` needs only its id.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from evalcore.run_stats import record_run_stats
from evalcore.runner.engine import Counters, EngineOptions, execute, work_items
from evalcore.runner.retry import RetryPolicy
from evalcore.scorers.base import ScoreContext
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
from evalcore.targets.http import make_client


class RunSetupError(Exception):
    """The run cannot start or resume as asked (usage or configuration problem)."""


@dataclass(frozen=True)
class RunRequest:
    """What the caller asks for; `None` means "as the scorecard says"."""

    sets: tuple[EvalSet, ...] = (EvalSet.monitoring,)
    trigger: str = "cli"
    release: str | None = None
    target_url: str | None = None
    model: str | None = None
    judge_url: str | None = None
    concurrency: int | None = None
    rps: float | None = None
    timeout_s: float | None = None
    retries: int | None = None


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


def _redact_headers(dumped: dict[str, Any]) -> dict[str, Any]:
    """Header values may be literal tokens; keep only `${VAR}` references in the database."""
    headers = dumped.get("headers")
    if isinstance(headers, dict):
        dumped["headers"] = {
            name: value if value.startswith("${") and value.endswith("}") else "***"
            for name, value in headers.items()
        }
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


def prepare_run(engine: Engine, suite: Suite, request: RunRequest) -> RunRow:
    """Store the dataset version and a new run row; nothing is called yet."""
    scorecard = suite.scorecard
    config = override_target(scorecard.target, url=request.target_url, model=request.model)
    run_settings = scorecard.run
    settings: dict[str, Any] = {
        "concurrency": request.concurrency or run_settings.concurrency,
        "rps": request.rps if request.rps is not None else run_settings.rps,
        "timeout_s": request.timeout_s or run_settings.timeout_s,
        "retries": request.retries if request.retries is not None else run_settings.retries,
        "backoff_base_s": run_settings.backoff_base_s,
        "backoff_max_s": run_settings.backoff_max_s,
        "target_url": request.target_url,
        "model": request.model,
        "judge_url": request.judge_url,
    }
    # A target that cannot be built (missing key variable, bad callable) stops here,
    # before a run row exists that nothing would ever close.
    build_target(config, concurrency=settings["concurrency"], timeout_s=settings["timeout_s"])
    cases = suite.select(sets=request.sets)
    if not cases:
        names = ", ".join(s.value for s in request.sets)
        raise RunSetupError(f"the suite has no cases in set {names}")
    record_dataset(engine, suite)
    run = RunRow(
        id=new_run_id(),
        route=scorecard.route,
        target=describe_target(config),
        target_config=_redact_headers(config.model_dump(mode="json")),
        dataset_hash=suite.version.hash,
        scorecard_version=suite.scorecard_version,
        scorecard={
            **scorecard.model_dump(mode="json"),
            "target": _redact_headers(scorecard.target.model_dump(mode="json")),
        },
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


def run_for_resume(engine: Engine, suite: Suite, run_id: str) -> RunRow:
    """The run to continue, after checking the suite still matches what it started with."""
    run = get_run(engine, run_id)
    if run is None:
        raise RunSetupError(f"no run with id {run_id!r}")
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
) -> RunReport:
    """Run every (case, sample) of `run` that has no result yet, then close the run."""
    counters = counters or Counters()
    settings = run.settings
    # Rebuilt from the scorecard (whose version the run pins) so secrets never round-trip
    # through the database.
    config = override_target(
        suite.scorecard.target, url=settings.get("target_url"), model=settings.get("model")
    )
    cases: list[Case] = suite.select(sets=[EvalSet(s) for s in run.sets])
    done = done_pairs(engine, run.id)
    counters.planned = run.planned
    counters.skipped = len(done)
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
    if judge is not None and settings.get("judge_url"):
        judge = judge.model_copy(update={"base_url": settings["judge_url"]})
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
            items=work_items(cases, done),
            target=target,
            score_context=context,
            price=scorecard.price_for(target.model),
            options=options,
            counters=counters,
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
        set_run_status(engine, run.id, status)
        await target.aclose()
        if judge_client is not None:
            await judge_client.aclose()
    elapsed = time.perf_counter() - started
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
