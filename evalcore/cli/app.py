"""The `evalcore` command: the typer app that assembles the command modules, and `main()`.

Each command module imports at its top only what typer needs to build the command (typer,
the option types); what a command does is imported when it runs, so `evalcore --help` and
every command start without loading the libraries other commands need.

Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage or configuration error.
"""

from __future__ import annotations

import sys

import typer
from typer._click.exceptions import ClickException as TyperClickException

from evalcore.cli.decisions import decisions_app
from evalcore.cli.digest import digest_command
from evalcore.cli.fixtures import fixtures_app
from evalcore.cli.gate import gate, release_app
from evalcore.cli.handover import handover
from evalcore.cli.imports import import_command
from evalcore.cli.intake import intake_command
from evalcore.cli.local import reference_target, up
from evalcore.cli.monitor import baseline_app, monitor
from evalcore.cli.run import run
from evalcore.cli.runs import runs_app
from evalcore.cli.slack import slack_app
from evalcore.cli.store import store_app
from evalcore.cli.suite import suite_app, validate
from evalcore.cli.trends import trends
from evalcore.exitcodes import ExitCode

app = typer.Typer(
    name="evalcore",
    help="An evaluation factory: versioned eval sets, runs, release gates, drift and triage.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
# `--help` lists commands in this order, then the groups in theirs.
app.command("validate")(validate)
app.command("run")(run)
app.command("digest")(digest_command)
app.command("intake")(intake_command)
app.command("import")(import_command)
app.command("gate")(gate)
app.command("up")(up)
app.command("monitor")(monitor)
app.command("trends")(trends)
app.command("handover")(handover)
app.command("reference-target")(reference_target)
app.add_typer(suite_app, name="suite")
app.add_typer(runs_app, name="runs")
app.add_typer(slack_app, name="slack")
app.add_typer(decisions_app, name="decisions")
app.add_typer(release_app, name="release")
app.add_typer(baseline_app, name="baseline")
app.add_typer(fixtures_app, name="fixtures")
app.add_typer(store_app, name="store")


def main() -> None:
    """Entry point: usage errors exit 3 (our usage/config code), not click's 2."""
    try:
        code = app(standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except TyperClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.USAGE))
    except Exception as exc:
        _exit_on_click_error(exc)
        raise
    sys.exit(code if isinstance(code, int) else 0)


def _exit_on_click_error(exc: Exception) -> None:
    """typer parses with its own copy of click; an error from click itself (raised by a
    library a command uses) exits the same way. click is imported only to check this."""
    import click

    if isinstance(exc, click.exceptions.Abort):
        sys.exit(130)
    if isinstance(exc, click.ClickException):
        exc.show()
        sys.exit(int(ExitCode.USAGE))
