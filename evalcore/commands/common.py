"""What every command shares: the `--suite`/`--json` options, failing with an exit code,
and loading the suite with file:line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from evalcore.exitcodes import ExitCode
from evalcore.settings import get_settings
from evalcore.suite import Suite, SuiteError, load_suite

SuiteOption = Annotated[
    Path | None,
    typer.Option(
        "--suite",
        "-s",
        help="Suite folder (cases/, scorecard.yaml, owners.yaml).",
        show_default="evals",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (3 unless said otherwise)."""
    from evalcore.console import err_console

    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


def load(path: Path | None) -> Suite:
    """The suite at `path` (or EVALCORE_SUITE); a bad file exits 3 naming file:line:field."""
    from evalcore.console import print_suite_error

    try:
        return load_suite(path or get_settings().suite)
    except SuiteError as exc:
        print_suite_error(exc)
        raise typer.Exit(int(ExitCode.USAGE)) from None
