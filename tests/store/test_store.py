"""The store on both backends: schema on first open, migrations that match the tables,
idempotent result writes and dataset versions, and values that come back as written."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

import evalcore.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from evalcore.store.engine import current_revision, get_engine, head_revision, migrate
from evalcore.store.repository import (
    create_run,
    dataset_case_rows,
    done_pairs,
    insert_results,
    new_run_id,
    record_dataset_version,
    results_for_run,
)
from evalcore.store.tables import CaseResultRow, RunRow

TABLES = {"dataset_version", "dataset_case", "run", "case_result"}
DATASET = "d" * 64


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def count(engine: Engine, table: str, where: str = "", **params: Any) -> int:
    with engine.connect() as conn:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(conn.execute(sa.text(sql), params).scalar_one())


def case_rows(*ids: str) -> list[dict[str, Any]]:
    return [
        {
            "case_id": case_id,
            "case_hash": f"{index:064x}",
            "set": "monitoring",
            "severity": "medium",
            "tags": ["refunds", "eu"],
            "samples": 2,
            "body": {"id": case_id, "expect": {"contains": ["14 days"]}},
        }
        for index, case_id in enumerate(ids)
    ]


def new_run(engine: Engine, dataset: str = DATASET) -> str:
    record_dataset_version(
        engine,
        version_hash=dataset,
        git_commit=None,
        git_dirty=False,
        cases=case_rows("a", "b"),
        case_count=2,
    )
    run = RunRow(
        id=new_run_id(),
        route="support-assistant",
        target={"kind": "openai_chat"},
        target_config={"base_url": "http://127.0.0.1:9/v1"},
        dataset_hash=dataset,
        scorecard_version="s" * 64,
        scorecard={},
        sets=["monitoring"],
        suite_path="evals",
        settings={},
        planned=4,
    )
    return create_run(engine, run).id


def result(run_id: str, case_id: str, sample: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "case_id": case_id,
        "sample": sample,
        "set": "monitoring",
        "passed": True,
        "error_class": None,
        "error_message": None,
        "output": {"text": "You have 14 days.", "tool_calls": []},
        "scores": {"contains": {"passed": True, "score": 1.0, "reason": "found '14 days'"}},
        "latency_ms": 12.5,
        "prompt_tokens": 40,
        "completion_tokens": 8,
        "cost_usd": 0.00001,
        "judge_cost_usd": 0.0,
        "attempts": 1,
        "created_at": dt.datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=dt.UTC),
    }
    row.update(changes)
    return row


# --- schema -------------------------------------------------------------------------------


def test_a_fresh_database_is_at_head_after_get_engine(db_url: str) -> None:
    head = head_revision()
    assert head is not None
    engine = get_engine(db_url)
    assert current_revision(engine) == head
    assert table_names(engine) >= TABLES
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(head,)]


def test_migrate_again_is_a_no_op(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id = new_run(engine)
    insert_results(engine, [result(run_id, "a", 0)])

    migrate(engine)
    migrate(engine)

    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    assert count(engine, "case_result") == 1  # nothing dropped or re-created
    assert count(engine, "run") == 1


def test_a_second_get_engine_reuses_the_migrated_schema(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id = new_run(engine)
    assert get_engine(db_url) is engine
    insert_results(engine, [result(run_id, "a", 0)])
    assert count(get_engine(db_url), "case_result") == 1


def test_migrations_and_tables_agree(db_url: str) -> None:
    # Nothing is filtered: on this stack (SQLModel's UTCDateTime is DateTime(timezone=True)
    # like the migration's, JSONText renders as TEXT on both sides) the comparison is
    # exactly empty on SQLite and on PostgreSQL, so any missing table, column or index, or
    # a changed type or nullability, shows up as a difference and fails the test.
    engine = get_engine(db_url)
    assert set(SQLModel.metadata.tables) >= TABLES
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_the_schema_comparison_notices_a_missing_column(db_url: str) -> None:
    """The check above can fail: a column the tables declare but the database lacks."""
    engine = get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE case_result DROP COLUMN judge_cost_usd"))
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert [(d[0], d[2], d[3].name) for d in differences if isinstance(d, tuple)] == [
        ("add_column", "case_result", "judge_cost_usd")
    ]


# --- results -----------------------------------------------------------------------------


def test_insert_results_skips_duplicates_and_counts_inserted(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id = new_run(engine)

    assert insert_results(engine, [result(run_id, "a", 0), result(run_id, "a", 1)]) == 2
    # One pair already stored, one new: only the new one counts and is written.
    replay = [result(run_id, "a", 1, passed=False), result(run_id, "b", 0)]
    assert insert_results(engine, replay) == 1
    assert insert_results(engine, [result(run_id, "a", 0)]) == 0
    assert insert_results(engine, []) == 0

    assert count(engine, "case_result") == 3
    kept = {(r.case_id, r.sample): r.passed for r in results_for_run(engine, run_id)}
    assert kept == {("a", 0): True, ("a", 1): True, ("b", 0): True}  # first write wins


def test_the_same_pair_in_another_run_is_not_a_duplicate(db_url: str) -> None:
    engine = get_engine(db_url)
    first, second = new_run(engine), new_run(engine)
    assert insert_results(engine, [result(first, "a", 0)]) == 1
    assert insert_results(engine, [result(second, "a", 0)]) == 1
    assert count(engine, "case_result") == 2


def test_done_pairs_are_exactly_the_pairs_written(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id, other = new_run(engine), new_run(engine)
    assert done_pairs(engine, run_id) == set()

    insert_results(
        engine,
        [
            result(run_id, "a", 0),
            result(run_id, "a", 1, passed=None, error_class="timeout", output=None),
            result(run_id, "b", 1),
            result(other, "b", 0),
        ],
    )

    assert done_pairs(engine, run_id) == {("a", 0), ("a", 1), ("b", 1)}
    assert done_pairs(engine, other) == {("b", 0)}
    assert done_pairs(engine, "no-such-run") == set()


def test_json_columns_and_created_at_round_trip(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id = new_run(engine)
    output = {
        "text": "Sie haben 14 Tage — «Widerrufsrecht» ✓",
        "tool_calls": [{"name": "create_refund", "arguments": {"order_id": "LH-123456"}}],
        "nested": {"n": 3, "x": 0.25, "flag": False, "none": None, "list": [1, "two"]},
    }
    scores = {
        "contains": {"passed": True, "score": 1.0, "reason": "found '14 days'"},
        "judge": {"passed": False, "score": 0.4, "reason": "too terse", "cost_usd": 0.002},
    }
    berlin = dt.timezone(dt.timedelta(hours=2))
    stamp = dt.datetime(2026, 3, 1, 14, 30, 15, 250_000, tzinfo=berlin)  # 12:30:15.25 UTC
    insert_results(
        engine,
        [
            result(run_id, "a", 0, output=output, scores=scores, created_at=stamp),
            result(
                run_id,
                "b",
                0,
                passed=None,
                error_class="connection",
                error_message="connection refused",
                output=None,
                scores={},
            ),
        ],
    )

    first, second = results_for_run(engine, run_id)
    assert (first.case_id, second.case_id) == ("a", "b")
    assert first.output == output
    assert first.scores == scores
    assert first.created_at == dt.datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=dt.UTC)
    assert first.created_at.utcoffset() == dt.timedelta(0)
    assert first.latency_ms == 12.5
    assert (first.prompt_tokens, first.completion_tokens, first.attempts) == (40, 8, 1)
    assert first.passed is True and first.error_class is None

    assert second.output is None
    assert second.scores == {}
    assert second.passed is None
    assert (second.error_class, second.error_message) == ("connection", "connection refused")
    assert second.created_at.utcoffset() == dt.timedelta(0)


def test_created_at_defaults_to_now_in_utc(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id = new_run(engine)
    before = dt.datetime.now(dt.UTC)
    insert_results(engine, [result(run_id, "a", 0, created_at=None)])
    after = dt.datetime.now(dt.UTC)
    (row,) = results_for_run(engine, run_id)
    assert row.created_at.tzinfo is not None
    assert before - dt.timedelta(seconds=1) <= row.created_at <= after + dt.timedelta(seconds=1)


def test_fast_path_rows_match_rows_written_through_the_orm(db_url: str) -> None:
    """insert_results bypasses SQLAlchemy's types; what it stores must read and compare the
    same as a row SQLModel writes, or time-window queries and JSON reads would disagree."""
    engine = get_engine(db_url)
    run_id = new_run(engine)
    stamp = dt.datetime(2026, 3, 1, 12, 30, 15, tzinfo=dt.UTC)
    insert_results(engine, [result(run_id, "a", 0, created_at=stamp)])
    with Session(engine) as session:
        session.add(CaseResultRow(**result(run_id, "b", 0, created_at=stamp)))
        session.commit()

    fast, orm = results_for_run(engine, run_id)
    skip = {"id", "case_id"}
    assert fast.model_dump(exclude=skip) == orm.model_dump(exclude=skip)
    with Session(engine) as session:
        same_time = session.exec(
            select(CaseResultRow).where(col(CaseResultRow.created_at) == stamp)
        ).all()
    assert sorted(r.case_id for r in same_time) == ["a", "b"]
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT scores, output FROM case_result")).all()
    assert stored[0] == stored[1]  # the JSON text itself, byte for byte


# --- dataset versions --------------------------------------------------------------------


def test_record_dataset_version_stores_once(db_url: str) -> None:
    engine = get_engine(db_url)
    kwargs: dict[str, Any] = {
        "version_hash": DATASET,
        "git_commit": "c" * 40,
        "git_dirty": True,
        "case_count": 3,
    }
    assert record_dataset_version(engine, cases=case_rows("a", "b", "c"), **kwargs) is True

    consumed: list[str] = []

    def again() -> Any:
        for row in case_rows("a", "b", "c", "d"):
            consumed.append(row["case_id"])
            yield row

    assert record_dataset_version(engine, cases=again(), **kwargs) is False
    assert consumed == []  # an unchanged suite costs a lookup, not a pass over its cases

    assert count(engine, "dataset_version") == 1
    assert count(engine, "dataset_case") == 3
    rows = sorted(dataset_case_rows(engine, DATASET), key=lambda r: r.case_id)
    assert [r.case_id for r in rows] == ["a", "b", "c"]
    assert rows[0].tags == ["refunds", "eu"]
    assert rows[0].body == {"id": "a", "expect": {"contains": ["14 days"]}}
    assert rows[0].samples == 2
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT git_commit, git_dirty, case_count FROM dataset_version")
        ).one()
    assert (stored[0], bool(stored[1]), stored[2]) == ("c" * 40, True, 3)


def test_two_dataset_versions_keep_their_own_cases(db_url: str) -> None:
    engine = get_engine(db_url)
    common: dict[str, Any] = {"git_commit": None, "git_dirty": False}
    assert record_dataset_version(
        engine, version_hash="1" * 64, cases=case_rows("a", "b"), case_count=2, **common
    )
    assert record_dataset_version(
        engine, version_hash="2" * 64, cases=case_rows("a", "b", "c"), case_count=3, **common
    )
    assert count(engine, "dataset_version") == 2
    assert count(engine, "dataset_case", "dataset_hash = :h", h="1" * 64) == 2
    assert count(engine, "dataset_case", "dataset_hash = :h", h="2" * 64) == 3
