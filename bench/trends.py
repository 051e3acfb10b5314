"""Nightly trends over 90 nights of 10,000-result monitoring runs, in a temporary SQLite.

The trend reads one run_stats row per run, so it should cost about the same whatever the
runs' size; a plain count of the result rows is printed beside it for scale.

    python -m bench.trends
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from evalcore.report.trends import write_trends_html
from evalcore.results.run_stats import record_run_stats
from evalcore.results.trends import nightly_trend
from evalcore.store.engine import get_engine
from evalcore.store.repository import (
    create_run,
    insert_results,
    new_run_id,
    record_dataset_version,
    set_run_status,
)
from evalcore.store.tables import RunRow

NIGHTS = 90
RESULTS_PER_RUN = 10_000
ROUTE = "bench"
DATASET = "b" * 64


def _median_seconds(action: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _results(run_id: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    draws = rng.random(RESULTS_PER_RUN)
    latencies = rng.lognormal(mean=6.0, sigma=0.4, size=RESULTS_PER_RUN)
    rows = []
    for i in range(RESULTS_PER_RUN):
        error = draws[i] < 0.01
        rows.append(
            {
                "run_id": run_id,
                "case_id": f"gen-{i:06d}",
                "sample": 0,
                "set": "monitoring",
                "passed": None if error else bool(draws[i] < 0.93),
                "error_class": "timeout" if error else None,
                "error_message": "timed out" if error else None,
                "output": None if error else {"text": "You can return it within 14 days."},
                "scores": {} if error else {"contains": {"passed": True, "score": 1.0}},
                "latency_ms": None if error else float(latencies[i]),
                "prompt_tokens": 0 if error else 20,
                "completion_tokens": 0 if error else 9,
                "cost_usd": 0.0 if error else 0.0000235,
                "judge_cost_usd": 0.0,
                "attempts": 1,
                "created_at": None,
            }
        )
    return rows


def trends_bench(work: Path, line: Callable[[str, str, str], None]) -> None:
    engine = get_engine(f"sqlite:///{work}/trends.db")
    record_dataset_version(
        engine, version_hash=DATASET, git_commit=None, git_dirty=False, cases=[], case_count=0
    )
    rng = np.random.default_rng(7)
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    record_times = []
    for night in range(NIGHTS):
        run = create_run(
            engine,
            RunRow(
                id=new_run_id(),
                route=ROUTE,
                target={"kind": "python"},
                target_config={},
                dataset_hash=DATASET,
                scorecard_version="s" * 64,
                scorecard={},
                sets=["monitoring"],
                suite_path="bench",
                trigger="schedule",
                settings={},
                planned=RESULTS_PER_RUN,
                created_at=now - dt.timedelta(days=night, minutes=1),
            ),
        )
        insert_results(engine, _results(run.id, rng))
        set_run_status(engine, run.id, "finished")
        recorded = time.perf_counter()
        record_run_stats(engine, run.id)  # what execute_run does once a run is finished
        record_times.append(time.perf_counter() - recorded)
    setup_s = time.perf_counter() - started

    html = work / "trends.html"

    def trend_and_page() -> None:
        points = nightly_trend(engine, route=ROUTE, days=NIGHTS, now=now)
        if len(points) != NIGHTS:
            raise RuntimeError(f"expected {NIGHTS} nights, got {len(points)}")
        write_trends_html(points, html, route=ROUTE, set_name="monitoring", scorecard=None)

    def count_results() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM case_result")).scalar_one()

    trend_and_page()  # warm: imports, template compilation
    t_trend = _median_seconds(trend_and_page)
    t_count = _median_seconds(count_results)
    # Runs from before stats existed: the first trend computes their rows, once.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM run_stats"))
    started = time.perf_counter()
    trend_and_page()
    t_backfill = time.perf_counter() - started

    total = NIGHTS * RESULTS_PER_RUN
    print(
        f"\n[nightly trend: {NIGHTS} nights x 1 monitoring run of {RESULTS_PER_RUN:,} results"
        f" = {total:,} result rows, SQLite; median of 3]"
    )
    line("set-up (insert results, finish, record stats)", f"{setup_s:.1f} s", "")
    line(
        "record_run_stats per finished run (runner's added cost)",
        f"{statistics.median(record_times) * 1000:.0f} ms",
        f"median of {NIGHTS}, {RESULTS_PER_RUN:,} results each",
    )
    line(
        "nightly_trend(days=90) + write_trends_html",
        f"{t_trend * 1000:.1f} ms",
        f"goal < 2 s; SELECT count(*) FROM case_result: {t_count * 1000:.1f} ms",
    )
    line(
        "same, first time, no run_stats rows yet (backfill)",
        f"{t_backfill:.2f} s",
        "once per run from before stats were recorded",
    )
    line("page size", f"{html.stat().st_size / 1024:.0f} KiB", "")


def _line(label: str, value: str, goal: str = "") -> None:
    print(f"  {label:<58} {value:>16}   {goal}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="evalcore-bench-trends-") as tmp:
        trends_bench(Path(tmp), _line)


if __name__ == "__main__":
    main()
