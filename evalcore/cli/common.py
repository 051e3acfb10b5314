"""What every command shares: the `--suite`/`--json` options, failing with an exit code,
loading the suite with file:line errors, and opening the store with a one-line error."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from evalcore.suite import Suite

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
# Where a flow-running command sends its calls (gate, monitor): the scorecard's target
# unless overridden here or by the environment `evalcore up` sets.
TargetUrlOption = Annotated[
    str | None,
    typer.Option(help="Override the target's URL.", envvar="EVALCORE_TARGET_URL"),
]
ModelOption = Annotated[str | None, typer.Option(help="Override the target's model.")]
JudgeUrlOption = Annotated[
    str | None,
    typer.Option(help="Override the LLM judge's URL.", envvar="EVALCORE_JUDGE_URL"),
]


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (3 unless said otherwise)."""
    from evalcore.cli.console import err_console

    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


def load(path: Path | None) -> Suite:
    """The suite at `path` (or EVALCORE_SUITE); a bad file exits 3 naming file:line:field."""
    from evalcore.settings import get_settings
    from evalcore.suite import SuiteError, load_suite

    try:
        return load_suite(path or get_settings().suite)
    except SuiteError as exc:
        from evalcore.cli.console import print_suite_error

        print_suite_error(exc)
        raise typer.Exit(int(ExitCode.USAGE)) from None


def open_store() -> Engine:
    """The configured store, opened before a command starts anything (Prefect, servers,
    target calls); one it cannot open exits 3 naming the database and what to check."""
    from evalcore.store.engine import StoreUnavailable, get_engine

    try:
        return get_engine()
    except StoreUnavailable as exc:
        from rich.markup import escape

        fail(escape(str(exc)))  # a path or database name is not markup
