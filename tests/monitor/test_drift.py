"""Drift statistics: dataset changes, flaky cases, pass-rate and route tests under one
Benjamini-Hochberg family, flips; on synthetic snapshots, on seeded runs of a
nondeterministic target (the false-alarm rate over hundreds of repetitions, a regression
in the same noise), then against the reference target (an injected regression, an older
dataset).
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sqlalchemy.engine import Engine

from evalcore import aio
from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.monitor.drift import (
    Finding,
    FindingKind,
    Severity,
    analyse,
)
from evalcore.results.loader import (
    CaseResults,
    FailedSample,
    RunResults,
    SampleResult,
    load_results,
)
from evalcore.run import RunRequest, execute_run, prepare_run
from evalcore.store.engine import get_engine
from evalcore.store.repository import create_run, insert_results, record_dataset_version
from evalcore.store.tables import DriftFindingRow, RunRow
from evalcore.suite import Suite, load_suite
from evalcore.suite.scorecard import Budgets, DriftSettings

DRIFT_SUITE = Path(__file__).resolve().parents[1] / "data" / "drift"
SETTINGS = DriftSettings()  # alpha 0.05, fdr 0.1, min_effect 0.05, method sequential
PER_NIGHT = DriftSettings(method="per_night")


# --------------------------------------------------------------------------- helpers


def case(
    case_id: str,
    passes: int,
    fails: int = 0,
    *,
    errors: int = 0,
    set: str = "monitoring",
    severity: str = "medium",
    tags: tuple[str, ...] = (),
    latency: float = 100.0,
    cost: float = 0.001,
) -> CaseResults:
    samples = (
        [SampleResult(True, latency, cost, 0.0)] * passes
        + [SampleResult(False, latency, cost, 0.0)] * fails
        + [SampleResult(None, None, 0.0, 0.0)] * errors
    )
    return CaseResults(case_id, set, severity, tags, tuple(samples))


def snapshot(
    run_id: str, cases: Sequence[CaseResults], hashes: dict[str, str] | None = None
) -> RunResults:
    if hashes is None:
        hashes = {c.case_id: f"hash-{c.case_id}" for c in cases}
    run = RunRow(
        id=run_id,
        route="support",
        target={},
        target_config={},
        dataset_hash=f"dataset-{run_id}",
        scorecard_version="s",
        scorecard={},
        sets=["monitoring"],
        suite_path="/s",
        settings={},
    )
    return RunResults(run, list(cases), hashes)


def drift(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.kind is FindingKind.drift]


def by_scope(findings: Sequence[Finding], metric: str) -> dict[str, Finding]:
    return {f.scope: f for f in findings if f.metric == metric}


# --------------------------------------------------------------------------- the API


def test_severity_orders_and_parses() -> None:
    assert [s.rank for s in Severity] == [0, 1, 2, 3, 4]
    assert Severity.critical.rank > Severity.high.rank > Severity.info.rank
    assert Severity.parse(" High ") is Severity.high
    with pytest.raises(ValueError, match="info, low, medium, high, critical"):
        Severity.parse("severe")


def test_only_drift_at_low_or_above_is_an_alarm_and_a_finding_maps_onto_its_row() -> None:
    finding = Finding(FindingKind.drift, "pass_rate", "tag:refunds", Severity.low)
    assert finding.alarm
    assert not Finding(FindingKind.drift, "flip_pass_to_fail", "case:x", Severity.info).alarm
    assert not Finding(FindingKind.flaky, "pass_fraction", "case:x", Severity.low).alarm
    assert not Finding(FindingKind.dataset_change, "added", "case:x", Severity.info).alarm
    values = finding.row_values()
    row = DriftFindingRow(run_id="r", route="support", **values)
    columns = set(DriftFindingRow.model_fields) - {"id", "run_id", "baseline_run_id", "route"}
    assert set(values) == columns - {"created_at"}
    assert (row.kind, row.severity, row.detail, row.proposal) == ("drift", "low", "", None)


# --------------------------------------------------------------------------- synthetic runs


def test_dataset_changes_are_reported_and_left_out_of_every_statistic() -> None:
    stable = [case(f"s{i}", 20, tags=("shipping",)) for i in range(5)]
    baseline = snapshot("base", [*stable, case("edited", 20, tags=("refunds",)), case("gone", 20)])
    # Were "edited" compared, it would be a flip (20 passes -> 20 failures) and a drop of
    # tag refunds; "new" fails every sample too.
    current = snapshot(
        "cur",
        [*stable, case("edited", 0, 20, tags=("refunds",)), case("new", 0, 20, tags=("refunds",))],
        {**{c.case_id: f"hash-{c.case_id}" for c in stable}, "edited": "hash-edited-2", "new": "h"},
    )
    findings = analyse(current, baseline, SETTINGS)
    changes = {(f.metric, f.scope) for f in findings if f.kind is FindingKind.dataset_change}
    assert changes == {("changed", "case:edited"), ("removed", "case:gone"), ("added", "case:new")}
    assert all(
        f.severity is Severity.info and not f.alarm
        for f in findings
        if f.kind is FindingKind.dataset_change
    )
    assert drift(findings) == []


def test_a_case_passing_half_its_samples_is_flaky_not_drift() -> None:
    others = [case(f"ok{i}", 10, tags=("account",)) for i in range(5)]
    baseline = snapshot(
        "base", [*others, case("coin", 5, 5, tags=("refunds",)), case("gate", 6, 4, set="blocking")]
    )
    current = snapshot(
        "cur", [*others, case("coin", 4, 6, tags=("refunds",)), case("gate", 5, 5, set="blocking")]
    )
    findings = analyse(current, baseline, SETTINGS)
    flaky = {f.scope: f for f in findings if f.kind is FindingKind.flaky}
    assert set(flaky) == {"case:coin", "case:gate"}
    coin, gate = flaky["case:coin"], flaky["case:gate"]
    assert (coin.metric, coin.severity, coin.current_value, coin.baseline_value) == (
        "pass_fraction",
        Severity.low,
        0.4,
        0.5,
    )
    assert coin.proposal is not None and "samples: {mode: at_least" in coin.proposal
    assert "monitoring set" not in coin.proposal
    assert gate.proposal is not None and "move it to the monitoring set" in gate.proposal
    assert not any(f.alarm for f in findings)
    assert drift(findings) == []


@pytest.mark.parametrize("settings", [SETTINGS, PER_NIGHT], ids=["sequential", "per_night"])
def test_a_big_drop_on_one_tag_is_flagged_high_with_a_negative_effect(
    settings: DriftSettings,
) -> None:
    shipping = [case(f"ship{i}", 5, tags=("shipping",)) for i in range(20)]
    baseline = snapshot(
        "base", [*shipping, *(case(f"ref{i}", 5, tags=("refunds",)) for i in range(20))]
    )
    current = snapshot(
        "cur", [*shipping, *(case(f"ref{i}", 3, 2, tags=("refunds",)) for i in range(20))]
    )
    findings = analyse(current, baseline, settings)
    rates = by_scope(drift(findings), "pass_rate")
    assert "tag:shipping" not in rates
    refunds = rates["tag:refunds"]
    assert refunds.alarm and refunds.severity is Severity.high
    assert refunds.baseline_value == 1.0
    assert refunds.current_value == pytest.approx(0.6)
    assert refunds.effect == pytest.approx(-0.4)
    assert refunds.p_value is not None and refunds.p_value < 1e-6
    assert refunds.ci_low is not None and refunds.ci_high is not None
    assert refunds.ci_low < 0.6 < refunds.ci_high
    if settings.method == "per_night":
        assert "BH-adjusted p=" in refunds.detail
    else:  # the method, the nights accumulated and the evidence
        assert "e-value" in refunds.detail and "after 1 nightly run(s)" in refunds.detail
        assert "e-BH" in refunds.detail
    # The set drops by 20 points: high too (>= 2 x min_effect); the worst come first.
    assert rates["set:monitoring"].severity is Severity.high
    ranks = [f.severity.rank for f in findings]
    assert ranks == sorted(ranks, reverse=True)


@pytest.mark.parametrize("method", ["sequential", "per_night"])
def test_a_significant_shift_below_the_minimum_effect_is_not_reported(method: str) -> None:
    # 100,000 samples a side: 95% -> 94% is far beyond chance (p ~ 1e-20) but 1 point.
    baseline = snapshot("base", [case(f"c{i}", 95, 5, tags=("big",)) for i in range(1000)])
    current = snapshot("cur", [case(f"c{i}", 94, 6, tags=("big",)) for i in range(1000)])
    assert stats.chi2_contingency([[95_000, 5_000], [94_000, 6_000]]).pvalue < 1e-12
    settings = DriftSettings.model_validate({"method": method})
    assert by_scope(drift(analyse(current, baseline, settings)), "pass_rate") == {}
    # The same shift is reported once the minimum effect allows it.
    small = DriftSettings.model_validate({"method": method, "min_effect": 0.005})
    reported = by_scope(drift(analyse(current, baseline, small)), "pass_rate")
    assert set(reported) == {"tag:big", "set:monitoring"}
    assert reported["tag:big"].severity is Severity.high  # 0.01 >= 2 x 0.005


@pytest.mark.parametrize("settings", [SETTINGS, PER_NIGHT], ids=["sequential", "per_night"])
def test_one_family_of_tests_only_the_real_drop_survives(settings: DriftSettings) -> None:
    tags = [f"t{i:02d}" for i in range(40)]
    base_cases = [case(f"c-{tag}", 40, tags=(tag,)) for tag in tags]
    cur_cases = list(base_cases)
    cur_cases[0] = case("c-t00", 10, 30, tags=("t00",))  # a real drop
    cur_cases[1] = case("c-t01", 34, 6, tags=("t01",))  # p ~ 0.03 alone, chance among 40 tags
    raw_p = stats.fisher_exact([[40, 0], [34, 6]]).pvalue
    assert raw_p < settings.alpha  # reported, were each tag tested on its own
    findings = drift(analyse(snapshot("cur", cur_cases), snapshot("base", base_cases), settings))
    flagged = {f.scope for f in findings if f.scope.startswith("tag:")}
    assert flagged == {"tag:t00"}


def test_flips_need_samples_to_be_alarms() -> None:
    steady = [case(f"ok{i}", 5) for i in range(5)]
    baseline = snapshot(
        "base",
        [
            *steady,
            case("crit", 5, severity="critical"),
            case("hi", 5, severity="high"),
            case("back", 0, 5),
            case("once", 1, severity="critical"),
        ],
    )
    current = snapshot(
        "cur",
        [
            *steady,
            case("crit", 0, 5, severity="critical"),
            case("hi", 0, 5, severity="high"),
            case("back", 5),
            case("once", 0, 1, severity="critical"),
        ],
    )
    findings = analyse(current, baseline, SETTINGS)
    flips = {f.scope: f for f in drift(findings) if f.metric.startswith("flip_")}
    assert set(flips) == {"case:crit", "case:hi", "case:back", "case:once"}
    assert (flips["case:crit"].metric, flips["case:crit"].severity) == (
        "flip_pass_to_fail",
        Severity.critical,
    )
    assert flips["case:hi"].severity is Severity.high
    assert (flips["case:back"].metric, flips["case:back"].severity) == (
        "flip_fail_to_pass",
        Severity.low,
    )
    assert flips["case:crit"].p_value == pytest.approx(2 / 252)  # Fisher, 5 vs 5 samples
    assert flips["case:crit"].effect == -1.0 and flips["case:back"].effect == 1.0
    once = flips["case:once"]
    assert once.severity is Severity.info and not once.alarm
    assert "too few samples to tell" in once.detail
    assert {f.scope for f in findings if f.alarm} >= {"case:crit", "case:hi", "case:back"}


def test_route_latency_cost_and_errors_are_compared() -> None:
    base = [case(f"c{i}", 10, latency=100.0 + i, cost=0.001) for i in range(20)]
    cur = [
        case(f"c{i}", 8, errors=2, latency=400.0 + i, cost=0.002)
        if i < 10
        else case(f"c{i}", 10, latency=400.0 + i, cost=0.001)
        for i in range(20)
    ]
    found = drift(analyse(snapshot("c", cur), snapshot("b", base), SETTINGS))
    route = {f.metric: f for f in found if f.scope == "route"}
    assert [f for f in found if f.scope != "route"] == []  # errors are not failures
    assert set(route) >= {"latency", "cost_per_case"}
    latency = route["latency"]
    assert latency.scope == "route" and latency.effect is not None and latency.effect > 0.05
    assert "p50" in latency.detail and "p95" in latency.detail
    assert latency.baseline_value is not None and latency.current_value is not None
    assert latency.current_value > latency.baseline_value  # the p95s
    cost = route["cost_per_case"]
    # 10 of 20 cases cost 8 x 0.002 instead of 10 x 0.001 (errors cost nothing): +30%.
    assert cost.effect == pytest.approx(0.3)
    assert cost.severity is Severity.high and cost.alarm
    errors = route["error_rate"]
    assert (errors.baseline_value, errors.current_value) == (0.0, 0.1)  # 20 of 200 samples
    assert errors.severity is Severity.high and errors.effect == pytest.approx(0.1)


# --------------------------------------------------------------------------- the store


def test_load_results_reads_back_what_was_stored(db_url: str) -> None:
    engine = get_engine(db_url)

    def dataset(version: str, edited_hash: str) -> None:
        rows = [
            ("a", "hash-a", "critical", ["refunds", "eu"]),
            ("b", edited_hash, "low", []),
            ("c", "hash-c", "high", ["refunds", "eu"]),
            ("unrun", "hash-u", "medium", ["shipping"]),
        ]
        record_dataset_version(
            engine,
            version_hash=version,
            git_commit=None,
            git_dirty=False,
            cases=[
                {
                    "case_id": case_id,
                    "case_hash": case_hash,
                    "set": "monitoring",
                    "severity": severity,
                    "tags": tags,
                    "samples": 2,
                    "body": {},
                }
                for case_id, case_hash, severity, tags in rows
            ],
            case_count=len(rows),
        )

    dataset("1" * 64, "hash-b-old")
    dataset("2" * 64, "hash-b-new")
    run = create_run(
        engine,
        RunRow(
            id="f00dcafe" + "0" * 24,
            route="support",
            target={},
            target_config={},
            dataset_hash="2" * 64,
            scorecard_version="s",
            scorecard={},
            sets=["monitoring"],
            suite_path="/s",
            settings={},
        ),
    )

    def result(
        case_id: str, sample: int, passed: bool | None, latency: float | None
    ) -> dict[str, Any]:
        return {
            "run_id": run.id,
            "case_id": case_id,
            "sample": sample,
            "set": "monitoring",
            "passed": passed,
            "error_class": None if passed is not None else "timeout",
            "scores": {},
            "latency_ms": latency,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost_usd": 0.0 if passed is None else 0.25 * (sample + 1),
            "judge_cost_usd": 0.5 if case_id == "c" else 0.0,
            "attempts": 1,
        }

    # Stored out of order: the snapshot comes back by case, then sample.
    insert_results(
        engine,
        [
            result("c", 1, False, 12.5),
            result("a", 1, None, None),
            result("b", 0, True, 7.0),
            result("a", 0, True, 3.25),
            result("c", 0, True, 11.0),
        ],
    )
    snap = load_results(engine, run.id, hashes=True)
    assert (snap.run_id, snap.dataset_hash) == (run.id, "2" * 64)
    assert snap.hashes == {"a": "hash-a", "b": "hash-b-new", "c": "hash-c", "unrun": "hash-u"}
    assert snap.cases == [
        CaseResults(
            "a",
            "monitoring",
            "critical",
            ("refunds", "eu"),
            (SampleResult(True, 3.25, 0.25, 0.0), SampleResult(None, None, 0.0, 0.0)),
        ),
        CaseResults("b", "monitoring", "low", (), (SampleResult(True, 7.0, 0.25, 0.0),)),
        CaseResults(
            "c",
            "monitoring",
            "high",
            ("refunds", "eu"),
            (SampleResult(True, 11.0, 0.25, 0.5), SampleResult(False, 12.5, 0.5, 0.5)),
        ),
    ]
    assert all(type(s.passed) in (bool, type(None)) for c in snap.cases for s in c.samples)
    assert snap.errors_by_class == {"timeout": 1}
    assert snap.failures == []  # read only when asked
    assert load_results(engine, run.id, failures=5).failures == [FailedSample("c", 1, {})]
    assert load_results(engine, run.id[:8], hashes=True) == snap  # the short id the CLI prints
    assert load_results(engine, run.id).hashes is None  # read only when asked
    with pytest.raises(KeyError):
        load_results(engine, "no-such-run")


# --------------------------------------------------------------------------- reference target


def run_once(engine: Engine, suite: Suite, base_url: str, concurrency: int | None = None) -> str:
    run = prepare_run(engine, suite, RunRequest(target_url=base_url, concurrency=concurrency))
    aio.run(execute_run(engine, suite, run))
    return run.id


def compare(engine: Engine, current: str, baseline: str, settings: DriftSettings) -> list[Finding]:
    return analyse(
        load_results(engine, current, hashes=True),
        load_results(engine, baseline, hashes=True),
        settings,
    )


@pytest.mark.slow
def test_an_injected_regression_names_its_tag_and_no_other(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'drift.db'}")
    suite = load_suite(DRIFT_SUITE)
    with ReferenceServer(Knobs(version="v1")) as good:
        baseline = run_once(engine, suite, good.base_url)
    with ReferenceServer(Knobs(version="regressed-refunds")) as bad:
        current = run_once(engine, suite, bad.base_url)
    findings = compare(engine, current, baseline, suite.scorecard.drift)

    tags = {f.scope: f for f in drift(findings) if f.scope.startswith("tag:")}
    assert set(tags) == {"tag:refunds"}  # shipping, account, safety, handoff, orders held
    refunds = tags["tag:refunds"]
    assert refunds.alarm and refunds.severity is Severity.high
    assert (refunds.baseline_value, refunds.current_value, refunds.effect) == (1.0, 0.0, -1.0)
    flips = {f.scope: f for f in drift(findings) if f.metric == "flip_pass_to_fail"}
    refund_cases = {c.id for c in suite.cases if "refunds" in c.tags}
    assert set(flips) == {f"case:{c}" for c in refund_cases}
    assert flips["case:refund-eu-berlin"].severity is Severity.critical  # a critical case
    assert flips["case:refund-eu-lyon"].severity is Severity.high
    kinds = {f.kind for f in findings}
    assert kinds == {FindingKind.drift, FindingKind.evidence}  # same dataset, stable


# --------------------------------------------------------------------------- seeded noise

# How the reference target answers with `Knobs(nondeterminism=0.3, latency_ms=30,
# latency_sd_ms=10)`: 30% of the answers checked for a fact vary, half of those drop the
# fact (refusals and hand-offs never vary); latency is lognormal, 30 +- 10 ms; a call
# costs its tokens at the drift suite's prices, a varied answer being a little longer or
# shorter.
VARIES, DROPS_THE_FACT = 0.3, 0.5
LATENCY_MS, LATENCY_SD_MS = 30.0, 10.0
PROMPT_TOKENS, COMPLETION_TOKENS = 60, 40
PRICE_IN_USD, PRICE_OUT_USD = 0.15e-6, 0.60e-6  # per token
NOISE_REPETITIONS = 300


def seeded_run(
    run_id: str, suite: Suite, rng: np.random.Generator, broken_tag: str | None = None
) -> RunResults:
    """A monitoring run of `suite` as the nondeterministic target above answers it, every
    draw from `rng`; the cases tagged `broken_tag` fail every sample (a regression)."""
    sigma = math.sqrt(math.log(1 + (LATENCY_SD_MS / LATENCY_MS) ** 2))
    mu = math.log(LATENCY_MS) - sigma**2 / 2
    cases = []
    for case in suite.cases:
        samples = []
        for _ in range(case.samples):
            varied = bool(case.expect.contains) and rng.random() < VARIES
            passed = broken_tag not in case.tags and not (varied and rng.random() < DROPS_THE_FACT)
            completion = COMPLETION_TOKENS + (int(rng.integers(-10, 11)) if varied else 0)
            cost = PROMPT_TOKENS * PRICE_IN_USD + completion * PRICE_OUT_USD
            samples.append(SampleResult(passed, float(rng.lognormal(mu, sigma)), cost, 0.0))
        cases.append(
            CaseResults(
                case.id, case.set.value, case.severity.value, tuple(case.tags), tuple(samples)
            )
        )
    return snapshot(run_id, cases)


def test_an_unchanged_nondeterministic_target_rarely_raises_an_alarm() -> None:
    suite = load_suite(DRIFT_SUITE)
    settings = suite.scorecard.drift
    alarmed: list[list[str]] = []
    flaky = 0
    for seed in range(NOISE_REPETITIONS):
        rng = np.random.default_rng(seed)
        baseline, current = (seeded_run(f"{side}-{seed}", suite, rng) for side in "bc")
        findings = analyse(current, baseline, settings)
        flaky += sum(f.kind is FindingKind.flaky for f in findings)
        alarms = [f"{f.metric} {f.scope}: {f.detail}" for f in findings if f.alarm]
        if alarms:
            alarmed.append(alarms)
    assert flaky > NOISE_REPETITIONS  # the target did vary: this is a test of noise, not of none
    rate = len(alarmed) / NOISE_REPETITIONS
    # Under no change, P(any alarm) <= min(alpha, fdr) = 0.05 per repetition. The count of
    # alarmed repetitions is then at most Binomial(300, 0.05): sd = sqrt(0.05 x 0.95 / 300)
    # ~ 0.0126, so alpha + 0.025 is two sd above the bound. Each test at its raw p-value,
    # without Benjamini-Hochberg, alarms in about 14% of these repetitions.
    assert rate <= settings.alpha + 0.025, alarmed


def test_a_regression_in_the_same_noise_is_caught_every_time() -> None:
    suite = load_suite(DRIFT_SUITE)
    settings = suite.scorecard.drift
    repetitions = 100
    others_alarmed = 0
    for seed in range(repetitions):
        rng = np.random.default_rng(NOISE_REPETITIONS + seed)
        baseline = seeded_run(f"b-{seed}", suite, rng)
        current = seeded_run(f"c-{seed}", suite, rng, broken_tag="refunds")
        tags = {f.scope: f for f in drift(analyse(current, baseline, settings)) if f.alarm}
        refunds = tags.pop("tag:refunds", None)
        assert refunds is not None, (seed, sorted(tags))
        assert refunds.severity is Severity.high and refunds.effect is not None
        assert refunds.effect < -0.5
        others_alarmed += any(scope.startswith("tag:") for scope in tags)
    assert others_alarmed <= settings.alpha * repetitions  # the tags that held stay quiet


@pytest.mark.slow
def test_a_baseline_on_an_older_dataset_sees_dataset_changes_not_drift(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'drift.db'}")
    root = tmp_path / "suite"
    shutil.copytree(DRIFT_SUITE, root)
    with ReferenceServer(Knobs(version="v1")) as ref:
        baseline = run_once(engine, load_suite(root), ref.base_url)
        # Since the baseline: every shipping case now expects what v1 never says, the order
        # cases are gone, and a new shipping case fails too. Compared as they are, shipping
        # would collapse and the edited cases would flip.
        shipping = root / "cases" / "shipping.yaml"
        shipping.write_text(
            re.sub(r'contains: \["', 'contains: ["never said: ', shipping.read_text())
        )
        (root / "cases" / "orders.yaml").unlink()
        (root / "cases" / "new.yaml").write_text(
            "- id: shipping-new\n  set: monitoring\n  tags: [shipping]\n  samples: 5\n"
            "  input: {messages: [{role: user, content: how long does shipping take?}]}\n"
            "  expect: {contains: [teleported]}\n"
        )
        suite = load_suite(root)
        current = run_once(engine, suite, ref.base_url)
    findings = compare(engine, current, baseline, suite.scorecard.drift)

    changes = {(f.metric, f.scope) for f in findings if f.kind is FindingKind.dataset_change}
    shipping_ids = [c.id for c in suite.cases if "shipping" in c.tags and c.id != "shipping-new"]
    assert changes == {
        *(("changed", f"case:{c}") for c in shipping_ids),
        ("removed", "case:orders-lookup"),
        ("removed", "case:orders-lookup-status"),
        ("removed", "case:orders-cancel"),
        ("added", "case:shipping-new"),
    }
    # Nothing about cases or tags is drift; only the route's latency may differ between
    # two runs on a shared machine, and that is not what this test is about.
    assert [f for f in drift(findings) if f.scope != "route"] == []
    assert not [f for f in findings if f.kind is FindingKind.flaky]


def test_thousands_of_untestable_flips_are_capped_and_summed_up() -> None:
    from evalcore.monitor.drift import (
        MAX_UNSURE_FLIPS,
        Finding,
        FindingKind,
        Severity,
        _capped_unsure_flips,
    )

    unsure = [
        Finding(FindingKind.drift, "flip_pass_to_fail", f"case:c-{i:05d}", Severity.info)
        for i in range(1000)
    ]
    kept = _capped_unsure_flips(list(unsure))
    assert len(kept) == MAX_UNSURE_FLIPS + 1
    summary = kept[-1]
    assert (summary.metric, summary.scope, summary.current_value) == (
        "untested_flips",
        "route",
        float(1000 - MAX_UNSURE_FLIPS),
    )
    assert summary.detail.startswith(f"{1000 - MAX_UNSURE_FLIPS} more case(s) flipped")
    assert not summary.alarm
    assert _capped_unsure_flips(unsure[:3]) == unsure[:3]


def latency_runs(base_ms: float, cur_ms: float) -> tuple[RunResults, RunResults]:
    rng = np.random.default_rng(5)

    def run(run_id: str, median: float) -> RunResults:
        return snapshot(
            run_id,
            [
                CaseResults(
                    f"c{i}",
                    "monitoring",
                    "medium",
                    (),
                    tuple(
                        SampleResult(True, float(median * rng.lognormal(0, 0.1)), 0.001, 0.0)
                        for _ in range(3)
                    ),
                )
                for i in range(100)
            ],
            {f"c{i}": "h" for i in range(100)},
        )

    return run("c", cur_ms), run("b", base_ms)


def test_a_loopback_latency_shift_of_milliseconds_is_no_alarm() -> None:
    # 7 -> 23 ms median: beyond chance (Mann-Whitney p ~ 1e-100) but nothing a user notices.
    current, baseline = latency_runs(7.0, 23.0)
    budgets = Budgets(latency_p50_ms=500, latency_p95_ms=2000)
    assert drift(analyse(current, baseline, SETTINGS, budgets=budgets)) == []
    assert drift(analyse(current, baseline, SETTINGS)) == []  # min_latency_change_ms alone
    # With the bar lowered to 10 ms and no budget it is one.
    low = DriftSettings(min_latency_change_ms=10)
    (finding,) = drift(analyse(current, baseline, low))
    assert finding.metric == "latency" and "matters from +10 ms" in finding.detail


def test_a_shift_of_forty_percent_of_the_p95_budget_is_an_alarm_ranked_by_budget() -> None:
    budgets = Budgets(latency_p95_ms=2000)
    current, baseline = latency_runs(300.0, 1100.0)  # +800 ms: 40% of the p95 budget
    (finding,) = drift(analyse(current, baseline, SETTINGS, budgets=budgets))
    assert (finding.metric, finding.severity) == ("latency", Severity.medium)
    assert "40% of the p95 2000 ms budget" in finding.detail
    # Half the budget is high; 15% of it an alarm ranked low; under 10% of it none.
    current, baseline = latency_runs(300.0, 1400.0)
    (finding,) = drift(analyse(current, baseline, SETTINGS, budgets=budgets))
    assert finding.severity is Severity.high
    current, baseline = latency_runs(300.0, 600.0)
    (finding,) = drift(analyse(current, baseline, SETTINGS, budgets=budgets))
    assert finding.severity is Severity.low
    current, baseline = latency_runs(300.0, 450.0)
    assert drift(analyse(current, baseline, SETTINGS, budgets=budgets)) == []


def test_a_cost_change_needs_a_tenth_of_the_cost_budget() -> None:
    base = [case(f"c{i}", 10, cost=0.001) for i in range(20)]
    dearer = [case(f"c{i}", 10, cost=0.0012) for i in range(20)]  # +0.002 per case
    found = drift(analyse(snapshot("c", dearer), snapshot("b", base), SETTINGS))
    assert [f.metric for f in found] == ["cost_per_case"]  # no budget: significant is enough
    small = drift(
        analyse(
            snapshot("c", dearer),
            snapshot("b", base),
            SETTINGS,
            budgets=Budgets(cost_per_case_usd=0.05),  # +0.002 is 4% of it
        )
    )
    assert small == []
    (big,) = drift(
        analyse(
            snapshot("c", dearer),
            snapshot("b", base),
            SETTINGS,
            budgets=Budgets(cost_per_case_usd=0.004),  # half of it
        )
    )
    assert big.severity is Severity.high and "50% of the $0.004 per case budget" in big.detail


def test_no_cost_drift_when_either_run_could_not_price_its_calls() -> None:
    base = [case(f"c{i}", 10, cost=0.001) for i in range(20)]
    unpriced = [case(f"c{i}", 10, cost=0.0) for i in range(20)]  # a model with no price
    current = snapshot("c", unpriced)
    current.run.settings = {"unpriced": {"target": "model 'm' has no price under `prices`"}}
    assert drift(analyse(current, snapshot("b", base), SETTINGS)) == []
    # The same figures, both runs priced: the drop is an alarm.
    found = drift(analyse(snapshot("c", unpriced), snapshot("b", base), SETTINGS))
    assert [f.metric for f in found] == ["cost_per_case"]
