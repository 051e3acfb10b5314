"""Shared fixtures: a private state folder per test, the two real databases, the fake
Slack and a Prefect server.

PostgreSQL tests run against the server on 127.0.0.1:5432 in a database created for
this test session and dropped after it. Under CI=true an unreachable server fails the
run instead of skipping, so a green CI always means both backends were exercised.

Under pytest-xdist (`make test`) each worker is a session of its own: its own PREFECT_HOME,
PostgreSQL database, fake Slack and Prefect server (started by the first test that needs
one), each on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from evalcore.local.fake_slack import FakeSlackServer

# Prefect keeps its state (profiles, the temporary server's database) in a folder of this
# test session, never in the user's ~/.prefect; a PREFECT_API_URL from the user's shell
# must not send test flow runs to their server. Set before anything imports prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="evalcore-test-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_PROFILES_PATH", None)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `prefect server start` on a free loopback port, shared by the few tests that
    need one (it takes seconds to start on 2 cores); its API URL."""
    import httpx

    from evalcore.local.stack import ManagedProcess

    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home)}
    server = ManagedProcess(
        "prefect server",
        [
            *(sys.executable, "-m", "prefect", "server", "start"),
            *("--host", "127.0.0.1", "--port", str(port), "--no-ui"),
        ],
        env,
        home / "server.log",
    ).start()
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert server.alive(), server.tail()
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no Prefect server after 120 s:\n{server.tail()}"
            time.sleep(0.25)
        yield api
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _slack_server() -> Iterator[FakeSlackServer]:
    """One fake Slack subprocess for the whole session; tests take it through `slack`."""
    from evalcore.local.fake_slack import FakeSlackServer

    with FakeSlackServer() as server:
        yield server


@pytest.fixture
def slack(_slack_server: FakeSlackServer) -> FakeSlackServer:
    """The fake Slack (default workspace) as a fresh server would be: no messages,
    recorded requests, pending faults or Socket Mode connections from earlier tests."""
    _slack_server.reset()
    return _slack_server


PG_ADMIN_URL = os.environ.get("EVALCORE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from evalcore.store.engine import dispose_engines

    monkeypatch.setenv("EVALCORE_HOME", str(tmp_path / ".evalcore"))
    monkeypatch.delenv("EVALCORE_DATABASE_URL", raising=False)
    yield
    dispose_engines()


def _pg_reachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return str(exc)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; its URL."""
    import psycopg

    problem = _pg_reachable()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable under CI: {problem}")
        pytest.skip(f"PostgreSQL is not reachable: {problem}")
    name = f"evalcore_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        from evalcore.store.engine import dispose_engines

        dispose_engines()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each persistence test runs on both backends, each time on an empty schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'evalcore.db'}"
        return
    import psycopg

    base_url: str = request.getfixturevalue("pg_database")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base_url}?options=-csearch_path%3D{schema}"
    finally:
        from evalcore.store.engine import dispose_engines

        dispose_engines()
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
