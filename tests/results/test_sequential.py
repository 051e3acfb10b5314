"""Wald's SPRT for one case, and the flake-aware gate proven by simulation.

The simulations are synthetic (no servers), seeded, and run the functions the gate runs:
`case_outcomes` picks the failing blocking cases, `SequentialTest.next_batch` says how
many more samples each needs, and `judge` gives the verdict.

The simulated route (`MIX`): a blocking set of 40 cases, each sampled 5 times, whose pass
probabilities are what a nondeterministic support assistant shows: 24 cases that always
pass, 8 near 1 (0.98), 5 at 0.9 and three flaky ones (0.6, 0.6, 0.5). Its scorecard calls
a case healthy at p >= 0.5 and broken at p <= 0.33 (alpha 0.01, beta 0.05, at most 150
extra samples): a case must fail at least half the time to stop a release. Today's gate
(every sample must pass) is red on nearly every run of this unchanged route.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from evalcore.results.loader import CaseResults, SampleResult
from evalcore.results.sequential import Decision, SequentialTest, decide_case
from evalcore.results.verdict import Verdict, case_outcomes, judge
from evalcore.suite.scorecard import SampleRule, Scorecard

MIX = [1.0] * 24 + [0.98] * 8 + [0.9] * 5 + [0.6, 0.6, 0.5]
OWN_SAMPLES = 5
RULE: dict[str, Any] = {
    "nondeterministic": True,
    "required": 0.5,
    "broken": 0.33,
    "alpha": 0.01,
    "beta": 0.05,
    "max_extra": 150,
}
GATES = 500


def scorecard(**samples: Any) -> Scorecard:
    return Scorecard.model_validate(
        {
            "route": "r",
            "target": {"kind": "python", "callable": "m:f"},
            "thresholds": {"blocking": {"min_pass_rate": 1.0}},
            "samples": samples,
        }
    )


def sample(passed: bool) -> SampleResult:
    return SampleResult(bool(passed), 10.0, 0.0, 0.0)


def test_the_boundaries_and_steps_are_walds() -> None:
    test = SequentialTest.of(SampleRule(nondeterministic=True))  # 0.95 vs 0.5, 0.05 / 0.05
    assert test.upper == pytest.approx(np.log(0.95 / 0.05))
    assert test.lower == pytest.approx(np.log(0.05 / 0.95))
    assert test.pass_step == pytest.approx(np.log(0.5 / 0.95))
    assert test.fail_step == pytest.approx(np.log(0.5 / 0.05))
    # Two failures are enough evidence of "broken"; one is not.
    assert test.decide(0, 1) is Decision.undecided
    assert test.decide(0, 2) is Decision.broken
    # After one failure, nine passes in a row clear the case, eight do not.
    assert test.decide(8, 1) is Decision.undecided
    assert test.decide(9, 1) is Decision.healthy
    assert "Wald 1945" in test.describe() and "alpha 0.05" in test.describe()


def test_a_batch_never_steps_over_a_boundary_one_at_a_time_sampling_would_stop_at() -> None:
    test = SequentialTest.of(SampleRule(nondeterministic=True, max_extra=30))
    rng = np.random.default_rng(3)
    for _ in range(300):
        p = rng.uniform(0.3, 1.0)
        draws = list(rng.random(60) < p)
        # One at a time: the first index at which the test decides.
        passes = failures = 0
        stop_one = None
        for i, outcome in enumerate(draws[:30], 1):
            passes, failures = passes + outcome, failures + (not outcome)
            if test.decide(passes, failures) is not Decision.undecided:
                stop_one = i
                break
        # In batches as the gate draws them.
        passes = failures = taken = 0
        while batch := test.next_batch(passes, failures, taken):
            chunk = draws[taken : taken + batch]
            passes, failures, taken = (
                passes + sum(chunk),
                failures + batch - sum(chunk),
                taken + batch,
            )
        decided = test.decide(passes, failures) is not Decision.undecided
        assert (taken if decided else None) == stop_one
        assert taken <= 30


def test_the_budget_ends_undecided_and_counts_the_extra_samples() -> None:
    test = SequentialTest.of(SampleRule(nondeterministic=True, max_extra=2))
    decided = decide_case(test, "c", [False, True, True, None], planned=1)
    assert (decided.decision, decided.extra, decided.passes, decided.failures) == (
        Decision.undecided,
        3,
        2,
        1,
    )
    assert decided.budget_spent
    assert test.next_batch(2, 1, 3) == 0
    assert "undecided (budget spent) after 3 extra samples, 2/3 passed" in decided.summary


@pytest.mark.parametrize(
    ("required", "broken", "alpha", "beta"), [(0.95, 0.5, 0.05, 0.05), (0.5, 0.33, 0.01, 0.05)]
)
def test_the_realised_error_rates_are_within_walds_bounds(
    required: float, broken: float, alpha: float, beta: float
) -> None:
    """Untruncated (a budget far beyond what is used): a case at exactly `required` is
    called broken in at most alpha / (1 - beta) of sequences, one at exactly `broken` is
    called healthy in at most beta / (1 - alpha) (Wald's inequalities), with the noise of
    4,000 simulated sequences."""
    test = SequentialTest(required, broken, alpha, beta, max_extra=1000)
    rng = np.random.default_rng(11)
    runs = 4000

    def wrong_rate(p: float, wrong: Decision) -> float:
        draws = rng.random((runs, 1000)) < p
        wrong_count = 0
        for row in draws:
            passes = failures = taken = 0
            while batch := test.next_batch(passes, failures, taken):
                chunk = int(row[taken : taken + batch].sum())
                passes, failures, taken = passes + chunk, failures + batch - chunk, taken + batch
            decision = test.decide(passes, failures)
            assert decision is not Decision.undecided
            wrong_count += decision is wrong
        return wrong_count / runs

    false_broken = wrong_rate(required, Decision.broken)
    false_healthy = wrong_rate(broken, Decision.healthy)
    noise = 3 * np.sqrt(alpha * (1 - alpha) / runs)
    print(
        f"\nSPRT {required} vs {broken}: false broken {false_broken:.2%} (alpha {alpha}),"
        f" false healthy {false_healthy:.2%} (beta {beta})"
    )
    assert false_broken <= alpha / (1 - beta) + noise
    assert false_healthy <= beta / (1 - alpha) + 3 * np.sqrt(beta * (1 - beta) / runs)
    # And the test has power: it is not "never broken".
    assert false_broken > 0 or alpha < 0.02


def simulate_gates(pass_probabilities: list[float], seed: int) -> tuple[float, float, float, float]:
    """Over `GATES` simulated gates: the share the flake-aware gate fails, the share it is
    inconclusive, today's gate's red share, and the mean extra samples per gate."""
    card = scorecard(**RULE)
    today = scorecard()
    test = SequentialTest.of(card.samples)
    rng = np.random.default_rng(seed)
    ps = np.asarray(pass_probabilities)
    draws = rng.random((GATES, len(ps), OWN_SAMPLES + test.max_extra)) < ps[None, :, None]
    failed = inconclusive = red_today = extra_total = 0
    for gate in draws:
        cases = [
            CaseResults(f"c{i:02d}", "blocking", "high", (), tuple(map(sample, row[:OWN_SAMPLES])))
            for i, row in enumerate(gate)
        ]
        red_today += judge(cases, today).verdict is not Verdict.passed
        _, decisions = case_outcomes(cases, card.samples)
        resampled: dict[str, int] = {}
        for decision in decisions:
            index = int(decision.case_id[1:])
            passes, failures, extra = decision.passes, decision.failures, 0
            while batch := test.next_batch(passes, failures, extra):
                row = gate[index, OWN_SAMPLES + extra : OWN_SAMPLES + extra + batch]
                passes, failures, extra = (
                    passes + int(row.sum()),
                    failures + batch - int(row.sum()),
                    extra + batch,
                )
            resampled[decision.case_id] = OWN_SAMPLES
            cases[index] = cases[index]._replace(
                samples=tuple(map(sample, gate[index, : OWN_SAMPLES + extra]))
            )
            extra_total += extra
        verdict = judge(cases, card, resampled=resampled).verdict
        failed += verdict is Verdict.failed
        inconclusive += verdict is Verdict.inconclusive
    return failed / GATES, inconclusive / GATES, red_today / GATES, extra_total / GATES


def test_an_unchanged_flaky_route_is_red_in_at_most_5_percent_of_gates() -> None:
    failed, inconclusive, today, extra = simulate_gates(MIX, seed=2026)
    message = (
        f"flake-aware gate: fail {failed:.1%}, inconclusive {inconclusive:.1%} "
        f"({extra:.0f} extra samples per gate); today's gate red {today:.1%}"
    )
    print("\n" + message)
    assert failed + inconclusive <= 0.05, message
    assert today >= 0.95, message  # what the flake-aware gate replaces


def test_a_case_dropped_to_30_percent_makes_the_gate_red_in_at_least_95_percent() -> None:
    dropped = [0.3, *MIX[1:]]  # one case that always passed now passes 3 times in 10
    failed, inconclusive, today, extra = simulate_gates(dropped, seed=2027)
    message = (
        f"flake-aware gate: fail {failed:.1%}, inconclusive {inconclusive:.1%} "
        f"({extra:.0f} extra samples per gate); today's gate red {today:.1%}"
    )
    print("\n" + message)
    assert failed >= 0.95, message
