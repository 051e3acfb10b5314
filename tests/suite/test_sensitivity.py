"""The detectable drop of a set agrees with a brute-force simulation of the nightly comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from evalcore.suite.sensitivity import (
    EXACT_UP_TO_SAMPLES,
    INTRA_CASE_CORRELATION,
    design_effect,
    detectable_drop,
    drop_power,
    reference_rate,
)

ALPHA, POWER = 0.05, 0.8
DRAWS = 2_000_000  # case-runs per simulated comparison: 20,000 runs of a small set
POINT = 0.01


def _pass_counts(
    rng: np.random.Generator, samples: np.ndarray, rate: float, rho: float
) -> np.ndarray:
    """Many runs of the cases: each case's samples share a per-run pass probability drawn
    around `rate` with intra-case correlation `rho`; the pass count of each run."""
    shape = (min(20_000, DRAWS // samples.size), samples.size)
    if rho > 0 and 0 < rate < 1:
        spread = 1 / rho - 1
        probability = rng.beta(rate * spread, (1 - rate) * spread, size=shape)
    else:
        probability = np.full(shape, rate)
    counts: np.ndarray = rng.binomial(np.broadcast_to(samples, shape), probability).sum(axis=1)
    return counts


def _simulated_power(samples: list[int], reference: float, drop: float, rho: float) -> float:
    """How often the one-sided arcsine test, variance widened by the design effect, calls
    a run whose pass rate dropped by `drop` worse than a baseline run of the same cases."""
    rng = np.random.default_rng(20_240_611)
    ks = np.asarray(samples)
    total = int(ks.sum())
    baseline = _pass_counts(rng, ks, reference, rho) / total
    current = _pass_counts(rng, ks, max(reference - drop, 0.0), rho) / total
    h = 2 * np.arcsin(np.sqrt(baseline)) - 2 * np.arcsin(np.sqrt(current))
    deff = 1 + INTRA_CASE_CORRELATION * (float((ks * ks).sum()) / total - 1)  # Kish
    critical = norm.ppf(1 - ALPHA) * math.sqrt(2 * deff / total)
    return float(np.mean(h > critical + 1e-12))


SETS = [
    pytest.param([1] * 12, 0.95, id="12 blocking cases x 1"),
    pytest.param([3] * 12, 0.95, id="12 blocking cases x 3"),
    pytest.param([1] * 40, 0.9, id="40 x 1 at 0.9"),
    pytest.param([1, 2, 3] * 20, 0.95, id="60 cases x 1-3"),
    pytest.param([3] * 240, 0.9, id="240 x 3 (normal approximation)"),
    pytest.param([1] * 500 + [5] * 100, 0.95, id="600 cases x 1-5 (normal approximation)"),
]


@pytest.mark.parametrize(("samples", "reference"), SETS)
def test_the_detectable_drop_agrees_with_simulation_within_one_point(
    samples: list[int], reference: float
) -> None:
    drop = detectable_drop(samples, reference=reference, alpha=ALPHA, power=POWER)
    assert drop is not None
    rho = INTRA_CASE_CORRELATION
    # One point less is detected less often than asked, one point more at least as often.
    assert _simulated_power(samples, reference, drop - POINT, rho) < POWER
    assert _simulated_power(samples, reference, drop + POINT, rho) > POWER
    assert _simulated_power(samples, reference, drop, rho) == pytest.approx(POWER, abs=0.025)


@pytest.mark.parametrize(("samples", "reference"), SETS[1:5])
def test_with_independent_samples_the_figure_is_on_the_safe_side(
    samples: list[int], reference: float
) -> None:
    drop = detectable_drop(samples, reference=reference, alpha=ALPHA, power=POWER)
    assert drop is not None
    assert _simulated_power(samples, reference, drop, rho=0.0) >= POWER - 0.01


def test_samples_of_one_case_count_for_less_than_as_many_cases() -> None:
    as_samples = detectable_drop([3] * 100, reference=0.95, alpha=ALPHA, power=POWER)
    as_cases = detectable_drop([1] * 300, reference=0.95, alpha=ALPHA, power=POWER)
    fewer = detectable_drop([1] * 100, reference=0.95, alpha=ALPHA, power=POWER)
    assert as_cases is not None and as_samples is not None and fewer is not None
    assert as_cases < as_samples < fewer
    assert design_effect([3] * 100, 0.1) == pytest.approx(1.2)
    assert design_effect([1] * 100, 0.1) == 1.0


def test_the_exact_and_the_approximate_power_meet_at_the_boundary() -> None:
    below = [1] * EXACT_UP_TO_SAMPLES
    above = [1] * (EXACT_UP_TO_SAMPLES + 1)
    exact = detectable_drop(below, reference=0.9, alpha=ALPHA, power=POWER)
    approximate = detectable_drop(above, reference=0.9, alpha=ALPHA, power=POWER)
    assert exact is not None and approximate is not None
    assert abs(exact - approximate) < 0.005
    assert drop_power(above, approximate, reference=0.9, alpha=ALPHA) == pytest.approx(
        POWER, abs=1e-4
    )
    assert drop_power(below, exact, reference=0.9, alpha=ALPHA) == pytest.approx(POWER, abs=1e-4)


def test_too_few_cases_detect_nothing_at_all() -> None:
    assert detectable_drop([1, 1], reference=0.95, alpha=0.01, power=0.99) is None
    assert detectable_drop([], reference=0.95, alpha=ALPHA, power=POWER) is None


def test_a_stricter_alpha_or_more_power_needs_a_bigger_drop() -> None:
    base = detectable_drop([2] * 80, reference=0.95, alpha=0.05, power=0.8)
    strict = detectable_drop([2] * 80, reference=0.95, alpha=0.01, power=0.8)
    surer = detectable_drop([2] * 80, reference=0.95, alpha=0.05, power=0.95)
    assert base is not None and strict is not None and surer is not None
    assert base < strict and base < surer


def test_the_reference_is_the_threshold_when_lower_than_a_healthy_case() -> None:
    assert reference_rate(None, 0.95) == 0.95
    assert reference_rate(1.0, 0.95) == 0.95
    assert reference_rate(0.9, 0.95) == 0.9


@pytest.mark.parametrize(("alpha", "power"), [(0.0, 0.8), (1.0, 0.8), (0.05, 0.0), (0.05, 1.2)])
def test_alpha_and_power_outside_zero_to_one_are_refused(alpha: float, power: float) -> None:
    with pytest.raises(ValueError, match=r"must be within \(0, 1\)"):
        detectable_drop([1] * 10, reference=0.95, alpha=alpha, power=power)
