"""A summary's pass rate is the verdict's: per case under the scorecard's samples rule, with
the sequential test's decision for a case the gate re-sampled; the per-sample rate is kept
beside it. With one sample per case the two are equal."""

from __future__ import annotations

from typing import Any

import pytest

from evalcore.results.loader import CaseResults, RunResults
from evalcore.results.summary import summarize
from evalcore.results.verdict import judge_run
from tests.results.test_pricing import run_row
from tests.results.test_verdict import bad, case, err, ok

RULES: dict[str, Any] = {
    "all": {"mode": "all"},
    "at_least_2": {"mode": "at_least", "min_passes": 2},
}


def results(cases: list[CaseResults], samples: dict[str, Any], **settings: Any) -> RunResults:
    snapshot = {
        "route": "r",
        "target": {"kind": "python", "callable": "m:f", "model": "m"},
        "prices": {"m": {"input_per_mtok": 1, "output_per_mtok": 1}},
        "thresholds": {"blocking": {"min_pass_rate": 0.5}},
        "samples": samples,
    }
    run = run_row(scorecard=snapshot, settings=settings, sets=["blocking"], status="finished")
    return RunResults(run, cases, None)


def mixed() -> list[CaseResults]:
    return [
        case("two-of-three", ok(), ok(), bad()),
        case("one-of-three", ok(), bad(), bad()),
        case("all-three", ok(), ok(), ok()),
        case("errored", err(), err(), err()),
    ]


@pytest.mark.parametrize(
    ("rule", "cases_passed", "cases_failed", "measured"),
    [("all", 1, 2, "33.3% (1/3)"), ("at_least_2", 2, 1, "66.7% (2/3)")],
)
def test_the_summary_counts_cases_as_the_verdict_does(
    rule: str, cases_passed: int, cases_failed: int, measured: str
) -> None:
    loaded = results(mixed(), RULES[rule])
    (blocking,) = summarize(loaded).sets
    assert (blocking.cases_passed, blocking.cases_failed, blocking.cases_undecided) == (
        cases_passed, cases_failed, 1,
    )  # fmt: skip
    assert blocking.sample_pass_rate == pytest.approx(6 / 9)  # whatever the rule
    (criterion,) = [c for c in judge_run(loaded).criteria if c.name == "set blocking pass rate"]
    assert criterion.measured == measured
    assert f"{blocking.pass_rate:.1%} ({cases_passed}/{cases_passed + cases_failed})" == measured


def test_a_re_sampled_case_the_test_cleared_counts_as_passed_in_the_summary_too() -> None:
    # Failed one of its 3 own samples, then passed 9 extra: healthy under 0.95 vs 0.5.
    flaky = case("b-flaky", ok(), bad(), ok(), *[ok() for _ in range(9)])
    rule = {"mode": "all", "nondeterministic": True, "max_extra": 10}
    loaded = results([flaky, case("b-good", ok())], rule, resampled={"b-flaky": 3})
    (blocking,) = summarize(loaded).sets
    assert (blocking.cases_passed, blocking.cases_failed) == (2, 0)
    assert blocking.pass_rate == 1.0 and blocking.sample_pass_rate == pytest.approx(12 / 13)
    assert judge_run(loaded).verdict.value == "pass"


def test_with_one_sample_a_case_the_two_rates_agree() -> None:
    loaded = results([case("a", ok()), case("b", bad()), case("c", ok())], RULES["all"])
    (blocking,) = summarize(loaded).sets
    assert blocking.pass_rate == blocking.sample_pass_rate == pytest.approx(2 / 3)
