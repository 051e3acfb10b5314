"""A run's results in numbers: per set, errors by class, latency, cost, the failures.

Errors are counted apart and never as failures: a pass rate is passed / (passed + failed).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, computed_field
from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from evalcore.store.repository import RESULT_TABLE, get_run


class SetSummary(BaseModel):
    set: str
    cases: int
    results: int
    passed: int
    failed: int
    errors: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pass_rate(self) -> float | None:
        scored = self.passed + self.failed
        return self.passed / scored if scored else None


class FailureLine(BaseModel):
    case_id: str
    sample: int
    reasons: list[str]


class RunSummary(BaseModel):
    run_id: str
    route: str
    status: str
    release: str | None
    dataset: str
    planned: int
    sets: list[SetSummary]
    errors_by_class: dict[str, int]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: float
    judge_cost_usd: float
    failures: list[FailureLine]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def results(self) -> int:
        return sum(s.results for s in self.sets)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.sets)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.sets)


def summarize_run(engine: Engine, run_id: str, *, failure_limit: int = 25) -> RunSummary:
    run = get_run(engine, run_id)
    if run is None:
        raise KeyError(run_id)
    t = RESULT_TABLE.c
    with engine.connect() as conn:
        per_set = conn.execute(
            select(
                t.set,
                func.count(func.distinct(t.case_id)),
                func.count(),
                func.sum(sql_case((t.passed.is_(True), 1), else_=0)),
                func.sum(sql_case((t.passed.is_(False), 1), else_=0)),
                func.sum(sql_case((t.error_class.is_not(None), 1), else_=0)),
                func.coalesce(func.sum(t.cost_usd), 0.0),
                func.coalesce(func.sum(t.judge_cost_usd), 0.0),
            )
            .where(t.run_id == run.id)
            .group_by(t.set)
            .order_by(t.set)
        ).all()
        errors = conn.execute(
            select(t.error_class, func.count())
            .where(t.run_id == run.id, t.error_class.is_not(None))
            .group_by(t.error_class)
        ).all()
        latencies = np.fromiter(
            (
                row[0]
                for row in conn.execute(
                    select(t.latency_ms).where(t.run_id == run.id, t.latency_ms.is_not(None))
                )
            ),
            dtype=float,
        )
        failed = conn.execute(
            select(t.case_id, t.sample, t.scores)
            .where(t.run_id == run.id, t.passed.is_(False))
            .order_by(t.case_id, t.sample)
            .limit(failure_limit)
        ).all()
    return RunSummary(
        run_id=run.id,
        route=run.route,
        status=run.status,
        release=run.release,
        dataset=run.dataset_hash,
        planned=run.planned,
        sets=[
            SetSummary(
                set=row[0],
                cases=row[1],
                results=row[2],
                passed=int(row[3] or 0),
                failed=int(row[4] or 0),
                errors=int(row[5] or 0),
            )
            for row in per_set
        ],
        errors_by_class={str(k): int(v) for k, v in errors},
        latency_p50_ms=float(np.percentile(latencies, 50)) if latencies.size else None,
        latency_p95_ms=float(np.percentile(latencies, 95)) if latencies.size else None,
        cost_usd=float(sum(row[6] for row in per_set)),
        judge_cost_usd=float(sum(row[7] for row in per_set)),
        failures=[
            FailureLine(
                case_id=case_id,
                sample=sample,
                reasons=[
                    f"{name}: {score['reason']}"
                    for name, score in (scores or {}).items()
                    if not score.get("passed")
                ],
            )
            for case_id, sample, scores in failed
        ],
    )
