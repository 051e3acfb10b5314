"""One gate at a time per release, dataset, scorecard and target: a lease in the store.

Two gates for the same release started together (two CI jobs, a retried event) would
otherwise both call the target for the same pairs. The first to claim the lease does the
work; the others attach to it: they poll the store until the holder's run has its stored
verdict and report that one. The holder renews the lease every third of its TTL from a
thread (the flow's synchronous steps block its event loop) and releases it once the
verdict is stored. A holder that is killed stops renewing; when the lease expires, the
first waiter to claim it takes it over (one conditional UPDATE, so exactly one contender
wins) and resumes the run from what is stored.

A released lease keeps its row, expired at the moment of release: the next gate for the
same key takes it over like any expired lease and starts a new run, as a release gated
again after a finished gate always did. Times are the database's clock (PostgreSQL's
`now()`; an SQLite store lives on one machine), so gates on several hosts need not agree
on the time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self

import orjson
from sqlalchemy import Row, func, select, update
from sqlalchemy.engine import Connection, Engine

from evalcore.store.tables import RunLeaseRow, utcnow

LEASE_TABLE = RunLeaseRow.__table__  # type: ignore[attr-defined]
_HOLDER_LENGTH = 200
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseKey:
    """What makes two gates the same gate. URLs as runs store them (masked), so a gate
    given other credentials for the same endpoint is still the same gate."""

    release: str
    dataset_hash: str
    scorecard_version: str
    target_url: str | None
    model: str | None
    judge_url: str | None

    @property
    def target(self) -> dict[str, str | None]:
        return {"target_url": self.target_url, "model": self.model, "judge_url": self.judge_url}

    @property
    def digest(self) -> str:
        fields = {
            "release": self.release,
            "dataset_hash": self.dataset_hash,
            "scorecard_version": self.scorecard_version,
            **self.target,
        }
        return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Lease:
    """A lease as stored; `expired` as of the database's clock when it was read."""

    holder: str
    run_id: str | None
    acquired_at: dt.datetime
    expires_at: dt.datetime
    released_at: dt.datetime | None
    expired: bool


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a lease: won or not, and the lease as it now stands.

    On a win over an older lease: `previous_run_id` is the run its last holder worked on
    (to resume when that holder stopped before storing its verdict), and `taken_from` that
    holder when it never released the lease (it stopped renewing: killed, or stalled)."""

    won: bool
    lease: Lease
    previous_run_id: str | None = None
    taken_from: str | None = None


@dataclass(frozen=True)
class Attached:
    """The run a waiting gate attached to, and the gate that works on it."""

    run_id: str
    holder: str


def holder_name(flow_run_id: str | None = None) -> str:
    """Who holds a lease, as a person reading the log can find it: host, process and,
    inside a flow run, its id."""
    name = f"pid {os.getpid()} on {socket.gethostname()}"
    if flow_run_id:
        name += f", flow run {flow_run_id}"
    return name[:_HOLDER_LENGTH]


def _now(conn: Connection) -> dt.datetime:
    """The database's time: every contender compares expiries on one clock."""
    if conn.dialect.name == "postgresql":
        stamp: dt.datetime = conn.execute(select(func.now())).scalar_one()
        return stamp
    return utcnow()


def _aware(stamp: dt.datetime) -> dt.datetime:
    """SQLite gives back naive UTC times; PostgreSQL aware ones."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


def _insert_ignoring_duplicate(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(LEASE_TABLE).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(LEASE_TABLE).on_conflict_do_nothing()


def _lease(row: Any, now: dt.datetime) -> Lease:
    expires_at = _aware(row.expires_at)
    return Lease(
        holder=row.holder,
        run_id=row.run_id,
        acquired_at=_aware(row.acquired_at),
        expires_at=expires_at,
        released_at=_aware(row.released_at) if row.released_at is not None else None,
        expired=expires_at <= _aware(now),
    )


def claim_lease(engine: Engine, key: LeaseKey, *, holder: str, ttl_s: float) -> Claim:
    """Take the lease for `key` if nobody holds it, or if its holder let it expire.

    A new key is an insert that ignores a duplicate; an existing one is taken over by one
    UPDATE conditional on its expiry, so of several contenders exactly one wins."""
    t = LEASE_TABLE.c
    digest = key.digest
    with engine.begin() as conn:
        now = _now(conn)
        expires = now + dt.timedelta(seconds=ttl_s)
        inserted = conn.execute(
            _insert_ignoring_duplicate(conn)
            .values(
                lease_key=digest,
                release=key.release,
                dataset_hash=key.dataset_hash,
                scorecard_version=key.scorecard_version,
                target=key.target,
                holder=holder,
                run_id=None,
                acquired_at=now,
                expires_at=expires,
                released_at=None,
            )
            .returning(t.lease_key)
        ).first()
        previous: Row[Any] | None = None
        won = inserted is not None
        if not won:
            # Locked on PostgreSQL (SQLite holds the database's write lock already), so
            # what is read here is what the takeover below replaces.
            current = conn.execute(
                select(t.run_id, t.holder, t.released_at)
                .where(t.lease_key == digest)
                .with_for_update()
            ).one()
            taken = conn.execute(
                update(LEASE_TABLE)
                .where(t.lease_key == digest, t.expires_at <= now)
                .values(
                    holder=holder,
                    run_id=None,
                    acquired_at=now,
                    expires_at=expires,
                    released_at=None,
                )
            )
            won = taken.rowcount == 1
            previous = current if won else None
        row = conn.execute(select(LEASE_TABLE).where(t.lease_key == digest)).one()
    return Claim(
        won=won,
        lease=_lease(row, now),
        previous_run_id=previous.run_id if previous is not None else None,
        taken_from=previous.holder
        if previous is not None and previous.released_at is None
        else None,
    )


def read_lease(engine: Engine, key: LeaseKey) -> Lease | None:
    with engine.connect() as conn:
        now = _now(conn)
        row = conn.execute(select(LEASE_TABLE).where(LEASE_TABLE.c.lease_key == key.digest)).first()
    return _lease(row, now) if row is not None else None


def _update_held(engine: Engine, key: LeaseKey, holder: str, **values: Any) -> bool:
    """Change the lease only while `holder` still holds it (not released, not taken over);
    `values` may be callables of the database's time."""
    t = LEASE_TABLE.c
    with engine.begin() as conn:
        now = _now(conn)
        resolved = {
            name: value(now) if callable(value) else value for name, value in values.items()
        }
        changed = conn.execute(
            update(LEASE_TABLE)
            .where(t.lease_key == key.digest, t.holder == holder, t.released_at.is_(None))
            .values(**resolved)
        )
        return changed.rowcount == 1


def renew_lease(engine: Engine, key: LeaseKey, *, holder: str, ttl_s: float) -> bool:
    """Push the expiry one TTL past now; False when the lease is no longer `holder`'s.

    A holder late to renew keeps its lease if nobody took it over meanwhile."""
    return _update_held(
        engine, key, holder, expires_at=lambda now: now + dt.timedelta(seconds=ttl_s)
    )


def record_lease_run(engine: Engine, key: LeaseKey, *, holder: str, run_id: str) -> bool:
    """Name the run the holder works on, for the gates that attach to it."""
    return _update_held(engine, key, holder, run_id=run_id)


def release_lease(engine: Engine, key: LeaseKey, *, holder: str) -> bool:
    """Give the lease up (its row and run stay, expired now); False if it was not ours."""
    return _update_held(
        engine, key, holder, expires_at=lambda now: now, released_at=lambda now: now
    )


class LeaseKeeper:
    """Renews a held lease every third of its TTL while the `with` block runs, and
    releases it at the end unless it was lost (then `lost` says so: another gate took it
    over after this one failed to renew in time, and that gate's verdict is the one).

    A thread, not an asyncio task: the flow's synchronous steps block its event loop.
    """

    def __init__(self, engine: Engine, key: LeaseKey, *, holder: str, ttl_s: float) -> None:
        self._engine, self._key, self._holder, self._ttl_s = engine, key, holder, ttl_s
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(
            target=self._renew, name=f"lease {key.release}", daemon=True
        )

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self.lost:
            return
        try:
            release_lease(self._engine, self._key, holder=self._holder)
        except Exception as error:  # it expires on its own: the gate's outcome stands
            _log.warning("could not release the lease on release %s: %s", self._key.release, error)

    def _renew(self) -> None:
        while not self._stop.wait(self._ttl_s / 3):
            try:
                held = renew_lease(self._engine, self._key, holder=self._holder, ttl_s=self._ttl_s)
            except Exception as exc:  # the store unreachable for a moment: try again
                _log.warning("could not renew the lease on release %s: %s", self._key.release, exc)
                continue
            if not held:
                self._lost.set()
                return


def poll_seconds(ttl_s: float) -> float:
    """How often a waiting gate looks at the store: often enough to notice an expiry soon
    after it happens, at most once a second."""
    return min(1.0, ttl_s / 4)


async def attach(
    engine: Engine,
    key: LeaseKey,
    claim: Claim,
    *,
    holder: str,
    ttl_s: float,
    settled: Callable[[str], bool],
    told: Callable[[Attached], None],
) -> Attached | Claim:
    """Wait, as a gate that lost `claim`, until the run the lease names is `settled` (its
    verdict stored), or until the lease expires and this gate wins it.

    Returns the run attached to, or the won claim (then this gate resumes the work). A
    run once followed is reported even if a later gate has taken the lease since; `told`
    hears of each run and holder followed, when the lease first names them.
    """
    lease = claim.lease
    following: Attached | None = None
    while True:
        if following is not None and settled(following.run_id):
            return following
        named = Attached(lease.run_id, lease.holder) if lease.run_id is not None else None
        if named is not None and named != following:
            following = named
            told(following)
            continue  # it may be settled already
        if lease.expired:
            taken = claim_lease(engine, key, holder=holder, ttl_s=ttl_s)
            if taken.won:
                return taken
            lease = taken.lease
        await asyncio.sleep(poll_seconds(ttl_s))
        # A row nobody can hold any more (deleted by hand) is as good as expired.
        lease = read_lease(engine, key) or replace(lease, expired=True)
