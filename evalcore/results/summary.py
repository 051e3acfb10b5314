"""A run's results in numbers: per set, errors by class, latency, cost, the failures and
the errors.

A pass rate is per case: the cases that passed under the scorecard's `samples` rule over
the cases it decided (`results.outcomes`, what the verdict judges), so a case whose
samples all errored is not scored. Beside it, labelled as such, the per-sample rate:
passed / (passed + failed) samples. Errors are counted apart and never as failures.
Latency percentiles are over the calls that got a reply (latency recorded); costs are
summed exactly (`math.fsum`), whatever order the results were read in, and a cost the
run could not price (`results.pricing`) is None with the reason beside it, never $0.
"""

from __future__ import annotations

import math
from array import array

from pydantic import BaseModel, computed_field

from evalcore.results.loader import RunResults, StreamedResults
from evalcore.results.outcomes import CaseJudge
from evalcore.results.pricing import run_pricing

FAILURES_SHOWN = 25  # failed samples a summary lists with their reasons, errored ones too
ERROR_MESSAGE_SHOWN = 160  # characters of an error message on its one line


def percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile of sorted values, bit for bit what `numpy.percentile` gives with
    its default (linear) method: a run's summary does not import numpy for two numbers."""
    n = len(ordered)
    quantile = q / 100
    virtual = (n - 1) * quantile
    below = min(max(math.floor(virtual), 0), n - 1)
    above = min(below + 1, n - 1)
    if virtual <= 0:
        return float(ordered[0])
    if virtual >= n - 1:
        return float(ordered[-1])
    gamma = virtual - below
    a, b = ordered[below], ordered[above]
    diff = b - a
    return float(b - diff * (1 - gamma)) if gamma >= 0.5 else float(a + diff * gamma)


class SetSummary(BaseModel):
    """One set of a run: `passed`, `failed` and `errors` count samples; `cases_passed` and
    `cases_failed` count cases under the samples rule (the rest are undecided)."""

    set: str
    cases: int
    results: int
    passed: int
    failed: int
    errors: int
    cases_passed: int
    cases_failed: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cases_undecided(self) -> int:
        return self.cases - self.cases_passed - self.cases_failed

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pass_rate(self) -> float | None:
        """Per case: cases passed over cases decided by the samples rule."""
        return rate(self.cases_passed, self.cases_failed)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sample_pass_rate(self) -> float | None:
        """Per sample: passed over passed and failed samples."""
        return rate(self.passed, self.failed)


def rate(passed: int, failed: int) -> float | None:
    """passed / (passed + failed), None when nothing was scored."""
    scored = passed + failed
    return passed / scored if scored else None


class FailureLine(BaseModel):
    case_id: str
    sample: int
    reasons: list[str]


class ErrorLine(BaseModel):
    """An errored sample: its error class and the first line of its message."""

    case_id: str
    sample: int
    error_class: str
    message: str


def one_line(text: str, limit: int = ERROR_MESSAGE_SHOWN) -> str:
    """`text` on one line (whitespace collapsed), cut to `limit` characters with `…`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class RunSummary(BaseModel):
    run_id: str
    route: str
    status: str
    release: str | None
    dataset: str
    planned: int
    sets: list[SetSummary]
    errors_by_class: dict[str, int]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: float | None  # None: unknown, `cost_unknown` says why
    judge_cost_usd: float | None  # None: unknown, `judge_cost_unknown` says why
    failures: list[FailureLine]
    errored: list[ErrorLine] = []  # the first errored samples; `errors` counts them all
    cost_unknown: str | None = None
    judge_cost_unknown: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def results(self) -> int:
        return sum(s.results for s in self.sets)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.sets)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.sets)


def summarize(results: RunResults | StreamedResults) -> RunSummary:
    """The run's numbers from its results, in one pass over them (so a streamed run is never
    held whole); the failures and errors listed are those loaded with them."""
    run = results.run
    judge = CaseJudge.of_run(run)
    pricing = run_pricing(run)
    # set -> [cases, passed, failed, errors, cases passed, cases failed]
    counts: dict[str, list[int]] = {}
    latencies = array("d")
    costs, judge_costs = array("d"), array("d")
    for case in results.cases:
        tally = counts.get(case.set)
        if tally is None:
            tally = counts[case.set] = [0, 0, 0, 0, 0, 0]
        tally[0] += 1
        outcome, _ = judge.outcome(case)
        if outcome is not None:
            tally[4 if outcome else 5] += 1
        for sample in case.samples:
            tally[_SLOT[sample.passed]] += 1
            if sample.latency_ms is not None:
                latencies.append(sample.latency_ms)
            costs.append(sample.cost_usd)
            judge_costs.append(sample.judge_cost_usd)
    sets = [
        SetSummary(
            set=set_name,
            cases=cases,
            results=passed + failed + errors,
            passed=passed,
            failed=failed,
            errors=errors,
            cases_passed=cases_passed,
            cases_failed=cases_failed,
        )
        for set_name, (cases, passed, failed, errors, cases_passed, cases_failed) in sorted(
            counts.items()
        )
    ]
    ordered = sorted(latencies)
    return RunSummary(
        run_id=run.id,
        route=run.route,
        status=run.status,
        release=run.release,
        dataset=run.dataset_hash,
        planned=run.planned,
        sets=sets,
        errors_by_class=dict(results.errors_by_class),  # complete once the cases are read
        latency_p50_ms=percentile(ordered, 50) if ordered else None,
        latency_p95_ms=percentile(ordered, 95) if ordered else None,
        cost_usd=math.fsum(costs) if pricing.cost_known else None,
        judge_cost_usd=math.fsum(judge_costs) if pricing.judge_cost_known else None,
        cost_unknown=pricing.target,
        judge_cost_unknown=pricing.judge,
        failures=[
            FailureLine(
                case_id=failed.case_id,
                sample=failed.sample,
                reasons=[
                    f"{name}: {score['reason']}"
                    for name, score in failed.scores.items()
                    if not score.get("passed")
                ],
            )
            for failed in results.failures
        ],
        errored=[
            ErrorLine(
                case_id=errored.case_id,
                sample=errored.sample,
                error_class=errored.error_class,
                message=one_line(errored.message),
            )
            for errored in results.errored
        ],
    )


_SLOT = {True: 1, False: 2, None: 3}  # where a sample counts: passed, failed, error
