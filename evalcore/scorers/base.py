"""The scorer contract: one expectation key in, one `Score` out, always with a reason.

A scorer is a plain function registered under the `expect` key it reads. Most are
synchronous and cost nothing; the LLM judge is async and reports its own cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from evalcore.suite.models import Case
from evalcore.suite.scorecard import JudgeConfig, Price, Signals
from evalcore.targets.base import Reply, TargetError


@dataclass(frozen=True, slots=True)
class Score:
    """`value` in [0, 1]; `passed` says whether it met the case's bar; `reason` explains it."""

    name: str
    value: float
    passed: bool
    reason: str
    cost_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": round(self.value, 6),
            "passed": self.passed,
            "reason": self.reason,
        }
        if self.cost_usd:
            out["cost_usd"] = self.cost_usd
        return out


@dataclass(frozen=True, slots=True)
class ScoreContext:
    """What a scorer may need beyond the case and the reply."""

    signals: Signals
    judge: JudgeConfig | None = None
    judge_price: Price | None = None
    judge_client: Any = None  # an httpx.AsyncClient shared by the run, for the judge


class JudgeError(TargetError):
    """The judge endpoint failed or answered nonsense: the case is an error, not a failure."""

    error_class = "judge_error"


class RetryableJudgeError(JudgeError):
    """A judge failure that may pass on a retry: timeout, connection, 429 or 5xx.

    `retry_after` carries the judge's Retry-After (seconds) when it sent one.
    """

    retryable = True


class ScoringError(TargetError):
    """A scorer could not reach a verdict in time (a regex that backtracks without end).

    Recorded like a judge failure: the case is an error naming the cause, never a quality
    failure, and the run goes on.
    """

    error_class = "scoring"


ScorerFn = Callable[[Case, Reply, ScoreContext], "Score | Awaitable[Score]"]

SCORERS: dict[str, ScorerFn] = {}


_Fn = TypeVar("_Fn", bound=ScorerFn)


def scorer(name: str) -> Callable[[_Fn], _Fn]:
    """Register `fn` as the scorer for `expect.<name>`; `fn` keeps its own (sync/async) type."""

    def register(fn: _Fn) -> _Fn:
        if name in SCORERS:
            raise ValueError(f"scorer {name!r} registered twice")
        SCORERS[name] = fn
        return fn

    return register
