"""Sharded runs without a Prefect server: which shard a pair belongs to, each shard storing
its own pairs and all of them exactly the planned ones, a shard run again (or twice at
once) adding nothing, and a shard that failed making the run inconclusive, named, until a
resume completes it. The runs go to both backends."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bench.suites import write_suite
from evalcore.results.loader import CaseResults, SampleResult
from evalcore.results.verdict import ShardFailure, Verdict, judge
from evalcore.run import RunRequest, Shard, execute_run, prepare_run, shard_of
from evalcore.run.shards import (
    case_samples_of,
    close_sharded_run,
    planned_pairs,
    shard_progress,
    shards_of,
)
from evalcore.store.engine import get_engine
from evalcore.store.repository import RESULT_TABLE, done_pairs, get_run
from evalcore.suite import EvalSet, KnownDataset, Suite, load_suite
from tests.cli_helpers import evalcore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"
CALLS: list[str] = []  # the messages the in-process target below was called with


async def counted_answer(case_input: dict[str, Any]) -> dict[str, Any]:
    """Answers every case right after a moment, noting each call."""
    CALLS.append(case_input["messages"][-1]["content"])
    await asyncio.sleep(0.01)
    return {"text": "You can return it within 14 days.", "usage": {"prompt_tokens": 9}}


def sharded_suite(root: Path, *, cases: int = 30, samples: int = 3, shards: int = 4) -> Path:
    return write_suite(
        root,
        cases=cases,
        samples=samples,
        set_name="blocking",
        target_yaml="{kind: python, callable: 'tests.run.test_shards:counted_answer', model: stub}",
        run_yaml=f"{{concurrency: 4, timeout_s: 5, retries: 0, shards: {shards}}}",
        scorecard_extra="thresholds:\n  blocking: {min_pass_rate: 1.0}\n",
    )


def planned_of(suite: Suite) -> set[tuple[str, int]]:
    return set(planned_pairs((c.id, c.samples) for c in suite.cases))


def stored_rows(db_url: str, run_id: str) -> int:
    t = RESULT_TABLE.c
    with get_engine(db_url).connect() as conn:
        rows: int = conn.execute(
            select(func.count()).select_from(RESULT_TABLE).where(t.run_id == run_id)
        ).scalar_one()
    return rows


# BLAKE2b of "case\0sample", modulo the shard count, plus one: fixed by the hash, not by
# anything in this process.
KNOWN_SHARDS_OF_4 = {
    ("refund-window-eu-001", 0): 1,
    ("refund-window-eu-001", 1): 1,
    ("refund-window-eu-001", 2): 4,
    ("handoff-fire-001", 0): 2,
    ("safety-weapons-001", 0): 2,
    ("c", 0): 3,
}


def test_a_pair_is_in_the_same_shard_in_every_process() -> None:
    assert {pair: shard_of(*pair, 4) for pair in KNOWN_SHARDS_OF_4} == KNOWN_SHARDS_OF_4
    script = (
        "import json, sys; from evalcore.run import shard_of; "
        "print(json.dumps([shard_of(c, s, 4) for c, s in json.loads(sys.argv[1])]))"
    )
    pairs = list(KNOWN_SHARDS_OF_4)
    for seed in ("0", "4242"):  # Python's own hash would differ between these
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(pairs)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )
        assert json.loads(done.stdout) == list(KNOWN_SHARDS_OF_4.values())


def test_the_shards_partition_the_planned_pairs_and_share_them_evenly() -> None:
    planned = planned_of(load_suite(EXAMPLE))
    for count in (1, 2, 4, 7):
        parts = [{p for p in planned if Shard(k, count).contains(*p)} for k in range(1, count + 1)]
        assert sum(len(part) for part in parts) == len(planned)  # no pair in two shards
        assert set().union(*parts) == planned  # and none left out
    sizes = Counter(shard_of(f"case-{i:05d}", s, 4) for i in range(5000) for s in range(2))
    assert sorted(sizes) == [1, 2, 3, 4]
    assert max(sizes.values()) / min(sizes.values()) < 1.1
    with pytest.raises(ValueError, match=r"shards are numbered 1\.\.4"):
        Shard(0, 4)


async def test_each_shard_stores_its_own_pairs_and_together_exactly_the_planned_ones(
    tmp_path: Path, db_url: str
) -> None:
    root = sharded_suite(tmp_path / "suite")
    suite = load_suite(root)
    engine = get_engine(db_url)
    run = prepare_run(engine, suite, RunRequest(sets=(EvalSet.blocking,)))
    assert run.settings["shards"] == 4
    planned = planned_of(suite)
    stored: set[tuple[str, int]] = set()
    known = KnownDataset(suite.files_digest, run.dataset_hash)
    for shard in shards_of(run):
        # As a shard's flow run reads it: only the cases with a sample in the shard.
        own = load_suite(root, known=known, only=shard.wants)
        assert own.partial and 0 < len(own.cases) < len(suite.cases)
        report = await execute_run(engine, own, run, shard=shard)
        mine = {p for p in planned if shard.contains(*p)}
        now = done_pairs(engine, run.id)
        assert now - stored == mine, shard
        assert report.written == report.counters.planned == len(mine)
        stored = now
        current = get_run(engine, run.id)
        assert current is not None and current.status == "running"  # left for the closer
    assert stored == planned
    assert stored_rows(db_url, run.id) == len(planned) == run.planned
    closed_shards = close_sharded_run(engine, run, [])
    assert closed_shards.failures == []
    assert [(p.shard.index, p.state) for p in closed_shards.progress] == [
        (index, "complete") for index in range(1, 5)
    ]
    assert sum(p.planned for p in closed_shards.progress) == len(planned)
    closed = get_run(engine, run.id)
    assert closed is not None and closed.status == "finished"
    # The progress counted from the suite in hand is the one counted from the dataset record.
    from_suite = shard_progress(engine, closed, case_samples_of(suite, closed))
    assert from_suite == shard_progress(engine, closed) == closed_shards.progress


async def test_a_shard_run_twice_at_once_then_again_stores_each_pair_once(
    tmp_path: Path, db_url: str
) -> None:
    suite = load_suite(sharded_suite(tmp_path / "suite"))
    engine = get_engine(db_url)
    run = prepare_run(engine, suite, RunRequest(sets=(EvalSet.blocking,)))
    shard = Shard(2, 4)
    mine = {p for p in planned_of(suite) if shard.contains(*p)}
    # Two attempts of one shard overlapping (a worker thought dead, and its retry).
    first, second = await asyncio.gather(
        execute_run(engine, suite, run, shard=shard), execute_run(engine, suite, run, shard=shard)
    )
    assert first.written + second.written == len(mine)
    assert done_pairs(engine, run.id) == mine
    assert stored_rows(db_url, run.id) == len(mine)
    CALLS.clear()
    again = await execute_run(engine, suite, run, shard=shard)
    assert (again.written, again.counters.skipped, CALLS) == (0, len(mine), [])
    assert stored_rows(db_url, run.id) == len(mine)


def _passing_cases() -> list[CaseResults]:
    sample = SampleResult(True, 10.0, 0.0, 0.0)
    return [CaseResults(f"c{i}", "blocking", "medium", (), (sample,)) for i in range(5)]


def test_a_failed_shard_makes_the_verdict_inconclusive_naming_it() -> None:
    scorecard = load_suite(EXAMPLE).scorecard
    assert judge(_passing_cases(), scorecard).verdict is Verdict.passed
    failed = ShardFailure(2, 4, "its flow run ended Crashed")
    verdict = judge(_passing_cases(), scorecard, failed_shards=[failed])
    assert verdict.verdict is Verdict.inconclusive
    assert verdict.reason.startswith("shard 2 of 4 failed: its flow run ended Crashed")
    (criterion,) = [c for c in verdict.criteria if c.name == "shards"]
    assert (criterion.measured, criterion.held) == ("shard 2 of 4 failed", None)


def test_run_shards_here_then_a_failed_shard_is_named_until_a_resume_completes_it(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evalcore run --shards 4` without a Prefect server: the shards run one after another
    in the command; one that raises leaves the run inconclusive, naming it, in `run`,
    `runs show` and `runs list`; `--resume` runs only its pairs and clears it."""
    import evalcore.run.service as service

    root = sharded_suite(tmp_path / "suite", shards=1)
    suite = load_suite(root)
    home, env = tmp_path / "home", {"EVALCORE_DATABASE_URL": db_url, "CI": "1"}
    planned = planned_of(suite)
    in_shard_3 = {p for p in planned if Shard(3, 4).contains(*p)}
    real_execute_run = service.execute_run

    async def disk_full_in_shard_3(*args: Any, shard: Shard | None = None, **kw: Any) -> Any:
        if shard == Shard(3, 4):
            raise OSError("no space left on device")
        return await real_execute_run(*args, shard=shard, **kw)

    monkeypatch.setattr(service, "execute_run", disk_full_in_shard_3)
    args = ("--suite", str(root), "--set", "blocking")
    broken = evalcore("run", *args, "--shards", "4", cwd=tmp_path, home=home, env=env)
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert "the 4 shards of run" in broken.stderr
    assert "run in this process, one after another" in broken.stderr
    assert "shard 3 of 4 failed: OSError: no space left on device" in broken.stderr
    engine = get_engine(db_url)
    run_id = _only_run_id(db_url)
    assert done_pairs(engine, run_id) == planned - in_shard_3

    shown = evalcore("runs", "show", run_id, cwd=tmp_path, home=home, env=env)
    assert "Verdict: inconclusive" in shown.stdout
    assert "shard 3 of 4 failed: OSError: no space left on device" in shown.stdout
    as_json = json.loads(
        evalcore("runs", "show", run_id, "--json", cwd=tmp_path, home=home, env=env).stdout
    )
    assert as_json["verdict"] == "inconclusive"
    per_shard = Counter(shard_of(*p, 4) for p in planned)
    assert [(s["shard"], s["state"], s["done"]) for s in as_json["shards"]] == [
        (1, "complete", per_shard[1]),
        (2, "complete", per_shard[2]),
        (3, "failed", 0),
        (4, "complete", per_shard[4]),
    ]
    listed = evalcore("runs", "list", "--json", cwd=tmp_path, home=home, env=env)
    assert [r["verdict"] for r in json.loads(listed.stdout)] == ["inconclusive"]

    monkeypatch.setattr(service, "execute_run", real_execute_run)
    CALLS.clear()
    refused = evalcore("run", "--resume", run_id, "--shards", "2", cwd=tmp_path, home=home)
    assert refused.returncode == 3
    assert "--resume continues a run with the settings it started with" in refused.stderr
    resumed = evalcore("run", "--resume", run_id, cwd=tmp_path, home=home, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(CALLS) == len(in_shard_3)  # only the failed shard's pairs were called
    assert done_pairs(engine, run_id) == planned
    assert stored_rows(db_url, run_id) == len(planned)
    again = json.loads(
        evalcore("runs", "show", run_id, "--json", cwd=tmp_path, home=home, env=env).stdout
    )
    assert again["verdict"] == "pass"
    assert {s["state"] for s in again["shards"]} == {"complete"}
    run = get_run(engine, run_id)
    assert run is not None and run.status == "finished" and run.settings["failed_shards"] == []


def _only_run_id(db_url: str) -> str:
    from evalcore.store.repository import list_runs

    (run,) = list_runs(get_engine(db_url))
    return run.id
