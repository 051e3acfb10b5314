"""The release gate: the blocking set for one release, judged against the scorecard.

These are the steps the `release-gate` flow wraps one task each around; they need no
Prefect, so `flows/release_gate.py` stays thin and the logic is tested on its own.
A gate run for a release that has an unfinished run (killed, interrupted) on the same
dataset and scorecard continues that run; a release gated after a finished run gets a
new run, so history shows both. Two gates for the same release, dataset, scorecard and
target at once share one run: the one holding the lease (`gate.lease`, keyed by
`gate_lease_key`) works on it, the other attaches and reports the verdict it stored.

On a route marked nondeterministic, `resample_failing` follows the blocking run: each
failing blocking case is sampled again through the run engine, as further samples of the
same run, until Wald's sequential test (`results.sequential`) decides it or its budget is
spent. Each round gives every undecided case the fewest samples that could decide it
(one, mostly), all cases of a round in one engine pass; passing cases are never re-run.
Everything is read back from the store each round, so a retried or resumed gate goes on
from what is stored. The regression check (`regression:` in the scorecard) pairs the
run's blocking cases with the last passing gate run of the route, or a named run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from evalcore.exitcodes import ExitCode
from evalcore.gate.lease import LeaseKey
from evalcore.report.artifacts import Artifacts, slug
from evalcore.report.rendering import render
from evalcore.results.history import GATE_VERDICT_KEY
from evalcore.results.loader import CaseResults, RunResults, load_results
from evalcore.results.pricing import run_pricing
from evalcore.results.regression import PairedOutcome, Regression, compare
from evalcore.results.run_stats import record_run_stats
from evalcore.results.sequential import Decision, SequentialTest
from evalcore.results.summary import FAILURES_SHOWN, ErrorLine, RunSummary, summarize
from evalcore.results.verdict import (
    RESAMPLED_KEY,
    RESAMPLED_SET,
    RunVerdict,
    Verdict,
    case_outcomes,
    judge,
    judge_run,
    own_samples,
    resampled_cases,
    shard_failures,
)
from evalcore.run.pipeline import open_set_run
from evalcore.run.service import execute_run, run_for_resume
from evalcore.store.repository import (
    done_pairs,
    earlier_runs,
    get_run,
    latest_unfinished_run,
    record_run_setting,
)
from evalcore.store.tables import RunRow
from evalcore.suite import EvalSet, Suite
from evalcore.suite.scorecard import Scorecard
from evalcore.targets.http import display_url

GATE_SETS: tuple[EvalSet, ...] = (EvalSet.blocking,)
RELEASE_EVENT = "release.created"
# In a gate run's settings, beside its verdict: the run its regression check compared
# with (None: none), so a gate attached to it judges the same comparison, not a newer one.
COMPARED_WITH_KEY = "gate_compared_with"

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


class ResampledLine(BaseModel):
    """A failing blocking case judged sequentially, with every extra sample counted."""

    case_id: str
    decision: Decision
    samples: int
    extra: int
    passes: int
    failures: int
    llr: float
    budget_spent: bool


class ReliabilityLine(BaseModel):
    scope: str
    cases: int
    k: int
    pass_at_k: float
    pass_hat_k: float


class RegressionLine(BaseModel):
    """The paired comparison with an earlier run (`against_run_id` None: none to compare)."""

    against_run_id: str | None
    paired: int
    newly_failing: list[str]
    newly_fixed: list[str]
    test: str
    p_value: float | None
    significant: bool
    max_new_failures: int | None


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
    errors: int  # errored samples, all of them
    # The first errored samples (as many as failures are listed), each with its class.
    errored: list[ErrorLine] = Field(default_factory=list)
    run_seconds: float | None = None  # the engine's run phase in this gate run
    sequential_rule: str = ""  # the re-sampling test and its error rates, if the route has one
    resampled: list[ResampledLine] = Field(default_factory=list)
    extra_samples: int = 0
    undecided: list[str] = Field(default_factory=list)
    reliability: list[ReliabilityLine] = Field(default_factory=list)
    regression: RegressionLine | None = None
    report_path: str | None = None
    junit_path: str | None = None
    # This gate did no work: it attached to the run another gate (`held_by`) worked on,
    # and reports the verdict that gate stored.
    attached: bool = False
    held_by: str | None = None
    summary: RunSummary = Field(exclude=True)
    run_verdict: RunVerdict = Field(exclude=True)

    @property
    def short_id(self) -> str:
        return self.run_id[:12]


def exit_code(verdict: Verdict) -> ExitCode:
    return _EXIT_CODES[verdict]


def gate_lease_key(suite: Suite, request: GateRequest) -> LeaseKey:
    """What makes two gates the same gate: the release, dataset, scorecard and target,
    compared as `_same_target` compares a run's (masked)."""
    return LeaseKey(
        release=request.release,
        dataset_hash=suite.version.hash,
        scorecard_version=suite.scorecard_version,
        target_url=_shown(request.target_url),
        model=request.model,
        judge_url=_shown(request.judge_url),
    )


def gate_verdict_of(engine: Engine, run_id: str) -> str | None:
    """The verdict a gate stored for its run; None while none is stored."""
    run = get_run(engine, run_id)
    verdict = run.settings.get(GATE_VERDICT_KEY) if run is not None else None
    return str(verdict) if verdict else None


def open_gate_run(
    engine: Engine, suite: Suite, request: GateRequest, *, previous_run_id: str | None = None
) -> tuple[RunRow, bool]:
    """The run this gate continues (killed earlier, same release/dataset/target) or a new one.

    `previous_run_id` is the run a gate whose lease this one took over worked on: without
    a stored verdict it is continued, even when its pairs all have results (the holder
    stopped before judging). Returns the run and whether it is resumed.
    """
    previous = get_run(engine, previous_run_id) if previous_run_id else None
    if (
        previous is not None
        and GATE_VERDICT_KEY not in previous.settings
        and previous.release == request.release
        and previous.dataset_hash == suite.version.hash
        and previous.scorecard_version == suite.scorecard_version
        and _same_target(previous, request)
    ):
        return _resume(engine, suite, previous.id, request), True
    unfinished = latest_unfinished_run(
        engine,
        release=request.release,
        sets=[s.value for s in GATE_SETS],
        dataset_hash=suite.version.hash,
        scorecard_version=suite.scorecard_version,
    )
    if unfinished is not None and _same_target(unfinished, request):
        return _resume(engine, suite, unfinished.id, request), True
    return open_set_run(engine, suite, GATE_SETS, request, release=request.release), False


def _resume(engine: Engine, suite: Suite, run_id: str, request: GateRequest) -> RunRow:
    return run_for_resume(
        engine, suite, run_id, target_url=request.target_url, judge_url=request.judge_url
    )


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


@dataclass(frozen=True)
class Resampling:
    """What re-sampling drew in this gate run (earlier attempts' samples not counted)."""

    rounds: int = 0
    extra_samples: int = 0
    seconds: float = 0.0


def resample_plan(engine: Engine, suite: Suite, run_id: str) -> dict[str, list[int]]:
    """The extra samples to draw next: for each failing blocking case the sequential test
    has not decided and whose budget is not spent, the next sample indices. Empty when the
    route is not nondeterministic or nothing is left to draw. Records each newly
    re-sampled case with its own sample count in the run's settings first."""
    run = get_run(engine, run_id)
    if run is None:
        raise KeyError(run_id)
    rule = Scorecard.model_validate(run.scorecard).samples
    if not rule.nondeterministic:
        return {}
    test = SequentialTest.of(rule)
    results = load_results(engine, run)
    recorded = resampled_cases(run.settings)
    _, decisions = case_outcomes(results.cases, rule, recorded)
    done = done_pairs(engine, run.id)
    plan: dict[str, list[int]] = {}
    own: dict[str, int] = {}
    for decision in decisions:
        batch = test.next_batch(decision.passes, decision.failures, decision.extra)
        case = suite.get(decision.case_id)
        if not batch or case is None:
            continue
        taken = {s for c, s in done if c == case.id}
        indices: list[int] = []
        sample = case.samples
        while len(indices) < batch:
            if sample not in taken:
                indices.append(sample)
            sample += 1
        plan[case.id] = indices
        own[case.id] = case.samples
    new = {case_id: samples for case_id, samples in own.items() if case_id not in recorded}
    if new:
        record_run_setting(engine, run.id, RESAMPLED_KEY, {**recorded, **new})
    return plan


async def resample_failing(engine: Engine, suite: Suite, run_id: str) -> Resampling:
    """Re-sample the failing blocking cases of a nondeterministic route until the
    sequential test decides each or its budget is spent; nothing for any other route."""
    started = time.perf_counter()
    rounds = drawn = 0
    while plan := resample_plan(engine, suite, run_id):
        run = get_run(engine, run_id)
        assert run is not None
        report = await execute_run(engine, suite, run, extra=plan, record_stats=False)
        rounds += 1
        drawn += report.written
        if report.written == 0:
            break  # nothing could be stored: do not spin on the same plan
    if rounds:
        record_run_stats(engine, run_id)  # once, with every extra sample in it
    return Resampling(rounds, drawn, time.perf_counter() - started)


def _paired_outcomes(results: RunResults) -> dict[str, PairedOutcome]:
    """Each blocking case's verdict and own scored samples, as its run judged it."""
    scorecard = Scorecard.model_validate(results.run.scorecard)
    recorded = resampled_cases(results.run.settings)
    blocking = [c for c in results.cases if c.set == RESAMPLED_SET]
    outcomes, _ = case_outcomes(blocking, scorecard.samples, recorded)
    own: list[CaseResults] = own_samples(blocking, recorded)
    return {c.case_id: PairedOutcome(outcomes[c.case_id], c.scored) for c in own}


def comparison_run(engine: Engine, run: RunRow, against: str) -> RunRow | None:
    """The run a gate run is compared with: the newest earlier gate run of the route whose
    gate verdict was pass (`last_pass`), or the run named (None if there is none).

    The gate's verdict is the one it recorded (`GATE_VERDICT_KEY`, with its own regression
    check); a run gated before verdicts were recorded is judged again without one."""
    if against != "last_pass":
        return get_run(engine, against)
    for earlier in earlier_runs(engine, route=run.route, sets=run.sets, before=run.created_at):
        if earlier.id == run.id:
            continue
        recorded = earlier.settings.get(GATE_VERDICT_KEY)
        verdict = recorded or judge_run(load_results(engine, earlier)).verdict.value
        if verdict == Verdict.passed.value:
            return earlier
    return None


def regression_of(
    engine: Engine, results: RunResults, *, as_recorded: bool = False
) -> Regression | None:
    """The scorecard's regression check for this run; None when it asks for none.

    `as_recorded`: against the run its gate compared with, when the gate recorded one."""
    check = Scorecard.model_validate(results.run.scorecard).regression
    if check is None:
        return None
    settings = results.run.settings
    if as_recorded and COMPARED_WITH_KEY in settings:
        recorded = settings[COMPARED_WITH_KEY]
        earlier = get_run(engine, recorded) if recorded else None
    else:
        earlier = comparison_run(engine, results.run, check.against)
    if earlier is None:
        return Regression(None, check.max_new_failures, check.alpha)
    return compare(
        _paired_outcomes(load_results(engine, earlier)),
        _paired_outcomes(results),
        against_run_id=earlier.id,
        max_new_failures=check.max_new_failures,
        alpha=check.alpha,
    )


def gate_result(
    engine: Engine,
    run_id: str,
    *,
    resumed: bool,
    run_seconds: float | None = None,
    report_path: Path | None = None,
    junit_path: Path | None = None,
    held_by: str | None = None,
) -> GateResult:
    """Judge a finished gate run and, when asked, write its HTML report and JUnit XML.

    With `held_by`, this gate attached to the run that gate worked on and judged: the
    verdict is judged again from the same stored results, never recorded over that gate's.
    """
    # With its failures: the HTML report lists them; the gate's own lines ignore them.
    results = load_results(engine, run_id, failures=FAILURES_SHOWN)
    run = results.run
    summary = summarize(results)
    # Judged against the scorecard stored with the run, as `runs show` does.
    scorecard = Scorecard.model_validate(run.scorecard)
    recorded = resampled_cases(run.settings)
    verdict = judge(
        results.cases,
        scorecard,
        resampled=recorded,
        regression=regression_of(engine, results, as_recorded=held_by is not None),
        pricing=run_pricing(run),
        failed_shards=shard_failures(run.settings),
    )
    if report_path is not None:
        from evalcore.report.html import write_report

        write_report(engine, run, summary, verdict, report_path)
    if junit_path is not None:
        from evalcore.report.junit import write_junit

        write_junit(engine, run, verdict, junit_path)
    if held_by is None:
        if verdict.regression is not None:  # first: the verdict is what attached gates wait for
            against = verdict.regression.against_run_id
            record_run_setting(engine, run.id, COMPARED_WITH_KEY, against)
        record_run_setting(engine, run.id, GATE_VERDICT_KEY, verdict.verdict.value)
    outcomes, _ = case_outcomes(results.cases, scorecard.samples, recorded)
    failed = sorted(case_id for case_id, outcome in outcomes.items() if outcome is False)
    regression = verdict.regression
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
        errored=summary.errored,
        run_seconds=run_seconds,
        sequential_rule=verdict.sequential_rule,
        resampled=[ResampledLine(**d.__dict__) for d in verdict.sequential],
        extra_samples=verdict.extra_samples,
        undecided=[d.case_id for d in verdict.sequential if d.decision is Decision.undecided],
        reliability=[ReliabilityLine(**r.__dict__) for r in verdict.reliability],
        regression=None
        if regression is None
        else RegressionLine(
            against_run_id=regression.against_run_id,
            paired=regression.paired,
            newly_failing=regression.newly_failing,
            newly_fixed=regression.newly_fixed,
            test=regression.test,
            p_value=regression.p_value,
            significant=regression.significant,
            max_new_failures=regression.max_new_failures,
        ),
        report_path=str(report_path) if report_path else None,
        junit_path=str(junit_path) if junit_path else None,
        attached=held_by is not None,
        held_by=held_by,
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
