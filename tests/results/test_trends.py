"""Per-run stats and nightly trends: stats equal the run's summary, recording replaces,
missing rows are filled in, pass@k and pass^k are stored per run and set and shown per
night, nights follow the timezone (the page drawn from them is in
tests/report/test_trends_page.py). The store tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from math import comb
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.suites import write_suite
from evalcore import aio
from evalcore.results.loader import StreamedResults, load_results
from evalcore.results.reliability import reliability
from evalcore.results.run_stats import compute_run_stats, ensure_run_stats, record_run_stats
from evalcore.results.summary import summarize
from evalcore.results.trends import nightly_trend
from evalcore.run import RunRequest, execute_run, prepare_run
from evalcore.store.engine import get_engine
from evalcore.store.repository import (
    create_run,
    insert_results,
    new_run_id,
    record_dataset_version,
)
from evalcore.store.tables import RunRow, RunStatsRow
from evalcore.suite import load_suite

DATASET = "e" * 64
UTC = dt.UTC


def mixed_answer(case_input: dict[str, Any]) -> dict[str, Any]:
    """A python target that passes most cases, fails every 5th and raises on every 7th."""
    found = re.search(r"Order (\d+)", case_input["messages"][0]["content"])
    assert found is not None
    number = int(found[1])
    if number % 7 == 3:
        raise RuntimeError("the model fell over")
    days = "30 days" if number % 5 == 1 else "14 days"
    return {
        "text": f"You can return it within {days}.",
        "usage": {"prompt_tokens": 20 + number, "completion_tokens": 9},
    }


def stored_stats(engine: Engine, run_id: str) -> RunStatsRow | None:
    with Session(engine) as session:
        return session.get(RunStatsRow, run_id)


def stats_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM run_stats")).scalar_one())


def result_row(run_id: str, case_id: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "case_id": case_id,
        "sample": 0,
        "set": "monitoring",
        "passed": True,
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
    row.update(changes)
    return row


def make_run(
    engine: Engine,
    *,
    at: dt.datetime,
    route: str = "support-assistant",
    sets: tuple[str, ...] = ("monitoring",),
    status: str = "finished",
    passed: int = 9,
    failed: int = 1,
    errors: int = 0,
    latency_ms: float = 100.0,
) -> str:
    """A run started at `at` with the given results, written straight to the store."""
    record_dataset_version(
        engine, version_hash=DATASET, git_commit=None, git_dirty=False, cases=[], case_count=0
    )
    outcomes = [True] * passed + [False] * failed + [None] * errors
    run = create_run(
        engine,
        RunRow(
            id=new_run_id(),
            route=route,
            target={"kind": "python"},
            target_config={},
            dataset_hash=DATASET,
            scorecard_version="s" * 64,
            scorecard={},
            sets=list(sets),
            suite_path="evals",
            settings={},
            status=status,
            planned=len(outcomes),
            created_at=at,
        ),
    )
    insert_results(
        engine,
        [
            result_row(
                run.id,
                f"case-{i:03d}",
                set=sets[0],
                passed=outcome,
                error_class="timeout" if outcome is None else None,
                latency_ms=None if outcome is None else latency_ms + i,
                cost_usd=0.0 if outcome is None else 0.001,
            )
            for i, outcome in enumerate(outcomes)
        ],
    )
    return run.id


# --- run stats ----------------------------------------------------------------------------


def test_a_finished_run_has_stats_equal_to_its_summary(tmp_path: Path, db_url: str) -> None:
    root = write_suite(
        tmp_path / "suite",
        cases=60,
        samples=2,
        target_yaml="{kind: python, callable: 'tests.results.test_trends:mixed_answer', model: stub}",
        run_yaml="{concurrency: 8, timeout_s: 10, retries: 0}",
    )
    engine = get_engine(db_url)
    suite = load_suite(root)
    run = prepare_run(engine, suite, RunRequest())
    aio.run(execute_run(engine, suite, run))

    stats = stored_stats(engine, run.id)  # recorded by the runner itself
    assert stats is not None
    summary = summarize(load_results(engine, run.id))
    (monitoring,) = summary.sets
    assert summary.status == "finished"
    assert (stats.results, stats.passed, stats.failed, stats.errors) == (
        summary.results,
        monitoring.passed,
        summary.failed,
        summary.errors,
    )
    assert stats.results == 120 and stats.failed > 0 and stats.errors > 0
    assert stats.pass_rate == monitoring.pass_rate
    assert stats.sample_pass_rate == monitoring.sample_pass_rate
    assert (stats.cases_passed, stats.cases_failed) == (
        monitoring.cases_passed,
        monitoring.cases_failed,
    )
    assert stats.error_rate == pytest.approx(summary.errors / summary.results)
    assert stats.latency_p50_ms == pytest.approx(summary.latency_p50_ms)
    assert stats.latency_p95_ms == pytest.approx(summary.latency_p95_ms)
    assert summary.cost_usd is not None  # the stub model is priced
    assert stats.cost_usd == pytest.approx(summary.cost_usd) and stats.cost_usd > 0
    assert stats.judge_cost_usd == pytest.approx(summary.judge_cost_usd)
    assert stats.cost_per_case_usd == pytest.approx(summary.cost_usd / monitoring.cases)
    assert stats.unpriced == {}
    assert (stats.route, stats.sets) == ("bench", ["monitoring"])
    assert stats_count(engine) == 1


def test_recording_again_replaces_the_row(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id = make_run(engine, at=dt.datetime(2026, 3, 1, 2, tzinfo=UTC), passed=3, failed=1)
    first = record_run_stats(engine, run_id)
    assert (first.results, first.pass_rate, first.error_rate) == (4, 0.75, 0.0)
    insert_results(
        engine,
        [
            result_row(
                run_id, "late", passed=None, error_class="timeout", latency_ms=None, cost_usd=0.0
            )
        ],
    )
    second = record_run_stats(engine, run_id)
    assert stats_count(engine) == 1
    stored = stored_stats(engine, run_id)
    assert stored is not None
    assert (stored.results, stored.errors, stored.pass_rate) == (5, 1, 0.75)
    assert stored.error_rate == pytest.approx(0.2) == second.error_rate
    assert stored.cost_per_case_usd == pytest.approx(0.004 / 5)


def test_a_run_with_nothing_scored_has_no_pass_rate(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id = make_run(engine, at=dt.datetime(2026, 3, 1, tzinfo=UTC), passed=0, failed=0, errors=2)
    stats = compute_run_stats(load_results(engine, run_id))
    assert stats.pass_rate is None and stats.error_rate == 1.0
    assert stats.latency_p50_ms is None and stats.latency_p95_ms is None
    assert stats_count(engine) == 0  # computing alone stores nothing


def test_ensure_fills_the_finished_runs_of_the_route_that_have_none(db_url: str) -> None:
    engine = get_engine(db_url)
    since = dt.datetime(2026, 3, 1, tzinfo=UTC)
    old = make_run(engine, at=since - dt.timedelta(seconds=1))
    missing = [make_run(engine, at=since + dt.timedelta(hours=h)) for h in (1, 30)]
    already = make_run(engine, at=since + dt.timedelta(hours=2))
    record_run_stats(engine, already)
    make_run(engine, at=since + dt.timedelta(hours=3), status="running")
    make_run(engine, at=since + dt.timedelta(hours=4), status="failed")
    make_run(engine, at=since + dt.timedelta(hours=5), route="other-route")

    assert ensure_run_stats(engine, route="support-assistant", since=since) == 2
    assert all(stored_stats(engine, run_id) is not None for run_id in missing)
    assert stored_stats(engine, old) is None
    assert stats_count(engine) == 3
    assert ensure_run_stats(engine, route="support-assistant", since=since) == 0


# --- nightly trend ------------------------------------------------------------------------

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def test_a_night_is_its_last_finished_run_and_other_runs_are_left_out(db_url: str) -> None:
    engine = get_engine(db_url)
    first = make_run(engine, at=at(9, 1), passed=5, failed=5)
    last = make_run(engine, at=at(9, 3), passed=8, failed=2, latency_ms=300)
    middle = make_run(engine, at=at(9, 2), passed=6, failed=4)  # written after the last
    reopened = make_run(engine, at=at(9, 4), status="running", passed=1, failed=9)
    record_run_stats(engine, reopened)  # finished once, resumed since: running again
    make_run(engine, at=at(9, 5), status="interrupted", passed=1, failed=9)
    make_run(engine, at=at(9, 6), route="other-route", passed=1, failed=9)
    make_run(engine, at=at(9, 7), sets=("monitoring", "blocking"), passed=1, failed=9)
    make_run(engine, at=at(9, 8), sets=("blocking",), passed=1, failed=9)
    lone = make_run(engine, at=at(10, 1), passed=10, failed=0, errors=10)

    points = nightly_trend(engine, route="support-assistant", days=7, now=NOW)
    assert [(p.night, p.run_id, p.runs) for p in points] == [
        (dt.date(2026, 3, 9), last, 3),
        (dt.date(2026, 3, 10), lone, 1),
    ]
    assert first != middle != last
    night, today = points
    assert (night.results, night.pass_rate, night.error_rate) == (10, 0.8, 0.0)
    assert night.latency_p95_ms == pytest.approx(300 + 9 * 0.95)
    assert night.cost_usd == pytest.approx(0.01) and night.cost_per_case_usd == pytest.approx(0.001)
    assert (today.pass_rate, today.error_rate) == (1.0, 0.5)
    # Stats were computed on the way for the runs written without them.
    # ... and for the route's other finished runs (other sets), not the other route's.
    assert stats_count(engine) == 7


def test_nights_follow_the_timezone(db_url: str) -> None:
    engine = get_engine(db_url)
    evening = make_run(engine, at=at(8, 22, 30))  # 23:30 in Berlin, still the 8th
    late = make_run(engine, at=at(8, 23, 30))  # 00:30 on the 9th in Berlin

    utc = nightly_trend(engine, route="support-assistant", days=5, now=NOW)
    assert [(p.night, p.run_id, p.runs) for p in utc] == [(dt.date(2026, 3, 8), late, 2)]

    berlin = nightly_trend(
        engine, route="support-assistant", days=5, timezone="Europe/Berlin", now=NOW
    )
    assert [(p.night, p.run_id, p.runs) for p in berlin] == [
        (dt.date(2026, 3, 8), evening, 1),
        (dt.date(2026, 3, 9), late, 1),
    ]


def test_days_bounds_the_window_in_local_nights(db_url: str) -> None:
    engine = get_engine(db_url)
    today = make_run(engine, at=at(10, 0, 5))
    two_ago = make_run(engine, at=at(8, 0, 0))
    three_ago = make_run(engine, at=at(7, 23, 59))
    make_run(engine, at=at(10, 13))  # after `now`: not yet

    def runs(days: int) -> list[str]:
        points = nightly_trend(engine, route="support-assistant", days=days, now=NOW)
        return [p.run_id for p in points]

    assert runs(1) == [today]
    assert runs(3) == [two_ago, today]
    assert runs(4) == [three_ago, two_ago, today]
    # In Berlin 23:59 UTC on the 7th is already the 8th: inside a 3-night window, and on
    # the same night as the run at 00:00 UTC on the 8th, which started after it.
    berlin = nightly_trend(
        engine, route="support-assistant", days=3, timezone="Europe/Berlin", now=NOW
    )
    assert [(p.night, p.run_id, p.runs) for p in berlin] == [
        (dt.date(2026, 3, 8), two_ago, 2),
        (dt.date(2026, 3, 10), today, 1),
    ]
    assert nightly_trend(engine, route="nobody", days=90, now=NOW) == []


def test_bad_arguments_are_refused_with_the_reason(db_url: str) -> None:
    engine = get_engine(db_url)
    with pytest.raises(ValueError, match="days must be a whole number of at least 1, got 0"):
        nightly_trend(engine, route="r", days=0)
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        nightly_trend(engine, route="r", days=7, timezone="Mars/Olympus")
    for name in ("", "Europe"):
        with pytest.raises(ValueError, match=f"unknown timezone '{name}': use an IANA name"):
            nightly_trend(engine, route="r", days=7, timezone=name)


# --- pass@k and pass^k --------------------------------------------------------------------


def make_sampled_run(
    engine: Engine,
    *,
    at: dt.datetime,
    outcomes: dict[str, tuple[str, list[bool | None]]],
) -> str:
    """A finished run over both sets whose cases have the given (set, sample outcomes)."""
    record_dataset_version(
        engine, version_hash=DATASET, git_commit=None, git_dirty=False, cases=[], case_count=0
    )
    sets = sorted({set_name for set_name, _ in outcomes.values()})
    run = create_run(
        engine,
        RunRow(
            id=new_run_id(),
            route="support-assistant",
            target={"kind": "python"},
            target_config={},
            dataset_hash=DATASET,
            scorecard_version="s" * 64,
            scorecard={},
            sets=sets,
            suite_path="evals",
            settings={},
            status="finished",
            planned=sum(len(samples) for _, samples in outcomes.values()),
            created_at=at,
        ),
    )
    insert_results(
        engine,
        [
            result_row(
                run.id,
                case_id,
                sample=sample,
                set=set_name,
                passed=passed,
                error_class="timeout" if passed is None else None,
                latency_ms=None if passed is None else 100.0,
            )
            for case_id, (set_name, samples) in outcomes.items()
            for sample, passed in enumerate(samples)
        ],
    )
    return run.id


T, F, E = True, False, None
SAMPLED: dict[str, tuple[str, list[bool | None]]] = {
    # monitoring: k = 3 (the fewest scored samples); one errored sample is left out.
    "m-1": ("monitoring", [T, T, T]),
    "m-2": ("monitoring", [T, F, T, T]),
    "m-3": ("monitoring", [F, T, E, T]),
    "m-4": ("monitoring", [T]),  # one sample: not part of pass@k / pass^k
    # blocking: k = 2
    "b-1": ("blocking", [T, F]),
    "b-2": ("blocking", [T, T, T]),
}


def test_stats_hold_pass_at_k_and_pass_hat_k_of_the_run_and_each_set(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id = make_sampled_run(engine, at=dt.datetime(2026, 3, 1, tzinfo=UTC), outcomes=SAMPLED)
    record_run_stats(engine, run_id)
    stats = stored_stats(engine, run_id)
    assert stats is not None

    # By hand: pass^k = C(c, k) / C(n, k), pass@k = 1 - C(n - c, k) / C(n, k), per case.
    # all: k = 2 over m-1 (3,3), m-2 (4,3), m-3 (3,2), b-1 (2,1), b-2 (3,3)
    hat_all = (1 + comb(3, 2) / comb(4, 2) + comb(2, 2) / comb(3, 2) + 0 + 1) / 5
    at_all = (1 + 1 + 1 + 1 + 1) / 5
    assert stats.reliability_k == 2
    assert stats.pass_hat_k == pytest.approx(hat_all)
    assert stats.pass_at_k == pytest.approx(at_all)
    # monitoring: k = 3 over m-1, m-2, m-3; blocking: k = 2 over b-1, b-2
    hat_monitoring = (1 + comb(3, 3) / comb(4, 3) + 0) / 3
    at_monitoring = (1 + 1 + 1) / 3
    # Pass rate per case under the default rule (every sample must pass): b-2 of blocking,
    # m-1 and m-4 of monitoring (m-3's error leaves it failed by its failed sample).
    assert stats.set_stats == {
        "blocking": {
            "pass_rate": 1 / 2,
            "sample_pass_rate": 4 / 5,
            "k": 2,
            "pass_at_k": 1.0,
            "pass_hat_k": 0.5,
        },
        "monitoring": {
            "pass_rate": 2 / 4,
            "sample_pass_rate": 9 / 11,  # m-4 counts here; the error does not
            "k": 3,
            "pass_at_k": pytest.approx(at_monitoring),
            "pass_hat_k": pytest.approx(hat_monitoring),
        },
    }

    # The same figures `reliability` gives for the run's scopes.
    scopes = {r.scope: r for r in reliability(load_results(engine, run_id).cases)}
    assert scopes["all"].k == stats.reliability_k
    assert scopes["all"].pass_hat_k == pytest.approx(stats.pass_hat_k)
    assert scopes["all"].pass_at_k == pytest.approx(stats.pass_at_k)
    for set_name, figures in stats.set_stats.items():
        assert scopes[f"set:{set_name}"].k == figures["k"]
        assert scopes[f"set:{set_name}"].pass_hat_k == pytest.approx(figures["pass_hat_k"])
        assert scopes[f"set:{set_name}"].pass_at_k == pytest.approx(figures["pass_at_k"])


def test_a_run_of_single_samples_has_no_k_figures(db_url: str) -> None:
    engine = get_engine(db_url)
    run_id = make_run(engine, at=dt.datetime(2026, 3, 1, tzinfo=UTC), passed=3, failed=1)
    stats = record_run_stats(engine, run_id)
    stored = stored_stats(engine, run_id)
    assert stored is not None
    assert (stored.reliability_k, stored.pass_at_k, stored.pass_hat_k) == (None, None, None)
    assert stored.set_stats == {
        "monitoring": {
            "pass_rate": 0.75,
            "sample_pass_rate": 0.75,  # one sample a case: the two rates agree
            "k": None,
            "pass_at_k": None,
            "pass_hat_k": None,
        }
    }
    assert stats.pass_rate == stored.pass_rate == stored.sample_pass_rate == 0.75


def test_the_figures_come_from_the_one_pass_the_summary_makes(db_url: str) -> None:
    """Cases handed over once, as a stream: a second read would find nothing."""
    engine = get_engine(db_url)
    run_id = make_sampled_run(engine, at=dt.datetime(2026, 3, 1, tzinfo=UTC), outcomes=SAMPLED)
    loaded = load_results(engine, run_id)
    once = StreamedResults(loaded.run, iter(loaded.cases), {}, [])
    streamed = compute_run_stats(once)
    whole = compute_run_stats(loaded)
    assert streamed.results == whole.results == 17
    assert (streamed.reliability_k, streamed.pass_hat_k, streamed.set_stats) == (
        whole.reliability_k,
        whole.pass_hat_k,
        whole.set_stats,
    )
    assert streamed.pass_hat_k is not None


def test_a_row_from_before_the_k_figures_is_recomputed(db_url: str) -> None:
    engine = get_engine(db_url)
    since = dt.datetime(2026, 3, 1, tzinfo=UTC)
    run_id = make_sampled_run(engine, at=since + dt.timedelta(hours=1), outcomes=SAMPLED)
    record_run_stats(engine, run_id)
    with engine.begin() as conn:  # as the row of an older version left it
        conn.execute(
            sa.text(
                "UPDATE run_stats SET set_stats = NULL, reliability_k = NULL, "
                "pass_at_k = NULL, pass_hat_k = NULL"
            )
        )
    assert ensure_run_stats(engine, route="support-assistant", since=since) == 1
    stats = stored_stats(engine, run_id)
    assert stats is not None and stats.reliability_k == 2 and stats.set_stats is not None
    assert ensure_run_stats(engine, route="support-assistant", since=since) == 0


def test_a_night_carries_pass_hat_k_only_when_its_cases_have_samples(db_url: str) -> None:
    engine = get_engine(db_url)
    monitoring = {case_id: v for case_id, v in SAMPLED.items() if v[0] == "monitoring"}
    sampled = make_sampled_run(engine, at=at(8, 2), outcomes=monitoring)
    single = make_run(engine, at=at(9, 2), passed=9, failed=1)

    first, second = nightly_trend(engine, route="support-assistant", days=7, now=NOW)
    assert (first.run_id, second.run_id) == (sampled, single)
    assert first.reliability_k == 3
    assert first.pass_hat_k == pytest.approx((1 + 1 / 4 + 0) / 3)
    assert first.pass_at_k == pytest.approx(1.0)
    assert (second.reliability_k, second.pass_at_k, second.pass_hat_k) == (None, None, None)
