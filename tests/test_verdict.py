"""The verdict: thresholds per set and tag, critical cases, budgets, the error budget."""

from __future__ import annotations

from typing import Any

from evalcore.suite.scorecard import SampleRule, Scorecard
from evalcore.verdict import CaseResults, SampleResult, Verdict, case_passed, judge


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
    from evalcore.reference import Knobs, ReferenceServer
    from evalcore.runner import RunRequest, execute_run, prepare_run
    from evalcore.store.engine import get_engine
    from evalcore.suite import EvalSet, load_suite
    from evalcore.verdict import load_case_results

    suite = load_suite(Path(__file__).resolve().parent.parent / "evals")
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
            verdicts[version] = judge(load_case_results(engine, run.id), suite.scorecard)
    assert verdicts["v1"].verdict is Verdict.passed, verdicts["v1"].reason
    regressed = verdicts["regressed-refunds"]
    assert regressed.verdict is Verdict.failed
    failed = {c.name for c in regressed.failed_criteria}
    assert "set blocking pass rate" in failed
    refund_cases = {c.id for c in suite.select(sets=[EvalSet.blocking], tags=["refunds"])}
    (blocking,) = [c for c in regressed.criteria if c.name == "set blocking pass rate"]
    assert any(case_id in blocking.detail for case_id in refund_cases)
