"""The verdict: thresholds per set and tag, critical cases, budgets, the error budget."""

from __future__ import annotations

from typing import Any

import pytest

from evalcore.results.loader import CaseResults, SampleResult
from evalcore.results.verdict import Verdict, case_passed, judge
from evalcore.suite.scorecard import SampleRule, Scorecard


def scorecard(**extra: Any) -> Scorecard:
    base: dict[str, Any] = {
        "route": "r",
        "target": {"kind": "openai_chat", "base_url": "http://127.0.0.1:9/v1", "model": "m"},
        "thresholds": {"blocking": {"min_pass_rate": 1.0}, "monitoring": {"min_pass_rate": 0.8}},
        "tag_thresholds": {"adversarial": {"min_pass_rate": 1.0}},
        "budgets": {
            "latency_p50_ms": 500,
            "latency_p95_ms": 2000,
            "cost_per_case_usd": 0.01,
            "cost_per_run_usd": 1.0,
            "max_error_rate": 0.1,
        },
    }
    base.update(extra)
    return Scorecard.model_validate(base)


def ok(latency: float = 100.0, cost: float = 0.001) -> SampleResult:
    return SampleResult(True, latency, cost, 0.0)


def bad() -> SampleResult:
    return SampleResult(False, 100.0, 0.001, 0.0)


def err() -> SampleResult:
    return SampleResult(None, None, 0.0, 0.0)


def case(
    case_id: str,
    *samples: SampleResult,
    set: str = "blocking",
    severity: str = "high",
    tags: tuple[str, ...] = (),
) -> CaseResults:
    return CaseResults(case_id, set, severity, tags, samples)


def good_run() -> list[CaseResults]:
    return [case(f"b{i}", ok()) for i in range(5)] + [
        case(f"m{i}", ok(), set="monitoring") for i in range(10)
    ]


def test_a_clean_run_passes_with_one_line_per_criterion() -> None:
    result = judge(good_run(), scorecard())
    assert result.verdict is Verdict.passed
    names = [c.name for c in result.criteria]
    assert names[:3] == ["error rate", "set blocking pass rate", "set monitoring pass rate"]
    assert {"latency p50", "latency p95", "cost per case (mean)", "cost per run"} <= set(names)
    assert all(c.held for c in result.criteria)


def test_one_blocking_failure_fails_and_names_the_case() -> None:
    cases = [*good_run(), case("b-broken", bad())]
    result = judge(cases, scorecard())
    assert result.verdict is Verdict.failed
    (blocking,) = [c for c in result.criteria if c.name == "set blocking pass rate"]
    assert blocking.held is False and "b-broken" in blocking.detail
    assert "set blocking pass rate" in result.reason


def test_monitoring_threshold_allows_some_misses() -> None:
    cases = [*good_run(), case("m-miss", bad(), set="monitoring")]
    assert judge(cases, scorecard()).verdict is Verdict.passed  # 10/11 >= 80%


def test_a_critical_case_is_judged_on_its_own() -> None:
    cases = [*good_run(), case("crit", bad(), set="monitoring", severity="critical")]
    result = judge(cases, scorecard(thresholds={"monitoring": {"min_pass_rate": 0.5}}))
    assert result.verdict is Verdict.failed
    assert [c.name for c in result.failed_criteria] == ["critical case crit"]


def test_tag_threshold_applies_to_tagged_cases_only() -> None:
    cases = [*good_run(), case("adv", bad(), set="monitoring", tags=("adversarial",))]
    result = judge(cases, scorecard())
    assert [c.name for c in result.failed_criteria] == ["tag adversarial pass rate"]


def test_errors_over_budget_are_inconclusive_never_pass_or_fail() -> None:
    cases = [case(f"b{i}", err()) for i in range(5)] + [case("b-ok", ok())]
    result = judge(cases, scorecard())
    assert result.verdict is Verdict.inconclusive
    assert "error budget" in result.reason
    assert not any(c.held is False for c in result.criteria[1:] if c.name.startswith("set"))


def test_target_down_for_the_whole_run_is_inconclusive() -> None:
    result = judge([case(f"b{i}", err()) for i in range(5)], scorecard())
    assert result.verdict is Verdict.inconclusive


def test_a_critical_case_that_only_errored_makes_the_run_inconclusive() -> None:
    cases = [*[case(f"b{i}", ok()) for i in range(30)], case("crit", err(), severity="critical")]
    result = judge(cases, scorecard())
    assert result.verdict is Verdict.inconclusive
    assert "critical case crit" in result.reason


def test_budgets_fail_the_run_with_measured_values() -> None:
    slow = [case(f"b{i}", ok(latency=3000, cost=0.5)) for i in range(5)]
    result = judge(slow, scorecard())
    failed = {c.name: c for c in result.failed_criteria}
    assert set(failed) == {"latency p50", "latency p95", "cost per case (mean)", "cost per run"}
    assert failed["latency p95"].measured == "3000 ms"


def with_set_budgets(sets: dict[str, Any]) -> Scorecard:
    budgets = scorecard().budgets.model_dump()
    return scorecard(budgets={**budgets, "sets": sets})


def test_a_set_budget_fails_the_run_when_the_route_budget_holds() -> None:
    # 5 blocking cases at 1500 ms, 10 monitoring at 100 ms: route p95 1500 <= 2000,
    # blocking p95 1500 > 1000.
    cases = [case(f"b{i}", ok(latency=1500)) for i in range(5)] + [
        case(f"m{i}", ok(), set="monitoring") for i in range(10)
    ]
    assert judge(cases, scorecard()).verdict is Verdict.passed
    result = judge(cases, with_set_budgets({"blocking": {"latency_p95_ms": 1000}}))
    assert result.verdict is Verdict.failed
    by_name = {c.name: c for c in result.criteria}
    assert by_name["latency p95"].held is True
    blocking = by_name["set blocking latency p95"]
    assert blocking.held is False
    assert (blocking.threshold, blocking.measured) == ("<= 1000 ms", "1500 ms")
    assert [c.name for c in result.failed_criteria] == ["set blocking latency p95"]
    assert result.reason == "failed: set blocking latency p95"


def test_set_budgets_come_right_after_the_route_budgets_in_order() -> None:
    limits = {"latency_p50_ms": 900, "latency_p95_ms": 900, "cost_per_case_usd": 1}
    result = judge(
        good_run(),
        with_set_budgets({"monitoring": {**limits, "cost_per_run_usd": 1}, "blocking": limits}),
    )
    assert result.verdict is Verdict.passed
    route_wide = [c.name for c in judge(good_run(), scorecard()).criteria]
    assert route_wide[-4:] == ["latency p50", "latency p95", "cost per case (mean)", "cost per run"]
    assert [c.name for c in result.criteria] == [
        *route_wide,
        "set blocking latency p50",
        "set blocking latency p95",
        "set blocking cost per case (mean)",
        "set monitoring latency p50",
        "set monitoring latency p95",
        "set monitoring cost per case (mean)",
        "set monitoring cost per run",
    ]


def test_a_set_budget_for_a_set_not_in_the_run_adds_no_criterion() -> None:
    blocking_only = [case(f"b{i}", ok()) for i in range(5)]
    plain = judge(blocking_only, scorecard())
    result = judge(
        blocking_only,
        with_set_budgets({"monitoring": {"latency_p95_ms": 1, "cost_per_run_usd": 0}}),
    )
    assert [c.name for c in result.criteria] == [c.name for c in plain.criteria]
    assert not any("monitoring" in c.name for c in result.criteria)
    assert result.verdict is Verdict.passed


def test_set_cost_per_run_counts_that_set_only() -> None:
    cases = [case(f"b{i}", ok(cost=0.01)) for i in range(5)] + [
        case(f"m{i}", SampleResult(True, 100.0, 0.005, 0.02), set="monitoring") for i in range(10)
    ]
    route = judge(cases, scorecard())
    (whole,) = [c for c in route.criteria if c.name == "cost per run"]
    assert (whole.measured, whole.held) == ("$0.1000", True)
    result = judge(
        cases,
        with_set_budgets(
            {"blocking": {"cost_per_run_usd": 0.06}, "monitoring": {"cost_per_run_usd": 0.04}}
        ),
    )
    by_name = {c.name: c for c in result.criteria}
    blocking, monitoring = (
        by_name["set blocking cost per run"],
        by_name["set monitoring cost per run"],
    )
    assert (blocking.threshold, blocking.measured, blocking.held) == ("<= $0.06", "$0.0500", True)
    assert blocking.detail == "judge $0.0000 apart"
    assert (monitoring.measured, monitoring.held) == ("$0.0500", False)
    assert monitoring.detail == "judge $0.2000 apart"
    assert [c.name for c in result.failed_criteria] == ["set monitoring cost per run"]
    assert result.verdict is Verdict.failed


def test_set_cost_per_case_is_the_mean_over_that_set() -> None:
    cases = [case("b0", ok(cost=0.004), ok(cost=0.002)), case("b1", ok(cost=0.0))] + [
        case(f"m{i}", ok(cost=0.009), set="monitoring") for i in range(3)
    ]
    result = judge(cases, with_set_budgets({"blocking": {"cost_per_case_usd": 0.003}}))
    (per_case,) = [c for c in result.criteria if c.name == "set blocking cost per case (mean)"]
    assert (per_case.measured, per_case.held) == ("$0.003000", True)


def test_a_set_budget_with_no_successful_call_cannot_be_measured() -> None:
    cases = [*[case(f"b{i}", ok()) for i in range(30)], case("m0", err(), set="monitoring")]
    result = judge(cases, with_set_budgets({"monitoring": {"latency_p95_ms": 3000}}))
    (p95,) = [c for c in result.criteria if c.name == "set monitoring latency p95"]
    assert (p95.threshold, p95.measured, p95.held) == ("<= 3000 ms", "no successful call", None)


def test_samples_combine_by_rule_and_mixed_cases_are_flaky() -> None:
    mixed = case("mixed", ok(), bad(), ok())
    assert case_passed(mixed, SampleRule(mode="all")) is False
    assert case_passed(mixed, SampleRule(mode="at_least", min_passes=2)) is True
    assert case_passed(mixed, SampleRule(mode="at_least", min_passes=5)) is False  # capped at 3
    assert case_passed(case("e", ok(), err()), SampleRule(mode="all")) is None
    result = judge([*good_run(), mixed], scorecard(samples={"mode": "at_least", "min_passes": 2}))
    assert result.verdict is Verdict.passed and result.flaky == ["mixed"]


def test_verdict_of_real_runs_good_and_regressed(db_url: str) -> None:
    from pathlib import Path

    from evalcore import aio
    from evalcore.local.reference import Knobs, ReferenceServer
    from evalcore.results.loader import load_results
    from evalcore.run import RunRequest, execute_run, prepare_run
    from evalcore.store.engine import get_engine
    from evalcore.suite import EvalSet, load_suite

    suite = load_suite(Path(__file__).resolve().parents[2] / "evals")
    engine = get_engine(db_url)
    verdicts = {}
    with ReferenceServer(Knobs()) as server:
        for version in ("v1", "regressed-refunds"):
            request = RunRequest(
                sets=(EvalSet.blocking,),
                target_url=server.base_url,
                judge_url=server.base_url,
                model=f"support-assistant@{version}",
            )
            run = prepare_run(engine, suite, request)
            aio.run(execute_run(engine, suite, run))
            verdicts[version] = judge(load_results(engine, run.id).cases, suite.scorecard)
    assert verdicts["v1"].verdict is Verdict.passed, verdicts["v1"].reason
    regressed = verdicts["regressed-refunds"]
    assert regressed.verdict is Verdict.failed
    failed = {c.name for c in regressed.failed_criteria}
    assert "set blocking pass rate" in failed
    refund_cases = {c.id for c in suite.select(sets=[EvalSet.blocking], tags=["refunds"])}
    (blocking,) = [c for c in regressed.criteria if c.name == "set blocking pass rate"]
    assert any(case_id in blocking.detail for case_id in refund_cases)


def nondeterministic(**rule: Any) -> Scorecard:
    return scorecard(samples={"nondeterministic": True, "max_extra": 10, **rule})


def test_a_failing_case_cleared_by_re_sampling_passes_and_the_rule_is_written() -> None:
    # Failed one of its 3 own samples, then passed 9 extra: healthy under 0.95 vs 0.5.
    flaky = case("b-flaky", ok(), bad(), ok(), *[ok() for _ in range(9)])
    result = judge([*good_run(), flaky], nondeterministic(), resampled={"b-flaky": 3})
    assert result.verdict is Verdict.passed, result.reason
    (line,) = [c for c in result.criteria if c.name == "sequential re-sampling"]
    assert line.held is True
    assert line.threshold == "SPRT p 0.95 vs 0.5, alpha 0.05, beta 0.05, <= 10 extra"
    assert line.measured == "1 re-sampled, 9 extra samples: 1 healthy, 0 broken, 0 undecided"
    assert "b-flaky: healthy after 9 extra samples, 11/12 passed" in line.detail
    assert result.extra_samples == 9 and result.outcome_of("b-flaky") == "healthy"


def test_a_re_sampled_case_the_budget_leaves_undecided_makes_the_verdict_inconclusive() -> None:
    # 2 passes after the failure, budget 2: between the boundaries.
    flaky = case("b-flaky", bad(), ok(), ok(), severity="critical")
    result = judge([*good_run(), flaky], nondeterministic(max_extra=2), resampled={"b-flaky": 1})
    assert result.verdict is Verdict.inconclusive
    assert "sequential re-sampling" in result.reason
    line = next(c for c in result.criteria if c.name == "sequential re-sampling")
    assert line.held is None and "b-flaky: undecided (budget spent) after 2 extra" in line.detail
    critical = next(c for c in result.criteria if c.name == "critical case b-flaky")
    assert (critical.measured, critical.held) == ("undecided after re-sampling", None)
    rate = next(c for c in result.criteria if c.name == "set blocking pass rate")
    assert "undecided after re-sampling: b-flaky" in rate.detail


def test_a_re_sampled_case_that_keeps_failing_is_broken_and_fails() -> None:
    broken = case("b-broken", bad(), bad(), ok())
    result = judge([*good_run(), broken], nondeterministic(), resampled={"b-broken": 1})
    assert result.verdict is Verdict.failed
    assert result.outcome_of("b-broken") == "broken"
    failed = {c.name for c in result.failed_criteria}
    assert failed == {"set blocking pass rate", "sequential re-sampling"}


def test_extra_samples_never_make_the_samples_rule_pass() -> None:
    """at_least 2 of 3: one own pass, then two extra passes. The rule on every sample
    would say pass; the case is judged by the sequential test alone."""
    card = nondeterministic(mode="at_least", min_passes=2, max_extra=2)
    flaky = case("b-flaky", ok(), bad(), bad(), ok(), ok())
    result = judge([*good_run(), flaky], card, resampled={"b-flaky": 3})
    assert result.verdict is Verdict.inconclusive
    assert result.outcome_of("b-flaky") == "undecided"  # 3 of 5 passed: neither boundary


def test_a_route_not_marked_nondeterministic_is_judged_as_before() -> None:
    failing = case("b-flaky", ok(), bad(), ok())
    result = judge([*good_run(), failing], scorecard())
    assert result.verdict is Verdict.failed
    assert result.sequential == [] and result.sequential_rule == ""
    assert all(c.name != "sequential re-sampling" for c in result.criteria)


def test_monitoring_cases_are_never_judged_sequentially() -> None:
    failing = case("m-flaky", ok(), bad(), ok(), set="monitoring")
    result = judge([*good_run(), failing], nondeterministic())
    assert result.sequential == []
    line = next(c for c in result.criteria if c.name == "sequential re-sampling")
    assert (line.measured, line.held) == ("no blocking case failed", True)


def test_the_verdict_carries_pass_at_k_and_pass_hat_k_of_the_cases_own_samples() -> None:
    cases = [
        case("b1", ok(), ok(), bad()),
        case("b2", ok(), ok(), ok()),
        # re-sampled: only its own 3 samples count, not the 6 extra ones
        case("b3", ok(), bad(), ok(), *[ok() for _ in range(6)]),
    ]
    result = judge(cases, nondeterministic(), resampled={"b3": 3})
    (all_scope, blocking) = result.reliability
    assert (all_scope.scope, all_scope.cases, all_scope.k) == ("all", 3, 3)
    assert blocking.scope == "set:blocking"
    # pass^3: b1 0, b2 1, b3 0 -> 1/3; pass@3: every case passed at least once -> 1
    assert all_scope.pass_hat_k == pytest.approx(1 / 3)
    assert all_scope.pass_at_k == pytest.approx(1.0)
