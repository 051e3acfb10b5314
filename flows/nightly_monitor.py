"""The nightly monitor as a Prefect flow: the monitoring set, compared with its baseline.

Thin like the gate: one task per step (load, open run, run monitoring set, drift, publish).
It never fails because drift was found — findings are stored and published as artifacts
for the weekly digest — and fails only on its own errors.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from evalcore.monitor.steps import (
    MonitorRequest,
    MonitorResult,
    analyse_run,
    monitor_artifacts,
    open_monitor_run,
)
from evalcore.report.artifacts import Artifacts
from evalcore.settings import get_settings
from evalcore.store.engine import get_engine
from evalcore.suite import Suite
from flows.common import flow_urls, load_step, publish_step, run_step, unwalked


@task(name="open run", cache_policy=NO_CACHE, persist_result=False)
def open_step(suite: Suite, request: MonitorRequest) -> str:
    run = open_monitor_run(get_engine(), suite, request)
    get_run_logger().info("monitoring run %s (%s pairs)", run.id[:12], run.planned)
    return run.id


run_monitoring_set = run_step.with_options(name="run monitoring set")


@task(name="drift", cache_policy=NO_CACHE, persist_result=False)
def drift_step(run_id: str, run_seconds: float) -> tuple[MonitorResult, Artifacts]:
    """Compare with the route's baseline; store the findings."""
    result = analyse_run(get_engine(), run_id, run_seconds=run_seconds)
    return result, monitor_artifacts(result)


@flow(name="nightly-monitor", persist_result=False, log_prints=False)
async def nightly_monitor(
    target_url: str | None = None,
    model: str | None = None,
    judge_url: str | None = None,
    suite: str | None = None,
    trigger: str = "nightly",
) -> MonitorResult:
    """Run the monitoring set and compare it with the baseline; drift never fails the flow.

    URL parameters come masked, as for the release gate (see `release_gate`).
    """
    target_url, judge_url = flow_urls(target_url, judge_url)
    request = MonitorRequest(
        target_url=target_url, model=model, judge_url=judge_url, trigger=trigger
    )
    loaded = load_step(str(suite or get_settings().suite))
    run_id = open_step(unwalked(loaded), request)
    run_seconds = await run_monitoring_set(unwalked(loaded), run_id)
    result, artifacts = drift_step(run_id, run_seconds)
    await publish_step(artifacts)
    logger = get_run_logger()
    if result.no_baseline:
        logger.warning(result.no_baseline)
    else:
        logger.info(
            "%s alarm(s) against baseline %s%s",
            len(result.alarms),
            (result.baseline_run_id or "")[:12],
            f", worst {result.worst}" if result.worst else "",
        )
    return result
