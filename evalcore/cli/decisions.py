"""`evalcore decisions ...`: owners' decisions, listed and written into the eval files."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from evalcore.cli.common import JsonOption, SuiteOption, fail, load, open_store
from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from rich.table import Table

    from evalcore.store.tables import DecisionRow
    from evalcore.triage.apply import ApplyPlan, ApplyReport, PlannedDecision

decisions_app = typer.Typer(
    help="Owners' decisions on backlog items, flaky cases, drift, thresholds and promotions.",
    no_args_is_help=True,
)

_STATUS_STYLE = {"apply": "green", "refused": "yellow", "conflict": "bold red"}


@decisions_app.command("apply")
def apply_decisions(
    suite: SuiteOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the diff and what would happen; write nothing.")
    ] = False,
    skip: Annotated[
        list[str] | None,
        typer.Option(
            "--skip",
            help="Leave a decision pending (kind:ref, ref or decision id); repeat for several.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write pending decisions into the case files and scorecard, then mark them applied.

    Prints the diff of every file changed and the dataset version before and after.
    Exit 0 when everything pending was applied; 3 when a file was edited by hand since a
    decision in a way that touches it (nothing is written), when a decision was refused
    (left pending, the others applied), or when the written suite would not load (every
    file restored).

    Example: [bold]evalcore decisions apply --dry-run[/]
    """
    from evalcore.cli.console import console
    from evalcore.triage.apply import ApplyConflict, ApplyError, apply_plan, plan_apply

    loaded = load(suite)
    engine = open_store()
    plan = plan_apply(engine, loaded, skip=skip or ())
    if not plan.decisions:
        if as_json:
            print(json.dumps(_plan_json(plan, dry_run=dry_run)))
        else:
            console.print("nothing to apply: no pending decisions")
        return
    if dry_run or plan.conflicts:
        if as_json:
            print(json.dumps(_plan_json(plan, dry_run=dry_run), indent=2))
        else:
            _print_decisions(plan.decisions, dry_run=dry_run)
            _print_diff(plan.diff())
        if plan.conflicts:
            fail(
                f"{len(plan.conflicts)} conflict(s) with hand edits since the decisions; "
                "nothing was written. Restore the files, have the owner decide again, or "
                "leave the decision out with --skip",
                ExitCode.USAGE,
            )
        if plan.refused:
            raise typer.Exit(int(ExitCode.USAGE))
        if not as_json:
            console.print(f"dry run: {len(plan.to_apply)} decision(s) would apply; nothing written")
        return
    try:
        report = apply_plan(engine, loaded, plan)
    except ApplyConflict as exc:  # pragma: no cover - planned conflicts are handled above
        fail(str(exc))
    except ApplyError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(_report_json(report), indent=2))
    else:
        _print_decisions([*report.applied, *report.refused])
        _print_diff(report.diff())
        console.print(
            f"applied {len(report.applied)} decision(s)  ·  dataset {report.dataset_before[:12]}"
            f" -> {report.dataset_after[:12]}  ·  scorecard {report.scorecard_before[:12]} -> "
            f"{report.scorecard_after[:12]}",
            highlight=False,
            soft_wrap=True,
        )
    if report.refused:
        fail(
            f"{len(report.refused)} decision(s) refused and left pending (see above)",
            ExitCode.USAGE,
        )


@decisions_app.command("record")
def record_cmd(
    ref: Annotated[
        str,
        typer.Argument(
            help="Item: BL-000123, ZD-48213, flaky:<case>, graduate:blocking:<case>, ..."
        ),
    ],
    action: Annotated[
        str, typer.Argument(help="block, monitor, keep, dismiss, demote, promote, ...")
    ],
    by: Annotated[str, typer.Option("--by", help="Owner id from owners.yaml.")],
    value: Annotated[str | None, typer.Option(help="For a threshold: the new number.")] = None,
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    suite: SuiteOption = None,
) -> None:
    """Record a decision without Slack (same owner checks, one decision per item).

    `promote` takes a bare case id too: the case goes one step up from its set.

    Example: [bold]evalcore decisions record ZD-48213 block --by maya.okafor[/]
    """
    from evalcore.cli.console import console
    from evalcore.triage.decisions import DecisionRequest, Outcome, record_decision

    loaded = load(suite)
    outcome = record_decision(
        open_store(),
        loaded,
        DecisionRequest(ref, action, owner_id=by, value=value, source="cli", reason=reason),
    )
    if outcome.outcome is not Outcome.accepted:
        fail(outcome.message)
    console.print(outcome.message, highlight=False, soft_wrap=True)


@decisions_app.command("list")
def list_cmd(
    pending: Annotated[
        bool, typer.Option("--pending", help="Only decisions not yet written to the files.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Decisions recorded, newest first: item, action, value, who, when, source, applied.

    Example: [bold]evalcore decisions list --pending[/]
    """
    from evalcore.cli.console import console
    from evalcore.triage.apply import list_decisions

    rows = list_decisions(open_store(), pending=pending)
    if as_json:
        print(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
        return
    console.print(_decisions_table(rows, pending=pending))


def _decisions_table(rows: list[DecisionRow], *, pending: bool) -> Table:
    from rich.table import Table

    title = "Pending decisions" if pending else "Decisions, newest first"
    table = Table(title=title, title_justify="left")
    for column in ("item", "action", "value", "by", "when (UTC)", "source", "applied"):
        table.add_column(column)
    for row in rows:
        applied = (
            "[yellow]pending[/]"
            if row.applied_at is None
            else f"{_utc(row.applied_at):%Y-%m-%d %H:%M}"
        )
        table.add_row(
            f"{row.item_kind} {row.item_ref}",
            row.action,
            row.value or "—",
            row.decided_by,
            f"{_utc(row.decided_at):%Y-%m-%d %H:%M}",
            row.source,
            applied,
        )
    return table


def _print_decisions(decisions: list[PlannedDecision], *, dry_run: bool = False) -> None:
    """One line per decision: what happened to it, or with `dry_run` what would."""
    from rich.markup import escape

    from evalcore.cli.console import console

    done = "would apply" if dry_run else "applied"
    width = max(8, len(done))
    for decision in decisions:
        style = _STATUS_STYLE[decision.status]
        word = done if decision.status == "apply" else decision.status
        console.print(
            f"[{style}]{word:>{width}}[/]  {escape(decision.label)}: {escape(decision.detail)}",
            highlight=False,
            soft_wrap=True,
            emoji=False,
        )


def _print_diff(diff: str) -> None:
    """The unified diff as it is (no markup, no emoji codes), coloured on a terminal."""
    from rich.text import Text

    from evalcore.cli.console import console

    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        else:
            style = ""
        console.print(Text(line, style=style), highlight=False, soft_wrap=True)


def _plan_json(plan: ApplyPlan, *, dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "written": False,
        "decisions": [d.as_json() for d in plan.decisions],
        "files": [str(c.path) for c in plan.changes],
        "diff": plan.diff(),
        "dataset": {"before": plan.dataset_before},
        "scorecard": {"before": plan.scorecard_before},
    }


def _report_json(report: ApplyReport) -> dict[str, Any]:
    return {
        "dry_run": False,
        "written": bool(report.changes),
        "decisions": [d.as_json() for d in [*report.applied, *report.refused]],
        "files": [str(c.path) for c in report.changes],
        "diff": report.diff(),
        "dataset": {"before": report.dataset_before, "after": report.dataset_after},
        "scorecard": {"before": report.scorecard_before, "after": report.scorecard_after},
    }


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
