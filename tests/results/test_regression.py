"""The paired regression check on constructed runs: newly failing and newly fixed cases,
exact McNemar on single samples, Wilcoxon on pass fractions, and the criterion it adds."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest, wilcoxon

from evalcore.results.loader import CaseResults, SampleResult
from evalcore.results.regression import PairedOutcome, Regression, compare
from evalcore.results.verdict import Verdict, judge
from evalcore.suite.scorecard import Scorecard


def single(passed: bool) -> PairedOutcome:
    return PairedOutcome(passed, [passed])


def test_single_samples_are_compared_by_exact_mcnemar_and_changes_listed() -> None:
    # 20 cases: 12 pass in both, 1 fails in both, 6 newly fail, 1 newly fixed.
    before = {f"c{i:02d}": single(i != 19 and i != 18) for i in range(20)}
    after = {f"c{i:02d}": single(i < 12 or i in (18,)) for i in range(20)}
    before["c19"] = single(False)
    found = compare(before, after, against_run_id="r" * 32, max_new_failures=0, alpha=0.05)
    assert found.newly_failing == [f"c{i:02d}" for i in range(12, 18)]
    assert found.newly_fixed == ["c18"]
    assert (found.paired, found.test) == (20, "exact McNemar")
    # Exact McNemar is the two-sided binomial test of 6 against 6 + 1 discordant pairs.
    expected = binomtest(6, 7, 0.5).pvalue
    assert found.p_value == pytest.approx(expected)
    assert found.worse and not found.significant  # p = 0.125: 7 discordant pairs say little
    assert "newly failing: c12, c13, c14, c15, c16, c17; newly fixed: c18" in found.detail


def test_several_samples_are_compared_by_wilcoxon_on_pass_fractions() -> None:
    before = {f"c{i}": PairedOutcome(True, [True, True, True, True]) for i in range(12)}
    after = {f"c{i}": PairedOutcome(i >= 10, [True, True, i >= 10, i >= 5]) for i in range(12)}
    found = compare(before, after, against_run_id="r1", max_new_failures=None, alpha=0.05)
    assert found.test == "Wilcoxon signed-rank on pass fractions"
    fractions = [(2 + (i >= 10) + (i >= 5)) / 4 - 1 for i in range(12)]
    assert found.p_value == pytest.approx(wilcoxon(fractions, zero_method="wilcox").pvalue)
    assert found.worse and found.significant
    assert found.newly_failing == [f"c{i}" for i in range(10)]


def test_only_cases_present_in_both_runs_are_paired_and_undecided_is_no_new_failure() -> None:
    before = {"a": single(True), "b": single(True), "gone": single(True)}
    after = {"a": PairedOutcome(None, [False]), "b": single(True), "new": single(False)}
    found = compare(before, after, against_run_id="r1", max_new_failures=0, alpha=0.05)
    assert found.paired == 2
    assert found.newly_failing == [] and found.newly_fixed == []


def test_no_change_gives_p_one_not_an_error() -> None:
    same = {f"c{i}": single(True) for i in range(5)}
    found = compare(same, same, against_run_id="r1", max_new_failures=0, alpha=0.05)
    assert found.p_value == 1.0 and not found.significant


def scorecard() -> Scorecard:
    return Scorecard.model_validate(
        {
            "route": "r",
            "target": {"kind": "python", "callable": "m:f"},
            "thresholds": {"blocking": {"min_pass_rate": 0.5}},
        }
    )


def cases() -> list[CaseResults]:
    return [
        CaseResults(f"c{i}", "blocking", "high", (), (SampleResult(i != 0, 5.0, 0.0, 0.0),))
        for i in range(4)
    ]


def test_more_new_failures_than_allowed_fail_the_gate_even_above_the_thresholds() -> None:
    regression = Regression("abcdef0123456789", 0, 0.05, 4, ["c0"], [], "exact McNemar", 1.0)
    result = judge(cases(), scorecard(), regression=regression)
    assert result.verdict is Verdict.failed
    line = result.criteria[-1]
    assert (line.name, line.threshold, line.held) == (
        "regression against abcdef012345",
        "<= 0 new failures",
        False,
    )
    assert line.measured == "1 new failure, 0 fixed (4 paired)"
    assert "newly failing: c0" in line.detail
    allowed = Regression("abcdef0123456789", 1, 0.05, 4, ["c0"], [], "exact McNemar", 1.0)
    assert judge(cases(), scorecard(), regression=allowed).verdict is Verdict.passed


def test_without_an_earlier_passing_run_the_check_says_so_and_is_not_counted() -> None:
    result = judge(cases(), scorecard(), regression=Regression(None, 0, 0.05))
    assert result.verdict is Verdict.passed
    line = result.criteria[-1]
    assert (line.measured, line.held) == ("no earlier passing run", True)
    assert line.detail == "nothing to compare with: not counted"
