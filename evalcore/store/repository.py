"""Reads and writes the run engine and the CLI need, as plain functions over an engine.

Result rows are inserted with "on conflict do nothing" on (run, case, sample): a batch
replayed after a crash, or written by a resumed run, can never count a pair twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from sqlmodel import select as model_select

from evalcore.store.tables import (
    CaseResultRow,
    DatasetCaseRow,
    DatasetVersionRow,
    RunRow,
    TriggerEventRow,
    utcnow,
)

RESULT_TABLE = CaseResultRow.__table__  # type: ignore[attr-defined]
CASE_TABLE = DatasetCaseRow.__table__  # type: ignore[attr-defined]
_CASE_CHUNK = 2_000


def new_run_id() -> str:
    """A new run's id: a UUID4's hex, drawn again until it starts with a letter, so that no
    prefix of it a person copies (`runs list` shows 12 characters) reads as a number in
    YAML (`regression: {against: 353281032638}`)."""
    while True:
        run_id = uuid.uuid4().hex
        if not run_id[0].isdigit():
            return run_id


def _insert_ignoring_duplicates(engine: Engine, table: Any) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # loaded only by a PostgreSQL store

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()


def record_dataset_version(
    engine: Engine,
    *,
    version_hash: str,
    git_commit: str | None,
    git_dirty: bool,
    cases: Iterable[dict[str, Any]],
    case_count: int,
) -> bool:
    """Store a dataset version and its cases once; returns whether it was new.

    `cases` yields dataset_case rows without `dataset_hash`; it is only consumed when
    the version is new, so an unchanged suite costs one primary-key lookup.
    """
    with Session(engine) as session:
        if session.get(DatasetVersionRow, version_hash) is not None:
            return False
    stmt = _insert_ignoring_duplicates(engine, CASE_TABLE)
    with engine.begin() as conn:
        inserted = conn.execute(
            _insert_ignoring_duplicates(engine, DatasetVersionRow.__table__).values(  # type: ignore[attr-defined]
                hash=version_hash,
                git_commit=git_commit,
                git_dirty=git_dirty,
                case_count=case_count,
                created_at=utcnow(),
            )
        ).rowcount
        if not inserted:
            return False  # another process stored it first
        chunk: list[dict[str, Any]] = []
        for row in cases:
            chunk.append({**row, "dataset_hash": version_hash})
            if len(chunk) >= _CASE_CHUNK:
                conn.execute(stmt, chunk)
                chunk = []
        if chunk:
            conn.execute(stmt, chunk)
    return True


def create_run(engine: Engine, run: RunRow) -> RunRow:
    with Session(engine) as session:
        session.add(run)
        session.commit()
        session.refresh(run)
        return run


def get_run(engine: Engine, run_id: str) -> RunRow | None:
    with Session(engine) as session:
        run = session.get(RunRow, run_id)
        if run is None:
            # Let people paste the short id the CLI prints.
            matches = session.exec(
                model_select(RunRow).where(col(RunRow.id).startswith(run_id)).limit(2)
            ).all()
            run = matches[0] if len(matches) == 1 and run_id else None
        return run


def set_run_status(engine: Engine, run_id: str, status: str) -> None:
    finished = utcnow() if status in {"finished", "failed", "interrupted"} else None
    with engine.begin() as conn:
        conn.execute(
            update(RunRow.__table__)  # type: ignore[attr-defined]
            .where(RunRow.__table__.c.id == run_id)  # type: ignore[attr-defined]
            .values(status=status, finished_at=finished)
        )


_JSON_RESULT_COLUMNS = frozenset({"output", "scores"})
RESULT_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESULT_TABLE.columns if c.name != "id")
_SQLITE_STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite DateTime stores values


def _insert_results_sql(dialect: str) -> str:
    marker = "?" if dialect == "sqlite" else "%s"
    columns = ", ".join(f'"{c}"' for c in RESULT_COLUMNS)
    values = ", ".join(marker for _ in RESULT_COLUMNS)
    return (
        f"INSERT INTO case_result ({columns}) VALUES ({values}) "
        "ON CONFLICT (run_id, case_id, sample) DO NOTHING"
    )


def insert_results(engine: Engine, rows: Sequence[dict[str, Any]]) -> int:
    """Insert a batch of result rows in one transaction; duplicates are skipped.

    This is the run engine's hot path (thousands of rows a second), so it hands tuples
    straight to the driver instead of paying SQLAlchemy's per-value type processing;
    the JSON and timestamp encodings are the ones `JSONText` and SQLModel would produce.
    """
    if not rows:
        return 0
    dialect = engine.dialect.name
    sqlite_ = dialect == "sqlite"
    params = []
    for row in rows:
        values: list[Any] = []
        for column in RESULT_COLUMNS:
            value = row.get(column)
            if column in _JSON_RESULT_COLUMNS:
                value = None if value is None else orjson.dumps(value).decode()
            elif column == "created_at":
                value = (value or utcnow()).astimezone(dt.UTC)
                if sqlite_:
                    value = value.strftime(_SQLITE_STAMP)
            values.append(value)
        params.append(tuple(values))
    with engine.begin() as conn:
        result = conn.exec_driver_sql(_insert_results_sql(dialect), params)
        return int(result.rowcount or 0)


def done_pairs(engine: Engine, run_id: str) -> set[tuple[str, int]]:
    """The (case id, sample) pairs a run already has a result for."""
    t = RESULT_TABLE.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.case_id, t.sample).where(t.run_id == run_id))
        return {(case_id, sample) for case_id, sample in rows}


@dataclass(frozen=True)
class RunTotals:
    results: int
    passed: int
    failed: int
    errors: int
    cost_usd: float
    judge_cost_usd: float
    mean_latency_ms: float | None


def run_totals(engine: Engine, run_id: str) -> RunTotals:
    t = RESULT_TABLE.c
    with engine.connect() as conn:
        row = conn.execute(
            select(
                func.count(),
                func.count().filter(t.passed.is_(True)),
                func.count().filter(t.passed.is_(False)),
                func.count().filter(t.error_class.is_not(None)),
                func.coalesce(func.sum(t.cost_usd), 0.0),
                func.coalesce(func.sum(t.judge_cost_usd), 0.0),
                func.avg(t.latency_ms),
            ).where(t.run_id == run_id)
        ).one()
    return RunTotals(
        results=row[0],
        passed=row[1],
        failed=row[2],
        errors=row[3],
        cost_usd=float(row[4]),
        judge_cost_usd=float(row[5]),
        mean_latency_ms=float(row[6]) if row[6] is not None else None,
    )


def results_for_run(engine: Engine, run_id: str) -> list[CaseResultRow]:
    with Session(engine) as session:
        stmt = (
            model_select(CaseResultRow)
            .where(col(CaseResultRow.run_id) == run_id)
            .order_by(col(CaseResultRow.case_id), col(CaseResultRow.sample))
        )
        return list(session.exec(stmt).all())


def results_passed(
    engine: Engine, run_id: str, passed: bool | None, *, limit: int
) -> list[CaseResultRow]:
    """The first `limit` results of `run_id` that passed, failed or (None) errored, in
    (case, sample) order: what a report shows without reading the whole run."""
    column = col(CaseResultRow.passed)
    with Session(engine) as session:
        stmt = (
            model_select(CaseResultRow)
            .where(col(CaseResultRow.run_id) == run_id)
            .where(column.is_(None) if passed is None else column == passed)
            .order_by(col(CaseResultRow.case_id), col(CaseResultRow.sample))
            .limit(limit)
        )
        return list(session.exec(stmt).all())


def result_measures(engine: Engine, run_id: str) -> list[tuple[bool | None, float | None, float]]:
    """(passed, latency in ms, cost in USD) of every result of `run_id`, for distributions."""
    t = RESULT_TABLE.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.passed, t.latency_ms, t.cost_usd).where(t.run_id == run_id))
        return [(passed, latency, float(cost or 0.0)) for passed, latency, cost in rows]


def list_runs(engine: Engine, *, limit: int = 20, release: str | None = None) -> list[RunRow]:
    with Session(engine) as session:
        stmt = model_select(RunRow).order_by(col(RunRow.created_at).desc())
        if release is not None:
            stmt = stmt.where(col(RunRow.release) == release)
        return list(session.exec(stmt.limit(limit)).all())


def dataset_case_rows(engine: Engine, dataset_hash: str) -> list[DatasetCaseRow]:
    with Session(engine) as session:
        stmt = model_select(DatasetCaseRow).where(col(DatasetCaseRow.dataset_hash) == dataset_hash)
        return list(session.exec(stmt).all())


def case_samples(engine: Engine, dataset_hash: str, sets: Sequence[str]) -> list[tuple[str, int]]:
    """(case id, samples) of every case of `sets` in a dataset version, without the bodies:
    the pairs a run of those sets plans."""
    t = CASE_TABLE.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.case_id, t.samples)
            .where(t.dataset_hash == dataset_hash)
            .where(t.set.in_(list(sets)))
            .order_by(t.case_id)
        )
        return [(case_id, int(samples)) for case_id, samples in rows]


UNFINISHED = ("running", "interrupted", "failed")


def latest_unfinished_run(
    engine: Engine,
    *,
    release: str,
    sets: Sequence[str],
    dataset_hash: str,
    scorecard_version: str,
) -> RunRow | None:
    """The newest run of `release` over `sets` that never finished, on the same dataset.

    A run killed mid-way (status still `running`), interrupted or failed on its own error
    is continued by the next gate run for the release instead of starting from zero.
    """
    with Session(engine) as session:
        stmt = (
            model_select(RunRow)
            .where(col(RunRow.release) == release)
            .where(col(RunRow.dataset_hash) == dataset_hash)
            .where(col(RunRow.scorecard_version) == scorecard_version)
            .where(col(RunRow.status).in_(UNFINISHED))
            .order_by(col(RunRow.created_at).desc())
        )
        for run in session.exec(stmt.limit(20)):
            if sorted(run.sets) == sorted(sets):
                return run
    return None


def claim_event(engine: Engine, *, event_id: str, event: str, release: str | None) -> str | None:
    """Claim a triggering event; returns None when the claim is ours, else the run id (or
    "" while unknown) of whoever claimed it first."""
    table = TriggerEventRow.__table__  # type: ignore[attr-defined]
    stmt = (
        _insert_ignoring_duplicates(engine, table)
        .values(event_id=event_id, event=event, release=release, received_at=utcnow())
        .returning(table.c.event_id)
    )
    with engine.begin() as conn:
        inserted = conn.execute(stmt).first() is not None
    if inserted:
        return None
    with Session(engine) as session:
        row = session.get(TriggerEventRow, event_id)
        return (row.run_id or "") if row is not None else ""


def attach_event_run(engine: Engine, event_id: str, run_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(TriggerEventRow.__table__)  # type: ignore[attr-defined]
            .where(TriggerEventRow.__table__.c.event_id == event_id)  # type: ignore[attr-defined]
            .values(run_id=run_id)
        )


def record_run_setting(engine: Engine, run_id: str, key: str, value: Any) -> dict[str, Any]:
    """Set one key of a run's settings (kept with the run, read by whoever judges it);
    returns the settings as stored. Read and written in one transaction."""
    table = RunRow.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        current = conn.execute(select(table.c.settings).where(table.c.id == run_id)).scalar_one()
        settings = {**(current or {}), key: value}
        conn.execute(update(table).where(table.c.id == run_id).values(settings=settings))
    return settings


def earlier_runs(
    engine: Engine, *, route: str, sets: Sequence[str], before: dt.datetime, limit: int = 50
) -> list[RunRow]:
    """Finished runs of `route` over exactly `sets` started before `before`, newest first,
    with a release (what gate runs have): the runs a gate may be compared with."""
    with Session(engine) as session:
        stmt = (
            model_select(RunRow)
            .where(col(RunRow.route) == route)
            .where(col(RunRow.status) == "finished")
            .where(col(RunRow.release).is_not(None))
            .where(col(RunRow.created_at) < before)
            .order_by(col(RunRow.created_at).desc())
        )
        return [run for run in session.exec(stmt.limit(limit)) if sorted(run.sets) == sorted(sets)]
