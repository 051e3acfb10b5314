"""pass@k and pass^k: how a nondeterministic route feels to the people who use it.

For a case with n scored samples of which c passed, the unbiased estimators are

    pass@k = 1 - C(n - c, k) / C(n, k)    at least one of k tries passes
    pass^k = C(c, k) / C(n, k)            all k tries pass

(pass@k: Chen et al., "Evaluating Large Language Models Trained on Code", 2021; pass^k:
Yao et al., "tau-bench", arXiv 2406.12045, 2024), averaged over a scope's cases. pass^k
is the reliability a user of the route feels: a case that passes 9 times in 10 has
pass^3 = 0.70. Only cases with at least two scored samples take part (one sample says
nothing about nondeterminism), and each scope uses the smallest sample count among its
cases as k, so that every case contributes the same k. Errored samples are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from math import comb

from evalcore.results.loader import CaseResults


@dataclass(frozen=True)
class Reliability:
    scope: str  # "all", "set:<name>" or "tag:<name>"
    cases: int  # cases with at least k scored samples
    k: int
    pass_at_k: float
    pass_hat_k: float


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that at least one of k of the n samples, drawn without replacement,
    passed, when c of the n passed."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The chance that all k of the n samples, drawn without replacement, passed."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    return comb(c, k) / comb(n, k)


def reliability(cases: Iterable[CaseResults]) -> list[Reliability]:
    """pass@k and pass^k for the whole run, each set and each tag (in that order, sets and
    tags by name), over the cases with two or more scored samples; empty when none has."""
    scopes: dict[str, list[tuple[int, int]]] = {}
    for case in cases:
        scored = case.scored
        if len(scored) < 2:
            continue
        tally = (len(scored), sum(scored))
        for scope in ("all", f"set:{case.set}", *(f"tag:{tag}" for tag in case.tags)):
            scopes.setdefault(scope, []).append(tally)
    order = sorted(scopes, key=lambda s: (s != "all", not s.startswith("set:"), s))
    rows = []
    for scope in order:
        tallies = scopes[scope]
        k = min(n for n, _ in tallies)
        rows.append(
            Reliability(
                scope=scope,
                cases=len(tallies),
                k=k,
                pass_at_k=sum(pass_at_k(n, c, k) for n, c in tallies) / len(tallies),
                pass_hat_k=sum(pass_hat_k(n, c, k) for n, c in tallies) / len(tallies),
            )
        )
    return rows
