"""What every evalcore flow shares: loading the suite as a task and passing it along,
and for the flows that run a set (the release gate, the nightly monitor) where its calls
go, running it (one `run-shard` flow run per shard when the run is sharded), and
publishing what was found."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

from prefect import Task, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.utilities.annotations import quote

from evalcore.report.artifacts import Artifacts
from evalcore.run import ShardsFailed, execute_run, flow_url
from evalcore.run.shards import shard_count
from evalcore.settings import get_settings
from evalcore.store.engine import get_engine
from evalcore.store.repository import get_run
from evalcore.suite import Suite, load_suite
from flows.run_shard import run_sharded


def unwalked(suite: Suite) -> Suite:
    """Prefect walks task arguments looking for futures; a large suite is not worth walking."""
    return cast(Suite, quote(suite))


def flow_urls(target_url: str | None, judge_url: str | None) -> tuple[str | None, str | None]:
    """The target and judge URLs a flow run hands its steps: the parameters (which Prefect
    stores masked), else EVALCORE_TARGET_URL / EVALCORE_JUDGE_URL, else the scorecard's
    (None); masked, the full URLs kept in this process."""
    settings = get_settings()
    return (
        flow_url(target_url, settings.target_url, variable="EVALCORE_TARGET_URL"),
        flow_url(judge_url, settings.judge_url, variable="EVALCORE_JUDGE_URL"),
    )


@task(name="load suite", cache_policy=NO_CACHE, persist_result=False)
def load_step(path: str) -> Suite:
    """Validate the versioned dataset; a bad file fails here, before any run exists."""
    return load_suite(Path(path))


def _not_failed_shards(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry the step, except when shards kept failing: each already had its retries."""
    return not isinstance(state.data, ShardsFailed)


@task(
    name="run set",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=_not_failed_shards,
)
async def run_step(suite: Suite, run_id: str, incomplete_ok: bool = False) -> float:
    """Call the target for every pair without a result and score it (a retry resumes the
    same run); returns the seconds the engine's run phase took.

    A sharded run is run as one `run-shard` flow run per shard, waited for here; a shard
    that kept failing is recorded on the run. With `incomplete_ok` (the gate, whose
    verdict then says inconclusive, naming the shard) the step returns; otherwise (the
    monitor: no drift is read from a run missing its pairs) it raises `ShardsFailed`.
    """
    engine = get_engine()
    run = get_run(engine, run_id)
    if run is None:
        raise KeyError(f"no run {run_id}")
    logger = get_run_logger()
    if shard_count(run.settings) > 1:
        started = time.perf_counter()
        failures = await run_sharded(engine, suite, run, log=logger.info)
        elapsed = time.perf_counter() - started
        if failures and not incomplete_ok:
            raise ShardsFailed(run.id, failures)
        if failures:
            logger.warning(
                "run %s: %s shard(s) failed after their retries; the verdict says so",
                run_id[:12],
                len(failures),
            )
            return elapsed
        logger.info("run %s: every shard complete in %.2f s", run_id[:12], elapsed)
        return elapsed
    report = await execute_run(engine, suite, run)
    logger.info(
        "run %s: %s new results in %.2f s (%s skipped as already done)",
        run_id[:12],
        report.written,
        report.elapsed_s,
        report.counters.skipped,
    )
    return report.elapsed_s


@task(name="publish artifacts", cache_policy=NO_CACHE, persist_result=False, retries=2)
async def publish_step(artifacts: Artifacts) -> None:
    """The run's Markdown page and, when it has rows, its table, on the Prefect server."""
    await acreate_markdown_artifact(
        markdown=artifacts.markdown, key=artifacts.key, description=artifacts.description
    )
    if artifacts.table:
        await acreate_table_artifact(
            table=artifacts.table,
            key=artifacts.table_key,
            description=artifacts.table_description,
        )
