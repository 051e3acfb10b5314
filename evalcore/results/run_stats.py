"""A finished run in a few numbers (one `run_stats` row), so trends never rescan results.

Taken from the run's summary, so counted the same way: errors are never failures, a pass
rate is per case under the scorecard's samples rule (None when no case was decided) and
the per-sample rate, passed / (passed + failed) samples, is kept beside it; the error
rate is errors over all results. Latency percentiles are over the calls that got a reply
(latency recorded), cost is the target's (the judge's is kept apart) and the cost per
case divides it by the number of distinct cases. A cost the run could not price is named
in `unpriced` and its cost per case is None.

pass@k and pass^k (`evalcore.results.reliability`: the same estimators, cases and k) are
taken in the same pass: each case's (scored samples, passes) is counted while the summary
reads the stream, so a run's results are read once and never held whole.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from evalcore.collector import collector_paused
from evalcore.results.loader import (
    CaseResults,
    RunResults,
    StreamedResults,
    read_results,
)
from evalcore.results.reliability import pass_at_k, pass_hat_k
from evalcore.results.summary import rate, summarize
from evalcore.store.tables import RunRow, RunStatsRow, utcnow

STATS_TABLE = RunStatsRow.__table__  # type: ignore[attr-defined]
RUN_TABLE = RunRow.__table__  # type: ignore[attr-defined]


def as_utc(value: dt.datetime) -> dt.datetime:
    """`value` as an aware UTC datetime; a naive one is taken to be in UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class KFigures:
    """pass@k and pass^k of one scope, for the `run_stats` row."""

    k: int
    pass_at_k: float
    pass_hat_k: float


class SampleTally:
    """How many cases of each set had n scored samples of which c passed: a few counters
    however large the run (cases share a handful of (n, c) pairs)."""

    def __init__(self) -> None:
        self.cases: dict[tuple[str, int, int], int] = {}  # (set, n, c) -> cases

    def counted(self, cases: Iterable[CaseResults]) -> Iterator[CaseResults]:
        """`cases` passed through unchanged, each one with two or more samples counted."""
        counts = self.cases
        for case in cases:
            samples = case.samples
            if len(samples) > 1:
                passed = [sample[0] for sample in samples]  # SampleResult.passed
                n = len(passed) - passed.count(None)  # errors are left out
                if n > 1:
                    key = (case.set, n, passed.count(True))
                    counts[key] = counts.get(key, 0) + 1
            yield case

    def of_run(self) -> Counter[tuple[int, int]]:
        tallies: Counter[tuple[int, int]] = Counter()
        for (_, n, c), cases in self.cases.items():
            tallies[n, c] += cases
        return tallies

    def of_set(self, set_name: str) -> Counter[tuple[int, int]]:
        return Counter({(n, c): m for (name, n, c), m in self.cases.items() if name == set_name})


def k_figures(tallies: Counter[tuple[int, int]]) -> KFigures | None:
    """pass@k and pass^k averaged over the cases, k the smallest sample count among them
    (as `evalcore.results.reliability.reliability` takes them); None without such cases."""
    if not tallies:
        return None
    k = min(n for n, _ in tallies)
    cases = sum(tallies.values())
    return KFigures(
        k=k,
        pass_at_k=sum(m * pass_at_k(n, c, k) for (n, c), m in tallies.items()) / cases,
        pass_hat_k=sum(m * pass_hat_k(n, c, k) for (n, c), m in tallies.items()) / cases,
    )


def compute_run_stats(results: RunResults | StreamedResults) -> RunStatsRow:
    """The stats of one run, from its summary (not stored; see `record_run_stats`)."""
    run = results.run
    tally = SampleTally()
    counted = StreamedResults(
        run, tally.counted(results.cases), results.errors_by_class, results.failures, []
    )
    summary = summarize(counted)
    passed = sum(s.passed for s in summary.sets)
    cases = sum(s.cases for s in summary.sets)
    cases_passed = sum(s.cases_passed for s in summary.sets)
    cases_failed = sum(s.cases_failed for s in summary.sets)
    overall = k_figures(tally.of_run())
    set_stats: dict[str, Any] = {}
    for set_summary in summary.sets:
        figures = k_figures(tally.of_set(set_summary.set))
        set_stats[set_summary.set] = {
            "pass_rate": set_summary.pass_rate,
            "sample_pass_rate": set_summary.sample_pass_rate,
            "k": figures.k if figures else None,
            "pass_at_k": figures.pass_at_k if figures else None,
            "pass_hat_k": figures.pass_hat_k if figures else None,
        }
    unpriced = {
        name: why
        for name, why in (("target", summary.cost_unknown), ("judge", summary.judge_cost_unknown))
        if why
    }
    return RunStatsRow(
        run_id=run.id,
        route=run.route,
        sets=list(run.sets),
        created_at=as_utc(run.created_at),
        results=summary.results,
        passed=passed,
        failed=summary.failed,
        errors=summary.errors,
        cases_passed=cases_passed,
        cases_failed=cases_failed,
        pass_rate=rate(cases_passed, cases_failed),
        sample_pass_rate=rate(passed, summary.failed),
        error_rate=summary.errors / summary.results if summary.results else None,
        latency_p50_ms=summary.latency_p50_ms,
        latency_p95_ms=summary.latency_p95_ms,
        cost_usd=summary.cost_usd or 0.0,
        judge_cost_usd=summary.judge_cost_usd or 0.0,
        cost_per_case_usd=(
            summary.cost_usd / cases if cases and summary.cost_usd is not None else None
        ),
        unpriced=unpriced,
        reliability_k=overall.k if overall else None,
        pass_at_k=overall.pass_at_k if overall else None,
        pass_hat_k=overall.pass_hat_k if overall else None,
        set_stats=set_stats,
        computed_at=utcnow(),
    )


def _values(stats: RunStatsRow) -> dict[str, Any]:
    return {column.name: getattr(stats, column.name) for column in STATS_TABLE.columns}


def record_run_stats(engine: Engine, run_id: str) -> RunStatsRow:
    """Compute and store a run's stats; recomputing replaces the row (an upsert, so two
    writers at once leave one row, never a duplicate-key error)."""
    with collector_paused(), read_results(engine, run_id) as streamed:
        stats = compute_run_stats(streamed)  # one pass: the run is never held whole
    values = _values(stats)
    dialect: Any
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect  # only a PostgreSQL store
    else:
        from sqlalchemy.dialects import sqlite as dialect
    stmt = dialect.insert(STATS_TABLE).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[STATS_TABLE.c.run_id],
        set_={name: stmt.excluded[name] for name in values if name != "run_id"},
    )
    with engine.begin() as conn:
        conn.execute(stmt)
    return stats


def ensure_run_stats(engine: Engine, *, route: str, since: dt.datetime) -> int:
    """Record the stats of the route's finished runs created since `since` that have none
    (runs from before stats were recorded) or whose row predates the per-set figures
    (`set_stats` NULL) or the per-case pass rate (`cases_passed` NULL); returns how many
    were computed."""
    r, s = RUN_TABLE.c, STATS_TABLE.c
    with engine.connect() as conn:
        missing = conn.execute(
            select(r.id)
            .select_from(RUN_TABLE.outerjoin(STATS_TABLE, s.run_id == r.id))
            .where(
                r.route == route,
                r.status == "finished",
                r.created_at >= as_utc(since),
                or_(s.run_id.is_(None), s.set_stats.is_(None), s.cases_passed.is_(None)),
            )
            .order_by(r.created_at)
        ).all()
    for (run_id,) in missing:
        record_run_stats(engine, run_id)
    return len(missing)
