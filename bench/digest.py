"""The weekly digest over 500 pending items, in a temporary SQLite.

300 open backlog items (plus 60 duplicates and 40 already decided), a latest nightly with
120 drift alarms and 80 flaky cases (with earlier nights behind it), a week of nights for
the trend, and three gated releases: gather, render to Markdown and to Block Kit, split
into messages.

    python -m bench.digest
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.suites import write_suite
from evalcore.run.service import record_dataset
from evalcore.store.engine import get_engine
from evalcore.store.repository import create_run, insert_results, new_run_id
from evalcore.store.tables import BacklogItemRow, DecisionRow, DriftFindingRow, RunRow
from evalcore.suite import Suite, load_suite
from evalcore.triage.digest import gather_week, render_markdown, render_slack
from evalcore.triage.digest.render import MAX_BLOCKS

BACKLOG_OPEN = 300
BACKLOG_DUPLICATE = 60
BACKLOG_DECIDED = 40
DRIFT_ALARMS = 120
FLAKY = 80
CASES = 200
GOAL_S = 1.0


def _run(
    engine: Engine, suite: Suite, at: dt.datetime, *, release: str | None, trigger: str
) -> str:
    run = create_run(
        engine,
        RunRow(
            id=new_run_id(),
            route=suite.scorecard.route,
            target={"kind": "python"},
            target_config={},
            dataset_hash=suite.version.hash,
            scorecard_version=suite.scorecard_version,
            scorecard=suite.scorecard.model_dump(mode="json"),
            sets=["monitoring"],
            suite_path=str(suite.root),
            trigger=trigger,
            release=release,
            settings={},
            status="finished",
            planned=CASES,
            created_at=at,
        ),
    )
    insert_results(
        engine,
        [
            {
                "run_id": run.id,
                "case_id": case.id,
                "sample": 0,
                "set": "monitoring",
                "passed": i % 17 != 0,
                "error_class": None,
                "error_message": None,
                "output": None,
                "scores": {},
                "latency_ms": 200.0 + i,
                "prompt_tokens": 20,
                "completion_tokens": 9,
                "cost_usd": 0.00002,
                "judge_cost_usd": 0.0,
                "attempts": 1,
                "created_at": None,
            }
            for i, case in enumerate(suite.cases)
        ],
    )
    return run.id


def seed(engine: Engine, suite: Suite, now: dt.datetime) -> None:
    record_dataset(engine, suite)
    route = suite.scorecard.route
    day = dt.timedelta(days=1)
    for n, release in enumerate(("2026.11.1", "2026.11.2", "2026.11.3")):
        _run(engine, suite, now - (5 - n) * day, release=release, trigger="prefect")
    nights = [
        _run(engine, suite, now - k * day - dt.timedelta(hours=6), release=None, trigger="nightly")
        for k in range(10, -1, -1)
    ]
    latest = nights[-1]
    rows: list[Any] = []
    for k, run_id in enumerate(nights):
        at = now - (10 - k) * day - dt.timedelta(hours=6)
        for i in range(FLAKY):
            if run_id == latest or i % 3 == k % 3:
                rows.append(
                    DriftFindingRow(
                        run_id=run_id,
                        route=route,
                        kind="flaky",
                        metric="pass_fraction",
                        scope=f"case:gen-{i:06d}",
                        severity="low",
                        current_value=0.5,
                        detail="1/2 scored samples passed",
                        created_at=at,
                    )
                )
        if run_id == latest or k % 4 == 0:
            rows += [
                DriftFindingRow(
                    run_id=run_id,
                    route=route,
                    kind="drift",
                    metric="pass_rate",
                    scope=f"tag:shard-{i}",
                    severity=("low", "medium", "high")[i % 3],
                    baseline_value=0.95,
                    current_value=0.8,
                    effect=-0.15,
                    detail="pass rate 95.0% -> 80.0%; chi-squared q=0.001",
                    created_at=at,
                )
                for i in range(DRIFT_ALARMS)
            ]
    total = BACKLOG_OPEN + BACKLOG_DUPLICATE + BACKLOG_DECIDED
    for i in range(total):
        state = "open" if i < BACKLOG_OPEN + BACKLOG_DECIDED else "duplicate"
        asked = f"Order {i}: can I still return my lamp? It arrived broken & late <again>."
        rows.append(
            BacklogItemRow(
                id=f"BL-{i:06d}",
                ticket=f"ZD-{50000 + i}",
                reporter="support.agent",
                route=route,
                messages=[{"role": "user", "content": asked}],
                observed_output="You can return it within 30 days. " * 5,
                what_was_wrong="quoted the US return window to an EU customer",
                tags=["refunds", f"shard-{i % 10}"],
                normalized_text=asked.lower(),
                fingerprint=f"{i:064x}",
                state=state,
                duplicate_of="item:BL-000001" if state == "duplicate" else None,
                received_at=now - dt.timedelta(hours=7 * i % (21 * 24)),
            )
        )
    rows += [
        DecisionRow(
            item_kind="backlog",
            item_ref=f"BL-{BACKLOG_OPEN + i:06d}",
            action="keep",
            decided_by="bench",
            source="cli",
        )
        for i in range(BACKLOG_DECIDED)
    ]
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()


def digest_bench(work: Path, line: Callable[[str, str, str], None]) -> None:
    root = write_suite(
        work / "digest-suite",
        cases=CASES,
        target_yaml="{kind: python, callable: 'bench.callables:answer', model: stub}",
        scorecard_extra="budgets: {latency_p95_ms: 300, cost_per_run_usd: 0.01}\n",
    )
    suite = load_suite(root)
    engine = get_engine(f"sqlite:///{work}/digest.db")
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    seed(engine, suite, now)
    setup_s = time.perf_counter() - started

    sizes: dict[str, int] = {}

    def everything() -> None:
        digest = gather_week(engine, suite, now=now)
        markdown = render_markdown(digest)
        messages = render_slack(digest)
        if len(digest.pending) != BACKLOG_OPEN + DRIFT_ALARMS + FLAKY:
            raise RuntimeError(f"expected 500 pending items, got {len(digest.pending)}")
        if any(len(m.blocks) > MAX_BLOCKS for m in messages):
            raise RuntimeError("a message has too many blocks")
        sizes.update(
            pending=len(digest.pending),
            overdue=len(digest.overdue),
            messages=len(messages),
            blocks=sum(len(m.blocks) for m in messages),
            markdown=len(markdown),
        )

    def timed(action: Callable[[], object]) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            action()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    everything()  # warm: imports, template compilation
    t_all = timed(everything)
    t_gather = timed(lambda: gather_week(engine, suite, now=now))
    digest = gather_week(engine, suite, now=now)
    t_markdown = timed(lambda: render_markdown(digest))
    t_slack = timed(lambda: render_slack(digest))

    print(
        f"\n[weekly digest: {sizes['pending']} pending items ({BACKLOG_OPEN} backlog, "
        f"{DRIFT_ALARMS} drift, {FLAKY} flaky), SQLite; median of 3]"
    )
    line("set-up (runs, findings, backlog, decisions)", f"{setup_s:.1f} s", "")
    verdict = "ok" if t_all < GOAL_S else "OVER"
    line(
        "gather + Markdown + Block Kit (+ split)",
        f"{t_all * 1000:.0f} ms",
        f"goal < 1 s ({verdict})",
    )
    line("  gather_week", f"{t_gather * 1000:.0f} ms", "")
    line("  render_markdown", f"{t_markdown * 1000:.0f} ms", f"{sizes['markdown'] / 1024:.0f} KiB")
    line(
        "  render_slack (template, parse, limits, split)",
        f"{t_slack * 1000:.0f} ms",
        f"{sizes['messages']} messages, {sizes['blocks']} blocks",
    )
    line("overdue items called out", f"{sizes['overdue']}", "waiting over a week")


def _line(label: str, value: str, goal: str = "") -> None:
    print(f"  {label:<58} {value:>16}   {goal}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="evalcore-bench-digest-") as tmp:
        digest_bench(Path(tmp), _line)


if __name__ == "__main__":
    main()
