"""Streams result rows to the database in batches while the run goes on.

Rows wait in memory only until the next batch or tick, so memory follows concurrency
and not suite size, and a crash loses at most one tick of work (re-run on resume).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy.engine import Engine

from evalcore.store.repository import insert_results
from evalcore.store.tables import utcnow


class ResultWriter:
    def __init__(
        self, engine: Engine, *, batch_size: int = 500, flush_interval_s: float = 0.5
    ) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._rows: list[dict[str, Any]] = []
        self._flushing: asyncio.Task[int] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.written = 0

    async def __aenter__(self) -> ResultWriter:
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if exc[0] is None:
            await self.flush()
        else:
            self.flush_now()

    async def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._batch_size:
            if self._flushing is not None and not self._flushing.done():
                if len(self._rows) < 4 * self._batch_size:
                    return  # the database is busy with the previous batch; keep going
                await self._flushing  # back-pressure: never let rows pile up unbounded
            self._start_flush()

    def _start_flush(self) -> None:
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        stamp = utcnow()
        for row in rows:
            row["created_at"] = stamp
        previous = self._flushing

        async def write() -> int:
            if previous is not None:
                await previous
            count = await asyncio.to_thread(insert_results, self._engine, rows)
            self.written += count
            return count

        self._flushing = asyncio.create_task(write())

    async def flush(self) -> None:
        self._start_flush()
        if self._flushing is not None:
            await self._flushing

    def flush_now(self) -> None:
        """Synchronous last flush for a run that is being cancelled or crashed."""
        rows, self._rows = self._rows, []
        stamp = utcnow()
        for row in rows:
            row["created_at"] = stamp
        self.written += insert_results(self._engine, rows)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._rows and (self._flushing is None or self._flushing.done()):
                self._start_flush()
