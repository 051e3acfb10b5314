"""The sequential pass-rate test proven by simulation: an unchanged route stays quiet over a
month of nights against one baseline, a real drop is caught within a few nights, and the
vectorised statistics used here are the ones `analyse` runs (checked against it).

Synthetic results, fixed seeds, no servers: 200 cases x 3 samples in four tags of 50, with
heterogeneous pass probabilities (most cases near 1.0, some near 0.9, a few near 0.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from evalcore.monitor.drift import FindingKind, analyse, paired_night_of
from evalcore.monitor.sequential import (
    PairedNight,
    case_variance,
    e_bh,
    e_value,
    paired_night,
)
from evalcore.results.loader import CaseResults, SampleResult
from evalcore.suite.scorecard import DriftSettings
from tests.monitor.test_drift import snapshot

Array = np.ndarray[Any, Any]

CASES, SAMPLES, TAGS, NIGHTS, MONTHS = 200, 3, 4, 30, 200
SETTINGS = DriftSettings()
LEVEL = min(SETTINGS.alpha, SETTINGS.fdr)
TAG_OF = np.arange(CASES) % TAGS
SCOPES: list[Array] = [np.ones(CASES, dtype=bool), *(np.equal(TAG_OF, t) for t in range(TAGS))]


def pass_probabilities(rng: np.random.Generator, months: int) -> Array:
    draw = rng.random((months, CASES))
    return np.where(draw < 0.75, 0.99, np.where(draw < 0.93, 0.9, 0.5))


def month(
    seed: int, *, drop_from: int | None = None, drop: float = 0.1, months: int = MONTHS
) -> tuple[Array, Array]:
    """Per simulated month, the first night (0-based) with any set or tag alarm (-1: none),
    sequential and per-night; the route's pass probabilities drop by `drop` points from
    night `drop_from` on."""
    rng = np.random.default_rng(seed)
    p = pass_probabilities(rng, months)
    base = rng.binomial(SAMPLES, p).astype(float)
    scored = np.full((months, CASES), float(SAMPLES))
    differences: list[list[Array]] = [[] for _ in SCOPES]
    variances: list[list[Array]] = [[] for _ in SCOPES]
    first_sequential = np.full(months, -1)
    first_per_night = np.full(months, -1)
    for night in range(NIGHTS):
        now = p if drop_from is None or night < drop_from else np.clip(p - drop, 0.0, 1.0)
        cur = rng.binomial(SAMPLES, now).astype(float)
        e_values, p_values = [], []
        for i, scope in enumerate(SCOPES):
            difference, variance, share = paired_night(
                base[:, scope], scored[:, scope], cur[:, scope], scored[:, scope]
            )
            differences[i].append(difference)
            variances[i].append(variance)
            e_values.append(
                e_value(np.stack(differences[i], -1), np.stack(variances[i], -1), share)
            )
            p_values.append(two_proportion_p(base[:, scope], cur[:, scope], SAMPLES))
        sequential = e_bh(np.stack(e_values, -1), LEVEL).any(-1)
        adjusted = stats.false_discovery_control(np.stack(p_values, -1), axis=-1, method="bh")
        per_night = (adjusted <= LEVEL).any(-1)
        first_sequential = np.where((first_sequential < 0) & sequential, night, first_sequential)
        first_per_night = np.where((first_per_night < 0) & per_night, night, first_per_night)
    return first_sequential, first_per_night


def two_proportion_p(base: Array, cur: Array, samples: int) -> Array:
    """The per-night method's chi-squared two-proportion test on pooled samples."""
    n = base.shape[-1] * samples
    a, c = base.sum(-1), cur.sum(-1)
    pooled = (a + c) / (2 * n)
    se = np.sqrt(np.maximum(pooled * (1 - pooled) * 2 / n, 1e-12))
    return np.asarray(2 * stats.norm.sf(np.abs(c / n - a / n) / se))


def test_an_unchanged_route_raises_a_false_alarm_in_at_most_alpha_of_its_months() -> None:
    sequential, per_night = month(seed=13)
    any_sequential = float((sequential >= 0).mean())
    any_per_night = float((per_night >= 0).mean())
    print(
        f"\nunchanged route, {NIGHTS} nights x {MONTHS} months: months with a false alarm "
        f"{any_sequential:.1%} sequential, {any_per_night:.1%} testing each night alone"
    )
    assert any_sequential <= SETTINGS.alpha
    # The simulation is one where testing each night alone does cry wolf.
    assert any_per_night > 2 * SETTINGS.alpha


@pytest.mark.parametrize("drop_from", [0, 15])
def test_a_ten_point_drop_is_caught_within_three_nights(drop_from: int) -> None:
    sequential, _ = month(seed=29 + drop_from, drop_from=drop_from)
    assert not (sequential >= 0).any() or sequential[sequential >= 0].min() >= drop_from
    caught = float(((sequential >= drop_from) & (sequential < drop_from + 3)).mean())
    print(f"\n10-point drop from night {drop_from + 1}: caught within 3 nights in {caught:.1%}")
    assert caught >= 0.9


def test_nights_share_one_baseline_in_the_model_or_a_lucky_baseline_looks_like_a_drop() -> None:
    # The same e-process, but with the baseline's noise taken as each night's own
    # (independent nights): over a month the baseline's luck is taken for drift.
    rng = np.random.default_rng(3)
    months = 400
    p = pass_probabilities(rng, months)
    base = rng.binomial(SAMPLES, p).astype(float)
    scored = np.full((months, CASES), float(SAMPLES))
    nights = [
        paired_night(base, scored, rng.binomial(SAMPLES, p) * 1.0, scored) for _ in range(NIGHTS)
    ]
    differences = np.stack([d for d, _, _ in nights], -1)
    variances = np.stack([v for _, v, _ in nights], -1)
    share = nights[-1][2]
    shared = float((e_value(differences, variances, share) >= 1 / SETTINGS.alpha).mean())
    independent = float((e_value(differences, variances, 0.0) >= 1 / SETTINGS.alpha).mean())
    print(f"\nfalse alarms over a month: {shared:.1%} shared baseline, {independent:.1%} ignored")
    assert independent > 2 * SETTINGS.alpha > SETTINGS.alpha >= shared


def test_analyse_runs_the_same_statistics_night_after_night() -> None:
    rng = np.random.default_rng(7)
    p = pass_probabilities(rng, 1)[0]
    base = rng.binomial(SAMPLES, p)
    nights = [rng.binomial(SAMPLES, np.clip(p - (0.15 if n >= 3 else 0.0), 0, 1)) for n in range(5)]

    def run(run_id: str, passes: Array) -> Any:
        cases = [
            CaseResults(
                f"c{i:03d}",
                "monitoring",
                "medium",
                (f"t{TAG_OF[i]}",),
                tuple(SampleResult(bool(k < passes[i]), None, 0.0, 0.0) for k in range(SAMPLES)),
            )
            for i in range(CASES)
        ]
        return snapshot(run_id, cases, {c.case_id: "h" for c in cases})

    baseline = run("base", base)
    history: dict[str, list[PairedNight]] = {}
    scope_names = ["set:monitoring", *(f"tag:t{t}" for t in range(TAGS))]
    for n, passes in enumerate(nights):
        findings = analyse(run(f"n{n}", passes), baseline, SETTINGS, history=history)
        evidence = {f.scope: f for f in findings if f.kind is FindingKind.evidence}
        alarms = {f.scope for f in findings if f.alarm and f.metric == "pass_rate"}
        expected_e = []
        for i, scope in enumerate(SCOPES):
            difference, variance, share = paired_night(
                base[scope] * 1.0,
                np.full(scope.sum(), float(SAMPLES)),
                passes[scope] * 1.0,
                np.full(scope.sum(), float(SAMPLES)),
            )
            found = evidence[scope_names[i]]
            assert found.effect == pytest.approx(float(difference))
            night = paired_night_of(found.effect, found.ci_low, found.ci_high)
            assert night is not None and night.variance == pytest.approx(float(variance))
            earlier = history.get(scope_names[i], [])
            expected_e.append(
                float(
                    e_value(
                        np.array([e.difference for e in earlier] + [night.difference]),
                        np.array([e.variance for e in earlier] + [night.variance]),
                        float(share),
                    )
                )
            )
            assert found.p_value == pytest.approx(min(1.0, 1 / expected_e[-1]))
            assert f"after {n + 1} nightly run(s)" in found.detail
        raised = e_bh(np.array(expected_e), LEVEL)
        assert alarms == {s for s, up in zip(scope_names, raised, strict=True) if up}
        for name, finding in evidence.items():
            night = paired_night_of(finding.effect, finding.ci_low, finding.ci_high)
            assert night is not None
            history.setdefault(name, []).append(night)
    assert "set:monitoring" in alarms  # the 15-point drop of the last two nights was seen


def test_e_bh_raises_the_largest_e_values_that_clear_their_bar() -> None:
    # Bars for m = 4 at level 0.05: 80, 40, 26.7, 20 for the 1st..4th largest.
    assert e_bh(np.array([30.0, 90.0, 1.0, 45.0]), 0.05).tolist() == [True, True, False, True]
    assert e_bh(np.array([79.0, 39.0, 1.0, 1.0]), 0.05).tolist() == [False] * 4
    assert e_bh(np.zeros((2, 0)), 0.05).shape == (2, 0)


def test_a_quiet_scope_carries_no_evidence_and_a_tiny_one_little() -> None:
    # Nothing varied: no variance, no evidence either way.
    assert float(e_value(np.zeros(5), np.zeros(5), 0.5)) == 1.0
    # One single-sample case that failed once in 20 nights: a coin, not drift.
    differences = np.array([0.0] * 19 + [-1.0])
    passed_both, failed_once = case_variance(np.array([2.0, 1.0]), np.array([2.0, 2.0]))
    variances = np.array([2 * passed_both] * 19 + [2 * failed_once])
    assert float(e_value(differences, variances, 0.5)) < 1 / SETTINGS.alpha
