"""`evalcore runs list|show`: past runs and their verdicts, from the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from evalcore.cli.common import JsonOption, fail, open_store

runs_app = typer.Typer(
    help="Past runs and their verdicts, from the database.", no_args_is_help=True
)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 20,
    release: Annotated[str | None, typer.Option(help="Only the runs of this release.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Past runs: release, dataset version, verdict, pass rates, p95 latency, cost.

    Example: [bold]evalcore runs list --release 2026.11.3[/]
    """
    from evalcore.results.history import run_overviews

    overviews = run_overviews(open_store(), limit=limit, release=release)
    if as_json:
        print(json.dumps([o.as_json() for o in overviews], indent=2))
        return
    from evalcore.cli.console import console, runs_table

    console.print(runs_table(overviews))


@runs_app.command("show")
def runs_show(
    run_id: str,
    as_json: JsonOption = False,
    junit: Annotated[
        Path | None, typer.Option(help="Also write JUnit XML here (cases and criteria).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write the HTML report here (works offline).")
    ] = None,
) -> None:
    """One run: results per set, failures with their reasons, and the verdict's criteria;
    for a sharded run, the pairs stored per shard.

    Example: [bold]evalcore runs show 3f2a9c1d0b7e --junit reports/evals.xml[/]
    """
    from evalcore.gate.steps import regression_of
    from evalcore.results.loader import load_results
    from evalcore.results.summary import FAILURES_SHOWN, summarize
    from evalcore.results.verdict import judge_run
    from evalcore.run.shards import shard_progress
    from evalcore.store.repository import get_run

    engine = open_store()
    run_row = get_run(engine, run_id)
    if run_row is None:
        fail(f"no run with id {run_id!r} (see `evalcore runs list`)")
    results = load_results(engine, run_row, failures=FAILURES_SHOWN)
    summary = summarize(results)
    # A gate run with a regression check is shown with it, as its gate judged it.
    regression = regression_of(engine, results) if run_row.release is not None else None
    verdict = judge_run(results, regression=regression)
    shards = shard_progress(engine, run_row)
    if junit is not None:
        from evalcore.report.junit import write_junit

        write_junit(engine, run_row, verdict, junit)
    if report is not None:
        from evalcore.report.html import write_report

        write_report(engine, run_row, summary, verdict, report)
    if as_json:
        payload = summary.model_dump(mode="json")
        payload["verdict"] = verdict.verdict.value
        payload["reason"] = verdict.reason
        payload["criteria"] = [c.__dict__ for c in verdict.criteria]
        payload["sequential_rule"] = verdict.sequential_rule
        payload["resampled"] = [
            {**d.__dict__, "decision": d.decision.value} for d in verdict.sequential
        ]
        payload["extra_samples"] = verdict.extra_samples
        payload["reliability"] = [r.__dict__ for r in verdict.reliability]
        if shards:
            payload["shards"] = [p.as_json() for p in shards]
        if verdict.regression is not None:
            payload["regression"] = {
                **verdict.regression.__dict__,
                "significant": verdict.regression.significant,
            }
        print(json.dumps(payload, indent=2))
        return
    from evalcore.cli.console import console, print_summary, print_verdict, shards_table

    print_summary(summary)
    if shards:
        console.print(shards_table(shards))
    print_verdict(verdict)
