"""The run engine under the failures that happen in real life: a kill -9 mid-run, a flaky
target, and two runs writing to the same database at once. Each runs on both backends;
the killed run and the two at once are processes of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench.suites import write_suite
from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.store.engine import get_engine
from evalcore.store.repository import RESULT_TABLE
from evalcore.store.tables import RunRow
from tests.cli_helpers import evalcore, evalcore_process, process_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ANSWER = {"outcome": "answer"}


def cli_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """What the commands get besides their home: the store, CI's quiet output, and (for a
    process) `tmp_path` importable for a python target written there."""
    path = os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {"EVALCORE_DATABASE_URL": db_url, "CI": "1", "PYTHONPATH": path}


def result_counts(db_url: str, run_id: str | None = None) -> tuple[int, int]:
    """(rows, distinct (run, case, sample) pairs), for one run or all."""
    t = RESULT_TABLE.c
    pairs = select(t.run_id, t.case_id, t.sample).distinct()
    rows = select(func.count()).select_from(RESULT_TABLE)
    if run_id is not None:
        pairs = pairs.where(t.run_id == run_id)
        rows = rows.where(t.run_id == run_id)
    with get_engine(db_url).connect() as conn:
        total = conn.execute(rows).scalar_one()
        distinct = conn.execute(select(func.count()).select_from(pairs.subquery())).scalar_one()
    return total, distinct


def runs(db_url: str) -> list[RunRow]:
    with get_engine(db_url).connect() as conn:
        return [
            RunRow.model_validate(dict(row._mapping))
            for row in conn.execute(select(RunRow.__table__))  # type: ignore[attr-defined]
        ]


def test_kill_9_then_resume_gives_every_pair_exactly_one_result(
    tmp_path: Path, db_url: str
) -> None:
    suite = write_suite(
        tmp_path / "suite",
        cases=500,
        samples=4,
        expect=ANSWER,
        target_yaml="{kind: openai_chat, base_url: 'http://127.0.0.1:9/v1', model: support-assistant}",
        run_yaml="{concurrency: 20, timeout_s: 10, retries: 2}",
    )
    home, env = tmp_path / ".evalcore", cli_env(tmp_path, db_url)
    with ReferenceServer(Knobs(latency_ms=40)) as server:
        args = ["run", "--suite", str(suite), "--target-url", server.base_url]
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalcore", *args],
            env=process_env(home, env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        written = 0
        while time.monotonic() < deadline and proc.poll() is None:
            written = result_counts(db_url)[0]
            if written >= 500:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.kill()  # SIGKILL: no cleanup, no last flush
        proc.wait(30)
        assert proc.returncode == -9

        (crashed,) = runs(db_url)
        assert crashed.status == "running"  # nobody closed it
        before, distinct_before = result_counts(db_url, crashed.id)
        assert 500 <= before < 2000 and distinct_before == before

        resumed = evalcore_process(
            "run", "--resume", crashed.id[:12], "--json", cwd=ROOT, home=home, env=env
        )
        assert resumed.returncode == 0, resumed.stderr
    total, distinct = result_counts(db_url, crashed.id)
    assert (total, distinct) == (2000, 2000)
    (run,) = runs(db_url)
    assert run.status == "finished" and run.planned == 2000
    # The summary printed by the resumed run sees exactly the planned pairs.
    summary = json.loads(resumed.stdout)
    assert sum(s["results"] for s in summary["sets"]) == 2000
    with get_engine(db_url).connect() as conn:
        errors = conn.execute(
            select(func.count()).where(RESULT_TABLE.c.error_class.is_not(None))
        ).scalar_one()
    assert errors == 0


def test_flaky_target_errors_are_classified_never_failures(tmp_path: Path, db_url: str) -> None:
    suite = write_suite(
        tmp_path / "suite",
        cases=300,
        expect=ANSWER,
        target_yaml="{kind: openai_chat, base_url: 'http://127.0.0.1:9/v1', model: support-assistant}",
        run_yaml="{concurrency: 30, timeout_s: 1, retries: 0}",
    )
    home, env = tmp_path / ".evalcore", cli_env(tmp_path, db_url)
    knobs = Knobs(
        error_rate=0.10,
        timeout_rate=0.05,
        hang_s=5,
        burst_429_every=40,
        burst_429_len=6,
        retry_after_s=0.2,
        seed=7,
    )
    with ReferenceServer(knobs) as server:
        no_retries = evalcore(
            *("run", "--suite", str(suite), "--target-url", server.base_url),
            cwd=ROOT,
            home=home,
            env=env,
        )
        assert no_retries.returncode == 0, no_retries.stderr
        with_retries = evalcore(
            *("run", "--suite", str(suite), "--target-url", server.base_url, "--retries", "4"),
            cwd=ROOT,
            home=home,
            env=env,
        )
        assert with_retries.returncode == 0, with_retries.stderr

    t = RESULT_TABLE.c
    first, second = sorted(runs(db_url), key=lambda r: r.created_at)
    with get_engine(db_url).connect() as conn:

        def classes(run_id: str) -> dict[str | None, int]:
            rows = conn.execute(
                select(t.error_class, func.count())
                .where(t.run_id == run_id)
                .group_by(t.error_class)
            )
            return {k: v for k, v in rows}

        def failed(run_id: str) -> int:
            return conn.execute(
                select(func.count()).where(t.run_id == run_id, t.passed.is_(False))
            ).scalar_one()

        def mixed(run_id: str) -> int:
            """Rows that are both scored and an error, or neither: must not exist."""
            return conn.execute(
                select(func.count()).where(
                    t.run_id == run_id,
                    (t.passed.is_(None) & t.error_class.is_(None))
                    | (t.passed.is_not(None) & t.error_class.is_not(None)),
                )
            ).scalar_one()

        seen = classes(first.id)
        assert failed(first.id) == 0 and mixed(first.id) == 0
        assert sum(seen.values()) == 300
        # Every injected fault shows up under its own class, and nothing else does.
        assert (
            {"server_error", "timeout", "rate_limited"}
            <= set(seen)
            <= {None, "server_error", "timeout", "rate_limited"}
        )
        assert seen[None] >= 150
        retried = classes(second.id)
        assert failed(second.id) == 0 and mixed(second.id) == 0
        assert sum(retried.values()) == 300
        errors_retried = 300 - retried.get(None, 0)
        assert errors_retried < (300 - seen[None]) / 3  # retries with back-off recover most
        attempts = conn.execute(select(func.max(t.attempts)).where(t.run_id == second.id))
        assert attempts.scalar_one() > 1


CALLABLE = """
def answer(case_input):
    return {"text": "You can return it within 14 days.",
            "usage": {"prompt_tokens": 12, "completion_tokens": 8}}
"""


def test_two_runs_writing_at_once_both_complete(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "concurrent_target.py").write_text(CALLABLE)
    suite = write_suite(
        tmp_path / "suite",
        cases=3000,
        target_yaml="{kind: python, callable: 'concurrent_target:answer', model: stub}",
        run_yaml="{concurrency: 50, timeout_s: 10, retries: 0}",
    )
    env = process_env(tmp_path / ".evalcore", cli_env(tmp_path, db_url))
    get_engine(db_url)  # schema in place, so the two runs race on rows, not on migrations
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "evalcore", "run", "--suite", str(suite)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "locked" not in out.lower()
    both = runs(db_url)
    assert len(both) == 2 and all(r.status == "finished" for r in both)
    for run in both:
        assert result_counts(db_url, run.id) == (3000, 3000)
