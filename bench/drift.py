"""Drift analysis cost: loading two stored runs and comparing them, next to a plain read.

Two runs of 50,000 results each (50,000 cases, one sample each: the most cases, so the
most per-case work) are written to a temporary SQLite store. Measured side by side,
median of 3: a bare `SELECT` of the same rows fetched into Python, and what a nightly
comparison does (`load_results` of both runs, then `analyse`). The ratio says what
building the loaded results and the statistics add on top of reading the rows at all.

Then the sequential method as the nightly monitor runs it: a baseline of 50,000 results
accepted, 30 nightly runs of 50,000 results each analysed in turn (each storing its
evidence), and the time of `analyse_run` on the last night, which reads the baseline and
tonight's results and the 30 earlier nights' evidence (goal: under 2 s).

`python -m bench.drift`
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from evalcore.monitor.drift import analyse
from evalcore.monitor.steps import analyse_run
from evalcore.results.loader import load_results
from evalcore.store.engine import dispose_engines, get_engine
from evalcore.store.repository import (
    create_run,
    insert_results,
    new_run_id,
    record_dataset_version,
)
from evalcore.store.tables import BaselineRow, RunRow
from evalcore.suite.scorecard import DriftSettings

ROOT = Path(__file__).resolve().parent.parent

CASES = 50_000
NIGHTS = 30
REPEATS = 3
DATASET_HASH = "d" * 64
_CHUNK = 10_000


def _case_rows() -> Iterator[dict[str, Any]]:
    for i in range(CASES):
        yield {
            "case_id": f"case-{i:06d}",
            "case_hash": f"{i:064x}",
            "set": "monitoring",
            "severity": ("low", "medium", "high", "critical")[i % 4],
            "tags": [f"shard-{i % 20}", "refunds" if i % 3 == 0 else "shipping"],
            "samples": 1,
            "body": {},
        }


def _run(engine: Engine, label: str, scorecard: dict[str, Any] | None = None) -> str:
    run = RunRow(
        id=new_run_id(),
        route="bench",
        target={"kind": "stub"},
        target_config={},
        dataset_hash=DATASET_HASH,
        scorecard_version="s" * 64,
        scorecard=scorecard or {},
        sets=["monitoring"],
        suite_path="/bench",
        trigger=label,
        settings={},
        status="finished",
        planned=CASES,
    )
    return create_run(engine, run).id


def _results(engine: Engine, run_id: str, *, pass_rate: float, slow: float, seed: int) -> None:
    """One sample per case; shard-7 passes less often in the current run (a real drop)."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(CASES):
        error = rng.random() < 0.01
        rate = pass_rate if i % 20 == 7 else 0.9
        rows.append(
            {
                "run_id": run_id,
                "case_id": f"case-{i:06d}",
                "sample": 0,
                "set": "monitoring",
                "passed": None if error else rng.random() < rate,
                "error_class": "server_error" if error else None,
                "scores": {},
                "latency_ms": None if error else rng.lognormvariate(4.0, 0.4) * slow,
                "prompt_tokens": 40,
                "completion_tokens": 60,
                "cost_usd": 0.0 if error else 0.000042 + rng.random() * 1e-5,
                "judge_cost_usd": 0.0,
                "attempts": 1,
            }
        )
        if len(rows) >= _CHUNK:
            insert_results(engine, rows)
            rows = []
    insert_results(engine, rows)


def _plain_read(engine: Engine, run_ids: list[str]) -> int:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT case_id, sample, passed, latency_ms, cost_usd FROM case_result "
            "WHERE run_id IN (?, ?)",
            tuple(run_ids),
        ).fetchall()
    return len(rows)


def _compare(engine: Engine, baseline: str, current: str) -> int:
    findings = analyse(
        load_results(engine, current, hashes=True),
        load_results(engine, baseline, hashes=True),
        DriftSettings(),
    )
    return len(findings)


def _median_s(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def drift_bench(work: Path, line: Callable[[str, str, str], None]) -> None:
    """Print the figures through `line(label, value, goal)`: two runs compared, then the
    sequential method over 30 nights."""
    pairwise_bench(work, line)
    sequential_bench(work, line)


def pairwise_bench(work: Path, line: Callable[[str, str, str], None]) -> None:
    """Two stored runs loaded and compared, beside a plain read of their rows."""
    engine = get_engine(f"sqlite:///{work / 'drift-bench.db'}")
    try:
        record_dataset_version(
            engine,
            version_hash=DATASET_HASH,
            git_commit=None,
            git_dirty=False,
            cases=_case_rows(),
            case_count=CASES,
        )
        baseline, current = _run(engine, "baseline"), _run(engine, "nightly")
        _results(engine, baseline, pass_rate=0.9, slow=1.0, seed=1)
        _results(engine, current, pass_rate=0.7, slow=1.1, seed=2)
        rows = _plain_read(engine, [baseline, current])
        findings = _compare(engine, baseline, current)  # warm-up: imports, statement caches
        plain = _median_s(lambda: _plain_read(engine, [baseline, current]))
        drift = _median_s(lambda: _compare(engine, baseline, current))
    finally:
        dispose_engines()
    print(
        f"\n[drift: 2 runs x {CASES:,} results on SQLite ({rows:,} rows), "
        f"{findings:,} findings; median of {REPEATS}]"
    )
    line("plain SELECT of the rows into Python", f"{plain:.3f} s", "")
    line("load_results x2 + analyse", f"{drift:.3f} s", "goal < 1 s")
    line("drift / plain read", f"{drift / plain:.1f}x", "")


def _example_scorecard() -> dict[str, Any]:
    from evalcore.suite import load_suite

    return load_suite(ROOT / "evals").scorecard.model_dump(mode="json")


def sequential_bench(work: Path, line: Callable[[str, str, str], None]) -> None:
    """The last of 30 nights analysed with the sequential method; setup is not timed."""
    engine = get_engine(f"sqlite:///{work / 'drift-sequential-bench.db'}")
    scorecard = _example_scorecard()
    started = time.perf_counter()
    try:
        record_dataset_version(
            engine,
            version_hash=DATASET_HASH,
            git_commit=None,
            git_dirty=False,
            cases=_case_rows(),
            case_count=CASES,
        )
        baseline = _run(engine, "nightly", scorecard)
        _results(engine, baseline, pass_rate=0.9, slow=1.0, seed=100)
        with Session(engine) as session:
            session.add(
                BaselineRow(
                    route="bench",
                    set="monitoring",
                    run_id=baseline,
                    accepted_by="bench",
                    reason="bench",
                )
            )
            session.commit()
        nights = []
        for night in range(NIGHTS + 1):
            run_id = _run(engine, "nightly", scorecard)
            _results(
                engine, run_id, pass_rate=0.9 if night < NIGHTS else 0.65, slow=1.0, seed=night
            )
            nights.append(run_id)
            if night < NIGHTS:
                analyse_run(engine, run_id)
        setup = time.perf_counter() - started
        last = nights[-1]
        result = analyse_run(engine, last)  # warm-up
        elapsed = _median_s(lambda: analyse_run(engine, last))
    finally:
        dispose_engines()
    shard = [f for f in result.findings if f.scope == "tag:shard-7" and f.metric == "pass_rate"]
    print(
        f"\n[drift, sequential: baseline + {NIGHTS} analysed nights + tonight, {CASES:,} "
        f"results each on SQLite (setup {setup:.0f} s); tonight's drop of shard-7 "
        f"{'found' if shard else 'NOT found'}; median of {REPEATS}]"
    )
    line(f"analyse_run over {NIGHTS} nights of evidence", f"{elapsed:.3f} s", "goal < 2 s")


def _line(label: str, value: str, goal: str) -> None:
    print(f"  {label:<58} {value:>16}   {goal}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="evalcore-drift-bench-") as work:
        drift_bench(Path(work), _line)


if __name__ == "__main__":
    main()
