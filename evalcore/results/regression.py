"""The gate's cases against the same cases in an earlier run: newly failing, newly fixed,
and a paired test of whether the route got worse.

Pairing removes the between-case variance that makes two pooled pass rates hard to tell
apart (Miller, "Adding Error Bars to Evals", arXiv 2411.00640, 2024). When every paired
case has one scored sample in each run, the outcomes are binary pairs and the exact
McNemar test on the discordant pairs applies (`statsmodels`' `mcnemar(exact=True)`, a
two-sided binomial test of b against b + c). With several samples, each case's pass
fraction is compared by the Wilcoxon signed-rank test (`scipy.stats.wilcoxon`, two-sided,
zero differences dropped; exact for small sets). Either says whether the change is
significant at the scorecard's `regression.alpha`; which way it went is read from the
pairs (more cases worse than better, or the mean fraction down).

Newly failing and newly fixed cases are decided by each run's own verdict on the case
(after sequential re-sampling, where there was some), so a case cleared by its extra
samples is not a new failure. The fractions compare the cases' own samples only: extra
samples are drawn because a case failed and would bias them. Pure: the runs are read by
whoever calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PairedOutcome:
    """One case in one run: its verdict (None: undecided) and its own scored samples."""

    passed: bool | None
    scored: Sequence[bool]


@dataclass(frozen=True)
class Regression:
    """What the comparison found; `against_run_id` None means nothing to compare with."""

    against_run_id: str | None
    max_new_failures: int | None
    alpha: float
    paired: int = 0
    newly_failing: list[str] = field(default_factory=list)
    newly_fixed: list[str] = field(default_factory=list)
    test: str = ""
    p_value: float | None = None
    worse: bool = False  # the pairs lean towards worse now

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha

    @property
    def detail(self) -> str:
        parts = []
        if self.newly_failing:
            parts.append("newly failing: " + ", ".join(self.newly_failing))
        if self.newly_fixed:
            parts.append("newly fixed: " + ", ".join(self.newly_fixed))
        if self.p_value is not None:
            verdict = (
                ("significantly worse" if self.worse else "significantly better")
                if self.significant
                else "no significant change"
            )
            parts.append(f"{self.test} p = {self.p_value:.3g} ({verdict} at {self.alpha:g})")
        elif self.test:
            parts.append(self.test)
        return "; ".join(parts)


def mcnemar_p(worse: int, better: int) -> float:
    """Exact McNemar p-value from the discordant pairs: `worse` went from pass to fail,
    `better` from fail to pass (the concordant ones do not enter the test)."""
    from statsmodels.stats.contingency_tables import mcnemar

    if worse + better == 0:
        return 1.0
    return float(mcnemar([[0, worse], [better, 0]], exact=True).pvalue)


def wilcoxon_p(before: Sequence[float], after: Sequence[float]) -> float:
    """Wilcoxon signed-rank p-value of the per-case pass fractions, paired; 1.0 when no
    case changed."""
    from scipy.stats import wilcoxon

    differences = [a - b for b, a in zip(before, after, strict=True)]
    if not any(differences):
        return 1.0
    return float(wilcoxon(differences, zero_method="wilcox").pvalue)


def compare(
    before: Mapping[str, PairedOutcome],
    after: Mapping[str, PairedOutcome],
    *,
    against_run_id: str,
    max_new_failures: int | None,
    alpha: float,
) -> Regression:
    """Pair the cases present in both runs; list what changed and test whether it is worse."""
    paired = sorted(before.keys() & after.keys())
    newly_failing = [c for c in paired if before[c].passed is True and after[c].passed is False]
    newly_fixed = [c for c in paired if before[c].passed is False and after[c].passed is True]
    scored = [c for c in paired if before[c].scored and after[c].scored]
    test, p_value, worse = "no case scored in both runs", None, False
    if scored and all(len(before[c].scored) == 1 and len(after[c].scored) == 1 for c in scored):
        to_fail = sum(1 for c in scored if before[c].scored[0] and not after[c].scored[0])
        to_pass = sum(1 for c in scored if not before[c].scored[0] and after[c].scored[0])
        test, p_value = "exact McNemar", mcnemar_p(to_fail, to_pass)
        worse = to_fail > to_pass
    elif scored:
        fraction_before = [sum(before[c].scored) / len(before[c].scored) for c in scored]
        fraction_after = [sum(after[c].scored) / len(after[c].scored) for c in scored]
        test = "Wilcoxon signed-rank on pass fractions"
        p_value = wilcoxon_p(fraction_before, fraction_after)
        worse = sum(fraction_after) < sum(fraction_before)
    return Regression(
        against_run_id=against_run_id,
        max_new_failures=max_new_failures,
        alpha=alpha,
        paired=len(paired),
        newly_failing=newly_failing,
        newly_fixed=newly_fixed,
        test=test,
        p_value=p_value,
        worse=worse,
    )
