"""What every evalcore flow shares: loading the suite as a task, and passing it along."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from evalcore.run import execute_run
from evalcore.store.engine import get_engine
from evalcore.store.repository import get_run
from evalcore.suite import Suite, load_suite


def unwalked(suite: Suite) -> Suite:
    """Prefect walks task arguments looking for futures; a large suite is not worth walking."""
    return cast(Suite, quote(suite))


@task(name="load suite", cache_policy=NO_CACHE, persist_result=False)
def load_step(path: str) -> Suite:
    """Validate the versioned dataset; a bad file fails here, before any run exists."""
    return load_suite(Path(path))


@task(
    name="run set",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=5,
)
async def run_step(suite: Suite, run_id: str) -> float:
    """Call the target for every pair without a result and score it (a retry resumes the
    same run); returns the seconds the engine's run phase took."""
    engine = get_engine()
    run = get_run(engine, run_id)
    if run is None:
        raise KeyError(f"no run {run_id}")
    report = await execute_run(engine, suite, run)
    get_run_logger().info(
        "run %s: %s new results in %.2f s (%s skipped as already done)",
        run_id[:12],
        report.written,
        report.elapsed_s,
        report.counters.skipped,
    )
    return report.elapsed_s
