"""The anytime-valid test behind nightly pass-rate drift: evidence that accumulates over the
nights since the baseline was accepted, with one false-alarm budget for the baseline's life.

Testing every night at alpha gives an unchanged route a false alarm on about alpha of its
nights. Here each set or tag carries an *e-process* instead: a number that, on an
unchanged route, stays below 1/alpha at every night of the baseline's life with
probability at least 1 - alpha (Ville's inequality), so it may be looked at every night.

**What a night contributes.** A set or tag is compared *paired*, over the cases scored in
both the baseline and tonight's run: x = mean over those cases of (tonight's pass fraction
- the baseline's). Case-to-case differences cancel; what is left is sampling noise, whose
variance under no change is sum q_i (1/n_base + 1/n_now) / K^2, with q_i = p_i (1 - p_i)
estimated per case from its pooled samples, smoothed by half a pass and half a failure
(the Jeffreys prior) so that a case seen passing twice is not taken for a case that can
never fail.

**Why nights are not simply multiplied.** Every night is compared with the *same* baseline,
whose own sampling noise d is shared by all of them: x_t = e_t + d. Multiplying per-night
e-values as if nights were independent would take a lucky baseline for a drop that grows
more certain every night. Under no change, (x_1..x_T) is modelled as Gaussian with
compound-symmetric covariance s_now^2 I + s_base^2 11' (the split from the sample counts),
and the test is the likelihood ratio of the nights' joint law, which is a martingale
under no change whatever the alternative mixed over:

- Robbins' normal mixture over the size of the change mu ~ N(0, tau^2) (the mixture SPRT
  of Johari, Koomen, Pekelis & Walsh, "Always valid inference: continuous monitoring of
  A/B tests", Operations Research 2022, with a plug-in variance as they use), averaged
  over a grid of tau so that both a one-point drop on thousands of cases and a collapse of
  a five-case tag are found;
- averaged over the night the change began (weight 1/(s(s+1)) for night s, the rest on
  "not yet", whose ratio is 1), so that a drop on night 20 is not diluted by 19 quiet
  nights. A weighted average of test martingales is one (Vovk & Wang, "E-values:
  calibration, combination and applications", Annals of Statistics 2021).

Two-sided: an improvement accumulates evidence too.

**Across sets and tags of one night.** The e-values of a night's comparisons are combined
with e-BH (Wang & Ramdas, "False discovery rate control with e-values", JRSS-B 2022):
the k largest are alarms when the k-th is at least m / (level k). It controls the false
discovery rate among the m comparisons under any dependence, and because it raises
anything only when the mean of the m e-values reaches 1/level (itself an e-process),
an unchanged route raises *no* set or tag alarm over the baseline's life with probability
at least 1 - level. `tests/monitor/test_sequential.py` checks both promises by
simulation.

The Gaussian model and the plug-in variance are approximations; for the tags of a
handful of single-sample cases they are conservative (the smoothing), and the per-case
flip test reports single cases apart.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "MIXTURE_TAUS",
    "PairedNight",
    "case_variance",
    "e_bh",
    "e_value",
    "paired_night",
]

Array = np.ndarray[Any, Any]

# Standard deviations of the change in pass rate mixed over (equal weights): from a point
# and a half, what thousands of cases can show, to a collapse of the whole scope.
MIXTURE_TAUS: tuple[float, ...] = (0.015, 0.04, 0.1, 0.25, 0.6)


class PairedNight(NamedTuple):
    """One night's paired comparison of a set or tag with the baseline."""

    difference: float  # mean over paired cases of (pass fraction now - in the baseline)
    variance: float  # of `difference` under no change (the baseline's noise included)


def case_variance(passes: Array, scored: Array) -> Array:
    """p (1 - p) per case, p its pooled pass fraction smoothed by the Jeffreys prior."""
    smoothed = (passes + 0.5) / (scored + 1.0)
    return smoothed * (1.0 - smoothed)


def paired_night(
    base_passes: Array, base_scored: Array, cur_passes: Array, cur_scored: Array
) -> tuple[Array, Array, Array]:
    """(difference, its variance, the baseline's share of it) of the cases along the last
    axis, every one scored on both sides; leading axes are independent repetitions."""
    cases = base_passes.shape[-1]
    if cases == 0:
        zero = np.zeros(base_passes.shape[:-1])
        return zero, zero, zero + 0.5
    difference = (cur_passes / cur_scored - base_passes / base_scored).mean(axis=-1)
    q = case_variance(base_passes + cur_passes, base_scored + cur_scored)
    base_variance = (q / base_scored).sum(axis=-1) / cases**2
    cur_variance = (q / cur_scored).sum(axis=-1) / cases**2
    variance = base_variance + cur_variance
    return difference, variance, base_variance / variance


def e_value(differences: Array, variances: Array, base_share: Array | float) -> Array:
    """The e-process of the nights along the last axis (oldest first), at the last night.

    `variances` are each night's own estimate under no change; they are pooled (their
    mean), and split between tonight's noise and the baseline's by `base_share`.
    """
    x = np.asarray(differences, dtype=float)
    nights = x.shape[-1]
    pooled = np.asarray(variances, dtype=float).mean(axis=-1)
    share = np.clip(np.asarray(base_share, dtype=float), 0.0, 0.999) + np.zeros_like(pooled)
    quiet = ~(pooled > 0)
    pooled = np.where(quiet, 1.0, pooled)
    var_base = share * pooled
    var_now = (1.0 - share) * pooled
    # Sigma^-1 = (I - c 11') / var_now with c = var_base / (var_now + T var_base); for the
    # change beginning on night s (k = T - s + 1 nights of it), v = 1 on those nights:
    # A = v' Sigma^-1 v, B = v' Sigma^-1 x.
    c = (var_base / (var_now + nights * var_base))[..., None]
    k = np.arange(nights, 0, -1, dtype=float)  # s = 1 .. T
    suffix = np.cumsum(x[..., ::-1], axis=-1)[..., ::-1]
    total = suffix[..., :1]
    inv = 1.0 / var_now[..., None]
    a = (k - c * k**2) * inv
    b = (suffix - c * k * total) * inv
    a_t, b_t = a[..., None, :], b[..., None, :]  # (..., tau, s)
    tau2 = np.square(np.asarray(MIXTURE_TAUS))[:, None]
    spread = 1.0 + a_t * tau2
    log_ratio = -0.5 * np.log(spread) + tau2 * b_t**2 / (2.0 * spread)
    s = np.arange(1, nights + 1, dtype=float)
    log_weight = -np.log(s * (s + 1.0)) - math.log(len(MIXTURE_TAUS))
    terms = log_ratio + log_weight
    flat = terms.reshape((*terms.shape[:-2], -1))
    peak = flat.max(axis=-1)
    with np.errstate(over="ignore"):
        mixed = np.exp(peak) * np.exp(flat - peak[..., None]).sum(axis=-1)
    result = mixed + 1.0 / (nights + 1)
    return np.where(quiet, 1.0, result)


def e_bh(e_values: Array, level: float) -> Array:
    """Which comparisons along the last axis e-BH at `level` raises (Wang & Ramdas 2022)."""
    e = np.asarray(e_values, dtype=float)
    m = e.shape[-1]
    if m == 0:
        return np.zeros(e.shape, dtype=bool)
    order = np.argsort(-e, axis=-1)
    ranked = np.take_along_axis(e, order, axis=-1)
    ks = np.arange(1, m + 1)
    meets = ranked >= m / (level * ks)
    # The largest k whose k-th largest e-value meets its bar (0 when none does).
    last = np.where(meets.any(axis=-1), m - np.argmax(meets[..., ::-1], axis=-1), 0)
    raised_sorted = ks <= last[..., None]
    raised = np.zeros(e.shape, dtype=bool)
    np.put_along_axis(raised, order, raised_sorted, axis=-1)
    return raised
