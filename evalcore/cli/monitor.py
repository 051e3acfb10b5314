"""`evalcore monitor` and `evalcore baseline accept|list`: the nightly monitor in this
process, and the baselines it compares with."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from evalcore.cli.common import (
    JsonOption,
    JudgeUrlOption,
    ModelOption,
    SuiteOption,
    TargetUrlOption,
    fail,
    load,
    open_store,
)
from evalcore.cli.in_process import run_set_flow
from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

baseline_app = typer.Typer(
    help="Baselines the nightly monitor compares with.", no_args_is_help=True
)


def monitor(
    suite: SuiteOption = None,
    target_url: TargetUrlOption = None,
    model: ModelOption = None,
    judge_url: JudgeUrlOption = None,
    fail_on_drift: Annotated[
        str | None,
        typer.Option(
            help="Exit 1 when a drift finding at or above this severity appears "
            "(info, low, medium, high, critical)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The nightly monitor, in-process: the monitoring set against the route's baseline.

    Findings are stored and printed; drift alone exits 0 unless --fail-on-drift says so.

    Example: [bold]evalcore monitor --fail-on-drift high[/]
    """
    from evalcore.cli.console import console, err_console, findings_table
    from evalcore.monitor.drift import Severity
    from evalcore.monitor.steps import MonitorResult
    from evalcore.suite import EvalSet

    threshold = None
    if fail_on_drift is not None:
        try:
            threshold = Severity.parse(fail_on_drift)
        except ValueError as exc:
            fail(f"--fail-on-drift: {exc}")
    loaded = load(suite)

    def start(shown_target_url: str | None, shown_judge_url: str | None) -> Awaitable[State[Any]]:
        from flows.nightly_monitor import nightly_monitor

        return nightly_monitor(
            target_url=shown_target_url,
            model=model,
            judge_url=shown_judge_url,
            suite=str(loaded.root),
            trigger="monitor",
            return_state=True,
        )

    result = run_set_flow(
        "monitor",
        MonitorResult,
        loaded,
        start,
        sets=(EvalSet.monitoring,),
        target_url=target_url,
        model=model,
        judge_url=judge_url,
    )
    failing = result.alarms_at_or_above(threshold) if threshold is not None else []
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        if result.no_baseline:
            err_console.print(f"[yellow]{result.no_baseline}[/]", highlight=False)
        console.print(findings_table(result))
        if failing:
            console.print(
                f"[red]{len(failing)} finding(s) at or above {fail_on_drift}[/]", highlight=False
            )
    raise typer.Exit(int(ExitCode.FAIL) if failing else 0)


@baseline_app.command("accept")
def baseline_accept(
    run_id: Annotated[str, typer.Argument(help="A finished run (id or unique prefix).")],
    by: Annotated[str, typer.Option("--by", help="Owner id from owners.yaml.")],
    reason: Annotated[str, typer.Option("--reason", help="Why this run is the new normal.")],
    suite: SuiteOption = None,
) -> None:
    """Make a finished run the baseline of its route and set(s); the previous one is kept.

    Only an owner of the route or the set (owners.yaml) may accept.

    Example: [bold]evalcore baseline accept 3f2a9c1d0b7e --by maya.okafor --reason "new model"[/]
    """
    from evalcore.cli.console import console
    from evalcore.monitor.baseline import BaselineError, accept_baseline

    loaded = load(suite)
    engine = open_store()
    try:
        rows = accept_baseline(engine, loaded.owners, run_id=run_id, by=by, reason=reason)
    except BaselineError as exc:
        fail(str(exc))
    for row in rows:
        console.print(
            f"baseline of {row.route}/{row.set} is now run {row.run_id[:12]} "
            f"(accepted by {row.accepted_by})",
            highlight=False,
        )


@baseline_app.command("list")
def baseline_list(
    route: Annotated[str | None, typer.Option(help="Only this route.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every baseline ever accepted, with who, when and why; current ones first per set."""
    from evalcore.monitor.baseline import list_baselines

    rows = list_baselines(open_store(), route=route)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    from evalcore.cli.console import baselines_table, console

    console.print(baselines_table(rows))
