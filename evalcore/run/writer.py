"""Streams result rows to the database in batches while the run goes on.

One flusher task takes whatever has accumulated and writes it in a worker thread, at
the latest every `flush_interval_s`. Workers that get more than `max_pending` rows
ahead of the database wait for it, so memory follows concurrency and not suite size,
and a crash loses at most one tick of work (which `--resume` runs again).
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
        self._max_pending = 4 * batch_size
        self._interval = flush_interval_s
        self._rows: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._closing = False
        self._flusher: asyncio.Task[None] | None = None
        self.written = 0

    async def __aenter__(self) -> ResultWriter:
        self._flusher = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        flusher = self._flusher
        if flusher is None:
            return
        if exc[0] is None:
            self._closing = True
            self._wake.set()
            await flusher  # writes what is left, then ends; raises if a write failed
            return
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await flusher
        self.flush_now()

    async def add(self, row: dict[str, Any]) -> None:
        rows = self._rows
        rows.append(row)
        if len(rows) >= self._batch_size:
            self._wake.set()
            if len(rows) >= self._max_pending:
                # Back-pressure: the database is behind; wait until the flusher takes these.
                self._drained.clear()
                await self._drained.wait()
        if self._flusher is not None and self._flusher.done():
            self._flusher.result()  # surface a failed write in the workers at once

    def _take(self) -> list[dict[str, Any]]:
        rows, self._rows = self._rows, []
        self._drained.set()
        stamp = utcnow()
        for row in rows:
            row["created_at"] = stamp
        return rows

    async def _run(self) -> None:
        try:
            await self._loop()
        finally:
            self._drained.set()  # never leave a worker waiting on a flusher that has stopped

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            if self._rows:
                rows = self._take()
                self.written += await asyncio.to_thread(insert_results, self._engine, rows)
            if self._closing and not self._rows:
                return

    def flush_now(self) -> None:
        """Synchronous last flush for a run that is being cancelled or has crashed."""
        rows = self._take()
        if rows:
            self.written += insert_results(self._engine, rows)
