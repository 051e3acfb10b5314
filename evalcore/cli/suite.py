"""`evalcore validate` and `evalcore suite info`: the versioned dataset, checked and counted."""

from __future__ import annotations

import json

import typer

from evalcore.cli.common import JsonOption, SuiteOption, load
from evalcore.exitcodes import ExitCode

suite_app = typer.Typer(help="Inspect the versioned dataset.", no_args_is_help=True)


def validate(suite: SuiteOption = None, as_json: JsonOption = False) -> None:
    """Check the case files, scorecard and owners; exit 3 naming file:line:field on any problem.

    Regexes that may backtrack without end are warned about (file:line), without failing.

    Example: [bold]evalcore validate --suite evals[/]
    """
    from evalcore.settings import get_settings
    from evalcore.suite import SuiteError, load_suite
    from evalcore.suite.warnings import suite_warnings

    try:
        loaded = load_suite(suite or get_settings().suite)
    except SuiteError as exc:
        if as_json:
            print(json.dumps({"ok": False, "issues": [str(i) for i in exc.issues]}, indent=2))
            raise typer.Exit(int(ExitCode.USAGE)) from None
        from evalcore.cli.console import print_suite_error

        print_suite_error(exc)
        raise typer.Exit(int(ExitCode.USAGE)) from None
    warnings = [str(warning) for warning in suite_warnings(loaded)]
    if as_json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "cases": len(loaded.cases),
                    "dataset": loaded.version.hash,
                    "warnings": warnings,
                }
            )
        )
        return
    from evalcore.cli.console import console, err_console

    for warning in warnings:
        # One line each, never wrapped or read as markup: patterns are full of brackets.
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"[green]ok[/]: {len(loaded.cases)} cases, scorecard and owners valid  ·  "
        f"dataset {loaded.version.short}"
    )


@suite_app.command("info")
def suite_info(suite: SuiteOption = None, as_json: JsonOption = False) -> None:
    """Show the dataset version (hash + git commit) and counts per set, severity and tag.

    Example: [bold]evalcore suite info[/]
    """
    loaded = load(suite)
    version = loaded.version
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
                },
                indent=2,
            )
        )
        return
    from evalcore.cli.console import console, suite_table

    commit = version.git_commit[:12] if version.git_commit else "not in git"
    dirty = " (uncommitted changes)" if version.git_dirty else ""
    console.print(
        f"dataset [bold]{version.short}[/]  ·  git {commit}{dirty}  ·  {len(loaded.cases)} cases"
    )
    console.print(suite_table(loaded))
