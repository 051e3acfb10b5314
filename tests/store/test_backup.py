"""The backup commands of docs/deploy.md, run as written: a store with two runs is dumped
and restored (PostgreSQL with pg_dump/pg_restore, SQLite with `.backup`), and
the copy reads back the same through `evalcore runs list` and `evalcore store status`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalcore import aio
from evalcore.local.reference import ReferenceServer
from evalcore.run import execute_run
from evalcore.run.service import RunRequest, prepare_run
from evalcore.store.engine import dispose_engines, get_engine
from evalcore.suite import EvalSet, load_suite
from tests.cli_helpers import evalcore
from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]


def _filled_store(url: str) -> list[str]:
    """Two runs of the monitoring set; their ids."""
    engine = get_engine(url)
    suite = load_suite(ROOT / "evals")
    ids = []
    with ReferenceServer() as server:
        for _ in range(2):
            run = prepare_run(
                engine,
                suite,
                RunRequest(sets=(EvalSet.monitoring,), target_url=server.base_url, trigger="cli"),
            )
            aio.run(execute_run(engine, suite, run))
            ids.append(run.id)
    dispose_engines()
    return ids


def _runs_listed(tmp_path: Path, url: str) -> list[str]:
    dispose_engines()
    done = evalcore(
        "runs", "list", "--json", cwd=tmp_path, home=tmp_path / "home",
        env={"EVALCORE_DATABASE_URL": url},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return sorted(run["run_id"] for run in json.loads(done.stdout))


def _up_to_date(tmp_path: Path, url: str) -> bool:
    dispose_engines()
    done = evalcore(
        "store", "status", cwd=tmp_path, home=tmp_path / "home",
        env={"EVALCORE_DATABASE_URL": url},
    )  # fmt: skip
    return done.returncode == 0 and "up to date" in done.stdout


@pytest.fixture
def two_pg_databases(pg_database: str) -> Iterator[tuple[str, str]]:
    import psycopg

    names = [f"evalcore_backup_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        dispose_engines()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
def test_pg_dump_and_pg_restore_as_the_guide_writes_them(
    tmp_path: Path, two_pg_databases: tuple[str, str]
) -> None:
    original, restored = two_pg_databases
    ids = _filled_store(original)
    env = {**os.environ, "EVALCORE_DATABASE_URL": original}
    dump = tmp_path / "evalcore.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", "--file", str(dump), env["EVALCORE_DATABASE_URL"]],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    env["EVALCORE_DATABASE_URL"] = restored
    subprocess.run(
        ["pg_restore", "--no-owner", "--dbname", env["EVALCORE_DATABASE_URL"], str(dump)],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    assert _runs_listed(tmp_path, restored) == sorted(ids)
    assert _up_to_date(tmp_path, restored)


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 is not installed")
def test_sqlite_backup_as_the_guide_writes_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    original = home / "evalcore.db"
    ids = _filled_store(f"sqlite:///{original}")
    subprocess.run(
        ["sqlite3", str(original), ".backup evalcore-backup.db"], check=True, cwd=tmp_path
    )
    copy = f"sqlite:///{tmp_path / 'evalcore-backup.db'}"
    assert _runs_listed(tmp_path, copy) == sorted(ids)
    assert _up_to_date(tmp_path, copy)
