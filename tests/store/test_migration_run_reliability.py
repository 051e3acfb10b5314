"""Upgrading a store that has run_stats rows from before pass@k and pass^k: the rows stay
(so the last nightly's latency and cost are still there), and the first trend recomputes
them with the new figures. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine, make_url

from evalcore.results.trends import nightly_trend
from evalcore.store.engine import MIGRATIONS, current_revision, head_revision, migrate
from evalcore.store.repository import insert_results
from evalcore.store.tables import DatasetVersionRow, RunRow, RunStatsRow

PREVIOUS = "0004"
ROUTE = "support-assistant"
DATASET = "f" * 64
STARTED = dt.datetime(2026, 3, 9, 2, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A plain engine on the test database, not yet migrated."""
    url = make_url(db_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    created = sa.create_engine(url)
    yield created
    created.dispose()


def upgrade_to(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def insert_known_columns(engine: Engine, row: Any) -> None:
    """Insert `row` with only the columns its table has at the store's revision."""
    table = type(row).__table__
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    values = {c.name: getattr(row, c.name) for c in table.columns if c.name in present}
    with engine.begin() as conn:
        conn.execute(table.insert().values(**values))


def stats_row(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(RunStatsRow.__table__)).one()  # type: ignore[attr-defined]
    return dict(row._mapping)


def test_rows_from_before_are_kept_then_recomputed_with_pass_hat_k(engine: Engine) -> None:
    upgrade_to(engine, PREVIOUS)
    assert current_revision(engine) == PREVIOUS
    run = RunRow(
        id="r" * 32,
        route=ROUTE,
        target={"kind": "python"},
        target_config={},
        dataset_hash=DATASET,
        scorecard_version="s" * 64,
        scorecard={},
        sets=["monitoring"],
        suite_path="evals",
        settings={},
        status="finished",
        planned=6,
        created_at=STARTED,
    )
    insert_known_columns(
        engine,
        DatasetVersionRow(hash=DATASET, git_commit=None, git_dirty=False, case_count=0),
    )
    insert_known_columns(engine, run)
    insert_known_columns(
        engine,
        RunStatsRow(
            run_id=run.id,
            route=ROUTE,
            sets=["monitoring"],
            created_at=STARTED,
            results=6,
            passed=5,
            failed=1,
            pass_rate=5 / 6,
            latency_p95_ms=432.0,
        ),
    )

    migrate(engine)

    assert current_revision(engine) == head_revision()
    kept = stats_row(engine)
    # The old per-sample rate is kept as such; the per-case one is left to the recompute.
    assert (kept["sample_pass_rate"], kept["latency_p95_ms"]) == (pytest.approx(5 / 6), 432.0)
    assert (kept["pass_rate"], kept["cases_passed"]) == (None, None)
    assert (kept["reliability_k"], kept["pass_hat_k"], kept["set_stats"]) == (None, None, None)

    # The run's results: two cases of three samples each, one of them failing once.
    insert_results(
        engine,
        [
            {
                "run_id": run.id,
                "case_id": case_id,
                "sample": sample,
                "set": "monitoring",
                "passed": not (case_id == "b" and sample == 1),
                "error_class": None,
                "error_message": None,
                "output": None,
                "scores": {},
                "latency_ms": 100.0,
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "cost_usd": 0.001,
                "judge_cost_usd": 0.0,
                "attempts": 1,
                "created_at": None,
            }
            for case_id in ("a", "b")
            for sample in range(3)
        ],
    )
    (night,) = nightly_trend(engine, route=ROUTE, days=7, now=NOW)
    assert (night.run_id, night.reliability_k) == (run.id, 3)
    assert night.pass_hat_k == pytest.approx((1 + 0) / 2)  # b passed 2 of 3: pass^3 = 0
    assert night.pass_at_k == pytest.approx(1.0)
    recomputed = stats_row(engine)
    assert recomputed["latency_p95_ms"] == pytest.approx(100.0)  # from the results now
    assert recomputed["set_stats"] == {
        "monitoring": {
            "pass_rate": 1 / 2,  # b failed a sample: under "all" the case failed
            "sample_pass_rate": 5 / 6,
            "k": 3,
            "pass_at_k": 1.0,
            "pass_hat_k": 0.5,
        }
    }
