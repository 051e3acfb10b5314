"""A finished run in a few numbers (one `run_stats` row), so trends never rescan results.

Taken from the run's summary, so counted the same way: errors are never failures, a pass
rate is passed / (passed + failed) and is None when nothing was scored; the error rate is
errors over all results. Latency percentiles are over the calls that got a reply (latency
recorded), cost is the target's (the judge's is kept apart) and the cost per case divides
it by the number of distinct cases.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from evalcore.results.loader import RunResults, StreamedResults, collector_paused, read_results
from evalcore.results.summary import summarize
from evalcore.store.tables import RunRow, RunStatsRow, utcnow

STATS_TABLE = RunStatsRow.__table__  # type: ignore[attr-defined]
RUN_TABLE = RunRow.__table__  # type: ignore[attr-defined]


def as_utc(value: dt.datetime) -> dt.datetime:
    """`value` as an aware UTC datetime; a naive one is taken to be in UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def compute_run_stats(results: RunResults | StreamedResults) -> RunStatsRow:
    """The stats of one run, from its summary (not stored; see `record_run_stats`)."""
    run = results.run
    summary = summarize(results)
    passed = sum(s.passed for s in summary.sets)
    cases = sum(s.cases for s in summary.sets)
    scored = passed + summary.failed
    return RunStatsRow(
        run_id=run.id,
        route=run.route,
        sets=list(run.sets),
        created_at=as_utc(run.created_at),
        results=summary.results,
        passed=passed,
        failed=summary.failed,
        errors=summary.errors,
        pass_rate=passed / scored if scored else None,
        error_rate=summary.errors / summary.results if summary.results else None,
        latency_p50_ms=summary.latency_p50_ms,
        latency_p95_ms=summary.latency_p95_ms,
        cost_usd=summary.cost_usd,
        judge_cost_usd=summary.judge_cost_usd,
        cost_per_case_usd=summary.cost_usd / cases if cases else None,
        computed_at=utcnow(),
    )


def _values(stats: RunStatsRow) -> dict[str, Any]:
    return {column.name: getattr(stats, column.name) for column in STATS_TABLE.columns}


def record_run_stats(engine: Engine, run_id: str) -> RunStatsRow:
    """Compute and store a run's stats; recomputing replaces the row (an upsert, so two
    writers at once leave one row, never a duplicate-key error)."""
    with collector_paused(), read_results(engine, run_id) as streamed:
        stats = compute_run_stats(streamed)  # one pass: the run is never held whole
    values = _values(stats)
    dialect: Any
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect  # only a PostgreSQL store
    else:
        from sqlalchemy.dialects import sqlite as dialect
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
