"""Past runs read back from the database, each judged against the scorecard it ran with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from evalcore.results.summary import RunSummary, summarize_run
from evalcore.results.verdict import RunVerdict, judge, load_case_results
from evalcore.store.repository import list_runs
from evalcore.store.tables import RunRow
from evalcore.suite.scorecard import Scorecard


def run_verdict(engine: Engine, run: RunRow) -> RunVerdict:
    """The verdict against the scorecard snapshot stored with the run, not today's file."""
    return judge(load_case_results(engine, run.id), Scorecard.model_validate(run.scorecard))


@dataclass(frozen=True)
class RunOverview:
    run: RunRow
    summary: RunSummary
    verdict: RunVerdict

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run.id,
            "created_at": self.run.created_at.isoformat(),
            "route": self.run.route,
            "release": self.run.release,
            "trigger": self.run.trigger,
            "sets": self.run.sets,
            "dataset": self.run.dataset_hash,
            "status": self.run.status,
            "verdict": self.verdict.verdict.value,
            "pass_rates": {s.set: s.pass_rate for s in self.summary.sets},
            "latency_p95_ms": self.summary.latency_p95_ms,
            "cost_usd": self.summary.cost_usd,
            "results": self.summary.results,
            "errors": self.summary.errors,
        }


def run_overviews(
    engine: Engine, *, limit: int = 20, release: str | None = None
) -> list[RunOverview]:
    return [
        RunOverview(run, summarize_run(engine, run.id, failure_limit=0), run_verdict(engine, run))
        for run in list_runs(engine, limit=limit, release=release)
    ]
