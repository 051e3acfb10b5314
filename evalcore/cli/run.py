"""`evalcore run`: one set against the route under test, scored and stored, or a crashed run
resumed; a sharded run as one `run-shard` flow run per shard when a Prefect server serves
that deployment, else shard after shard in this process."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evalcore.cli.common import JsonOption, SuiteOption, fail, load, open_store
from evalcore.exitcodes import ExitCode
from evalcore.suite.sets import EvalSet

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from evalcore.run import RunReport
    from evalcore.store.tables import RunRow
    from evalcore.suite import Suite


def run(
    sets: Annotated[
        list[EvalSet] | None,
        typer.Option("--set", help="Set(s) to run; repeat for several.", show_default="monitoring"),
    ] = None,
    suite: SuiteOption = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="Continue a crashed run: only pairs with no result run."),
    ] = None,
    target_url: Annotated[
        str | None,
        typer.Option(
            help="Override the target's URL. With --resume: the run's URL again, in full "
            "when it had credentials (they are stored masked)."
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Override the target's model.")] = None,
    judge_url: Annotated[
        str | None,
        typer.Option(help="Override the LLM judge's URL; with --resume, as --target-url."),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Calls in flight.")] = None,
    rps: Annotated[
        float | None, typer.Option(min=0.001, help="Requests per second, at most.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(min=0.001, help="Seconds per call.")] = None,
    retries: Annotated[int | None, typer.Option(min=0, help="Retries per call.")] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Split the pairs into N shards, each a run-shard flow run on the Prefect "
            "server's workers (shard after shard here without one).",
            show_default="the scorecard's run.shards",
        ),
    ] = None,
    release: Annotated[str | None, typer.Option(help="Release id to record with the run.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a set against the route under test; every result is scored and stored.

    Examples:
      [bold]evalcore run --set monitoring --target-url http://127.0.0.1:8765/v1[/]
      [bold]evalcore run --resume 3f2a9c1d0b7e[/]
      [bold]evalcore run --set monitoring --shards 4[/]
    """
    from evalcore import aio
    from evalcore.cli.console import print_summary, run_progress
    from evalcore.results.loader import read_results
    from evalcore.results.summary import FAILURES_SHOWN, summarize
    from evalcore.run import (
        Counters,
        RunRequest,
        RunSetupError,
        execute_run,
        prepare_run,
        run_for_resume,
    )
    from evalcore.run.shards import shard_count
    from evalcore.store.repository import get_run
    from evalcore.targets import ConfigError

    engine = open_store()
    try:
        if resume:
            overrides = (sets, model, concurrency, rps, timeout, retries, shards)
            if any(o is not None for o in overrides) or release is not None:
                fail(
                    "--resume continues a run with the settings it started with; "
                    "drop --set, --release and the overrides (--target-url and --judge-url "
                    "only give back a URL whose credentials were masked)"
                )
            started = get_run(engine, resume)
            if started is None:
                fail(f"no run with id {resume!r} (see the id printed by `evalcore run`)")
            # By default the run continues over the suite it started from.
            loaded = load(suite or Path(started.suite_path))
            run_row = run_for_resume(
                engine, loaded, started.id, target_url=target_url, judge_url=judge_url
            )
            if run_row.status == "finished":
                from evalcore.cli.console import err_console

                err_console.print(f"run {run_row.id[:12]} already finished; nothing to resume")
        else:
            loaded = load(suite)
            request = RunRequest(
                sets=tuple(sets or [EvalSet.monitoring]),
                target_url=target_url,
                model=model,
                judge_url=judge_url,
                concurrency=concurrency,
                rps=rps,
                timeout_s=timeout,
                retries=retries,
                release=release,
                shards=shards,
            )
            run_row = prepare_run(engine, loaded, request)
        counters = Counters()

        async def go() -> RunReport:
            async with run_progress(counters, f"run {run_row.id[:12]}"):
                return await execute_run(engine, loaded, run_row, counters=counters)

        if shard_count(run_row.settings) > 1:
            elapsed_s, failed = _run_sharded(engine, loaded, run_row)
        else:
            elapsed_s, failed = aio.run(go()).elapsed_s, None
    except (RunSetupError, ConfigError) as exc:
        fail(str(exc))
    with read_results(engine, run_row.id, failures=FAILURES_SHOWN) as streamed:
        summary = summarize(streamed)
    if as_json:
        print(summary.model_dump_json(indent=2))
    else:
        print_summary(summary, elapsed_s=elapsed_s)
    if failed is not None:
        fail(str(failed), ExitCode.INCONCLUSIVE)


def _run_sharded(engine: Engine, loaded: Suite, run_row: RunRow) -> tuple[float, Exception | None]:
    """Every shard of the run: one flow run each when PREFECT_API_URL names a server that
    serves `run-shard`, else one after another here. The seconds it took, and the shards
    that kept failing as one error (the run is then inconclusive)."""
    import time

    from prefect.settings import PREFECT_API_URL

    from evalcore import aio
    from evalcore.cli.console import err_console, run_progress
    from evalcore.run import ShardsFailed, execute_shards
    from evalcore.run.shards import shard_count

    def log(line: str) -> None:
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)

    started = time.perf_counter()
    if PREFECT_API_URL.value():
        from flows.run_shard import run_sharded

        failures = aio.run(run_sharded(engine, loaded, run_row, log=log))
    else:
        log(
            f"PREFECT_API_URL is not set: the {shard_count(run_row.settings)} shards of run "
            f"{run_row.id[:12]} run in this process, one after another"
        )
        sharded = aio.run(
            execute_shards(
                engine,
                loaded,
                run_row,
                watch=lambda shard, counters: run_progress(
                    counters, f"run {run_row.id[:12]} {shard}"
                ),
            )
        )
        failures = sharded.failures
    elapsed_s = time.perf_counter() - started
    return elapsed_s, ShardsFailed(run_row.id, failures) if failures else None
