"""A cost the run could not price: every cost budget over it is not measurable (the verdict
inconclusive, never pass, naming the model), no cost budget means no change to the
verdict, a quality failure still fails, and the judge's unknown cost is said apart. What
a run could not price is read from its settings, or for an older run from the scorecard
stored with it."""

from __future__ import annotations

from typing import Any

from evalcore.results.pricing import PRICED, Pricing, run_pricing
from evalcore.results.verdict import Verdict, judge
from evalcore.store.tables import RunRow
from tests.results.test_verdict import bad, case, good_run, scorecard

NO_PRICE = "model 'm' has no price under `prices`"


def cost_criteria(names: list[str]) -> list[str]:
    return [name for name in names if "cost" in name]


def test_every_cost_budget_over_an_unpriced_model_is_not_measurable() -> None:
    card = scorecard(
        budgets={
            "cost_per_case_usd": 0.01,
            "cost_per_run_usd": 1.0,
            "sets": {"monitoring": {"cost_per_run_usd": 0.5}},
        }
    )
    result = judge(good_run(), card, pricing=Pricing(target=NO_PRICE))

    unmeasured = [c for c in result.criteria if "cost" in c.name]
    assert [c.name for c in unmeasured] == [
        "cost per case (mean)",
        "cost per run",
        "set monitoring cost per run",
    ]
    assert all((c.measured, c.held) == ("not measurable", None) for c in unmeasured)
    assert all(c.detail.startswith(NO_PRICE) for c in unmeasured)
    assert result.verdict is Verdict.inconclusive
    assert result.reason == (
        "could not be measured: cost per case (mean), cost per run, set monitoring cost per "
        f"run ({NO_PRICE}: the cost is unknown)"
    )
    # The same run, priced, passes: only the unknown cost held it back.
    assert judge(good_run(), card).verdict is Verdict.passed


def test_without_a_cost_budget_an_unknown_cost_changes_no_verdict() -> None:
    card = scorecard(budgets={"latency_p95_ms": 2000})
    result = judge(good_run(), card, pricing=Pricing(target=NO_PRICE))
    assert result.verdict is Verdict.passed
    assert cost_criteria([c.name for c in result.criteria]) == []


def test_a_quality_failure_still_fails_a_run_whose_cost_is_unknown() -> None:
    cases = [*good_run()[1:], case("b0", bad())]
    result = judge(cases, scorecard(), pricing=Pricing(target=NO_PRICE))
    assert result.verdict is Verdict.failed
    assert "set blocking pass rate" in [c.name for c in result.failed_criteria]


def test_an_unpriced_judge_is_said_apart_and_leaves_the_budgets_measured() -> None:
    why = "model 'grader' has no price under `prices`"
    result = judge(good_run(), scorecard(), pricing=Pricing(judge=why))
    per_run = next(c for c in result.criteria if c.name == "cost per run")
    assert per_run.held is True and per_run.measured == "$0.0150"
    assert per_run.detail == f"judge cost unknown: {why}"
    assert result.judge_cost_usd is None and result.verdict is Verdict.passed


def run_row(**fields: Any) -> RunRow:
    values: dict[str, Any] = {
        "id": "r" * 32,
        "route": "r",
        "target": {"kind": "openai_chat"},
        "target_config": {},
        "dataset_hash": "d" * 64,
        "scorecard_version": "s" * 64,
        "scorecard": {},
        "sets": ["monitoring"],
        "suite_path": "evals",
        "settings": {},
        **fields,
    }
    return RunRow(**values)


def test_a_run_says_what_it_could_not_price_as_recorded_when_it_started() -> None:
    recorded = run_row(settings={"unpriced": {"judge": "model 'grader' has no price"}})
    assert run_pricing(recorded) == Pricing(judge="model 'grader' has no price")
    assert run_pricing(run_row(settings={"unpriced": {}})) == PRICED


def test_an_older_run_is_priced_from_the_scorecard_stored_with_it() -> None:
    snapshot = {
        "prices": {"m": {"input_per_mtok": 1, "output_per_mtok": 2}},
        "target": {"kind": "openai_chat", "model": "m"},
        "judge": {"base_url": "http://j/v1", "model": "grader"},
    }
    # The model it ran with (after --model) is in target_config.
    overridden = run_pricing(run_row(scorecard=snapshot, target_config={"model": "m@v2"}))
    assert overridden.target == "model 'm@v2' has no price under `prices`"
    assert overridden.judge == "model 'grader' has no price under `prices`"
    plain = run_pricing(run_row(scorecard=snapshot, target_config={"model": "m"}))
    assert plain.cost_known and not plain.judge_cost_known
    nameless = run_pricing(run_row(scorecard=snapshot, target_config={"model": None}))
    assert nameless.target == "the target names no model, so no entry under `prices` applies"
    # Stored without a scorecard to tell from: what was stored stands.
    assert run_pricing(run_row()) == PRICED
