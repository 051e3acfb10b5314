"""The async engine: every (case, sample) still to do is called, scored and persisted.

A fixed pool of workers pulls from one iterator, so nothing is created per case up
front; a target error after the retries is recorded as an error with its class, never
as a quality failure.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiolimiter import AsyncLimiter
from sqlalchemy.engine import Engine

from evalcore.run.retry import RetryPolicy
from evalcore.run.writer import ResultWriter
from evalcore.scorers import passed as all_passed
from evalcore.scorers import score_reply
from evalcore.scorers.base import ScoreContext
from evalcore.suite.models import Case
from evalcore.suite.scorecard import Price
from evalcore.targets.base import Reply, Target, TargetError, TargetTimeout
from evalcore.targets.http import redact_text

ERROR_MESSAGE_LIMIT = 500


class UnexpectedTargetError(TargetError):
    """The target raised something outside the error hierarchy (a bug in a callable...)."""

    error_class = "unexpected"


@dataclass(frozen=True)
class EngineOptions:
    concurrency: int = 16
    rps: float | None = None
    timeout_s: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch_size: int = 500
    flush_interval_s: float = 0.5
    seed: int | None = None


@dataclass
class Counters:
    """Live counts a progress display can read while the run goes on."""

    planned: int = 0
    skipped: int = 0
    done: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    retries: int = 0


WorkItem = tuple[Case, int, dict[str, Any]]
_Called = tuple[Case, int, "Reply | TargetError", float, int]


def work_items(
    cases: list[Case],
    done: set[tuple[str, int]],
    only: Callable[[str, int], bool] | None = None,
) -> Iterator[WorkItem]:
    """(case, sample, input) for every pair without a result (and, with `only`, that it
    keeps: one shard's pairs); inputs built once per case."""
    for case in cases:
        todo = [
            s
            for s in range(case.samples)
            if (case.id, s) not in done and (only is None or only(case.id, s))
        ]
        if not todo:
            continue
        case_input = case.input.model_dump(mode="json")
        for sample in todo:
            yield case, sample, case_input


def extra_items(
    cases: list[Case], extra: Mapping[str, Sequence[int]], done: set[tuple[str, int]]
) -> Iterator[WorkItem]:
    """(case, sample, input) for the extra samples asked of each case (indices past the
    case's own `samples`) that have no result yet."""
    for case in cases:
        todo = [s for s in extra.get(case.id, ()) if (case.id, s) not in done]
        if not todo:
            continue
        case_input = case.input.model_dump(mode="json")
        for sample in todo:
            yield case, sample, case_input


class CaseExecutor:
    """Calls, scores and shapes the row for one (case, sample) of a run."""

    def __init__(
        self,
        *,
        run_id: str,
        target: Target,
        score_context: ScoreContext,
        price: Price | None,
        options: EngineOptions,
        counters: Counters,
        secrets: Sequence[str] = (),
    ) -> None:
        self.run_id = run_id
        self.secrets = tuple(secrets)
        self.target = target
        self.ctx = score_context
        self.price = price
        self.options = options
        self.counters = counters
        self.rng = random.Random(options.seed)
        self.limiter = AsyncLimiter(options.rps, 1) if options.rps else None
        # The engine bounds each call itself unless the target already does.
        self.own_deadline = not getattr(target, "enforces_deadline", False)

    def cost(self, reply: Reply) -> float:
        if self.price is None:
            return 0.0
        return (
            reply.usage.prompt_tokens * self.price.input_per_mtok
            + reply.usage.completion_tokens * self.price.output_per_mtok
        ) / 1_000_000

    async def call(self, case_input: dict[str, Any]) -> tuple[Reply | TargetError, float, int]:
        """The target's reply (or its last error), the successful call's latency, attempts."""
        attempt = 0
        timeout = self.options.timeout_s
        while True:
            attempt += 1
            if self.limiter is not None:
                await self.limiter.acquire()
            started = time.perf_counter()
            try:
                if self.own_deadline:
                    async with asyncio.timeout(timeout):
                        reply = await self.target(case_input)
                else:
                    reply = await self.target(case_input)
                return reply, (time.perf_counter() - started) * 1000.0, attempt
            except TimeoutError:
                error: TargetError = TargetTimeout(f"no reply within {timeout:g} s")
            except TargetError as exc:
                error = exc
            except Exception as exc:
                error = UnexpectedTargetError(f"{type(exc).__name__}: {exc}")
            delay = (
                self.options.retry.delay(attempt, error.retry_after, self.rng)
                if error.retryable
                else None
            )
            if delay is None:
                return error, 0.0, attempt
            self.counters.retries += 1
            await asyncio.sleep(delay)

    async def score(self, case: Case, reply: Reply) -> tuple[Any, TargetError | None]:
        """The scores, or the error that left the case without a verdict (a failed judge,
        a regex out of time): that case is recorded as an error, the run goes on."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await score_reply(case, reply, self.ctx), None
            except TargetError as exc:
                delay = (
                    self.options.retry.delay(attempt, exc.retry_after, self.rng)
                    if exc.retryable
                    else None
                )
                if delay is None:
                    return None, exc
                self.counters.retries += 1
                await asyncio.sleep(delay)

    async def finish(
        self,
        case: Case,
        sample: int,
        outcome: Reply | TargetError,
        latency_ms: float,
        attempts: int,
    ) -> dict[str, Any]:
        """Score a reply (or record the error) and shape the result row."""
        row: dict[str, Any] = {
            "run_id": self.run_id,
            "case_id": case.id,
            "sample": sample,
            "set": case.set.value,
            "attempts": attempts,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
            "judge_cost_usd": 0.0,
            "passed": None,
            "error_class": None,
            "error_message": None,
            "output": None,
            "scores": {},
            "latency_ms": None,
        }
        counters = self.counters
        if isinstance(outcome, TargetError):
            _as_error(row, outcome, self.secrets)
            counters.errors += 1
            counters.done += 1
            return row
        reply = outcome
        row["output"] = reply.to_json()
        row["latency_ms"] = latency_ms
        row["prompt_tokens"] = reply.usage.prompt_tokens
        row["completion_tokens"] = reply.usage.completion_tokens
        row["cost_usd"] = self.cost(reply)
        scores, scoring_error = await self.score(case, reply)
        if scoring_error is not None:
            _as_error(row, scoring_error, self.secrets)
            counters.errors += 1
        else:
            ok = all_passed(scores)
            row["passed"] = ok
            row["scores"] = {s.name: s.to_json() for s in scores}
            row["judge_cost_usd"] = sum(s.cost_usd for s in scores)
            if ok:
                counters.passed += 1
            else:
                counters.failed += 1
        counters.done += 1
        return row


def _as_error(row: dict[str, Any], error: TargetError, secrets: Sequence[str]) -> None:
    row["error_class"] = error.error_class
    # Redacted before the cut: a cut first could keep the start of a key.
    row["error_message"] = redact_text(str(error), secrets)[:ERROR_MESSAGE_LIMIT]


async def execute(
    engine: Engine,
    *,
    run_id: str,
    items: Iterator[WorkItem],
    target: Target,
    score_context: ScoreContext,
    price: Price | None,
    options: EngineOptions,
    counters: Counters,
    secrets: Sequence[str] = (),
) -> int:
    """Run every item through the target, score it and persist it; returns rows written.

    `secrets` (the target's and the judge's credentials) never reach a stored message.
    """
    runner = CaseExecutor(
        run_id=run_id,
        target=target,
        score_context=score_context,
        price=price,
        options=options,
        counters=counters,
        secrets=secrets,
    )
    async with ResultWriter(
        engine, batch_size=options.batch_size, flush_interval_s=options.flush_interval_s
    ) as writer:
        # Callers only call: a worker sends its next request as soon as a reply is in,
        # and scoring runs in the gaps. Under lock-step load (every reply of a wave landing
        # at once) this keeps the target busy instead of waiting on our CPU.
        replies: asyncio.Queue[_Called | None] = asyncio.Queue(maxsize=2 * options.concurrency)
        # A judge is I/O: score judged replies concurrently; otherwise one scorer suffices.
        scorer_count = options.concurrency if score_context.judge_client is not None else 1

        async def caller() -> None:
            for case, sample, case_input in items:
                outcome, latency_ms, attempts = await runner.call(case_input)
                await replies.put((case, sample, outcome, latency_ms, attempts))

        async def scorer() -> None:
            while (called := await replies.get()) is not None:
                await writer.add(await runner.finish(*called))

        async with asyncio.TaskGroup() as group:
            scorers = [group.create_task(scorer()) for _ in range(scorer_count)]
            async with asyncio.TaskGroup() as callers:
                for _ in range(options.concurrency):
                    callers.create_task(caller())
            for _ in scorers:
                await replies.put(None)
    return writer.written
