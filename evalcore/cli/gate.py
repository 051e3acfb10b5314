"""`evalcore gate` and `evalcore release announce`: a release gated in this process, or
announced to the Prefect server whose deployment gates it."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
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
)
from evalcore.cli.in_process import run_set_flow
from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

    from evalcore.suite import Suite

release_app = typer.Typer(help="Announce releases to the Prefect server.", no_args_is_help=True)


def gate(
    release: Annotated[str, typer.Option("--release", "-r", help="Release id to gate.")],
    suite: SuiteOption = None,
    target_url: TargetUrlOption = None,
    model: ModelOption = None,
    judge_url: JudgeUrlOption = None,
    junit: Annotated[
        Path | None, typer.Option(help="Write JUnit XML here (cases and criteria).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Write the HTML report here.", show_default="under EVALCORE_HOME"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Gate a release on the blocking set: the release-gate flow, run in-process.

    Exit 0 pass, 1 fail, 2 inconclusive (target errors over budget, or the gate could
    not run), 3 configuration error (nothing was run). Re-running a release whose gate
    was killed resumes that run; a finished release gated again gets a new run. A gate
    started while another gates the same release, dataset and target attaches to it and
    exits with its verdict.

    Example: [bold]evalcore gate --release 2026.11.3 --junit reports/gate.xml[/]
    """
    from evalcore.cli.console import console, err_console, print_summary, print_verdict
    from evalcore.gate.steps import GateResult
    from evalcore.suite import EvalSet

    loaded = load(suite)
    _check_regression_run(loaded)

    def start(shown_target_url: str | None, shown_judge_url: str | None) -> Awaitable[State[Any]]:
        from flows.release_gate import release_gate

        return release_gate(
            release=release,
            target_url=shown_target_url,
            model=model,
            judge_url=shown_judge_url,
            suite=str(loaded.root),
            trigger="gate",
            report_path=str(report) if report else None,
            junit_path=str(junit) if junit else None,
            return_state=True,
        )

    outcome = run_set_flow(
        "gate",
        GateResult,
        loaded,
        start,
        sets=(EvalSet.blocking,),
        target_url=target_url,
        model=model,
        judge_url=judge_url,
    )
    if as_json:
        print(outcome.model_dump_json(indent=2))
        raise typer.Exit(outcome.exit_code)
    if outcome.attached:
        err_console.print(
            f"attached to run {outcome.short_id} of release {release}, held by "
            f"{outcome.held_by}: this is its verdict",
            highlight=False,
            soft_wrap=True,
        )
    elif outcome.resumed:
        err_console.print(f"resumed unfinished run {outcome.short_id} of release {release}")
    print_summary(outcome.summary)
    print_verdict(outcome.run_verdict)
    console.print(f"HTML report: {outcome.report_path}", highlight=False, soft_wrap=True)
    if outcome.junit_path:
        console.print(f"JUnit XML: {outcome.junit_path}", highlight=False, soft_wrap=True)
    raise typer.Exit(outcome.exit_code)


def _check_regression_run(loaded: Suite) -> None:
    """`regression.against` naming a run the store does not have stops the gate before
    anything runs, naming scorecard.yaml:line (a typo must not silently compare nothing)."""
    check = loaded.scorecard.regression
    if check is None or check.against == "last_pass":
        return
    from evalcore.cli.common import open_store
    from evalcore.store.repository import get_run

    if get_run(open_store(), check.against) is not None:
        return
    from evalcore.cli.console import print_suite_error
    from evalcore.suite import SuiteError
    from evalcore.suite.errors import SuiteIssue
    from evalcore.suite.yaml_lines import parse_yaml

    path = loaded.root / "scorecard.yaml"
    line = parse_yaml(path.read_text(encoding="utf-8"), path).lines.line_of(
        ("regression", "against")
    )
    print_suite_error(
        SuiteError(
            [
                SuiteIssue(
                    path,
                    line,
                    "regression.against",
                    f"no run {check.against!r} in the store to compare with "
                    "(see `evalcore runs list`; or `last_pass`)",
                )
            ]
        )
    )
    raise typer.Exit(int(ExitCode.USAGE))


@release_app.command("announce")
def release_announce(
    release: Annotated[str, typer.Argument(help="Release id, e.g. 2026.11.3.")],
    target_url: Annotated[
        str | None, typer.Option(help="Endpoint of the release's model (else the default).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name of the release.")] = None,
    wait: Annotated[
        bool, typer.Option(help="Wait for the gate run and exit with its verdict (0/1/2).")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait with --wait.")] = 1800,
) -> None:
    """Emit the `release.created` event that triggers the release-gate deployment.

    Needs PREFECT_API_URL pointing at a running Prefect server (see `evalcore up`).
    With --wait, follows the flow run the event started and exits like `evalcore gate`.

    Example: [bold]evalcore release announce 2026.11.3 --wait[/]
    """
    from evalcore import aio
    from evalcore.cli.console import console
    from evalcore.gate.announce import AnnounceError, announce_release, wait_for_gate

    try:
        event_id = aio.run(announce_release(release, target_url=target_url, model=model))
        console.print(f"announced release {release}  ·  event {event_id}", highlight=False)
        if not wait:
            return
        outcome = aio.run(wait_for_gate(event_id, timeout_s=timeout))
    except AnnounceError as exc:
        fail(str(exc), ExitCode.INCONCLUSIVE if wait else ExitCode.USAGE)
    console.print(
        f"gate flow run {outcome.flow_run_id}: {outcome.state.lower()}"
        + (f" ({outcome.message})" if outcome.message else ""),
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(int(outcome.exit_code))
