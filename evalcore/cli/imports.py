"""`evalcore import FORMAT SOURCE`: cases from promptfoo, OpenAI evals, Inspect or a
spreadsheet, appended to one case file of the suite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evalcore.cli.common import JsonOption, SuiteOption, fail, load
from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from evalcore.importers.importing import ImportResult

_NOT_CONVERTED_SHOWN = 30


def import_command(
    format_name: Annotated[
        str,
        typer.Argument(
            metavar="FORMAT",
            help="promptfoo, openai-evals, inspect or csv.",
            show_default=False,
        ),
    ],
    source: Annotated[
        Path,
        typer.Argument(
            metavar="SOURCE",
            help="promptfooconfig.yaml, a JSONL/CSV file of samples, or a spreadsheet export.",
            show_default=False,
        ),
    ],
    into: Annotated[
        str,
        typer.Option(
            help="Set the cases go into: backlog, monitoring, or blocking (only when said)."
        ),
    ] = "backlog",
    prefix: Annotated[
        str | None,
        typer.Option(
            help="Start of every new case id. Default: pf, oaievals, inspect or csv.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Case file to append to, under the suite's cases/ (.yaml or .jsonl). "
            "Default: cases/imported-FORMAT-NAME.yaml.",
            show_default=False,
        ),
    ] = None,
    match: Annotated[
        str,
        typer.Option(
            help="How a reference answer is checked: contains (lenient), exact, or judge.",
        ),
    ] = "contains",
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="csv: COLUMN=FIELD, a column read as a case field (question, expected, "
            "outcome, tags, set, severity, ticket, id, notes, system); repeat for several.",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Refuse the import if anything cannot be converted."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be written; write nothing.")
    ] = False,
    suite: SuiteOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import cases from the formats teams already keep, into one case file of the suite.

    Each converted test gets a stable id, `source: {kind: import, format, file, line}` and
    the backlog set unless `--into` says otherwise; all are validated before anything is
    written, tests the suite already has are skipped, and other files are not touched.
    What cannot be converted (code assertions, provider options) is listed with file:line
    and the reason; `--strict` makes that an error.

    Examples:
      [bold]evalcore import promptfoo promptfooconfig.yaml --dry-run[/]
      [bold]evalcore import csv examples.csv --map Frage=question --into monitoring[/]
      [bold]evalcore import openai-evals samples.jsonl --match exact[/]
    """
    from rich.markup import escape

    from evalcore.importers.conversion import MATCHES, ConvertOptions, ImportRefused
    from evalcore.importers.importing import import_cases

    try:
        if match not in MATCHES:
            raise ImportRefused(f"--match {match!r} is not one of {', '.join(MATCHES)}")
        options = ConvertOptions(match=match, mapping=_mapping(mapping or []))
        loaded = load(suite)
        result = import_cases(
            loaded,
            format_name,
            source,
            into=into,
            prefix=prefix,
            out=out,
            strict=strict,
            dry_run=dry_run,
            options=options,
        )
    except ImportRefused as exc:
        if as_json:
            print(json.dumps({"ok": False, "error": str(exc)}, indent=2))
            raise typer.Exit(int(ExitCode.USAGE)) from None
        fail(escape(str(exc)))
    if as_json:
        print(json.dumps({"ok": True, **result.as_json()}, indent=2))
        return
    _print_result(result)


def _mapping(pairs: list[str]) -> dict[str, str]:
    from evalcore.importers.conversion import ImportRefused

    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, field = pair.partition("=")
        if not sep or not column.strip() or not field.strip():
            raise ImportRefused(f"--map {pair!r}: write it as COLUMN=FIELD")
        mapping[column.strip()] = field.strip()
    return mapping


def _print_result(result: ImportResult) -> None:
    from rich.markup import escape

    from evalcore.cli.console import console

    plan = result.plan
    verb = "would write" if result.dry_run else "wrote"
    console.print(
        f"{len(plan.conversion.drafts)} case(s) converted from {plan.conversion.format} "
        f"{escape(result.source)}; {verb} {len(plan.bodies)} to {escape(str(plan.out))} "
        f"(set {plan.into})",
        highlight=False,
    )
    already = [s for s in plan.skipped if s.why == "already imported"]
    duplicates = [s for s in plan.skipped if s.why == "duplicate"]
    if already:
        console.print(f"{len(already)} already imported earlier, left as they are", highlight=False)
    for skipped in duplicates[:_NOT_CONVERTED_SHOWN]:
        console.print(
            f"  {escape(str(skipped.origin))}: skipped, repeats {escape(skipped.of)}",
            highlight=False,
        )
    if len(duplicates) > _NOT_CONVERTED_SHOWN:
        console.print(f"  ... {len(duplicates) - _NOT_CONVERTED_SHOWN} more repeats skipped")
    if result.not_converted:
        dropped = sum(1 for n in result.not_converted if n.dropped)
        console.print(
            f"[yellow]not converted[/] ({len(result.not_converted)}; {dropped} test(s) left "
            "out entirely):",
            highlight=False,
        )
        for item in result.not_converted[:_NOT_CONVERTED_SHOWN]:
            mark = "left out: " if item.dropped else ""
            console.print(
                f"  {escape(str(item.origin))}: {mark}{escape(item.what)}: {escape(item.reason)}",
                highlight=False,
                soft_wrap=True,
            )
        more = len(result.not_converted) - _NOT_CONVERTED_SHOWN
        if more > 0:
            console.print(f"  ... and {more} more (--json lists them all)")
    for budget in result.budgets:
        unit = f"${budget.limit:g} per call" if budget.kind == "cost" else f"{budget.limit:g} ms"
        now = "not set" if budget.current is None else f"{budget.current:g}"
        console.print(
            f"{budget.kind} limit {unit} on {budget.count} case(s) (first at "
            f"{escape(budget.first)}): evalcore keeps it in scorecard budgets.{budget.field} "
            f"(now {now}); not written, carry it over if it still holds",
            highlight=False,
            soft_wrap=True,
        )
