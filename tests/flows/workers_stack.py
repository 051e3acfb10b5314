"""`evalcore up --workers N` on real parts for the scale-out tests: a Prefect server and the
store each on a PostgreSQL database of their own, the deployments of prefect.yaml on the
`evalcore` process pool, N workers (`python -m deployments.worker`), and the reference target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import PG_ADMIN_URL, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class WorkersStack:
    api: str
    store_url: str
    prefect_url: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]
    reference_port: int

    def children(self) -> list[psutil.Process]:
        return list(psutil.Process(self.process.pid).children(recursive=True))

    def workers(self) -> list[psutil.Process]:
        """The worker processes (not their fork servers or the flow runs they started)."""
        return [p for p in self.children() if "--pool" in p.cmdline()]


@contextmanager
def _database(prefix: str) -> Iterator[str]:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            pass
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable under CI: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    # Created the way docs/deploy.md says (`createdb`), on the test server.
    subprocess.run(["createdb", "--maintenance-db", PG_ADMIN_URL, name], check=True)
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        from evalcore.store.engine import dispose_engines

        dispose_engines()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for_line(log: Path, needle: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if needle in text:
            return
        assert proc.poll() is None, f"evalcore up exited early:\n{text}"
        time.sleep(0.25)
    raise AssertionError(f"{needle!r} not seen within {timeout_s} s:\n{log.read_text()}")


@contextmanager
def workers_stack(
    tmp_path: Path, workers: int, *, suite: Path | None = None
) -> Iterator[WorkersStack]:
    """The stack, up; stopped with SIGINT afterwards, every child checked gone."""
    with _database("evalcore_prefect") as prefect_db, _database("evalcore_store") as store_url:
        home = tmp_path / "home"
        port, reference_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALCORE_", "PREFECT_"))}
        env.update(
            EVALCORE_HOME=str(home),
            EVALCORE_DATABASE_URL=store_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_DATABASE_CONNECTION_URL=prefect_db.replace(
                "postgresql://", "postgresql+asyncpg://", 1
            ),
            PREFECT_WORKER_QUERY_SECONDS="1",
        )
        log = tmp_path / "up.log"
        with log.open("wb") as out:
            up = subprocess.Popen(
                [
                    *(sys.executable, "-m", "evalcore", "up", "--port", str(port), "--no-ui"),
                    *("--reference-port", str(reference_port), "--workers", str(workers)),
                    *("--suite", str(suite or ROOT / "evals")),
                ],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        stack = WorkersStack(
            api=f"http://127.0.0.1:{port}/api",
            store_url=store_url,
            prefect_url=prefect_db,
            home=home,
            log=log,
            process=up,
            reference_port=reference_port,
        )
        family: list[psutil.Process] = []
        try:
            wait_for_line(log, "up: Prefect API", up, 180)
            family = stack.children()
            yield stack
        finally:
            family = list({p.pid: p for p in family + _alive(stack)}.values())
            up.send_signal(signal.SIGINT)
            code = up.wait(90)
            _, alive = psutil.wait_procs(family, timeout=15)
            for process in alive:
                process.kill()
        assert code == 0, log.read_text()
        assert not alive, [p.cmdline() for p in alive]


def _alive(stack: WorkersStack) -> list[psutil.Process]:
    try:
        return stack.children()
    except psutil.NoSuchProcess:
        return []
