"""How results look on a terminal: rich tables, short verdict lines, quiet under CI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from evalcore.monitor.steps import MonitorResult
    from evalcore.results.history import RunOverview
    from evalcore.results.summary import RunSummary
    from evalcore.results.verdict import RunVerdict
    from evalcore.run import Counters, ShardProgress
    from evalcore.store.tables import BaselineRow
    from evalcore.suite import Suite, SuiteError

# Piped output (CI logs, files) gets a wide fixed width instead of rich's 80 columns, so
# tables stay readable and a line keeps its `file:line` and ids whole.
_PIPED_WIDTH = 160
console = Console(width=None if sys.stdout.isatty() else _PIPED_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPED_WIDTH)


def interactive() -> bool:
    """Progress bars only for a person at a terminal, never in CI logs."""
    return console.is_terminal and not os.environ.get("CI")


@contextlib.asynccontextmanager
async def run_progress(counters: Counters, label: str) -> AsyncIterator[None]:
    """A live bar with done / errors / rate / ETA, fed from the engine's counters."""
    if not interactive():
        yield
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("[red]{task.fields[errors]} errors"),
        TextColumn("{task.fields[rate]:.0f}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    task = progress.add_task(label, total=None, errors=0, rate=0.0)

    async def refresh() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            elapsed = max(loop.time() - started, 1e-9)
            progress.update(
                task,
                total=max(counters.planned - counters.skipped, 1),
                completed=counters.done,
                errors=counters.errors,
                rate=counters.done / elapsed,
            )
            await asyncio.sleep(0.1)

    with progress:
        ticker = asyncio.create_task(refresh())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


def print_suite_error(error: SuiteError) -> None:
    err_console.print(f"[bold red]The suite is not valid[/] ({len(error.issues)} problem(s)):")
    for issue in error.issues:
        # Never wrapped: CI log matchers and people grep for `file:line` on one line.
        err_console.print(f"  {issue}", markup=False, highlight=False, soft_wrap=True)
    err_console.print("Nothing was loaded.")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def suite_table(suite: Suite) -> Table:
    counts = suite.counts()
    table = Table(
        title=f"Suite {suite.root}  ·  dataset {suite.version.short}", title_justify="left"
    )
    table.add_column("group")
    table.add_column("value")
    table.add_column("cases", justify="right")
    for group in ("set", "severity", "tag"):
        for value, count in sorted(counts.get(group, {}).items()):
            table.add_row(group, value, str(count))
    return table


def summary_table(summary: RunSummary) -> Table:
    """Per set: cases passed and failed under the samples rule and the pass rate they give,
    then the samples (results) with the per-sample rate, labelled as such."""
    table = Table(
        title=(
            f"Run {summary.run_id[:12]}  ·  {summary.route}  ·  dataset {summary.dataset[:12]}"
            f"  ·  {summary.status}"
        ),
        title_justify="left",
        caption=(
            "passed, failed, undecided: cases under the scorecard's samples rule; pass rate: "
            "passed / decided cases; results: samples; per sample: samples passed / scored"
        ),
        caption_justify="left",
    )
    columns = (
        "set",
        "cases",
        "passed",
        "failed",
        "undecided",
        "pass rate",
        "results",
        "errors",
        "per sample",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "set" else "right")
    for row in summary.sets:
        table.add_row(
            row.set,
            str(row.cases),
            f"[green]{row.cases_passed}[/]",
            f"[red]{row.cases_failed}[/]" if row.cases_failed else "0",
            f"[yellow]{row.cases_undecided}[/]" if row.cases_undecided else "0",
            _pct(row.pass_rate),
            str(row.results),
            f"[yellow]{row.errors}[/]" if row.errors else "0",
            f"{_pct(row.sample_pass_rate)} ({row.passed}/{row.passed + row.failed})",
        )
    return table


def cost_text(summary: RunSummary) -> str:
    """`cost $0.0123 (judge $0.0040 apart)`, or what is unknown and why, never $0."""
    cost = (
        f"cost ${summary.cost_usd:.4f}"
        if summary.cost_usd is not None
        else f"cost unknown: {summary.cost_unknown}"
    )
    judge = (
        f"judge ${summary.judge_cost_usd:.4f} apart"
        if summary.judge_cost_usd is not None
        else f"judge cost unknown: {summary.judge_cost_unknown}"
    )
    return f"{cost} ({judge})" if summary.cost_usd is not None else f"{cost}; {judge}"


def print_summary(summary: RunSummary, *, elapsed_s: float | None = None) -> None:
    console.print(summary_table(summary))
    facts = [
        f"latency p50 {_ms(summary.latency_p50_ms)}, p95 {_ms(summary.latency_p95_ms)}",
        cost_text(summary),
    ]
    if elapsed_s:
        facts.append(f"{summary.results} results in {elapsed_s:.1f} s")
    console.print("  " + "  ·  ".join(facts), markup=False, highlight=False)
    if summary.errors_by_class:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(summary.errors_by_class.items()))
        console.print(f"  [yellow]errors (not failures):[/] {errors}")
    if summary.failures:
        console.print("[bold red]Failed cases[/]")
        for failure in summary.failures:
            console.print(f"  [bold]{failure.case_id}[/] #{failure.sample}", highlight=False)
            for reason in failure.reasons:
                console.print(f"      {reason}", markup=False, highlight=False)
    print_errored(summary)


def print_errored(summary: RunSummary) -> None:
    """The errored samples with their class and message, one line each, as the failed ones
    are listed; how many there are in all when not every one is shown."""
    if not summary.errored:
        return
    shown = len(summary.errored)
    more = f" ({shown} of {summary.errors} shown)" if summary.errors > shown else ""
    console.print(f"[bold yellow]Errored cases[/] (target problems, not failures){more}")
    for errored in summary.errored:
        console.print(
            f"  {errored.case_id} #{errored.sample}  {errored.error_class}  {errored.message}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def shards_table(shards: list[ShardProgress]) -> Table:
    """A sharded run's pairs stored per shard, and why a failed shard failed."""
    from rich.text import Text

    table = Table(title=f"Shards ({len(shards)})", title_justify="left")
    for column in ("shard", "stored", "planned", "state", "error"):
        table.add_column(column, justify="right" if column in {"stored", "planned"} else "left")
    styles = {"complete": "green", "incomplete": "yellow", "failed": "red"}
    for progress in shards:
        table.add_row(
            str(progress.shard),
            str(progress.done),
            str(progress.planned),
            Text(progress.state, style=styles[progress.state]),
            Text(progress.failed or ""),
        )
    return table


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


_VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "inconclusive": "bold yellow"}


def runs_table(overviews: list[RunOverview]) -> Table:
    table = Table(title="Runs, newest first", title_justify="left")
    for column in (
        "run",
        "created (UTC)",
        "release",
        "sets",
        "dataset",
        "status",
        "verdict",
        "pass rate per case (per sample)",
        "p95",
        "cost",
    ):
        table.add_column(column)
    for o in overviews:
        verdict = o.verdict_value
        table.add_row(
            o.run.id[:12],
            o.run.created_at.strftime("%Y-%m-%d %H:%M"),
            o.run.release or "—",
            ",".join(o.run.sets),
            o.run.dataset_hash[:12],
            o.run.status,
            f"[{_VERDICT_STYLE[verdict]}]{verdict}[/]",
            "  ".join(
                f"{s.set} {_pct(s.pass_rate)} ({_pct(s.sample_pass_rate)})" for s in o.summary.sets
            ),
            _ms(o.summary.latency_p95_ms),
            f"${o.summary.cost_usd:.4f}" if o.summary.cost_usd is not None else "unknown",
        )
    unknown = sorted({o.summary.cost_unknown for o in overviews if o.summary.cost_unknown})
    if unknown:
        table.caption = "cost unknown: " + "; ".join(unknown)
        table.caption_justify = "left"
    return table


def verdict_table(verdict: RunVerdict) -> Table:
    value = verdict.verdict.value
    table = Table(
        title=f"Verdict: [{_VERDICT_STYLE[value]}]{value}[/] — {verdict.reason}",
        title_justify="left",
    )
    for column in ("criterion", "threshold", "measured", "held", "detail"):
        table.add_column(column)
    marks = {True: "[green]yes[/]", False: "[red]no[/]", None: "[yellow]unknown[/]"}
    for c in verdict.criteria:
        table.add_row(c.name, c.threshold, c.measured, marks[c.held], c.detail)
    if verdict.flaky:
        table.caption = "flaky (mixed samples): " + ", ".join(verdict.flaky)
    return table


def resampled_table(verdict: RunVerdict) -> Table | None:
    """The failing blocking cases of a nondeterministic route and what re-sampling decided;
    None when the route is not marked nondeterministic or no case needed it."""
    if not verdict.sequential_rule or not verdict.sequential:
        return None
    from rich.text import Text

    table = Table(
        title=f"Re-sampled cases: {verdict.extra_samples} extra sample(s)",
        title_justify="left",
        caption=verdict.sequential_rule,
        caption_justify="left",
    )
    for column in ("case", "decision", "samples", "extra", "passed", "LLR"):
        table.add_column(column)
    styles = {"healthy": "green", "broken": "red", "undecided": "yellow"}
    for d in verdict.sequential:
        decision = d.decision.value + (
            " (budget spent)" if d.decision == "undecided" and d.budget_spent else ""
        )
        table.add_row(
            Text(d.case_id),
            Text(decision, style=styles[d.decision.value]),
            str(d.samples),
            str(d.extra),
            f"{d.passes}/{d.passes + d.failures}",
            f"{d.llr:+.2f}",
        )
    return table


def reliability_table(verdict: RunVerdict) -> Table | None:
    """pass@k and pass^k per scope, for the cases with several samples; None if none has."""
    if not verdict.reliability:
        return None
    table = Table(title="Reliability (cases with several samples)", title_justify="left")
    for column in ("scope", "cases", "k", "pass@k", "pass^k"):
        table.add_column(column)
    for r in verdict.reliability:
        table.add_row(r.scope, str(r.cases), str(r.k), f"{r.pass_at_k:.1%}", f"{r.pass_hat_k:.1%}")
    return table


def print_verdict(verdict: RunVerdict) -> None:
    """The verdict's criteria, then re-sampled cases and reliability where there are some."""
    console.print(verdict_table(verdict))
    for extra in (resampled_table(verdict), reliability_table(verdict)):
        if extra is not None:
            console.print(extra)


_SEVERITY_STYLE = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


def _num(value: float | None, fmt: str = "{:.4g}") -> str:
    return "—" if value is None else fmt.format(value)


def findings_table(result: MonitorResult) -> Table:
    """A monitoring run's findings: drift first (worst on top), then flaky and dataset."""
    alarms = len(result.alarms)
    title = (
        f"Monitor {result.route}/{result.set}: run {result.run_id[:12]} vs baseline "
        f"{(result.baseline_run_id or '')[:12]} — {alarms} alarm(s)"
    )
    table = Table(title=title, title_justify="left")
    for column in ("severity", "kind", "metric", "scope", "baseline", "current", "effect", "p"):
        table.add_column(column)
    table.add_column("detail / proposal", overflow="fold")
    for f in result.findings:
        style = _SEVERITY_STYLE.get(f.severity, "")
        table.add_row(
            f"[{style}]{f.severity}[/]",
            f.kind,
            f.metric,
            f.scope,
            _num(f.baseline_value),
            _num(f.current_value),
            _num(f.effect, "{:+.3g}"),
            _num(f.p_value, "{:.2g}"),
            "; ".join(filter(None, [f.detail, f.proposal])),
        )
    return table


def baselines_table(rows: list[BaselineRow]) -> Table:
    table = Table(title="Baselines, newest first", title_justify="left")
    for column in ("route", "set", "run", "accepted (UTC)", "by", "reason", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.route,
            row.set,
            row.run_id[:12],
            row.accepted_at.strftime("%Y-%m-%d %H:%M"),
            row.accepted_by,
            row.reason,
            "[green]current[/]"
            if row.superseded_at is None
            else f"superseded {row.superseded_at:%Y-%m-%d %H:%M}",
        )
    return table
