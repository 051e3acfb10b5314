"""`evalcore validate` and `evalcore suite info`: the versioned dataset, checked and counted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from evalcore.cli.common import JsonOption, SuiteOption, load
from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from rich.table import Table

    from evalcore.suite.scorecard import Scorecard
    from evalcore.suite.sensitivity import DetectableDrop

suite_app = typer.Typer(help="Inspect the versioned dataset.", no_args_is_help=True)


def validate(suite: SuiteOption = None, as_json: JsonOption = False) -> None:
    """Check the case files, scorecard and owners; exit 3 naming file:line:field on any problem.

    Regexes that may backtrack without end, tag thresholds or a drift.min_effect that ask
    for a smaller drop than their cases can detect, and a target or judge model with no
    entry under `prices` (its cost would be unknown) are warned about (file:line), without
    failing. The sensitivity of every set and tag, and the signals in force, are shown.

    Example: [bold]evalcore validate --suite evals[/]
    """
    from dataclasses import replace

    from evalcore.settings import get_settings
    from evalcore.suite import SuiteError, load_suite
    from evalcore.suite.sensitivity import scopes_sensitivity, sensitivity_scopes
    from evalcore.suite.warnings import sensitivity_warnings, suite_warnings

    try:
        loaded = load_suite(suite or get_settings().suite)
    except SuiteError as exc:
        if as_json:
            print(json.dumps({"ok": False, "issues": [str(i) for i in exc.issues]}, indent=2))
            raise typer.Exit(int(ExitCode.USAGE)) from None
        from evalcore.cli.console import print_suite_error

        print_suite_error(exc)
        raise typer.Exit(int(ExitCode.USAGE)) from None
    found = suite_warnings(loaded)
    scopes = sensitivity_scopes(loaded)
    cases = len(loaded.cases)
    # Nothing below reads a case: let them go before SciPy is imported for the
    # sensitivity, so a 100,000-case suite and SciPy are not held at once.
    loaded = replace(loaded, cases=[], case_files={})
    sensitivity = scopes_sensitivity(scopes, loaded.scorecard)
    found += sensitivity_warnings(loaded, sensitivity)
    warnings = [str(warning) for warning in sorted(found, key=lambda w: w.sort_key())]
    if as_json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "cases": cases,
                    "dataset": loaded.version.hash,
                    "warnings": warnings,
                    "sensitivity": [row.as_json() for row in sensitivity],
                    "signals": _signals(loaded.scorecard),
                }
            )
        )
        return
    from evalcore.cli.console import console, err_console

    for warning in warnings:
        # One line each, never wrapped or read as markup: patterns are full of brackets.
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if sensitivity:
        console.print(sensitivity_table(sensitivity))
    for name, signal in _signals(loaded.scorecard).items():
        if signal["default"]:
            console.print(
                f"signals.{name} is not in scorecard.yaml; the default is in force: "
                f"{signal['meaning']}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    console.print(
        f"[green]ok[/]: {cases} cases, scorecard and owners valid  ·  "
        f"dataset {loaded.version.short}"
    )


def _signals(scorecard: Scorecard) -> dict[str, dict[str, Any]]:
    """How the route's refusals and hand-offs are recognised, and whether each is the
    default: a route whose hand-off tool has another name would otherwise see every
    hand-off scored as an ordinary tool call, with nothing said."""
    signals = scorecard.signals
    given = signals.model_fields_set if "signals" in scorecard.model_fields_set else set()
    refusal, handoff = signals.refusal, signals.needs_human
    ways = [f"a call of the tool {handoff.tool}"] if handoff.tool else []
    ways += [f"the marker {handoff.marker!r} in the reply"] if handoff.marker else []
    return {
        "refusal": {
            "patterns": refusal.patterns,
            "default": "refusal" not in given,
            "meaning": "a refusal is a reply matching any of these patterns: "
            + "; ".join(refusal.patterns),
        },
        "needs_human": {
            "tool": handoff.tool,
            "marker": handoff.marker,
            "default": "needs_human" not in given,
            "meaning": "a hand-off is " + (" or ".join(ways) or "never recognised"),
        },
    }


@suite_app.command("info")
def suite_info(suite: SuiteOption = None, as_json: JsonOption = False) -> None:
    """Show the dataset version (hash + git commit), counts per set, severity and tag, and
    the smallest drop in pass rate each set and tag can detect in a nightly comparison.

    Example: [bold]evalcore suite info[/]
    """
    from evalcore.suite.sensitivity import suite_sensitivity

    loaded = load(suite)
    version = loaded.version
    sensitivity = suite_sensitivity(loaded)
    if as_json:
        print(
            json.dumps(
                {
                    "dataset": version.hash,
                    "git_commit": version.git_commit,
                    "git_dirty": version.git_dirty,
                    "scorecard": loaded.scorecard_version,
                    "cases": len(loaded.cases),
                    "counts": loaded.counts(),
                    "sensitivity": [row.as_json() for row in sensitivity],
                    "min_effect": loaded.scorecard.drift.min_effect,
                },
                indent=2,
            )
        )
        return
    from evalcore.cli.console import console, suite_table

    dirty = " (uncommitted changes)" if version.git_dirty else ""
    where = (
        f"git {version.git_commit[:12]}{dirty}" if version.git_commit else "not in a git work tree"
    )
    console.print(f"dataset [bold]{version.short}[/]  ·  {where}  ·  {len(loaded.cases)} cases")
    console.print(suite_table(loaded))
    if sensitivity:
        console.print(sensitivity_table(sensitivity))
    min_effect = loaded.scorecard.drift.min_effect
    for row in sensitivity:
        if row.scope == "set:monitoring" and min_effect > 0 and not row.can_detect(min_effect):
            console.print(f"[yellow]{cannot_detect(row)}[/] (drift.min_effect is {min_effect:g})")


def cannot_detect(row: DetectableDrop) -> str:
    """'monitoring cannot detect a drop smaller than 25.7 points'."""
    if row.drop is None:
        return f"{row.name} cannot detect even a drop to a pass rate of 0"
    return f"{row.name} cannot detect a drop smaller than {row.drop_points:.1f} points"


def sensitivity_table(rows: list[DetectableDrop]) -> Table:
    """Each set and tag: its size and the smallest drop one nightly comparison detects."""
    from rich.markup import escape
    from rich.table import Table

    first = rows[0]
    table = Table(
        title=(
            f"Sensitivity of one nightly run against the baseline ({first.power:.0%} power, "
            f"one-sided alpha {first.alpha:g})"
        ),
        title_justify="left",
    )
    table.add_column("scope")
    table.add_column("detects")
    table.add_column("from", justify="right")
    for row in rows:
        label = row.name if row.kind == "set" else f"tag {row.name}"
        table.add_row(escape(label), escape(row.describe()), f"{row.reference:.0%}")
    return table
