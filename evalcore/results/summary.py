"""A run's results in numbers: per set, errors by class, latency, cost, the failures.

Errors are counted apart and never as failures: a pass rate is passed / (passed + failed).
Latency percentiles are over the calls that got a reply (latency recorded); costs are
summed exactly (`math.fsum`), whatever order the results were read in.
"""

from __future__ import annotations

import math
from array import array

from pydantic import BaseModel, computed_field

from evalcore.results.loader import RunResults, StreamedResults

FAILURES_SHOWN = 25  # failed samples a summary lists with their reasons


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
    set: str
    cases: int
    results: int
    passed: int
    failed: int
    errors: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pass_rate(self) -> float | None:
        scored = self.passed + self.failed
        return self.passed / scored if scored else None


class FailureLine(BaseModel):
    case_id: str
    sample: int
    reasons: list[str]


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
    cost_usd: float
    judge_cost_usd: float
    failures: list[FailureLine]

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
    held whole); the failures are those loaded with them."""
    run = results.run
    counts: dict[str, list[int]] = {}  # set -> [cases, passed, failed, errors]
    latencies = array("d")
    costs, judge_costs = array("d"), array("d")
    for case in results.cases:
        tally = counts.get(case.set)
        if tally is None:
            tally = counts[case.set] = [0, 0, 0, 0]
        tally[0] += 1
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
        )
        for set_name, (cases, passed, failed, errors) in sorted(counts.items())
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
        cost_usd=math.fsum(costs),
        judge_cost_usd=math.fsum(judge_costs),
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
    )


_SLOT = {True: 1, False: 2, None: 3}  # where a sample counts: passed, failed, error
