"""What a set can show: the smallest drop in pass rate it detects, given its cases and samples.

The comparison described is the nightly one: the set's pass rate in one run against its
pass rate in the accepted baseline, both runs over the same cases with the same samples
each, tested one-sided ("did it drop?") at `alpha`, for a drop spread over the cases. The
figure is the drop that this single comparison finds with probability `power` (80% by
default). A sequential test over many nights spends its alpha across them: on the first
night it needs somewhat more than this figure, after a few nights less.

Model (Miller, "Adding Error Bars to Evals", arXiv 2411.00640, 2024: treat the cases as
clusters of samples, and plan a set's size by power analysis):

- Every case passes with the *reference* rate: the set's (or tag's) `min_pass_rate` when
  that is below `samples.required`, else `samples.required` (0.95 by default: the pass
  probability a healthy case has). For a given mean pass rate, the sampling noise of a
  comparison of the same cases is largest when all cases are alike (the part of the noise
  that comes from some cases being harder than others cancels between two runs of the
  same cases), so a set whose failures concentrate on a few cases does at least as well.
- Samples of one case in one run are correlated, with intra-case correlation
  `INTRA_CASE_CORRELATION` (0.1): a cached or seeded reply, a shared context, one
  night's conditions make them agree more than independent draws would. The pass count
  then varies by the design effect `1 + rho * (sum k_i^2 / sum k_i - 1)` (Kish's, for
  clusters of unequal size k_i) more than a binomial count, so `n` cases x `k` samples
  weigh as `n * k / deff` independent samples. A route whose randomness is drawn per call
  (an LLM sampled at a temperature, the reference target) has rho near 0, and its figure
  is a little pessimistic; one that replays its replies has rho near 1 and gains nothing
  from a second sample.
- The test is the two-sample test of proportions on the arcsine scale (Cohen's h), with
  the variance widened by the design effect. For more than `EXACT_UP_TO_SAMPLES` samples
  its power is the normal approximation (`statsmodels.stats.power.NormalIndPower`); for
  fewer, where that approximation is off by several points, the power is summed exactly
  over every outcome of both runs (beta-binomial pass counts per case, convolved).

`tests/suite/test_sensitivity.py` checks the figures against a brute-force simulation of
this comparison, and that they are conservative when samples are independent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalcore.suite.loader import Suite
    from evalcore.suite.scorecard import Scorecard, SetThresholds

__all__ = [
    "EXACT_UP_TO_SAMPLES",
    "INTRA_CASE_CORRELATION",
    "DetectableDrop",
    "Scope",
    "design_effect",
    "detectable_drop",
    "drop_power",
    "reference_rate",
    "scopes_sensitivity",
    "sensitivity_scopes",
    "suite_sensitivity",
]

INTRA_CASE_CORRELATION = 0.1
EXACT_UP_TO_SAMPLES = 400
# The sets the gate and the nightly monitor run; the backlog is never compared.
COMPARED_SETS = ("blocking", "monitoring")


def design_effect(samples_per_case: Sequence[int], intra_case_correlation: float) -> float:
    """How much more a set's pass count varies than `sum(k)` independent samples would."""
    total = sum(samples_per_case)
    if total == 0:
        return 1.0
    mean_cluster = sum(k * k for k in samples_per_case) / total
    return 1.0 + intra_case_correlation * (mean_cluster - 1.0)


def _critical_h(alpha: float, total: int, deff: float) -> float:
    """The least arcsine difference the one-sided test calls a drop."""
    from scipy.stats import norm

    return float(norm.ppf(1.0 - alpha)) * math.sqrt(2.0 * deff / total)


def _pass_count_pmf(groups: Counter[int], rate: float, rho: float) -> Any:
    """The distribution of a run's pass count: per case beta-binomial (binomial when
    rho = 0, or at a rate of exactly 0 or 1), convolved over the cases."""
    import numpy as np
    from scipy.stats import betabinom, binom

    pmf = np.ones(1)
    for k, count in sorted(groups.items()):
        outcomes = np.arange(k + 1)
        if rho <= 0.0 or rate <= 0.0 or rate >= 1.0:
            one = binom.pmf(outcomes, k, rate)
        else:
            spread = 1.0 / rho - 1.0
            one = betabinom.pmf(outcomes, k, rate * spread, (1.0 - rate) * spread)
        # The sum of `count` alike cases, by repeated squaring: log2(count) convolutions.
        while count:
            if count & 1:
                pmf = np.convolve(pmf, one)
            count >>= 1
            if count:
                one = np.convolve(one, one)
    return np.clip(pmf, 0.0, None)


class _ExactPower:
    """The power of the test against a drop, summed over every outcome of both runs."""

    def __init__(
        self, samples_per_case: Sequence[int], reference: float, alpha: float, rho: float
    ) -> None:
        import numpy as np

        self.groups = Counter(samples_per_case)
        self.rho = rho
        total = sum(samples_per_case)
        deff = design_effect(samples_per_case, rho)
        angles = 2.0 * np.arcsin(np.sqrt(np.arange(total + 1) / total))
        critical = _critical_h(alpha, total, deff)
        # rejects[b, c]: a baseline count b and a current count c make the test say "drop".
        rejects = (angles[:, None] - angles[None, :]) > critical + 1e-12
        self.baseline_rejection = _pass_count_pmf(self.groups, reference, rho) @ rejects

    def __call__(self, current_rate: float) -> float:
        current = _pass_count_pmf(self.groups, current_rate, self.rho)
        return float(self.baseline_rejection @ current)


def drop_power(
    samples_per_case: Sequence[int],
    drop: float,
    *,
    reference: float,
    alpha: float,
    intra_case_correlation: float = INTRA_CASE_CORRELATION,
) -> float:
    """The chance that one nightly comparison calls a drop of `drop` (a fraction) a drop."""
    _check(samples_per_case, reference, alpha, 0.5)
    current = max(reference - drop, 0.0)
    total = sum(samples_per_case)
    if total <= EXACT_UP_TO_SAMPLES:
        exact = _ExactPower(samples_per_case, reference, alpha, intra_case_correlation)
        return exact(current)
    from scipy.stats import norm

    deff = design_effect(samples_per_case, intra_case_correlation)
    h = 2.0 * math.asin(math.sqrt(reference)) - 2.0 * math.asin(math.sqrt(current))
    z = h / math.sqrt(2.0 * deff / total) - float(norm.ppf(1.0 - alpha))
    return float(norm.cdf(z))


def detectable_drop(
    samples_per_case: Sequence[int],
    *,
    reference: float,
    alpha: float,
    power: float,
    intra_case_correlation: float = INTRA_CASE_CORRELATION,
) -> float | None:
    """The smallest drop in pass rate (a fraction: 0.041 is 4.1 points) that one nightly
    comparison of these cases (`samples_per_case`: one entry per case) detects with
    probability `power` at one-sided level `alpha`, from the pass rate `reference`.

    None when not even a drop to a pass rate of zero is detected that often (no cases, or
    too few samples for this alpha and power).
    """
    _check(samples_per_case, reference, alpha, power)
    total = sum(samples_per_case)
    if total == 0 or reference <= 0.0:
        return None
    if total <= EXACT_UP_TO_SAMPLES:
        return _exact_drop(samples_per_case, reference, alpha, power, intra_case_correlation)
    from statsmodels.stats.power import NormalIndPower

    effective = total / design_effect(samples_per_case, intra_case_correlation)
    h = float(
        NormalIndPower().solve_power(
            effect_size=None,
            nobs1=effective,
            alpha=alpha,
            power=power,
            ratio=1.0,
            alternative="larger",
        )
    )
    angle = math.asin(math.sqrt(reference)) - h / 2.0
    if angle <= 0.0:
        return None
    return reference - math.sin(angle) ** 2


def _exact_drop(
    samples_per_case: Sequence[int], reference: float, alpha: float, power: float, rho: float
) -> float | None:
    from scipy.optimize import brentq

    exact = _ExactPower(samples_per_case, reference, alpha, rho)
    if exact(0.0) < power:
        return None
    if exact(reference) >= power:  # only when alpha >= power: any drop at all
        return 0.0
    current = brentq(lambda rate: exact(rate) - power, 0.0, reference, xtol=1e-6)
    return reference - float(current)


def _check(samples_per_case: Sequence[int], reference: float, alpha: float, power: float) -> None:
    if any(k < 1 for k in samples_per_case):
        raise ValueError("every case has at least one sample")
    if not 0.0 <= reference <= 1.0:
        raise ValueError(f"reference pass rate must be within [0, 1], got {reference}")
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be within (0, 1), got {value}")


def reference_rate(threshold: float | None, required: float) -> float:
    """The pass rate a drop is measured from: a healthy case passes with `required`
    (`samples.required`); a scope whose threshold is lower is allowed, and so assumed, to
    be that much noisier."""
    return required if threshold is None else min(threshold, required)


@dataclass(frozen=True)
class DetectableDrop:
    """The sensitivity of one scope ("set:monitoring", "tag:refunds") in a nightly comparison."""

    scope: str
    cases: int
    min_samples: int  # per case; equal to max_samples when every case has the same count
    max_samples: int
    reference: float
    alpha: float
    power: float
    drop: float | None  # the smallest detectable drop, a fraction; None: none at all

    @property
    def name(self) -> str:
        return self.scope.partition(":")[2]

    @property
    def kind(self) -> str:
        return self.scope.partition(":")[0]

    @property
    def size(self) -> str:
        """'240 cases x 3 samples', '12 cases x 1-3 samples'."""
        cases = f"{self.cases} case" + ("" if self.cases == 1 else "s")
        if self.min_samples == self.max_samples:
            count = str(self.min_samples)
        else:
            count = f"{self.min_samples}-{self.max_samples}"
        noun = "sample" if count == "1" else "samples"
        return f"{cases} x {count} {noun}"

    @property
    def drop_points(self) -> float | None:
        return None if self.drop is None else round(self.drop * 100.0, 1)

    def can_detect(self, drop: float) -> bool:
        """Whether a drop of `drop` (a fraction) is at least what this scope can detect."""
        return self.drop is not None and self.drop <= drop + 1e-9

    def describe(self) -> str:
        """'240 cases x 3 samples can detect a drop of 4.1 points'."""
        if self.drop is None:
            return f"{self.size} cannot detect even a drop to a pass rate of 0"
        return f"{self.size} can detect a drop of {self.drop_points:.1f} points"

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "cases": self.cases,
            "min_samples": self.min_samples,
            "max_samples": self.max_samples,
            "reference_pass_rate": self.reference,
            "alpha": self.alpha,
            "power": self.power,
            "detectable_drop": self.drop,
            "text": self.describe(),
        }


def scope_sensitivity(
    scope: str,
    samples_per_case: Sequence[int],
    *,
    reference: float,
    alpha: float,
    power: float,
) -> DetectableDrop:
    """The `DetectableDrop` of one scope's cases."""
    return DetectableDrop(
        scope=scope,
        cases=len(samples_per_case),
        min_samples=min(samples_per_case, default=0),
        max_samples=max(samples_per_case, default=0),
        reference=reference,
        alpha=alpha,
        power=power,
        drop=detectable_drop(samples_per_case, reference=reference, alpha=alpha, power=power),
    )


def _min_pass_rate(threshold: SetThresholds | None) -> float | None:
    return None if threshold is None else threshold.min_pass_rate


@dataclass(frozen=True)
class Scope:
    """A set or tag whose sensitivity is shown: its cases' sample counts and threshold."""

    name: str
    samples_per_case: list[int]
    min_pass_rate: float | None


def sensitivity_scopes(suite: Suite, *, sets: Iterable[str] = COMPARED_SETS) -> list[Scope]:
    """Each of `sets` that has cases, then each tag over its cases in those sets, by name:
    all `suite_sensitivity` needs of the cases, so they can be let go before it runs."""
    scorecard = suite.scorecard
    wanted = set(sets)
    by_set: dict[str, list[int]] = {}
    by_tag: dict[str, list[int]] = {}
    for case in suite.cases:
        if case.set.value not in wanted:
            continue
        by_set.setdefault(case.set.value, []).append(case.samples)
        for tag in case.tags:
            by_tag.setdefault(tag, []).append(case.samples)
    scopes = [
        Scope(f"set:{n}", by_set[n], _min_pass_rate(scorecard.thresholds.get(n)))
        for n in sets
        if n in by_set
    ]
    scopes += [
        Scope(f"tag:{t}", by_tag[t], _min_pass_rate(scorecard.tag_thresholds.get(t)))
        for t in sorted(by_tag)
    ]
    return scopes


def scopes_sensitivity(scopes: Iterable[Scope], scorecard: Scorecard) -> list[DetectableDrop]:
    """The `DetectableDrop` of each scope: alpha is `sensitivity.alpha`, else
    `drift.alpha`; power is `sensitivity.power`."""
    alpha = scorecard.sensitivity.alpha or scorecard.drift.alpha
    power = scorecard.sensitivity.power
    required = scorecard.samples.required
    return [
        scope_sensitivity(
            scope.name,
            scope.samples_per_case,
            reference=reference_rate(scope.min_pass_rate, required),
            alpha=alpha,
            power=power,
        )
        for scope in scopes
    ]


def suite_sensitivity(suite: Suite, *, sets: Iterable[str] = COMPARED_SETS) -> list[DetectableDrop]:
    """Each of `sets` that has cases, then each tag over its cases in those sets, by name.

    alpha is `sensitivity.alpha`, else `drift.alpha`; power is `sensitivity.power`.
    """
    return scopes_sensitivity(sensitivity_scopes(suite, sets=sets), suite.scorecard)
