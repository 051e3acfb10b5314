"""Wald's sequential probability ratio test for one case of a nondeterministic route.

A blocking case that fails in a gate is not re-run until it passes: it is sampled again
and judged by the SPRT (Wald, "Sequential Tests of Statistical Hypotheses", Annals of
Mathematical Statistics 16(2), 1945) between two pass probabilities from the scorecard,
`required` (p0: what a healthy case has) and `broken` (p1 < p0: what means broken). The
log-likelihood ratio of "broken" against "healthy" after c passes and f failures is

    LLR = c * log(p1 / p0) + f * log((1 - p1) / (1 - p0))

and the test stops at the first sample where LLR >= A = log((1 - beta) / alpha) (broken)
or LLR <= B = log(beta / (1 - alpha)) (healthy). Wald's bounds keep the chance of calling
a healthy case broken near `alpha` and of passing a broken one near `beta`; the tests
check the realised rates by simulation. Truncated at `max_extra` samples beyond the
case's own, a case still between the boundaries is *undecided*: never a pass.

Every scored sample of the case counts, its planned ones and the extra ones; errored
samples say nothing about quality and are left out (they still use up the budget).
Extra samples are drawn in batches no larger than the fewest samples that could reach a
boundary (`next_batch`), so the batch ends exactly where one-at-a-time sampling could
first stop, and the decision is the same as Wald's one-at-a-time test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from evalcore.suite.scorecard import SampleRule


class Decision(StrEnum):
    broken = "broken"  # the case fails
    healthy = "healthy"  # the case passes
    undecided = "undecided"  # between the boundaries: more samples, or inconclusive


@dataclass(frozen=True)
class SequentialTest:
    """The SPRT of the scorecard's `samples:` rule: its two hypotheses, error rates, budget."""

    required: float
    broken: float
    alpha: float
    beta: float
    max_extra: int

    @classmethod
    def of(cls, rule: SampleRule) -> SequentialTest:
        return cls(rule.required, rule.broken, rule.alpha, rule.beta, rule.max_extra)

    def __post_init__(self) -> None:
        if not 0.0 < self.broken < self.required < 1.0:
            raise ValueError(f"need 0 < broken ({self.broken}) < required ({self.required}) < 1")
        if not (0.0 < self.alpha < 1.0 and 0.0 < self.beta < 1.0 and self.alpha + self.beta < 1):
            raise ValueError(f"need alpha ({self.alpha}) and beta ({self.beta}) in (0, 1)")
        if self.max_extra < 1:
            raise ValueError(f"max_extra must be at least 1 (got {self.max_extra})")

    @property
    def upper(self) -> float:
        """A: at or above it the case is broken."""
        return math.log((1 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        """B: at or below it the case is healthy."""
        return math.log(self.beta / (1 - self.alpha))

    @property
    def pass_step(self) -> float:
        """What one passing sample adds to the LLR (negative: evidence of health)."""
        return math.log(self.broken / self.required)

    @property
    def fail_step(self) -> float:
        """What one failing sample adds to the LLR (positive: evidence of breakage)."""
        return math.log((1 - self.broken) / (1 - self.required))

    def llr(self, passes: int, failures: int) -> float:
        return passes * self.pass_step + failures * self.fail_step

    def decide(self, passes: int, failures: int) -> Decision:
        """Where `passes` and `failures` leave the case: a boundary crossed, or not yet."""
        value = self.llr(passes, failures)
        # A hair of tolerance: a sum of logs that lands on a boundary in exact arithmetic
        # must count as reaching it.
        if value >= self.upper - 1e-9:
            return Decision.broken
        if value <= self.lower + 1e-9:
            return Decision.healthy
        return Decision.undecided

    def next_batch(self, passes: int, failures: int, extra: int) -> int:
        """How many more samples to draw now: 0 once decided or the budget (`extra` used of
        `max_extra`) is spent; else the fewest samples that could reach a boundary (all
        failures up to A, all passes down to B), so no boundary is passed mid-batch."""
        left = self.max_extra - extra
        if left <= 0 or self.decide(passes, failures) is not Decision.undecided:
            return 0
        value = self.llr(passes, failures)
        to_broken = math.ceil((self.upper - value) / self.fail_step - 1e-9)
        to_healthy = math.ceil((value - self.lower) / -self.pass_step - 1e-9)
        return max(1, min(to_broken, to_healthy, left))

    def describe(self) -> str:
        """The rule in one line, for the verdict and every report that shows it."""
        return (
            f"SPRT (Wald 1945): healthy p >= {self.required:g} vs broken p <= {self.broken:g}, "
            f"alpha {self.alpha:g} (a healthy case failed), beta {self.beta:g} "
            f"(a broken case passed), at most {self.max_extra} extra samples"
        )


@dataclass(frozen=True)
class CaseDecision:
    """A failing blocking case judged sequentially: its samples, the LLR and the decision."""

    case_id: str
    decision: Decision
    samples: int  # every sample the case has, errored ones included
    extra: int  # of them, drawn beyond the case's own `samples`
    passes: int
    failures: int
    llr: float
    budget_spent: bool

    @property
    def summary(self) -> str:
        extra = f"{self.extra} extra sample{'s' if self.extra != 1 else ''}"
        state = self.decision.value
        if self.decision is Decision.undecided:
            state += " (budget spent)" if self.budget_spent else " (re-sampling not finished)"
        return (
            f"{self.case_id}: {state} after {extra}, "
            f"{self.passes}/{self.passes + self.failures} passed, LLR {self.llr:+.2f}"
        )


def decide_case(
    test: SequentialTest, case_id: str, outcomes: list[bool | None], planned: int
) -> CaseDecision:
    """The SPRT decision on a case's samples in order (None: errored); the first `planned`
    are the case's own, the rest extra."""
    scored = [bool(o) for o in outcomes if o is not None]
    passes = sum(scored)
    failures = len(scored) - passes
    extra = max(0, len(outcomes) - planned)
    return CaseDecision(
        case_id=case_id,
        decision=test.decide(passes, failures),
        samples=len(outcomes),
        extra=extra,
        passes=passes,
        failures=failures,
        llr=test.llr(passes, failures),
        budget_spent=extra >= test.max_extra,
    )
