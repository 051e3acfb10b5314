"""`evalcore fixtures generate` and `evalcore fixtures list`: recurring edge cases made
from the suite's own cases, and how each family's cases are doing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evalcore.cli.common import JsonOption, SuiteOption, fail, load, open_store
from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from evalcore.fixtures.generate import GenerationResult
    from evalcore.fixtures.listing import FixtureListing

fixtures_app = typer.Typer(
    help="Generate edge cases from the suite's own cases; list what each family produced.",
    no_args_is_help=True,
)


@fixtures_app.command("generate")
def generate(
    family: Annotated[
        list[str] | None,
        typer.Option(
            "--family",
            "-f",
            help="bad_sources, stale_records, malformed_tool_calls, unsafe_requests or "
            "needs_human; repeat for several. Default: all five.",
            show_default=False,
        ),
    ] = None,
    from_case: Annotated[
        str | None, typer.Option("--from", help="Only this case as the parent.")
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Only parents carrying this tag.")] = None,
    set_: Annotated[str | None, typer.Option("--set", help="Only parents in this set.")] = None,
    count: Annotated[
        int | None,
        typer.Option(
            help="At most N cases per family in the suite (new ones written until N are "
            "there), picked in an order drawn from the seed. Default: every one.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every choice made.")] = 0,
    into: Annotated[
        str, typer.Option(help="Set the new cases go into: backlog or monitoring.")
    ] = "backlog",
    paraphrase: Annotated[
        bool,
        typer.Option(
            "--paraphrase",
            help="Reword new customer messages in the parent's voice through the "
            "scorecard's judge endpoint (cached; without it nothing leaves the machine).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be written; write nothing.")
    ] = False,
    templates: Annotated[
        Path | None,
        typer.Option(
            help="Folder of <family>.j2 templates used instead of the bundled ones.",
            show_default=False,
        ),
    ] = None,
    suite: SuiteOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write new cases derived from the suite's real cases into cases/fixtures-<family>.yaml.

    Deterministic: the same suite and seed write the same bytes, and running it again
    adds nothing. Near-duplicates of existing cases are skipped and counted. New cases go
    to the backlog (or monitoring); only an owner's decision moves one to blocking.

    Examples:
      [bold]evalcore fixtures generate --family bad_sources --dry-run[/]
      [bold]evalcore fixtures generate --tag refunds --count 5 --seed 7[/]
    """
    from rich.markup import escape

    from evalcore.fixtures.errors import FixtureError
    from evalcore.fixtures.generate import check_arguments, generate_fixtures
    from evalcore.settings import get_settings
    from evalcore.suite import SuiteError

    try:
        check_arguments(family, count, into)  # bad input is refused before the suite loads
        result = generate_fixtures(
            suite or get_settings().suite,
            families=family,
            from_case=from_case,
            tag=tag,
            set_=set_,
            count=count,
            seed=seed,
            into=into,
            paraphrase=paraphrase,
            dry_run=dry_run,
            templates=templates,
        )
    except FixtureError as exc:
        fail(escape(str(exc)))
    except SuiteError as exc:
        from evalcore.cli.console import print_suite_error

        print_suite_error(exc)
        raise typer.Exit(int(ExitCode.USAGE)) from None
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    _print_generation(result)


def _print_generation(result: GenerationResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from evalcore.cli.console import console

    verb = "would write" if result.dry_run else "written"
    table = Table(
        title=f"Fixtures {verb} (seed {result.seed}, into {result.into})", title_justify="left"
    )
    for column in ("family", "parents", verb, "already there", "near-duplicates", "file"):
        table.add_column(column, justify="left" if column in ("family", "file") else "right")
    for family in result.families:
        table.add_row(
            family.family,
            str(family.parents),
            str(len(family.written)),
            str(len(family.existing)),
            str(len(family.duplicates)),
            escape(str(family.file)),
        )
    console.print(table)
    for name, needs in result.without_parents:
        console.print(f"{name}: skipped, it needs {escape(needs)}", highlight=False)
    console.print(
        f"{result.written} {verb}, {result.skipped_existing} already in the suite, "
        f"{result.skipped_duplicate} near-duplicates skipped",
        highlight=False,
    )


@fixtures_app.command("list")
def list_command(
    runs: Annotated[
        int, typer.Option(min=1, help="How many of the latest stored runs to read.")
    ] = 20,
    suite: SuiteOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each family: how many cases it produced, in which sets, how they fared lately.

    The outcome of a case is its newest result among the latest runs of the suite's
    route; a case no such run ran is counted as not run.

    Example: [bold]evalcore fixtures list[/]
    """
    from evalcore.fixtures.listing import list_fixtures

    loaded = load(suite)
    listing = list_fixtures(loaded, open_store(), runs=runs)
    if as_json:
        print(json.dumps(listing.as_json(), indent=2))
        return
    _print_listing(listing)


def _print_listing(listing: FixtureListing) -> None:
    from rich.table import Table

    from evalcore.cli.console import console

    table = Table(
        title=f"Fixtures by family (outcomes from the latest {listing.runs_read} run(s))",
        title_justify="left",
    )
    for column in (
        "family", "cases", "backlog", "monitoring", "blocking",
        "passed", "failed", "undecided", "not run",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column == "family" else "right")
    for family in listing.families:
        table.add_row(
            family.family,
            str(family.cases),
            str(family.sets.get("backlog", 0)),
            str(family.sets.get("monitoring", 0)),
            str(family.sets.get("blocking", 0)),
            str(family.passed),
            str(family.failed),
            str(family.undecided),
            str(family.not_run),
        )
    console.print(table)
