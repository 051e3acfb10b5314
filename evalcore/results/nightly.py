"""Which runs are a route's nightly monitoring runs: one rule for every reader of them (the
monitor's sequential test, the digest, graduation).

A nightly run is a finished run of exactly one set (the monitoring set), started by the
nightly flow or `evalcore monitor` (`NIGHTLY_TRIGGERS`), or analysed by the monitor
(findings stored) whatever started it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import Engine

from evalcore.store.tables import DriftFindingRow, RunRow

__all__ = ["NIGHTLY_TRIGGERS", "is_nightly", "nightly_runs"]

NIGHTLY_TRIGGERS = ("nightly", "monitor")

_RUN = RunRow.__table__  # type: ignore[attr-defined]
_FINDING = DriftFindingRow.__table__  # type: ignore[attr-defined]


def is_nightly() -> ColumnElement[bool]:
    """The SQL condition on a `run` row that makes it a nightly run (apart from its sets,
    checked in Python: one set, the monitoring set)."""
    r, f = _RUN.c, _FINDING.c
    analysed = select(f.run_id).where(f.run_id == r.id).exists()
    condition: ColumnElement[bool] = r.trigger.in_(NIGHTLY_TRIGGERS) | analysed
    return condition


def nightly_runs(
    engine: Engine,
    *,
    route: str,
    set_name: str,
    after: dt.datetime | None = None,
    before: RunRow | None = None,
) -> list[RunRow]:
    """The route's nightly runs of `set_name` created after `after` and no later than the
    run `before` (itself left out), oldest first."""
    r = _RUN.c
    stmt = (
        select(_RUN)
        .where(r.route == route, r.status == "finished")
        .where(is_nightly())
        .order_by(r.created_at, r.id)
    )
    if after is not None:
        stmt = stmt.where(r.created_at > after)
    if before is not None:
        stmt = stmt.where(r.created_at <= before.created_at, r.id != before.id)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [RunRow.model_validate(row._mapping) for row in rows if list(row.sets) == [set_name]]
