"""pass@k and pass^k: the estimators agree with their definition by simulation."""

from __future__ import annotations

import itertools
import random

import pytest

from evalcore.results.loader import CaseResults, SampleResult
from evalcore.results.reliability import pass_at_k, pass_hat_k, reliability


def _case(case_id: str, outcomes: list[bool | None], *, set_: str = "monitoring",
          tags: tuple[str, ...] = ()) -> CaseResults:  # fmt: skip
    samples = tuple(SampleResult(o, 10.0, 0.0, 0.0) for o in outcomes)
    return CaseResults(case_id, set_, "medium", tags, samples)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 3, 2), (10, 9, 3), (4, 0, 2), (6, 6, 6), (3, 1, 1)])
def test_estimators_match_every_way_of_choosing_k_of_the_samples(n: int, c: int, k: int) -> None:
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(outcomes, k))
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
    assert pass_hat_k(n, c, k) == pytest.approx(sum(all(s) for s in subsets) / len(subsets))


def test_pass_hat_k_is_unbiased_for_the_probability_that_k_fresh_tries_all_pass() -> None:
    rng = random.Random(7)
    p, n, k = 0.8, 6, 3
    draws = [sum(rng.random() < p for _ in range(n)) for _ in range(20_000)]
    mean_hat = sum(pass_hat_k(n, c, k) for c in draws) / len(draws)
    mean_at = sum(pass_at_k(n, c, k) for c in draws) / len(draws)
    assert mean_hat == pytest.approx(p**k, abs=0.01)
    assert mean_at == pytest.approx(1 - (1 - p) ** k, abs=0.01)


def test_reliability_per_scope_uses_cases_with_two_or_more_scored_samples() -> None:
    cases = [
        _case("a", [True, True, False], set_="blocking", tags=("refunds",)),
        _case("b", [True, True, True, True], tags=("refunds",)),
        _case("c", [True]),  # one sample: says nothing about nondeterminism
        _case("d", [True, None, False]),  # the error is left out: n = 2
    ]
    rows = {row.scope: row for row in reliability(cases)}
    assert list(rows) == ["all", "set:blocking", "set:monitoring", "tag:refunds"]
    assert rows["all"].cases == 3 and rows["all"].k == 2
    assert rows["all"].pass_hat_k == pytest.approx((1 / 3 + 1 + 0) / 3)  # k = 2 for all
    assert rows["set:blocking"].k == 3  # its one case has three samples, two passing
    assert (rows["set:blocking"].pass_at_k, rows["set:blocking"].pass_hat_k) == (1.0, 0.0)
    assert rows["tag:refunds"].k == 3
    assert rows["tag:refunds"].pass_hat_k == pytest.approx((0 + 1) / 2)
    assert rows["set:monitoring"].pass_at_k == pytest.approx((1 + 1) / 2)
    assert reliability([_case("c", [True])]) == []


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="need 0 <= c <= n"):
        pass_at_k(3, 4, 2)
    with pytest.raises(ValueError, match="need 0 <= c <= n"):
        pass_hat_k(3, 1, 4)
