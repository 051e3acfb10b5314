"""A finished run in a few numbers (one `run_stats` row), so trends never rescan results.

Counted the way `summarize_run` counts them: errors are never failures, a pass rate is
passed / (passed + failed) and is None when nothing was scored; the error rate is errors
over all results. Latency percentiles are over the calls that got a reply (latency
recorded), cost is the target's (the judge's is kept apart) and the cost per case divides
it by the number of distinct cases.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from evalcore.store.repository import RESULT_TABLE, get_run
from evalcore.store.tables import RunRow, RunStatsRow, utcnow

STATS_TABLE = RunStatsRow.__table__  # type: ignore[attr-defined]
RUN_TABLE = RunRow.__table__  # type: ignore[attr-defined]


def as_utc(value: dt.datetime) -> dt.datetime:
    """`value` as an aware UTC datetime; a naive one is taken to be in UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def compute_run_stats(engine: Engine, run_id: str) -> RunStatsRow:
    """The stats of one run from its results (not stored; see `record_run_stats`)."""
    run = get_run(engine, run_id)
    if run is None:
        raise KeyError(run_id)
    t = RESULT_TABLE.c
    with engine.connect() as conn:
        results, passed, failed, errors, cases, cost, judge_cost = conn.execute(
            select(
                func.count(),
                func.sum(sql_case((t.passed.is_(True), 1), else_=0)),
                func.sum(sql_case((t.passed.is_(False), 1), else_=0)),
                func.sum(sql_case((t.error_class.is_not(None), 1), else_=0)),
                func.count(func.distinct(t.case_id)),
                func.coalesce(func.sum(t.cost_usd), 0.0),
                func.coalesce(func.sum(t.judge_cost_usd), 0.0),
            ).where(t.run_id == run.id)
        ).one()
        latencies = np.fromiter(
            (
                row[0]
                for row in conn.execute(
                    select(t.latency_ms).where(t.run_id == run.id, t.latency_ms.is_not(None))
                )
            ),
            dtype=float,
        )
    passed, failed, errors = int(passed or 0), int(failed or 0), int(errors or 0)
    scored = passed + failed
    cost = float(cost)
    p50 = float(np.percentile(latencies, 50)) if latencies.size else None
    p95 = float(np.percentile(latencies, 95)) if latencies.size else None
    return RunStatsRow(
        run_id=run.id,
        route=run.route,
        sets=list(run.sets),
        created_at=as_utc(run.created_at),
        results=int(results),
        passed=passed,
        failed=failed,
        errors=errors,
        pass_rate=passed / scored if scored else None,
        error_rate=errors / results if results else None,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        cost_usd=cost,
        judge_cost_usd=float(judge_cost),
        cost_per_case_usd=cost / cases if cases else None,
        computed_at=utcnow(),
    )


def _values(stats: RunStatsRow) -> dict[str, Any]:
    return {column.name: getattr(stats, column.name) for column in STATS_TABLE.columns}


def record_run_stats(engine: Engine, run_id: str) -> RunStatsRow:
    """Compute and store a run's stats; recomputing replaces the row (an upsert, so two
    writers at once leave one row, never a duplicate-key error)."""
    stats = compute_run_stats(engine, run_id)
    values = _values(stats)
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(STATS_TABLE).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[STATS_TABLE.c.run_id],
        set_={name: stmt.excluded[name] for name in values if name != "run_id"},
    )
    with engine.begin() as conn:
        conn.execute(stmt)
    return stats


def ensure_run_stats(engine: Engine, *, route: str, since: dt.datetime) -> int:
    """Record the stats of the route's finished runs created since `since` that have none
    (runs from before stats were recorded); returns how many were computed."""
    r, s = RUN_TABLE.c, STATS_TABLE.c
    with engine.connect() as conn:
        missing = conn.execute(
            select(r.id)
            .select_from(RUN_TABLE.outerjoin(STATS_TABLE, s.run_id == r.id))
            .where(
                r.route == route,
                r.status == "finished",
                r.created_at >= as_utc(since),
                s.run_id.is_(None),
            )
            .order_by(r.created_at)
        ).all()
    for (run_id,) in missing:
        record_run_stats(engine, run_id)
    return len(missing)
