"""The `evalcore` command. Thin: it parses options, calls into the library, prints.

Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage or configuration error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import click
import typer
from typer._click.exceptions import ClickException as TyperClickException

from evalcore import aio
from evalcore.cli import common
from evalcore.cli.decisions import decisions_app
from evalcore.cli.digest import digest_command
from evalcore.cli.in_process import prefect_defaults, run_flow
from evalcore.cli.intake import intake_command
from evalcore.cli.slack import slack_app
from evalcore.exitcodes import ExitCode
from evalcore.settings import get_settings
from evalcore.suite import EvalSet, Suite, SuiteError, load_suite

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

T = TypeVar("T")

# typer vendors its own copy of click; its exceptions are not click's subclasses.
_USAGE_ERRORS: tuple[type[click.ClickException] | type[TyperClickException], ...] = (
    click.ClickException,
    TyperClickException,
)

app = typer.Typer(
    name="evalcore",
    help="An evaluation factory: versioned eval sets, runs, release gates, drift and triage.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
suite_app = typer.Typer(help="Inspect the versioned dataset.", no_args_is_help=True)
app.add_typer(suite_app, name="suite")
runs_app = typer.Typer(
    help="Past runs and their verdicts, from the database.", no_args_is_help=True
)
app.add_typer(runs_app, name="runs")

SuiteOption = common.SuiteOption
JsonOption = common.JsonOption
_fail = common.fail
_load = common.load


@app.command()
def validate(suite: SuiteOption = None, as_json: JsonOption = False) -> None:
    """Check the case files, scorecard and owners; exit 3 naming file:line:field on any problem.

    Regexes that may backtrack without end are warned about (file:line), without failing.

    Example: [bold]evalcore validate --suite evals[/]
    """
    from evalcore.cli.console import console, err_console
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
    from evalcore.cli.console import console, suite_table

    loaded = _load(suite)
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
    commit = version.git_commit[:12] if version.git_commit else "not in git"
    dirty = " (uncommitted changes)" if version.git_dirty else ""
    console.print(
        f"dataset [bold]{version.short}[/]  ·  git {commit}{dirty}  ·  {len(loaded.cases)} cases"
    )
    console.print(suite_table(loaded))


@app.command()
def run(
    sets: Annotated[
        list[EvalSet] | None,
        typer.Option("--set", help="Set(s) to run; repeat for several.", show_default="monitoring"),
    ] = None,
    suite: SuiteOption = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="Continue a crashed run: only pairs with no result run."),
    ] = None,
    target_url: Annotated[
        str | None,
        typer.Option(
            help="Override the target's URL. With --resume: the run's URL again, in full "
            "when it had credentials (they are stored masked)."
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Override the target's model.")] = None,
    judge_url: Annotated[
        str | None,
        typer.Option(help="Override the LLM judge's URL; with --resume, as --target-url."),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Calls in flight.")] = None,
    rps: Annotated[
        float | None, typer.Option(min=0.001, help="Requests per second, at most.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(min=0.001, help="Seconds per call.")] = None,
    retries: Annotated[int | None, typer.Option(min=0, help="Retries per call.")] = None,
    release: Annotated[str | None, typer.Option(help="Release id to record with the run.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a set against the route under test; every result is scored and stored.

    Examples:
      [bold]evalcore run --set monitoring --target-url http://127.0.0.1:8765/v1[/]
      [bold]evalcore run --resume 3f2a9c1d0b7e[/]
    """
    from evalcore.cli.console import print_summary, run_progress
    from evalcore.results.loader import read_results
    from evalcore.results.summary import FAILURES_SHOWN, summarize
    from evalcore.run import (
        Counters,
        RunReport,
        RunRequest,
        RunSetupError,
        execute_run,
        prepare_run,
        run_for_resume,
    )
    from evalcore.store.repository import get_run
    from evalcore.targets import ConfigError

    engine = common.open_store()
    try:
        if resume:
            overrides = (sets, model, concurrency, rps, timeout, retries)
            if any(o is not None for o in overrides) or release is not None:
                _fail(
                    "--resume continues a run with the settings it started with; "
                    "drop --set, --release and the overrides (--target-url and --judge-url "
                    "only give back a URL whose credentials were masked)"
                )
            started = get_run(engine, resume)
            if started is None:
                _fail(f"no run with id {resume!r} (see the id printed by `evalcore run`)")
            # By default the run continues over the suite it started from.
            loaded = _load(suite or Path(started.suite_path))
            run_row = run_for_resume(
                engine, loaded, started.id, target_url=target_url, judge_url=judge_url
            )
            if run_row.status == "finished":
                from evalcore.cli.console import err_console

                err_console.print(f"run {run_row.id[:12]} already finished; nothing to resume")
        else:
            loaded = _load(suite)
            request = RunRequest(
                sets=tuple(sets or [EvalSet.monitoring]),
                target_url=target_url,
                model=model,
                judge_url=judge_url,
                concurrency=concurrency,
                rps=rps,
                timeout_s=timeout,
                retries=retries,
                release=release,
            )
            run_row = prepare_run(engine, loaded, request)
        counters = Counters()

        async def go() -> RunReport:
            async with run_progress(counters, f"run {run_row.id[:12]}"):
                return await execute_run(engine, loaded, run_row, counters=counters)

        report = aio.run(go())
    except (RunSetupError, ConfigError) as exc:
        _fail(str(exc))
    with read_results(engine, run_row.id, failures=FAILURES_SHOWN) as streamed:
        summary = summarize(streamed)
    if as_json:
        print(summary.model_dump_json(indent=2))
        return
    print_summary(summary, elapsed_s=report.elapsed_s)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 20,
    release: Annotated[str | None, typer.Option(help="Only the runs of this release.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Past runs: release, dataset version, verdict, pass rates, p95 latency, cost.

    Example: [bold]evalcore runs list --release 2026.11.3[/]
    """
    from evalcore.cli.console import console, runs_table
    from evalcore.results.history import run_overviews

    overviews = run_overviews(common.open_store(), limit=limit, release=release)
    if as_json:
        print(json.dumps([o.as_json() for o in overviews], indent=2))
        return
    console.print(runs_table(overviews))


@runs_app.command("show")
def runs_show(
    run_id: str,
    as_json: JsonOption = False,
    junit: Annotated[
        Path | None, typer.Option(help="Also write JUnit XML here (cases and criteria).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write the HTML report here (works offline).")
    ] = None,
) -> None:
    """One run: results per set, failures with their reasons, and the verdict's criteria.

    Example: [bold]evalcore runs show 3f2a9c1d0b7e --junit reports/evals.xml[/]
    """
    from evalcore.cli.console import print_summary, verdict_table
    from evalcore.results.loader import load_results
    from evalcore.results.summary import FAILURES_SHOWN, summarize
    from evalcore.results.verdict import judge_run
    from evalcore.store.repository import get_run

    engine = common.open_store()
    run_row = get_run(engine, run_id)
    if run_row is None:
        _fail(f"no run with id {run_id!r} (see `evalcore runs list`)")
    results = load_results(engine, run_row, failures=FAILURES_SHOWN)
    summary = summarize(results)
    verdict = judge_run(results)
    if junit is not None:
        from evalcore.report.junit import write_junit

        write_junit(engine, run_row, verdict, junit)
    if report is not None:
        from evalcore.report.html import write_report

        write_report(engine, run_row, summary, verdict, report)
    if as_json:
        payload = summary.model_dump(mode="json")
        payload["verdict"] = verdict.verdict.value
        payload["reason"] = verdict.reason
        payload["criteria"] = [c.__dict__ for c in verdict.criteria]
        print(json.dumps(payload, indent=2))
        return
    print_summary(summary)
    from evalcore.cli.console import console

    console.print(verdict_table(verdict))


app.add_typer(slack_app, name="slack")
app.add_typer(decisions_app, name="decisions")
app.command("digest")(digest_command)
app.command("intake")(intake_command)

release_app = typer.Typer(help="Announce releases to the Prefect server.", no_args_is_help=True)
app.add_typer(release_app, name="release")


def _check_target(loaded: Suite, *, target_url: str | None, model: str | None) -> None:
    """A target that cannot be built (bad URL override, missing key) stops the command
    before Prefect or a run row exist."""
    from evalcore.run import RunSetupError, override_target
    from evalcore.targets import ConfigError, build_target

    try:
        config = override_target(loaded.scorecard.target, url=target_url, model=model)
        build_target(config, concurrency=1, timeout_s=loaded.scorecard.run.timeout_s)
    except (RunSetupError, ConfigError) as exc:
        _fail(str(exc))


def _run_set_flow(
    what: str,
    expected: type[T],
    loaded: Suite,
    start: Callable[[str | None, str | None], State[Any] | Awaitable[State[Any]]],
    *,
    target_url: str | None,
    model: str | None,
    judge_url: str | None,
) -> T:
    """Run the gate's or the monitor's flow in this process, as `start(target_url,
    judge_url)` starts it, and return what it concluded.

    A target that cannot be built or a store that cannot be opened exits 3 first, before
    Prefect starts (so `start` imports the flow). Prefect stores flow parameters: `start`
    gets the URLs masked, and the flow finds the full ones in this process.
    """
    from evalcore.run import keep_full_url

    _check_target(loaded, target_url=target_url, model=model)
    common.open_store()
    prefect_defaults()
    shown_target_url, shown_judge_url = keep_full_url(target_url), keep_full_url(judge_url)
    return run_flow(what, lambda: start(shown_target_url, shown_judge_url), expected)


@app.command()
def gate(
    release: Annotated[str, typer.Option("--release", "-r", help="Release id to gate.")],
    suite: SuiteOption = None,
    target_url: common.TargetUrlOption = None,
    model: common.ModelOption = None,
    judge_url: common.JudgeUrlOption = None,
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
    was killed resumes that run; a finished release gated again gets a new run.

    Example: [bold]evalcore gate --release 2026.11.3 --junit reports/gate.xml[/]
    """
    from evalcore.cli.console import console, err_console, print_summary, verdict_table
    from evalcore.gate.steps import GateResult

    loaded = _load(suite)

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

    outcome = _run_set_flow(
        "gate",
        GateResult,
        loaded,
        start,
        target_url=target_url,
        model=model,
        judge_url=judge_url,
    )
    if as_json:
        print(outcome.model_dump_json(indent=2))
        raise typer.Exit(outcome.exit_code)
    if outcome.resumed:
        err_console.print(f"resumed unfinished run {outcome.short_id} of release {release}")
    print_summary(outcome.summary)
    console.print(verdict_table(outcome.run_verdict))
    console.print(f"HTML report: {outcome.report_path}", highlight=False, soft_wrap=True)
    if outcome.junit_path:
        console.print(f"JUnit XML: {outcome.junit_path}", highlight=False, soft_wrap=True)
    raise typer.Exit(outcome.exit_code)


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
    from evalcore.cli.console import console
    from evalcore.gate.announce import AnnounceError, announce_release, wait_for_gate

    try:
        event_id = aio.run(announce_release(release, target_url=target_url, model=model))
        console.print(f"announced release {release}  ·  event {event_id}", highlight=False)
        if not wait:
            return
        outcome = aio.run(wait_for_gate(event_id, timeout_s=timeout))
    except AnnounceError as exc:
        _fail(str(exc), ExitCode.INCONCLUSIVE if wait else ExitCode.USAGE)
    console.print(
        f"gate flow run {outcome.flow_run_id}: {outcome.state.lower()}"
        + (f" ({outcome.message})" if outcome.message else ""),
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(int(outcome.exit_code))


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Prefect server port (loopback).")] = 4200,
    reference_port: Annotated[
        int, typer.Option(help="Reference target port; the scorecard points at 8765.")
    ] = 8765,
    reference: Annotated[
        bool, typer.Option(help="Start the bundled reference target as the default target.")
    ] = True,
    ui: Annotated[bool, typer.Option(help="Serve the Prefect UI.")] = True,
    suite: SuiteOption = None,
) -> None:
    """Start a Prefect server, the reference target and the served deployments; Ctrl-C stops all.

    Then, from another shell: [bold]PREFECT_API_URL=http://127.0.0.1:4200/api evalcore
    release announce 2026.11.3 --wait[/]
    """
    import signal
    import time

    from evalcore.cli.console import console
    from evalcore.local.stack import StackError, start_stack

    settings = get_settings()
    loaded = _load(suite)  # a broken suite stops here, not inside a triggered run
    common.open_store()  # so does a database the served flows could not open
    project = Path(__file__).resolve().parents[2]
    try:
        stack = start_stack(
            home=settings.home,
            project=project,
            suite=loaded.root,
            port=port,
            reference_port=reference_port if reference else None,
            ui=ui,
            on_step=lambda step: console.print(f"starting {step}", highlight=False),
        )
    except StackError as exc:
        _fail(str(exc))

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    console.print(
        f"[green]up[/]: Prefect API {stack.api_url}"
        + (f"  ·  target {stack.target_url}" if stack.target_url else "")
        + f"  ·  logs {stack.logs}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"announce a release: PREFECT_API_URL={stack.api_url} evalcore release announce "
        "RELEASE --wait",
        highlight=False,
        soft_wrap=True,
    )
    code = 0
    try:
        while (dead := stack.failed_child()) is None:
            time.sleep(0.5)
        console.print(f"[red]{dead.name} stopped[/]; its log:\n{dead.tail()}", highlight=False)
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping ...")
        stack.stop()
        console.print("stopped")
    raise typer.Exit(code)


baseline_app = typer.Typer(
    help="Baselines the nightly monitor compares with.", no_args_is_help=True
)
app.add_typer(baseline_app, name="baseline")


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

    loaded = _load(suite)
    engine = common.open_store()
    try:
        rows = accept_baseline(engine, loaded.owners, run_id=run_id, by=by, reason=reason)
    except BaselineError as exc:
        _fail(str(exc))
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
    from evalcore.cli.console import baselines_table, console
    from evalcore.monitor.baseline import list_baselines

    rows = list_baselines(common.open_store(), route=route)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    console.print(baselines_table(rows))


@app.command()
def monitor(
    suite: SuiteOption = None,
    target_url: common.TargetUrlOption = None,
    model: common.ModelOption = None,
    judge_url: common.JudgeUrlOption = None,
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

    threshold = None
    if fail_on_drift is not None:
        try:
            threshold = Severity.parse(fail_on_drift)
        except ValueError as exc:
            _fail(f"--fail-on-drift: {exc}")
    loaded = _load(suite)

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

    result = _run_set_flow(
        "monitor",
        MonitorResult,
        loaded,
        start,
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


@app.command()
def trends(
    route: Annotated[
        str | None, typer.Option(help="Route to show.", show_default="the suite's route")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Nights to look back.")] = 30,
    set_name: Annotated[str, typer.Option("--set", help="Which set's runs.")] = "monitoring",
    html: Annotated[
        Path | None,
        typer.Option(help="Write the HTML page here.", show_default="under EVALCORE_HOME"),
    ] = None,
    suite: SuiteOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per-night pass rate, p95 latency, cost and error rate, as a table and an HTML page.

    Example: [bold]evalcore trends --route support-assistant --days 30[/]
    """
    from evalcore.cli.console import console
    from evalcore.report.trends import trend_json, trends_table, write_trends_html
    from evalcore.results.trends import nightly_trend

    loaded = _load(suite)
    engine = common.open_store()
    scorecard = loaded.scorecard
    route = route or scorecard.route
    try:
        points = nightly_trend(
            engine,
            route=route,
            days=days,
            set_name=set_name,
            timezone=scorecard.drift.timezone,
        )
    except ValueError as exc:
        _fail(str(exc))
    from evalcore.report.artifacts import slug

    path = html or get_settings().home.resolve() / "reports" / f"trends-{slug(route)}.html"
    write_trends_html(
        points,
        path,
        route=route,
        set_name=set_name,
        scorecard=scorecard if route == scorecard.route else None,
    )
    if as_json:
        print(json.dumps({"route": route, "html": str(path), "nights": trend_json(points)}))
        return
    console.print(trends_table(points, route=route))
    console.print(f"HTML: {path}", highlight=False, soft_wrap=True)


@app.command()
def handover(
    suite: SuiteOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the Markdown here.", show_default="EVALCORE_HOME/handover.md"),
    ] = None,
) -> None:
    """The five answers a team must have, from live data: what blocks, what is monitored,
    how a production failure becomes a case, who owns thresholds, the budgets.

    Example: [bold]evalcore handover --out HANDOVER.md[/]
    """
    from rich.markdown import Markdown

    from evalcore.cli.console import console
    from evalcore.triage.handover import gather_handover, handover_markdown

    loaded = _load(suite)
    text = handover_markdown(gather_handover(common.open_store(), loaded))
    path = out or get_settings().home / "handover.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.print(Markdown(text))
    console.print(f"written to {path}", highlight=False, soft_wrap=True)


@app.command("reference-target")
def reference_target(
    port: Annotated[int, typer.Option(help="Loopback port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind (keep it on loopback).")] = "127.0.0.1",
    version: Annotated[
        str, typer.Option(help="v1 or a regressed version, e.g. regressed-refunds.")
    ] = "v1",
    latency_ms: Annotated[float, typer.Option(help="Mean added latency.")] = 0.0,
    latency_sd_ms: Annotated[float, typer.Option(help="Spread of the added latency.")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Fraction answered with a 5xx.")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(help="Fraction that hang.")] = 0.0,
    burst_429_every: Annotated[int, typer.Option(help="Every N requests start a 429 burst.")] = 0,
    burst_429_len: Annotated[int, typer.Option(help="Length of each 429 burst.")] = 0,
    nondeterminism: Annotated[float, typer.Option(help="Fraction of answers that vary.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed for every random draw.")] = 0,
) -> None:
    """Serve the bundled OpenAI-compatible support assistant on loopback.

    Example: [bold]evalcore reference-target --port 8765 --version regressed-refunds[/]
    """
    from evalcore.local.reference import Knobs, serve

    knobs = Knobs(
        version=version,
        latency_ms=latency_ms,
        latency_sd_ms=latency_sd_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        burst_429_every=burst_429_every,
        burst_429_len=burst_429_len,
        nondeterminism=nondeterminism,
        seed=seed,
    )
    serve(host, port, knobs)


def main() -> None:
    """Entry point: usage errors exit 3 (our usage/config code), not click's 2."""
    try:
        code = app(standalone_mode=False)
    except (click.exceptions.Abort, typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except _USAGE_ERRORS as exc:
        exc.show()
        sys.exit(int(ExitCode.USAGE))
    sys.exit(code if isinstance(code, int) else 0)
