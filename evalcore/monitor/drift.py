"""Drift: what changed between a monitoring run and its accepted baseline, and whether it
is more than noise.

A nightly run is compared case by case with the baseline run. Cases whose definition
changed (added, removed, or edited: a different case hash) are reported as dataset
changes and kept out of every statistic, because a changed case measures something else.
On the remaining ("comparable") cases scored on both sides:

- pass rate per set and per tag. With `drift.method: sequential` (the default) the
  comparison is paired over the cases scored on both sides (per-case pass fractions) and
  tested with an anytime-valid e-process over every nightly run since the baseline was
  accepted, the night's sets and tags combined with e-BH (see `evalcore.monitor.sequential`):
  an unchanged route raises no set or tag alarm over the baseline's whole life with
  probability at least 1 - min(alpha, fdr). With `per_night`, each night alone: a 2x2 test
  over pooled samples, Fisher's exact test when an expected count is below 5, else the
  chi-squared two-proportion test, in the family below;
- per case, Fisher's exact test on its sample counts; a case that went from passing every
  sample to failing every sample (or back) is reported as a flip, significant or not;
- for the route: latency and cost per call (Mann-Whitney U), error rate (as pass rate).
  A latency or cost alarm needs significance *and* a change that matters: the median
  latency (mean cost per case) must move by at least `min_latency_change_ms`
  (`min_cost_change_usd`) and by `min_budget_fraction` of the route's budget for it, when
  the scorecard sets one; its severity says how much of the budget the change eats.

The per-night p-values (flips and route; the set and tag tests too with `per_night`)
form one family, adjusted with Benjamini-Hochberg at level q = min(alpha, fdr), so that
both the scorecard's per-test alpha and its false discovery rate hold. When the target
did not change every hypothesis is null; BH then bounds the family-wise error of a night
by q (proved for independent and positively dependent tests; the overlapping scopes here,
a set and its tags, a case and its tag, move together), and the minimum-effect filter
only removes findings. These are news of one night by nature (a case that flipped
tonight); the sequential layer is what keeps the set and tag alarms quiet over a month.
`tests/monitor/test_drift.py` and `test_sequential.py` check the rates on seeded
synthetic repetitions of an unchanged, nondeterministic target. They rest on samples
being independent draws, as a target's sampling nondeterminism is; a difference between
two runs that is not the target's own (a loaded machine on one night) is a real
difference to these tests, which is why latency and cost must also move by an amount
that matters.

Flaky cases (mixed samples in the current run) are reported apart: they are a property
of the case, not a change of the route. With the sequential method, every set and tag
also leaves an `evidence` row (never an alarm): the night's paired difference and its
standard error, which the following nights' e-processes read back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import stats

from evalcore.collector import collector_paused
from evalcore.monitor.sequential import PairedNight, e_bh, e_value, paired_night
from evalcore.results.loader import CaseResults, RunResults, SampleResult
from evalcore.results.pricing import run_pricing
from evalcore.suite.scorecard import Budgets, DriftSettings

__all__ = [
    "EVIDENCE_Z",
    "Finding",
    "FindingKind",
    "History",
    "Severity",
    "analyse",
    "paired_night_of",
]

# Scope -> the paired nights before tonight since the baseline was accepted, oldest first.
History = Mapping[str, Sequence[PairedNight]]
EVIDENCE_Z = 1.959963984540054  # an evidence row's interval is its difference +- z x se


class Severity(StrEnum):
    """How urgently a finding needs a person; `rank` orders them (info=0 ... critical=4)."""

    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        """A severity from user input (config, CLI), with the allowed values on error."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r} (allowed: {allowed})") from None


_RANKS: dict[Severity, int] = {s: i for i, s in enumerate(Severity)}


class FindingKind(StrEnum):
    drift = "drift"
    dataset_change = "dataset_change"
    flaky = "flaky"
    evidence = "evidence"  # a set or tag's paired night, read back by the sequential test


@dataclass(frozen=True)
class Finding:
    """One finding; its fields are the columns of `DriftFindingRow` (see `row_values`)."""

    kind: FindingKind
    metric: str
    scope: str  # set:<name>, tag:<name>, case:<id>, route
    severity: Severity
    detail: str = ""
    baseline_value: float | None = None
    current_value: float | None = None
    effect: float | None = None
    p_value: float | None = None  # raw; the BH-adjusted one is in `detail`
    ci_low: float | None = None
    ci_high: float | None = None
    proposal: str | None = None

    @property
    def alarm(self) -> bool:
        """Drift someone should look at; dataset changes and flaky cases never are."""
        return self.kind is FindingKind.drift and self.severity.rank >= Severity.low.rank

    def row_values(self) -> dict[str, Any]:
        """The `DriftFindingRow` columns this finding fills (run, route and baseline apart)."""
        return {
            "kind": self.kind.value,
            "metric": self.metric,
            "scope": self.scope,
            "severity": self.severity.value,
            "detail": self.detail,
            "baseline_value": self.baseline_value,
            "current_value": self.current_value,
            "effect": self.effect,
            "p_value": self.p_value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "proposal": self.proposal,
        }


# --------------------------------------------------------------------------- statistics

FLAKY_PROPOSAL = (
    "stabilise the expectation, or raise samples and use `samples: {mode: at_least, ...}`"
)
FLAKY_BLOCKING_PROPOSAL = "move it to the monitoring set until it is stable"

Counts = tuple[int, int, int, int]  # baseline passes, failures; current passes, failures


def _two_by_two_p(counts: Counts) -> float:
    """Two-sided p of "baseline and current pass alike": Fisher's exact test when an
    expected count is below 5 (where the chi-squared approximation is poor), else the
    chi-squared two-proportion test."""
    a, b, c, d = counts
    n = a + b + c + d
    if n == 0:
        return 1.0
    expected_min = min(a + b, c + d) * min(a + c, b + d) / n
    if expected_min < 5:
        p = float(stats.fisher_exact([[a, b], [c, d]], alternative="two-sided").pvalue)
    else:
        p = float(stats.chi2_contingency([[a, b], [c, d]], correction=False).pvalue)
    return _clean(p)


def _clean(p: float) -> float:
    return 1.0 if math.isnan(p) else min(max(p, 0.0), 1.0)


def _wilson(successes: int, n: int, alpha: float) -> tuple[float, float]:
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=1 - alpha, method="wilson")
    return float(ci.low), float(ci.high)


def _mann_whitney_p(base: np.ndarray[Any, Any], cur: np.ndarray[Any, Any]) -> float:
    return _clean(float(stats.mannwhitneyu(base, cur, alternative="two-sided").pvalue))


def _drift_severity(effect: float, worse: bool, min_effect: float) -> Severity:
    if not worse:
        return Severity.low
    return Severity.high if abs(effect) >= 2 * min_effect else Severity.medium


def _adjusted(p: float, adjusted: float) -> str:
    return f"p={p:.3g}, BH-adjusted p={adjusted:.3g}"


def _scored(samples: Sequence[SampleResult]) -> tuple[int, int]:
    """(passes, failures) among a case's samples; errors are neither."""
    passes = fails = 0
    for sample in samples:
        passed = sample.passed
        if passed is True:
            passes += 1
        elif passed is False:
            fails += 1
    return passes, fails


@dataclass(frozen=True)
class _Test:
    """A p-value of the family, and how it becomes a finding once BH has spoken."""

    p: float
    effect: float  # relative for latency and cost, absolute for rates
    make: Callable[[float, bool], Finding | None]  # (adjusted p, significant) -> finding


@dataclass(frozen=True)
class _Flip:
    index: int  # of its p-value among the per-case tests
    case: CaseResults
    counts: Counts


def _case_hashes(results: RunResults) -> dict[str, str]:
    if results.hashes is None:
        raise ValueError("drift compares case hashes: load both runs with `hashes=True`")
    return results.hashes


def _dataset_changes(
    current: RunResults, baseline: RunResults
) -> tuple[list[Finding], list[tuple[CaseResults, CaseResults]], list[CaseResults]]:
    """Dataset findings, the comparable (baseline, current) pairs, and the new cases."""
    findings: list[Finding] = []
    added: list[CaseResults] = []
    now_hashes, then_hashes = _case_hashes(current), _case_hashes(baseline)
    same_dataset = now_hashes == then_hashes  # then every common case is comparable
    if same_dataset and [c.case_id for c in current.cases] == [c.case_id for c in baseline.cases]:
        return findings, list(zip(baseline.cases, current.cases, strict=True)), added  # nightly
    pairs: list[tuple[CaseResults, CaseResults]] = []
    base_by_id = {case.case_id: case for case in baseline.cases}
    for case in current.cases:
        case_id = case.case_id
        base_case = base_by_id.pop(case_id, None)
        if base_case is None:
            findings.append(
                Finding(
                    FindingKind.dataset_change,
                    "added",
                    f"case:{case_id}",
                    Severity.info,
                    "in the dataset then, but not run in the baseline"
                    if case_id in then_hashes
                    else "new since the baseline's dataset version",
                )
            )
            added.append(case)
            continue
        if not same_dataset:
            now, then = now_hashes.get(case_id), then_hashes.get(case_id)
            if now is None or now != then:
                findings.append(
                    Finding(
                        FindingKind.dataset_change,
                        "changed",
                        f"case:{case_id}",
                        Severity.info,
                        f"edited since the baseline (case hash {(then or '?')[:12]} -> "
                        f"{(now or '?')[:12]}): left out of every comparison",
                    )
                )
                continue
        pairs.append((base_case, case))
    for case_id in base_by_id:  # run in the baseline only
        findings.append(
            Finding(
                FindingKind.dataset_change,
                "removed",
                f"case:{case_id}",
                Severity.info,
                "still in the dataset, but not run now"
                if case_id in now_hashes
                else "no longer in the dataset",
            )
        )
    return findings, pairs, added


def flaky_findings(current: RunResults) -> list[Finding]:
    """The cases whose samples disagree in one run: news even with nothing to compare
    against (the first nightly, before a baseline is accepted)."""
    findings = []
    for case in current.cases:
        passes, fails = _scored(case.samples)
        if passes and fails:
            findings.append(_flaky_finding(case, passes, fails, None))
    return findings


def _flaky_finding(case: CaseResults, passes: int, fails: int, base_rate: float | None) -> Finding:
    proposal = FLAKY_PROPOSAL
    if case.set == "blocking":
        proposal += "; " + FLAKY_BLOCKING_PROPOSAL
    return Finding(
        FindingKind.flaky,
        "pass_fraction",
        f"case:{case.case_id}",
        Severity.low,
        f"{passes}/{passes + fails} scored samples passed at one dataset version and target",
        baseline_value=base_rate,
        current_value=passes / (passes + fails),
        proposal=proposal,
    )


def _rate_test(
    scope: str,
    metric: str,
    counts: Counts,
    settings: DriftSettings,
    *,
    higher_is_worse: bool,
    label: str,
) -> _Test | None:
    """Two proportions (pass rate, error rate) compared; None when a side has no data."""
    base_yes, base_no, cur_yes, cur_no = counts
    base_n, cur_n = base_yes + base_no, cur_yes + cur_no
    if not base_n or not cur_n:
        return None
    base_rate, cur_rate = base_yes / base_n, cur_yes / cur_n
    effect = cur_rate - base_rate
    p = _two_by_two_p(counts)

    def make(adjusted: float, significant: bool) -> Finding | None:
        if not significant:
            return None
        ci_low, ci_high = _wilson(cur_yes, cur_n, settings.alpha)
        worse = effect > 0 if higher_is_worse else effect < 0
        return Finding(
            FindingKind.drift,
            metric,
            scope,
            _drift_severity(effect, worse, settings.min_effect),
            f"{label} {base_rate:.1%} ({base_yes}/{base_n} samples) -> {cur_rate:.1%} "
            f"({cur_yes}/{cur_n}); {_adjusted(p, adjusted)}",
            baseline_value=base_rate,
            current_value=cur_rate,
            effect=effect,
            p_value=p,
            ci_low=ci_low,
            ci_high=ci_high,
        )

    return _Test(p, effect, make)


MAX_UNSURE_FLIPS = 25


def _capped_unsure_flips(unsure: list[Finding]) -> list[Finding]:
    """Flips too thin to test (one sample each) are listed up to a cap, then summed up in
    one line: on a large single-sample run they are thousands of coin tosses, not news."""
    if len(unsure) <= MAX_UNSURE_FLIPS:
        return unsure
    unsure.sort(key=lambda f: f.scope)
    rest = unsure[MAX_UNSURE_FLIPS:]
    named = ", ".join(f.scope.removeprefix("case:") for f in rest[:10])
    summary = Finding(
        FindingKind.drift,
        "untested_flips",
        "route",
        Severity.info,
        f"{len(rest)} more case(s) flipped with too few samples to tell "
        f"(e.g. {named}{', ...' if len(rest) > 10 else ''}); raise `samples` to test them",
        current_value=float(len(rest)),
    )
    return [*unsure[:MAX_UNSURE_FLIPS], summary]


def _flip_finding(
    flip: _Flip,
    p: float,
    adjusted: float,
    significant: bool,
    details: dict[tuple[Counts, float, bool], str],
) -> Finding:
    """A flip; `details` memoises the text, shared by the many flips with equal counts."""
    base_pass, base_fail, cur_pass, cur_fail = flip.counts
    to_fail = base_fail == 0
    key = (flip.counts, adjusted, significant)
    detail = details.get(key)
    if detail is None:
        counts = (
            f"passed {base_pass}/{base_pass + base_fail} samples in the baseline, "
            f"{cur_pass}/{cur_pass + cur_fail} now"
        )
        if significant:
            detail = f"{counts}; Fisher exact {_adjusted(p, adjusted)}"
        else:
            detail = f"{counts}; too few samples to tell ({_adjusted(p, adjusted)})"
        details[key] = detail
    if not significant:
        severity = Severity.info
    elif not to_fail:
        severity = Severity.low  # an improvement
    elif flip.case.severity == "critical":
        severity = Severity.critical
    elif flip.case.severity == "high":
        severity = Severity.high
    else:
        severity = Severity.medium
    base_rate = 1.0 if to_fail else 0.0
    return Finding(
        FindingKind.drift,
        "flip_pass_to_fail" if to_fail else "flip_fail_to_pass",
        f"case:{flip.case.case_id}",
        severity,
        detail,
        baseline_value=base_rate,
        current_value=1.0 - base_rate,
        effect=1.0 - 2 * base_rate,
        p_value=p,
    )


def _route_tests(
    pairs: Sequence[tuple[CaseResults, CaseResults]],
    settings: DriftSettings,
    budgets: Budgets | None,
    costs_known: bool = True,
) -> list[_Test]:
    """Latency, cost per case and error rate of the route over the comparable cases; the
    cost only when both runs could price their calls (an unknown cost reads as $0, and
    moving to an unpriced model is no drop in cost)."""
    base_samples = [s for base, _ in pairs for s in base.samples]
    cur_samples = [s for _, cur in pairs for s in cur.samples]
    tests: list[_Test] = []
    latency = _latency_test(
        np.array([s.latency_ms for s in base_samples if s.latency_ms is not None], dtype=float),
        np.array([s.latency_ms for s in cur_samples if s.latency_ms is not None], dtype=float),
        settings,
        budgets,
    )
    if latency is not None:
        tests.append(latency)
    if costs_known:
        cost = _cost_test(base_samples, cur_samples, len(pairs), settings, budgets)
        if cost is not None:
            tests.append(cost)
    base_errors = sum(1 for s in base_samples if s.passed is None)
    cur_errors = sum(1 for s in cur_samples if s.passed is None)
    errors = _rate_test(
        "route",
        "error_rate",
        (base_errors, len(base_samples) - base_errors, cur_errors, len(cur_samples) - cur_errors),
        settings,
        higher_is_worse=True,
        label="error rate",
    )
    if errors is not None:
        tests.append(errors)
    return tests


@dataclass(frozen=True)
class _Bar:
    """The least change of a route measure that matters, and the budget it is judged by."""

    least: float  # in the measure's unit (ms, USD)
    budget: float | None
    budget_name: str | None
    unit: str

    def describe(self, change: float) -> str:
        text = f"change {self._fmt(change)} (matters from {self._fmt(self.least)}"
        if self.budget:
            text += f"; {abs(change) / self.budget:.0%} of the {self.budget_name} budget"
        return text + ")"

    def _fmt(self, value: float) -> str:
        return f"{value:+.0f} ms" if self.unit == "ms" else f"${value:+.6f}"


def _latency_bar(settings: DriftSettings, budgets: Budgets | None) -> _Bar:
    """The median's change must reach `min_latency_change_ms` and `min_budget_fraction` of
    the route's p50 budget (its p95 budget when it has no p50 one)."""
    budget, name = None, None
    if budgets is not None and budgets.latency_p50_ms is not None:
        budget, name = budgets.latency_p50_ms, f"p50 {budgets.latency_p50_ms:g} ms"
    elif budgets is not None and budgets.latency_p95_ms is not None:
        budget, name = budgets.latency_p95_ms, f"p95 {budgets.latency_p95_ms:g} ms"
    least = max(settings.min_latency_change_ms, settings.min_budget_fraction * (budget or 0.0))
    return _Bar(least, budget, name, "ms")


def _cost_bar(settings: DriftSettings, budgets: Budgets | None) -> _Bar:
    budget = budgets.cost_per_case_usd if budgets is not None else None
    name = None if budget is None else f"${budget:g} per case"
    least = max(settings.min_cost_change_usd, settings.min_budget_fraction * (budget or 0.0))
    return _Bar(least, budget or None, name, "usd")


def _budget_severity(
    change: float, relative: float, bar: _Bar, settings: DriftSettings
) -> Severity:
    """How much of the budget a worsening eats: half or more is high, a quarter medium,
    less low (a loaded machine moves loopback latency by tens of milliseconds); without a
    budget, as pass rates (the relative change against `min_effect`)."""
    if change <= 0:
        return Severity.low
    if not bar.budget:
        return _drift_severity(relative, True, settings.min_effect)
    share = change / bar.budget
    if share >= 0.5:
        return Severity.high
    return Severity.medium if share >= 0.25 else Severity.low


def _latency_test(
    base: np.ndarray[Any, Any],
    cur: np.ndarray[Any, Any],
    settings: DriftSettings,
    budgets: Budgets | None = None,
) -> _Test | None:
    """Mann-Whitney U on successful calls' latencies; the effect is the median's relative
    change, and an alarm needs the median to move by an amount that matters."""
    if not base.size or not cur.size:
        return None
    base_p50, base_p95 = (float(v) for v in np.percentile(base, [50, 95]))
    cur_p50, cur_p95 = (float(v) for v in np.percentile(cur, [50, 95]))
    if base_p50 <= 0:
        return None  # no relative change to speak of
    effect = cur_p50 / base_p50 - 1
    change = cur_p50 - base_p50
    bar = _latency_bar(settings, budgets)
    return _route_test(
        "latency",
        _mann_whitney_p(base, cur),
        effect,
        (base_p95, cur_p95),
        f"p95 {base_p95:.0f} -> {cur_p95:.0f} ms, p50 {base_p50:.0f} -> {cur_p50:.0f} ms "
        f"(median {effect:+.1%}, {bar.describe(change)}); Mann-Whitney U",
        settings,
        matters=abs(change) >= bar.least,
        severity=_budget_severity(change, effect, bar, settings),
    )


def _cost_test(
    base_samples: Sequence[SampleResult],
    cur_samples: Sequence[SampleResult],
    cases: int,
    settings: DriftSettings,
    budgets: Budgets | None = None,
) -> _Test | None:
    """Mann-Whitney U on the cost of each answered call; the effect is the relative change
    of the mean cost per case (the same cases on both sides), which must move by an
    amount that matters for an alarm."""
    base = np.array([s.cost_usd for s in base_samples if s.passed is not None], dtype=float)
    cur = np.array([s.cost_usd for s in cur_samples if s.passed is not None], dtype=float)
    base_total = sum(s.cost_usd for s in base_samples)
    if not base.size or not cur.size or not cases or base_total <= 0:
        return None  # nothing priced: no relative change to speak of
    base_value = base_total / cases
    cur_value = sum(s.cost_usd for s in cur_samples) / cases
    effect = cur_value / base_value - 1
    change = cur_value - base_value
    bar = _cost_bar(settings, budgets)
    return _route_test(
        "cost_per_case",
        _mann_whitney_p(base, cur),
        effect,
        (base_value, cur_value),
        f"mean cost per case ${base_value:.6f} -> ${cur_value:.6f} ({effect:+.1%}, "
        f"{bar.describe(change)}); Mann-Whitney U on the cost per call",
        settings,
        matters=abs(change) >= bar.least,
        severity=_budget_severity(change, effect, bar, settings),
    )


def _route_test(
    metric: str,
    p: float,
    effect: float,
    values: tuple[float, float],
    described: str,
    settings: DriftSettings,
    *,
    matters: bool,
    severity: Severity,
) -> _Test:
    """A route-level test where higher is worse (latency, cost); reported only when
    significant and the change `matters`, its detail `described` followed by the adjusted p."""

    def make(adjusted: float, significant: bool) -> Finding | None:
        if not significant or not matters:
            return None
        return Finding(
            FindingKind.drift,
            metric,
            "route",
            severity,
            f"{described} {_adjusted(p, adjusted)}",
            baseline_value=values[0],
            current_value=values[1],
            effect=effect,
            p_value=p,
        )

    return _Test(p, effect, make)


# --------------------------------------------------------------------------- sequential


@dataclass(frozen=True)
class _CaseCounts:
    """Per paired case (scored on both sides): passes and scored samples, each side."""

    base_passes: np.ndarray[Any, Any]
    base_scored: np.ndarray[Any, Any]
    cur_passes: np.ndarray[Any, Any]
    cur_scored: np.ndarray[Any, Any]

    def of(self, index: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], ...]:
        return (
            self.base_passes[index],
            self.base_scored[index],
            self.cur_passes[index],
            self.cur_scored[index],
        )


def paired_night_of(
    effect: float | None, ci_low: float | None, ci_high: float | None
) -> PairedNight | None:
    """The paired night an `evidence` row holds (its effect and interval), if it holds one."""
    if effect is None or ci_low is None or ci_high is None:
        return None
    se = (ci_high - ci_low) / (2 * EVIDENCE_Z)
    return PairedNight(effect, se * se)


def _sequential_findings(
    scopes: Mapping[str, np.ndarray[Any, Any]],
    counts: _CaseCounts,
    history: History,
    settings: DriftSettings,
) -> list[Finding]:
    """Per set and tag, tonight's paired night (an `evidence` row) and, when e-BH over the
    night's comparisons raises it and it moved by `min_effect`, a drift finding."""
    level = min(settings.alpha, settings.fdr)
    names: list[str] = []
    nights: list[PairedNight] = []
    means: list[tuple[float, float, int, int, int]] = []
    e_values: list[float] = []
    runs: list[int] = []
    for name, index in sorted(scopes.items()):
        base_passes, base_scored, cur_passes, cur_scored = counts.of(index)
        difference, variance, share = paired_night(base_passes, base_scored, cur_passes, cur_scored)
        night = PairedNight(float(difference), float(variance))
        earlier = history.get(name, ())
        differences = np.array([n.difference for n in earlier] + [night.difference])
        variances = np.array([n.variance for n in earlier] + [night.variance])
        names.append(name)
        nights.append(night)
        e_values.append(float(e_value(differences, variances, float(share))))
        runs.append(len(differences))
        means.append(
            (
                float((base_passes / base_scored).mean()),
                float((cur_passes / cur_scored).mean()),
                len(index),
                int(cur_passes.sum()),
                int(cur_scored.sum()),
            )
        )
    raised = e_bh(np.array(e_values), level) if e_values else np.zeros(0, dtype=bool)
    bar = len(names) / (level * max(int(raised.sum()), 1))
    findings: list[Finding] = []
    for name, night, (base_mean, cur_mean, cases, passes, scored), evalue, nights_seen, up in zip(
        names, nights, means, e_values, runs, raised, strict=True
    ):
        se = math.sqrt(night.variance)
        anytime_p = min(1.0, 1.0 / evalue) if evalue > 0 else 1.0
        evidence = (
            f"e-value {evalue:.3g} after {nights_seen} nightly run(s) since the baseline "
            f"(sequential: normal-mixture e-process on the paired difference)"
        )
        findings.append(
            Finding(
                FindingKind.evidence,
                "pass_rate",
                name,
                Severity.info,
                f"paired over {cases} case(s): {base_mean:.1%} -> {cur_mean:.1%}, "
                f"difference {night.difference * 100:+.1f} +- {EVIDENCE_Z * se * 100:.1f} "
                f"points; {evidence}",
                baseline_value=base_mean,
                current_value=cur_mean,
                effect=night.difference,
                p_value=anytime_p,
                ci_low=night.difference - EVIDENCE_Z * se,
                ci_high=night.difference + EVIDENCE_Z * se,
            )
        )
        if not up or abs(night.difference) < settings.min_effect:
            continue
        ci_low, ci_high = _wilson(passes, scored, settings.alpha)
        findings.append(
            Finding(
                FindingKind.drift,
                "pass_rate",
                name,
                _drift_severity(night.difference, night.difference < 0, settings.min_effect),
                f"pass rate {base_mean:.1%} -> {cur_mean:.1%} over {cases} paired case(s) "
                f"(difference {night.difference:+.1%}); {evidence}, at least "
                f"{bar:.3g} = {len(names)} comparison(s) / {level:g} / {int(raised.sum())} "
                f"raised (e-BH); anytime-valid p={anytime_p:.2g}",
                baseline_value=base_mean,
                current_value=cur_mean,
                effect=night.difference,
                p_value=anytime_p,
                ci_low=ci_low,
                ci_high=ci_high,
            )
        )
    return findings


def analyse(
    current: RunResults,
    baseline: RunResults,
    settings: DriftSettings,
    *,
    history: History | None = None,
    budgets: Budgets | None = None,
) -> list[Finding]:
    """Every finding of `current` against `baseline`, most severe first, then by scope.

    Pure: no I/O. Dataset changes and flaky cases are always reported; drift only when
    significant and at least `min_effect` large (latency and cost: a change that matters
    against `budgets`), except flips, which are reported either way (as info when the
    samples are too few to tell). With the sequential method, `history` holds each set
    and tag's paired nights since the baseline was accepted (tonight excluded), and the
    result includes tonight's as `evidence` rows.
    """
    with collector_paused():
        return _analyse(current, baseline, settings, history or {}, budgets)


def _analyse(
    current: RunResults,
    baseline: RunResults,
    settings: DriftSettings,
    history: History,
    budgets: Budgets | None,
) -> list[Finding]:
    findings, pairs, added = _dataset_changes(current, baseline)

    # One pass over the comparable cases: flaky ones, per-case tests (memoised: most
    # cases share their counts), and each case's counts by (set, tags) combination. A
    # case scored on one side only (all errors on the other) is left out of the rates, so
    # that both sides of every rate cover the same cases.
    fisher_memo: dict[Counts, float] = {}
    case_ps: list[float] = []
    flips: list[_Flip] = []
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    paired: list[Counts] = []
    for base_case, case in pairs:
        base_pass = base_fail = cur_pass = cur_fail = 0
        for sample in base_case.samples:  # inlined: this loop runs once per case
            if sample.passed is True:
                base_pass += 1
            elif sample.passed is False:
                base_fail += 1
        for sample in case.samples:
            if sample.passed is True:
                cur_pass += 1
            elif sample.passed is False:
                cur_fail += 1
        base_n = base_pass + base_fail
        if cur_pass and cur_fail:
            findings.append(
                _flaky_finding(case, cur_pass, cur_fail, base_pass / base_n if base_n else None)
            )
        if not base_n or not cur_pass + cur_fail:
            continue
        counts = (base_pass, base_fail, cur_pass, cur_fail)
        p = fisher_memo.get(counts)
        if p is None:
            p = fisher_memo[counts] = _clean(
                float(stats.fisher_exact([[base_pass, base_fail], [cur_pass, cur_fail]]).pvalue)
            )
        if (not base_fail and not cur_pass) or (not base_pass and not cur_fail):
            flips.append(_Flip(len(case_ps), case, counts))
        case_ps.append(p)
        group = groups.get((case.set, case.tags))
        if group is None:
            group = groups[(case.set, case.tags)] = []
        group.append(len(paired))
        paired.append(counts)
    for case in added:
        cur_pass, cur_fail = _scored(case.samples)
        if cur_pass and cur_fail:
            findings.append(_flaky_finding(case, cur_pass, cur_fail, None))

    members: dict[str, list[int]] = {}
    for (set_name, tags), group in groups.items():
        for scope in (f"set:{set_name}", *(f"tag:{tag}" for tag in tags)):
            members.setdefault(scope, []).extend(group)
    table = np.array(paired, dtype=float).reshape((-1, 4))
    scopes = {scope: np.array(index, dtype=np.intp) for scope, index in members.items()}
    tests: list[_Test] = []
    if settings.method == "sequential":
        counts_of = _CaseCounts(
            table[:, 0], table[:, 0] + table[:, 1], table[:, 2], table[:, 2] + table[:, 3]
        )
        findings += _sequential_findings(scopes, counts_of, history, settings)
    else:
        for scope, index in sorted(scopes.items()):
            total = table[index].sum(axis=0)
            test = _rate_test(
                scope,
                "pass_rate",
                (int(total[0]), int(total[1]), int(total[2]), int(total[3])),
                settings,
                higher_is_worse=False,
                label="pass rate",
            )
            if test is not None:
                tests.append(test)
    costs_known = run_pricing(current.run).cost_known and run_pricing(baseline.run).cost_known
    tests += _route_tests(pairs, settings, budgets, costs_known)

    # One family: every per-night p-value above, adjusted together.
    family = [t.p for t in tests] + case_ps
    if family:
        adjusted = [float(q) for q in stats.false_discovery_control(family, method="bh")]
        level = min(settings.alpha, settings.fdr)
        for test, q in zip(tests, adjusted, strict=False):
            significant = q <= level and abs(test.effect) >= settings.min_effect
            finding = test.make(q, significant)
            if finding is not None:
                findings.append(finding)
        offset = len(tests)
        details: dict[tuple[Counts, float, bool], str] = {}
        unsure: list[Finding] = []
        for flip in flips:
            q = adjusted[offset + flip.index]
            finding = _flip_finding(flip, case_ps[flip.index], q, q <= level, details)
            (findings if finding.severity is not Severity.info else unsure).append(finding)
        findings += _capped_unsure_flips(unsure)
    findings.sort(key=lambda f: (-f.severity.rank, f.scope, f.metric, f.kind.value))
    return findings
