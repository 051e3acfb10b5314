"""The release gate: the blocking set for one release, judged against the scorecard.

These are the steps the `release-gate` flow wraps one task each around; they need no
Prefect, so `flows/release_gate.py` stays thin and the logic is tested on its own.
A gate run for a release that has an unfinished run (killed, interrupted) on the same
dataset and scorecard continues that run; a release gated after a finished run gets a
new run, so history shows both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from evalcore.exitcodes import ExitCode
from evalcore.report.artifacts import Artifacts, slug
from evalcore.report.rendering import render
from evalcore.results.loader import load_results
from evalcore.results.summary import FAILURES_SHOWN, RunSummary, summarize
from evalcore.results.verdict import RunVerdict, Verdict, case_passed, judge
from evalcore.run.pipeline import open_set_run
from evalcore.run.service import run_for_resume
from evalcore.store.repository import latest_unfinished_run
from evalcore.store.tables import RunRow
from evalcore.suite import EvalSet, Suite
from evalcore.suite.scorecard import Scorecard
from evalcore.targets.http import display_url

GATE_SETS: tuple[EvalSet, ...] = (EvalSet.blocking,)
RELEASE_EVENT = "release.created"

_EXIT_CODES = {
    Verdict.passed: ExitCode.PASS,
    Verdict.failed: ExitCode.FAIL,
    Verdict.inconclusive: ExitCode.INCONCLUSIVE,
}


@dataclass(frozen=True)
class GateRequest:
    """One gate run as asked by the CLI, a trigger or a manual deployment run.

    URLs are full, or masked by `keep_full_url` in this process (what a flow passes on).
    """

    release: str
    target_url: str | None = None
    model: str | None = None
    judge_url: str | None = None
    trigger: str = "gate"


class CriterionLine(BaseModel):
    name: str
    threshold: str
    measured: str
    held: bool | None
    detail: str = ""


class GateResult(BaseModel):
    """What a gate run concluded; the flow's result and `evalcore gate --json`.

    It carries the run's summary and verdict too (not in the JSON), so that whoever ran the
    flow prints them without reading the run again.
    """

    release: str
    run_id: str
    resumed: bool
    verdict: Verdict
    reason: str
    exit_code: int
    criteria: list[CriterionLine]
    failed_cases: list[str]
    flaky: list[str]
    results: int
    errors: int
    run_seconds: float | None = None  # the engine's run phase in this gate run
    report_path: str | None = None
    junit_path: str | None = None
    summary: RunSummary = Field(exclude=True)
    run_verdict: RunVerdict = Field(exclude=True)

    @property
    def short_id(self) -> str:
        return self.run_id[:12]


def exit_code(verdict: Verdict) -> ExitCode:
    return _EXIT_CODES[verdict]


def open_gate_run(engine: Engine, suite: Suite, request: GateRequest) -> tuple[RunRow, bool]:
    """The run this gate continues (killed earlier, same release/dataset/target) or a new one.

    Returns the run and whether it is resumed.
    """
    unfinished = latest_unfinished_run(
        engine,
        release=request.release,
        sets=[s.value for s in GATE_SETS],
        dataset_hash=suite.version.hash,
        scorecard_version=suite.scorecard_version,
    )
    if unfinished is not None and _same_target(unfinished, request):
        resumed = run_for_resume(
            engine,
            suite,
            unfinished.id,
            target_url=request.target_url,
            judge_url=request.judge_url,
        )
        return resumed, True
    return open_set_run(engine, suite, GATE_SETS, request, release=request.release), False


def _same_target(run: RunRow, request: GateRequest) -> bool:
    """Compared as stored: masked, so a run started with other credentials still matches."""
    settings = run.settings
    return (
        _shown(settings.get("target_url")) == _shown(request.target_url)
        and settings.get("model") == request.model
        and _shown(settings.get("judge_url")) == _shown(request.judge_url)
    )


def _shown(url: str | None) -> str | None:
    return display_url(url) if url is not None else None


def gate_result(
    engine: Engine,
    run_id: str,
    *,
    resumed: bool,
    run_seconds: float | None = None,
    report_path: Path | None = None,
    junit_path: Path | None = None,
) -> GateResult:
    """Judge a finished gate run and, when asked, write its HTML report and JUnit XML."""
    # With its failures: the HTML report lists them; the gate's own lines ignore them.
    results = load_results(engine, run_id, failures=FAILURES_SHOWN)
    run = results.run
    summary = summarize(results)
    # Judged against the scorecard stored with the run, as `runs show` does.
    scorecard = Scorecard.model_validate(run.scorecard)
    verdict = judge(results.cases, scorecard)
    if report_path is not None:
        from evalcore.report.html import write_report

        write_report(engine, run, summary, verdict, report_path)
    if junit_path is not None:
        from evalcore.report.junit import write_junit

        write_junit(engine, run, verdict, junit_path)
    failed = sorted(c.case_id for c in results.cases if case_passed(c, scorecard.samples) is False)
    return GateResult(
        release=run.release or "",
        run_id=run.id,
        resumed=resumed,
        verdict=verdict.verdict,
        reason=verdict.reason,
        exit_code=int(exit_code(verdict.verdict)),
        criteria=[CriterionLine(**c.__dict__) for c in verdict.criteria],
        failed_cases=failed,
        flaky=verdict.flaky,
        results=summary.results,
        errors=summary.errors,
        run_seconds=run_seconds,
        report_path=str(report_path) if report_path else None,
        junit_path=str(junit_path) if junit_path else None,
        summary=summary,
        run_verdict=verdict,
    )


def default_report_path(home: Path, release: str, run_id: str) -> Path:
    return home / "reports" / f"gate-{slug(release)}-{run_id[:12]}.html"


def artifact_key(release: str) -> str:
    return f"release-gate-{slug(release)}"


def gate_markdown(result: GateResult) -> str:
    """The Markdown artifact of a gate run (also what a CI job can paste into a comment)."""
    return render("gate.md.j2", result=result, summary=result.summary)


def criteria_table(result: GateResult) -> list[dict[str, Any]]:
    """The table artifact: one row per criterion."""
    return [
        {
            "criterion": c.name,
            "threshold": c.threshold,
            "measured": c.measured,
            "held": {True: "yes", False: "NO", None: "not measured"}[c.held],
            "detail": c.detail,
        }
        for c in result.criteria
    ]


def gate_artifacts(result: GateResult) -> Artifacts:
    key = artifact_key(result.release)
    return Artifacts(
        key=key,
        markdown=gate_markdown(result),
        description=f"Release gate {result.release}: {result.verdict.value}",
        table=criteria_table(result),
        table_key=f"{key}-criteria",
        table_description=f"Criteria of release {result.release}, run {result.short_id}",
    )
