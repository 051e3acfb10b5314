"""A run against the scorecard: pass, fail or inconclusive, with one line per criterion.

Errors are never failures. A case whose samples all errored has no quality result; when
errors exceed the scorecard's error budget, or a criterion cannot be measured (a critical
case that only errored, a set with nothing scored), the verdict is inconclusive, never
pass. It reads nothing itself: it judges results `results.loader` has read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from evalcore.results.loader import CaseResults, RunResults, SampleResult
from evalcore.suite.scorecard import SampleRule, Scorecard


class Verdict(StrEnum):
    passed = "pass"
    failed = "fail"
    inconclusive = "inconclusive"


def case_passed(case: CaseResults, rule: SampleRule) -> bool | None:
    """How the samples combine (the scorecard's `samples` rule); None when nothing scored.

    With `all`, an errored sample leaves the case undecided unless another sample already
    failed it. With `at_least m`, m is capped at the samples the case has.
    """
    scored = case.scored
    if rule.mode == "all":
        if not all(scored):
            return False
        return None if case.errors or not scored else True
    needed = min(rule.min_passes or 1, len(case.samples))
    passes = sum(scored)
    if passes >= needed:
        return True
    if passes + case.errors >= needed:
        return None  # the errored samples could still have made it
    return False


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
    judge_cost_usd: float = 0.0

    @property
    def failed_criteria(self) -> list[Criterion]:
        return [c for c in self.criteria if c.held is False]


def _rate_criterion(
    name: str, cases: Sequence[CaseResults], minimum: float, rule: SampleRule
) -> Criterion:
    outcomes = [case_passed(c, rule) for c in cases]
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
    undecided = len(outcomes) - len(decided)
    if undecided:
        detail = (detail + "; " if detail else "") + f"{undecided} case(s) undecided by errors"
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
) -> list[Criterion]:
    """`cost per case (mean)` and `cost per run` of these samples, where limited; judge apart."""
    cost = sum(s.cost_usd for s in samples)
    judge_cost = sum(s.judge_cost_usd for s in samples)
    criteria: list[Criterion] = []
    if per_case_usd is not None:
        mean = cost / case_count if case_count else 0.0
        criteria.append(
            Criterion(
                f"{prefix}cost per case (mean)",
                f"<= ${per_case_usd:g}",
                f"${mean:.6f}",
                mean <= per_case_usd,
                f"judge ${judge_cost:.6f} apart",
            )
        )
    if per_run_usd is not None:
        criteria.append(
            Criterion(
                f"{prefix}cost per run",
                f"<= ${per_run_usd:g}",
                f"${cost:.4f}",
                cost <= per_run_usd,
                f"judge ${judge_cost:.4f} apart",
            )
        )
    return criteria


def judge(cases: Iterable[CaseResults], scorecard: Scorecard) -> RunVerdict:
    """The verdict of a run's case results against the scorecard."""
    cases = list(cases)
    rule = scorecard.samples
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
                _rate_criterion(f"set {set_name} pass rate", in_set, threshold.min_pass_rate, rule)
            )
    for tag, threshold in sorted(scorecard.tag_thresholds.items()):
        tagged = [c for c in cases if tag in c.tags]
        if tagged:
            criteria.append(
                _rate_criterion(f"tag {tag} pass rate", tagged, threshold.min_pass_rate, rule)
            )
    for case in sorted((c for c in cases if c.severity == "critical"), key=lambda c: c.case_id):
        outcome = case_passed(case, rule)
        measured = {True: "passed", False: "failed", None: "errored"}[outcome]
        criteria.append(Criterion(f"critical case {case.case_id}", "passes", measured, outcome))
    criteria += _latency_criteria("", samples, budgets.latency_p50_ms, budgets.latency_p95_ms)
    criteria += _cost_criteria(
        "", len(cases), samples, budgets.cost_per_case_usd, budgets.cost_per_run_usd
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
        )
    judge_cost = sum(s.judge_cost_usd for s in samples)
    flaky = sorted(c.case_id for c in cases if c.flaky)
    if criteria[0].held is False:
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
        names = ", ".join(c.name for c in criteria if c.held is None)
        verdict, reason = Verdict.inconclusive, f"could not be measured: {names}"
    else:
        verdict, reason = Verdict.passed, "every criterion held"
    return RunVerdict(verdict, criteria, flaky, reason, judge_cost)


def judge_run(results: RunResults) -> RunVerdict:
    """The verdict against the scorecard snapshot stored with the run, not today's file."""
    return judge(results.cases, Scorecard.model_validate(results.run.scorecard))
