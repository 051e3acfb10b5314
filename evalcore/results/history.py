"""Past runs read back from the database, each judged against the scorecard it ran with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from evalcore.results.loader import load_results
from evalcore.results.summary import RunSummary, summarize
from evalcore.results.verdict import RunVerdict, judge_run
from evalcore.store.repository import list_runs
from evalcore.store.tables import RunRow

# In a gate run's settings: the verdict its gate concluded, regression check included
# (which a run judged again from its results alone does not have).
GATE_VERDICT_KEY = "gate_verdict"


def run_verdict(engine: Engine, run: RunRow) -> RunVerdict:
    """A stored run's verdict, against the scorecard it ran with."""
    return judge_run(load_results(engine, run))


@dataclass(frozen=True)
class RunOverview:
    run: RunRow
    summary: RunSummary
    verdict: RunVerdict

    @property
    def verdict_value(self) -> str:
        """The gate's own verdict for a gate run, else the run's judged from its results."""
        recorded = (self.run.settings or {}).get(GATE_VERDICT_KEY)
        return str(recorded) if recorded else self.verdict.verdict.value

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
            "verdict": self.verdict_value,
            # Per case under the samples rule, as the verdict judges; per sample beside it.
            "pass_rates": {s.set: s.pass_rate for s in self.summary.sets},
            "sample_pass_rates": {s.set: s.sample_pass_rate for s in self.summary.sets},
            "latency_p95_ms": self.summary.latency_p95_ms,
            "cost_usd": self.summary.cost_usd,  # None: unknown, `cost_unknown` says why
            "cost_unknown": self.summary.cost_unknown,
            "results": self.summary.results,
            "errors": self.summary.errors,
        }


def run_overviews(
    engine: Engine, *, limit: int = 20, release: str | None = None
) -> list[RunOverview]:
    """The latest runs, newest first, each summarised and judged from one reading."""
    overviews = []
    for run in list_runs(engine, limit=limit, release=release):
        results = load_results(engine, run)
        overviews.append(RunOverview(run, summarize(results), judge_run(results)))
    return overviews
