"""Scoring one reply: which scorers a case turns on, running them, and the case's pass/fail.

The plan of a case is worked out once and remembered for as long as the case object
lives, so the run engine's hot loop pays a dictionary lookup, the scorers themselves and
nothing else. A case without a judge is scored without awaiting anything.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import cast

from evalcore.scorers.base import SCORERS, Score, ScoreContext, ScorerFn
from evalcore.suite.models import Case
from evalcore.targets.base import Reply

SyncScorerFn = Callable[[Case, Reply, ScoreContext], Score]


class _Plan:
    __slots__ = ("named", "sync")

    def __init__(self, named: tuple[tuple[str, ScorerFn], ...]) -> None:
        self.named = named
        # All synchronous: the fast path calls them without checking each result.
        is_async = any(inspect.iscoroutinefunction(fn) for _, fn in named)
        self.sync: tuple[SyncScorerFn, ...] | None = (
            None if is_async else tuple(cast(SyncScorerFn, fn) for _, fn in named)
        )


_CACHE_LIMIT = 262_144
_plans: dict[int, tuple[weakref.ref[Case], _Plan]] = {}


def _forget(key: int) -> Callable[[weakref.ref[Case]], None]:
    def drop(ref: weakref.ref[Case]) -> None:
        entry = _plans.get(key)
        if entry is not None and entry[0] is ref:
            del _plans[key]

    return drop


def _plan(case: Case) -> _Plan:
    key = id(case)
    entry = _plans.get(key)
    if entry is not None and entry[0]() is case:
        return entry[1]
    named = []
    for name in case.expect.scorer_names():
        fn = SCORERS.get(name)
        if fn is None:
            raise KeyError(f"case {case.id}: no scorer is registered for expect.{name}")
        named.append((name, fn))
    plan = _Plan(tuple(named))
    if len(_plans) >= _CACHE_LIMIT:
        _plans.clear()
    _plans[key] = (weakref.ref(case, _forget(key)), plan)
    return plan


def plan_scorers(case: Case) -> list[tuple[str, ScorerFn]]:
    """The case's scorers as (expect key, function), in `Expect.scorer_names()` order.

    Raises KeyError naming the expectation when no scorer is registered for it.
    """
    return list(_plan(case).named)


async def score_reply(case: Case, reply: Reply, ctx: ScoreContext) -> list[Score]:
    """Every score of the case for this reply, in plan order.

    `JudgeError` propagates: the run engine records the case as an error, not a failure.
    """
    plan = _plan(case)
    if plan.sync is not None:
        return [fn(case, reply, ctx) for fn in plan.sync]
    scores: list[Score] = []
    for _, fn in plan.named:
        result = fn(case, reply, ctx)
        scores.append(result if isinstance(result, Score) else await result)
    return scores


def passed(scores: list[Score]) -> bool:
    """Whether every score passed. No scores is not a pass: nothing was checked."""
    return bool(scores) and all(score.passed for score in scores)
