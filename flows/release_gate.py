"""The release gate as a Prefect flow: the blocking set for a release, judged, reported.

Thin on purpose: every step is a function of `evalcore.gate.steps` / `evalcore.run`, wrapped
in one task per step (never one per case). The flow ends Failed when the verdict is fail
or inconclusive, so a Prefect automation, a CI job waiting on the flow run, or
`evalcore gate` all see the same outcome.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from evalcore.gate.steps import (
    RELEASE_EVENT,
    GateRequest,
    GateResult,
    default_report_path,
    gate_artifacts,
    gate_result,
    open_gate_run,
    resample_failing,
)
from evalcore.report.artifacts import Artifacts
from evalcore.results.verdict import Verdict
from evalcore.settings import get_settings
from evalcore.store.engine import get_engine
from evalcore.store.repository import attach_event_run, claim_event
from evalcore.suite import Suite
from flows.common import flow_urls, load_step, publish_step, run_step, unwalked


@task(name="open run", cache_policy=NO_CACHE, persist_result=False)
def open_step(suite: Suite, request: GateRequest) -> tuple[str, bool]:
    run, resumed = open_gate_run(get_engine(), suite, request)
    logger = get_run_logger()
    if resumed:
        logger.info(
            "resuming unfinished run %s of release %s (%s pairs planned)",
            run.id[:12],
            request.release,
            run.planned,
        )
    else:
        logger.info("new run %s for release %s", run.id[:12], request.release)
    return run.id, resumed


run_blocking_set = run_step.with_options(name="run blocking set")


@task(
    name="re-sample failing cases",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=5,
)
async def resample_step(suite: Suite, run_id: str) -> float:
    """On a nondeterministic route, sample the failing blocking cases again until the
    sequential test decides each (a retry goes on from the stored samples); returns the
    seconds it took. Nothing happens on any other route."""
    done = await resample_failing(get_engine(), suite, run_id)
    if done.rounds:
        get_run_logger().info(
            "run %s: %s extra samples of failing cases in %s rounds (%.2f s)",
            run_id[:12],
            done.extra_samples,
            done.rounds,
            done.seconds,
        )
    return done.seconds


@task(name="verdict", cache_policy=NO_CACHE, persist_result=False)
def verdict_step(
    run_id: str,
    resumed: bool,
    run_seconds: float,
    report_path: str | None,
    junit_path: str | None,
) -> tuple[GateResult, Artifacts]:
    """Judge the run against its scorecard; write the HTML report (and JUnit if asked)."""
    result = gate_result(
        get_engine(),
        run_id,
        resumed=resumed,
        run_seconds=run_seconds,
        report_path=Path(report_path) if report_path else None,
        junit_path=Path(junit_path) if junit_path else None,
    )
    return result, gate_artifacts(result)


@flow(name="release-gate", persist_result=False, log_prints=False)
async def release_gate(
    release: str,
    target_url: str | None = None,
    model: str | None = None,
    judge_url: str | None = None,
    suite: str | None = None,
    event_id: str | None = None,
    trigger: str = "prefect",
    report_path: str | None = None,
    junit_path: str | None = None,
) -> GateResult | State:
    """Gate `release` on the blocking set; Failed unless the verdict is pass.

    `target_url`/`judge_url` default to EVALCORE_TARGET_URL/EVALCORE_JUDGE_URL, then to
    the scorecard. Prefect stores parameters, so they come masked (`evalcore gate` keeps
    the full URL in its process; a served deployment finds it in those variables) and
    only the masked form is passed on. `event_id` (set by the `release.created` trigger)
    is claimed once, so a second automation firing for the same event starts nothing.
    """
    logger = get_run_logger()
    settings = get_settings()
    engine = get_engine()
    if event_id:
        first = claim_event(engine, event_id=event_id, event=RELEASE_EVENT, release=release)
        if first is not None:
            message = (
                f"event {event_id} for release {release} was already handled"
                + (f" by run {first[:12]}" if first else "")
                + "; nothing to do"
            )
            logger.warning(message)
            return Completed(message=message)
    target_url, judge_url = flow_urls(target_url, judge_url)
    request = GateRequest(
        release=release,
        target_url=target_url,
        model=model,
        judge_url=judge_url,
        trigger=trigger,
    )
    loaded = load_step(str(suite or settings.suite))
    run_id, resumed = open_step(unwalked(loaded), request)
    if event_id:
        attach_event_run(engine, event_id, run_id)
    run_seconds = await run_blocking_set(unwalked(loaded), run_id)
    run_seconds += await resample_step(unwalked(loaded), run_id)
    report = report_path or str(default_report_path(settings.home.resolve(), release, run_id))
    result, artifacts = verdict_step(run_id, resumed, run_seconds, report, junit_path)
    await publish_step(artifacts)
    logger.info("release %s: %s (%s)", release, result.verdict.value, result.reason)
    if result.verdict is not Verdict.passed:
        return Failed(message=f"{result.verdict.value}: {result.reason}", data=result)
    return result
