"""The nightly monitor as a Prefect flow: the monitoring set, compared with its baseline.

Thin like the gate: one task per step (load, open run, run monitoring set, drift, publish).
It never fails because drift was found — findings are stored and published as artifacts
for the weekly digest — and fails only on its own errors.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from evalcore.gate.steps import slug
from evalcore.monitor.steps import (
    MonitorRequest,
    MonitorResult,
    analyse_run,
    findings_table,
    monitor_markdown,
    open_monitor_run,
)
from evalcore.run import flow_url
from evalcore.settings import get_settings
from evalcore.store.engine import get_engine
from evalcore.suite import Suite
from flows.common import load_step, run_step, unwalked


@task(name="open run", cache_policy=NO_CACHE, persist_result=False)
def open_step(suite: Suite, request: MonitorRequest) -> str:
    run = open_monitor_run(get_engine(), suite, request)
    get_run_logger().info("monitoring run %s (%s pairs)", run.id[:12], run.planned)
    return run.id


run_monitoring_set = run_step.with_options(name="run monitoring set")


@task(name="drift", cache_policy=NO_CACHE, persist_result=False)
def drift_step(run_id: str, run_seconds: float) -> MonitorResult:
    """Compare with the route's baseline; store the findings."""
    return analyse_run(get_engine(), run_id, run_seconds=run_seconds)


@task(name="publish artifacts", cache_policy=NO_CACHE, persist_result=False, retries=2)
async def report_step(result: MonitorResult) -> None:
    key = f"nightly-monitor-{slug(result.route)}"
    await acreate_markdown_artifact(
        markdown=monitor_markdown(result),
        key=key,
        description=f"Nightly monitor of {result.route}: {len(result.alarms)} alarm(s)",
    )
    if result.findings:
        await acreate_table_artifact(
            table=findings_table(result),
            key=f"{key}-findings",
            description=f"Findings of run {result.run_id[:12]}",
        )


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
    settings = get_settings()
    request = MonitorRequest(
        target_url=flow_url(target_url, settings.target_url, variable="EVALCORE_TARGET_URL"),
        model=model,
        judge_url=flow_url(judge_url, settings.judge_url, variable="EVALCORE_JUDGE_URL"),
        trigger=trigger,
    )
    loaded = load_step(str(suite or settings.suite))
    run_id = open_step(unwalked(loaded), request)
    run_seconds = await run_monitoring_set(unwalked(loaded), run_id)
    result = drift_step(run_id, run_seconds)
    await report_step(result)
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
