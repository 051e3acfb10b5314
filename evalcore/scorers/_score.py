"""Scoring one reply: which scorers a case turns on, running them, and the case's pass/fail.

The plan of a case is worked out once and remembered for as long as the case object
lives, so the run engine's hot loop pays a dictionary lookup, the scorers themselves and
nothing else. A case without a judge is scored without awaiting anything.
"""

from __future__ import annotations

import inspect
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


# Keyed by the scorer names a case turns on: a suite has a handful of distinct
# combinations however many cases it holds, so this stays tiny.
_plans: dict[tuple[str, ...], _Plan] = {}


def _plan(case: Case) -> _Plan:
    names = tuple(case.expect.scorer_names())
    plan = _plans.get(names)
    if plan is not None:
        return plan
    named = []
    for name in names:
        fn = SCORERS.get(name)
        if fn is None:
            raise KeyError(f"case {case.id}: no scorer is registered for expect.{name}")
        named.append((name, fn))
    plan = _plans[names] = _Plan(tuple(named))
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
