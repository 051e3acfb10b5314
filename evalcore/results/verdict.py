"""A run against the scorecard: pass, fail or inconclusive, with one line per criterion.

Errors are never failures. A case whose samples all errored has no quality result; when
errors exceed the scorecard's error budget, or a criterion cannot be measured (a critical
case that only errored, a set with nothing scored), the verdict is inconclusive, never
pass. It reads nothing itself: it judges results `results.loader` has read.

A cost the run could not price (a model with no entry under `prices`, `results.pricing`)
makes every cost budget over it not measurable: listed as such, with the model, and the
verdict inconclusive, never pass, while such a budget is set. With no cost budget set the
unknown cost changes no verdict; it is shown as unknown wherever cost is shown.

On a route marked nondeterministic (`samples.nondeterministic`), a blocking case that
fails by the samples rule is judged by Wald's sequential test on all its samples
(`results.sequential`): healthy passes, broken fails, undecided makes the verdict
inconclusive, naming the case. The gate draws the extra samples and records which cases
it re-sampled, with their own sample count, in the run's settings (`RESAMPLED_KEY`), so
the samples beyond it are known as extra wherever the run is judged. A case the gate has
not re-sampled yet is judged on the samples it has, which rarely decide it.

A sharded run whose shard kept failing (its flow run failed or crashed after its retries)
is missing that shard's pairs: the run records the shard in its settings
(`FAILED_SHARDS_KEY`) and its verdict is inconclusive, naming the shard, never pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from evalcore.results.loader import CaseResults, RunResults, SampleResult
from evalcore.results.outcomes import (
    RESAMPLED_KEY,
    RESAMPLED_SET,
    case_outcomes,
    case_passed,
    resampled_cases,
)
from evalcore.results.pricing import PRICED, Pricing, run_pricing
from evalcore.results.regression import Regression
from evalcore.results.reliability import Reliability, reliability
from evalcore.results.sequential import CaseDecision, Decision, SequentialTest
from evalcore.suite.scorecard import Scorecard

__all__ = [
    "FAILED_SHARDS_KEY",
    "NOT_MEASURABLE",
    "RESAMPLED_KEY",
    "RESAMPLED_SET",
    "Criterion",
    "RunVerdict",
    "ShardFailure",
    "Verdict",
    "case_outcomes",
    "case_passed",
    "judge",
    "judge_run",
    "own_samples",
    "resampled_cases",
    "shard_failures",
]


# What a cost criterion measures when the route's calls could not be priced.
NOT_MEASURABLE = "not measurable"
# In a sharded run's settings: the shards that failed after their retries, as
# `ShardFailure.as_json()` each; empty once every shard completed.
FAILED_SHARDS_KEY = "failed_shards"


@dataclass(frozen=True)
class ShardFailure:
    """A shard of a run (1-based `shard` of `shards`) that kept failing, and why."""

    shard: int
    shards: int
    error: str

    @property
    def label(self) -> str:
        return f"shard {self.shard} of {self.shards}"

    def as_json(self) -> dict[str, int | str]:
        return {"shard": self.shard, "shards": self.shards, "error": self.error}


def shard_failures(settings: Mapping[str, object]) -> list[ShardFailure]:
    """The failed shards a run's settings record, in shard order."""
    recorded = settings.get(FAILED_SHARDS_KEY)
    if not isinstance(recorded, list):
        return []
    failures = [
        ShardFailure(int(item["shard"]), int(item["shards"]), str(item.get("error") or ""))
        for item in recorded
        if isinstance(item, dict)
    ]
    return sorted(failures, key=lambda f: f.shard)


class Verdict(StrEnum):
    passed = "pass"
    failed = "fail"
    inconclusive = "inconclusive"


@dataclass(frozen=True)
class Criterion:
    name: str
    threshold: str
    measured: str
    held: bool | None  # None: could not be measured
    detail: str = ""


@dataclass(frozen=True)
class RunVerdict:
    verdict: Verdict
    criteria: list[Criterion]
    flaky: list[str] = field(default_factory=list)
    reason: str = ""
    judge_cost_usd: float | None = 0.0  # None: the judge's calls could not be priced
    # The failing blocking cases of a nondeterministic route, each judged sequentially.
    sequential: list[CaseDecision] = field(default_factory=list)
    sequential_rule: str = ""  # the test and its error rates, when the route is nondeterministic
    # pass@k and pass^k of the cases with two or more samples of their own
    reliability: list[Reliability] = field(default_factory=list)
    regression: Regression | None = None

    @property
    def failed_criteria(self) -> list[Criterion]:
        return [c for c in self.criteria if c.held is False]

    @property
    def extra_samples(self) -> int:
        return sum(d.extra for d in self.sequential)

    def outcome_of(self, case_id: str) -> Decision | None:
        """The sequential decision on a re-sampled case, None for any other case."""
        return next((d.decision for d in self.sequential if d.case_id == case_id), None)


def own_samples(cases: Iterable[CaseResults], resampled: Mapping[str, int]) -> list[CaseResults]:
    """The cases with only their own samples: extra samples were drawn because a case
    failed, so they would bias what the samples say about the route as a whole."""
    return [
        c._replace(samples=c.samples[: resampled[c.case_id]]) if c.case_id in resampled else c
        for c in cases
    ]


def _rate_criterion(
    name: str,
    cases: Sequence[CaseResults],
    minimum: float,
    outcome_of: Mapping[str, bool | None],
    sequential: frozenset[str] = frozenset(),
) -> Criterion:
    outcomes = [outcome_of[c.case_id] for c in cases]
    decided = [o for o in outcomes if o is not None]
    if not decided:
        return Criterion(name, f">= {minimum:.1%}", "nothing scored", None, "every case errored")
    rate = sum(decided) / len(decided)
    failing = sorted(c.case_id for c, o in zip(cases, outcomes, strict=True) if o is False)
    detail = (
        ("failed: " + ", ".join(failing[:10]) + (" ..." if len(failing) > 10 else ""))
        if failing
        else ""
    )
    undecided = [c.case_id for c, o in zip(cases, outcomes, strict=True) if o is None]
    by_test = sorted(c for c in undecided if c in sequential)
    by_errors = len(undecided) - len(by_test)
    if by_errors:
        detail = (detail + "; " if detail else "") + f"{by_errors} case(s) undecided by errors"
    if by_test:
        detail = (detail + "; " if detail else "") + (
            "undecided after re-sampling: " + ", ".join(by_test)
        )
    return Criterion(
        name,
        f">= {minimum:.1%}",
        f"{rate:.1%} ({sum(decided)}/{len(decided)})",
        rate >= minimum,
        detail,
    )


def _latency_criteria(
    prefix: str, samples: Sequence[SampleResult], p50_ms: float | None, p95_ms: float | None
) -> list[Criterion]:
    """`latency p50` and `latency p95` over these samples' successful calls, where limited."""
    latencies = np.array([s.latency_ms for s in samples if s.latency_ms is not None], dtype=float)
    criteria: list[Criterion] = []
    for label, q, limit in (("p50", 50, p50_ms), ("p95", 95, p95_ms)):
        if limit is None:
            continue
        name, threshold = f"{prefix}latency {label}", f"<= {limit:g} ms"
        if latencies.size == 0:
            criteria.append(Criterion(name, threshold, "no successful call", None))
            continue
        value = float(np.percentile(latencies, q))
        criteria.append(Criterion(name, threshold, f"{value:.0f} ms", value <= limit))
    return criteria


def _cost_criteria(
    prefix: str,
    case_count: int,
    samples: Sequence[SampleResult],
    per_case_usd: float | None,
    per_run_usd: float | None,
    pricing: Pricing,
) -> list[Criterion]:
    """`cost per case (mean)` and `cost per run` of these samples, where limited; judge apart.
    Not measurable (held None) when the route's calls could not be priced."""
    cost = sum(s.cost_usd for s in samples)
    judge_cost = sum(s.judge_cost_usd for s in samples)
    criteria: list[Criterion] = []
    limits = (
        ("cost per case (mean)", per_case_usd, cost / case_count if case_count else 0.0, 6),
        ("cost per run", per_run_usd, cost, 4),
    )
    for label, limit, value, digits in limits:
        if limit is None:
            continue
        name, threshold = f"{prefix}{label}", f"<= ${limit:g}"
        if pricing.target is not None:
            detail = f"{pricing.target}: the cost is unknown, so the budget cannot be checked"
            criteria.append(Criterion(name, threshold, NOT_MEASURABLE, None, detail))
            continue
        judge_note = (
            f"judge ${judge_cost:.{digits}f} apart"
            if pricing.judge is None
            else f"judge cost unknown: {pricing.judge}"
        )
        criteria.append(
            Criterion(name, threshold, f"${value:.{digits}f}", value <= limit, judge_note)
        )
    return criteria


def _sequential_criterion(test: SequentialTest, decisions: Sequence[CaseDecision]) -> Criterion:
    """The decision rule, its error rates and every re-sampled case, as one criterion."""
    threshold = (
        f"SPRT p {test.required:g} vs {test.broken:g}, alpha {test.alpha:g}, "
        f"beta {test.beta:g}, <= {test.max_extra} extra"
    )
    if not decisions:
        return Criterion(
            "sequential re-sampling", threshold, "no blocking case failed", True, test.describe()
        )
    count = {d: sum(1 for x in decisions if x.decision is d) for d in Decision}
    extra = sum(d.extra for d in decisions)
    measured = (
        f"{len(decisions)} re-sampled, {extra} extra sample{'s' if extra != 1 else ''}: "
        f"{count[Decision.healthy]} healthy, {count[Decision.broken]} broken, "
        f"{count[Decision.undecided]} undecided"
    )
    held = False if count[Decision.broken] else None if count[Decision.undecided] else True
    detail = test.describe() + ". " + "; ".join(d.summary for d in decisions)
    return Criterion("sequential re-sampling", threshold, measured, held, detail)


def _regression_criterion(regression: Regression) -> Criterion:
    limit = regression.max_new_failures
    threshold = "reported" if limit is None else f"<= {limit} new failure{'s' * (limit != 1)}"
    if regression.against_run_id is None:
        return Criterion(
            "regression against last pass",
            threshold,
            "no earlier passing run",
            True,
            "nothing to compare with: not counted",
        )
    new = len(regression.newly_failing)
    return Criterion(
        f"regression against {regression.against_run_id[:12]}",
        threshold,
        f"{new} new failure{'s' * (new != 1)}, {len(regression.newly_fixed)} fixed "
        f"({regression.paired} paired)",
        True if limit is None else new <= limit,
        regression.detail,
    )


def _shards_criterion(failures: Sequence[ShardFailure]) -> Criterion:
    """Every shard of a sharded run must have completed: a failed one left its pairs out."""
    shards = failures[0].shards
    return Criterion(
        "shards",
        f"all {shards} complete",
        ", ".join(f"{f.label} failed" for f in failures),
        None,
        "; ".join(f"{f.label}: {f.error}" for f in failures),
    )


def judge(
    cases: Iterable[CaseResults],
    scorecard: Scorecard,
    *,
    resampled: Mapping[str, int] | None = None,
    regression: Regression | None = None,
    pricing: Pricing = PRICED,
    failed_shards: Sequence[ShardFailure] = (),
) -> RunVerdict:
    """The verdict of a run's case results against the scorecard.

    `resampled`: the cases the gate re-sampled with their own sample counts (see
    `RESAMPLED_KEY`); `regression`: the paired comparison with an earlier run, when the
    scorecard asks for one; `pricing`: the costs the run could not price (`run_pricing`),
    whose budgets are then not measurable; `failed_shards`: the shards of a sharded run
    that kept failing (`shard_failures`), which make the verdict inconclusive.
    """
    cases = list(cases)
    resampled = dict(resampled or {})
    rule = scorecard.samples
    outcome_of, decisions = case_outcomes(cases, rule, resampled)
    sequential = frozenset(d.case_id for d in decisions)
    criteria: list[Criterion] = []
    samples = [s for c in cases for s in c.samples]
    total = len(samples)
    errors = sum(1 for s in samples if s.passed is None)
    budgets = scorecard.budgets
    error_rate = errors / total if total else 1.0
    criteria.append(
        Criterion(
            "error rate",
            f"<= {budgets.max_error_rate:.1%}",
            f"{error_rate:.1%} ({errors}/{total})",
            error_rate <= budgets.max_error_rate if total else None,
            "errors are target problems, never counted as failures",
        )
    )
    present_sets = sorted({c.set for c in cases})
    for set_name in present_sets:
        threshold = scorecard.thresholds.get(set_name)
        if threshold is not None:
            in_set = [c for c in cases if c.set == set_name]
            criteria.append(
                _rate_criterion(
                    f"set {set_name} pass rate",
                    in_set,
                    threshold.min_pass_rate,
                    outcome_of,
                    sequential,
                )
            )
    for tag, threshold in sorted(scorecard.tag_thresholds.items()):
        tagged = [c for c in cases if tag in c.tags]
        if tagged:
            criteria.append(
                _rate_criterion(
                    f"tag {tag} pass rate", tagged, threshold.min_pass_rate, outcome_of, sequential
                )
            )
    for case in sorted((c for c in cases if c.severity == "critical"), key=lambda c: c.case_id):
        outcome = outcome_of[case.case_id]
        measured = {True: "passed", False: "failed", None: "errored"}[outcome]
        if case.case_id in sequential:
            measured = f"{measured if outcome is not None else 'undecided'} after re-sampling"
        criteria.append(Criterion(f"critical case {case.case_id}", "passes", measured, outcome))
    test = SequentialTest.of(rule) if rule.nondeterministic else None
    if test is not None and any(c.set == RESAMPLED_SET for c in cases):
        criteria.append(_sequential_criterion(test, decisions))
    if regression is not None:
        criteria.append(_regression_criterion(regression))
    criteria += _latency_criteria("", samples, budgets.latency_p50_ms, budgets.latency_p95_ms)
    criteria += _cost_criteria(
        "", len(cases), samples, budgets.cost_per_case_usd, budgets.cost_per_run_usd, pricing
    )
    for set_name in present_sets:
        set_budget = budgets.sets.get(set_name)
        if set_budget is None:
            continue
        in_set = [c for c in cases if c.set == set_name]
        set_samples = [s for c in in_set for s in c.samples]
        prefix = f"set {set_name} "
        criteria += _latency_criteria(
            prefix, set_samples, set_budget.latency_p50_ms, set_budget.latency_p95_ms
        )
        criteria += _cost_criteria(
            prefix,
            len(in_set),
            set_samples,
            set_budget.cost_per_case_usd,
            set_budget.cost_per_run_usd,
            pricing,
        )
    judge_cost = sum(s.judge_cost_usd for s in samples) if pricing.judge_cost_known else None
    flaky = sorted(c.case_id for c in cases if c.flaky)
    if failed_shards:
        # The missing pairs could hold any outcome: nothing about the run is conclusive.
        criteria.insert(0, _shards_criterion(failed_shards))
        verdict, reason = (
            Verdict.inconclusive,
            "; ".join(f"{f.label} failed: {f.error}" for f in failed_shards)
            + ": the run is incomplete, so it says nothing about quality",
        )
    elif criteria[0].held is False:
        verdict, reason = (
            Verdict.inconclusive,
            (
                f"target errors {error_rate:.1%} exceed the error budget {budgets.max_error_rate:.1%}: "
                "the run says nothing about quality"
            ),
        )
    elif any(c.held is False for c in criteria):
        names = ", ".join(c.name for c in criteria if c.held is False)
        verdict, reason = Verdict.failed, f"failed: {names}"
    elif any(c.held is None for c in criteria):
        unmeasured = [c for c in criteria if c.held is None]
        names = ", ".join(c.name for c in unmeasured)
        verdict, reason = Verdict.inconclusive, f"could not be measured: {names}"
        if pricing.target is not None and any(c.measured == NOT_MEASURABLE for c in unmeasured):
            reason += f" ({pricing.target}: the cost is unknown)"
    else:
        verdict, reason = Verdict.passed, "every criterion held"
    return RunVerdict(
        verdict,
        criteria,
        flaky,
        reason,
        judge_cost,
        sequential=decisions,
        sequential_rule=test.describe() if test is not None else "",
        reliability=reliability(own_samples(cases, resampled)),
        regression=regression,
    )


def judge_run(results: RunResults, *, regression: Regression | None = None) -> RunVerdict:
    """The verdict against the scorecard snapshot stored with the run, not today's file,
    with the cases its gate re-sampled as the run's settings record them, the costs it
    could not price and the shards that failed."""
    return judge(
        results.cases,
        Scorecard.model_validate(results.run.scorecard),
        resampled=resampled_cases(results.run.settings),
        regression=regression,
        pricing=run_pricing(results.run),
        failed_shards=shard_failures(results.run.settings),
    )
