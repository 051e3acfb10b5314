"""Nightly monitoring: the monitoring set against the route's baseline, findings stored.

Drift is news, not a crash: the monitor succeeds whatever it finds and leaves it to
`--fail-on-drift` (or the weekly digest) to act on findings. The first monitoring run of
a route with no baseline says so plainly and proposes itself as the baseline.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from evalcore.monitor.baseline import current_baseline
from evalcore.monitor.drift import (
    Finding,
    FindingKind,
    History,
    Severity,
    analyse,
    flaky_findings,
    paired_night_of,
)
from evalcore.monitor.sequential import PairedNight
from evalcore.report.artifacts import Artifacts, slug
from evalcore.report.rendering import render
from evalcore.results.loader import RunResults, load_results
from evalcore.results.nightly import nightly_runs
from evalcore.run.pipeline import open_set_run
from evalcore.store.repository import get_run
from evalcore.store.tables import BaselineRow, DriftFindingRow, RunRow
from evalcore.suite import EvalSet, Suite
from evalcore.suite.scorecard import DriftSettings, Scorecard

MONITOR_SETS: tuple[EvalSet, ...] = (EvalSet.monitoring,)


@dataclass(frozen=True)
class MonitorRequest:
    target_url: str | None = None
    model: str | None = None
    judge_url: str | None = None
    trigger: str = "monitor"


class FindingLine(BaseModel):
    kind: str
    metric: str
    scope: str
    severity: str
    baseline_value: float | None
    current_value: float | None
    effect: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    detail: str
    proposal: str | None


class MonitorResult(BaseModel):
    """What one monitoring run found; the flow's result and `evalcore monitor --json`."""

    route: str
    set: str
    run_id: str
    baseline_run_id: str | None
    no_baseline: str | None  # the plain-words notice and proposal when there is none
    findings: list[FindingLine]
    counts: dict[str, int]  # per kind
    worst: str | None  # highest severity among alarms
    run_seconds: float | None = None

    @property
    def alarms(self) -> list[FindingLine]:
        return [
            f
            for f in self.findings
            if f.kind == FindingKind.drift.value and Severity(f.severity).rank >= Severity.low.rank
        ]

    def alarms_at_or_above(self, severity: Severity) -> list[FindingLine]:
        return [f for f in self.alarms if Severity(f.severity).rank >= severity.rank]


def open_monitor_run(engine: Engine, suite: Suite, request: MonitorRequest) -> RunRow:
    return open_set_run(engine, suite, MONITOR_SETS, request)


def _line(finding: Finding) -> FindingLine:
    return FindingLine(**finding.row_values())


def store_findings(
    engine: Engine, run: RunRow, baseline_run_id: str | None, findings: list[Finding]
) -> None:
    """Replace the run's findings (analysing a run again gives the same rows, not twice)."""
    table = DriftFindingRow.__table__  # type: ignore[attr-defined]
    with Session(engine) as session:
        session.execute(delete(table).where(table.c.run_id == run.id))
        session.add_all(
            DriftFindingRow(
                run_id=run.id, baseline_run_id=baseline_run_id, route=run.route, **f.row_values()
            )
            for f in findings
        )
        session.commit()


def analyse_run(engine: Engine, run_id: str, *, run_seconds: float | None = None) -> MonitorResult:
    """Compare a finished monitoring run with the current baseline and store the findings."""
    run = get_run(engine, run_id)
    if run is None:
        raise KeyError(run_id)
    set_name = run.sets[0]
    baseline = current_baseline(engine, route=run.route, set_name=set_name)
    findings: list[Finding] = []
    notice = None
    if baseline is None or baseline.run_id == run.id:
        notice = (
            f"route {run.route!r} has no baseline for set {set_name!r} yet, so nothing was "
            f"compared. Proposal: make this run the baseline with `evalcore baseline accept "
            f'{run.id[:12]} --by OWNER --reason "first nightly of {run.route}"`.'
        )
        baseline_run_id = None
        findings = flaky_findings(load_results(engine, run))
    else:
        baseline_run_id = baseline.run_id
        scorecard = Scorecard.model_validate(run.scorecard)
        baseline_results = load_results(engine, baseline.run_id, hashes=True)
        history: History = {}
        if scorecard.drift.method == "sequential":
            history = paired_history(engine, run, baseline, baseline_results, scorecard.drift)
        findings = analyse(
            load_results(engine, run, hashes=True),
            baseline_results,
            scorecard.drift,
            history=history,
            budgets=scorecard.budgets,
        )
    findings = _with_flaky_history(engine, run.route, findings)
    store_findings(engine, run, baseline_run_id, findings)
    shown = [f for f in findings if f.kind is not FindingKind.evidence]
    result = MonitorResult(
        route=run.route,
        set=set_name,
        run_id=run.id,
        baseline_run_id=baseline_run_id,
        no_baseline=notice,
        findings=[_line(f) for f in shown],
        counts=dict(Counter(f.kind.value for f in shown)),
        worst=None,
        run_seconds=run_seconds,
    )
    alarms = result.alarms
    if alarms:
        result.worst = max((Severity(a.severity) for a in alarms), key=lambda s: s.rank).value
    return result


def paired_history(
    engine: Engine,
    run: RunRow,
    baseline: BaselineRow,
    baseline_results: RunResults,
    settings: DriftSettings,
) -> History:
    """Each set and tag's paired nights before `run` since `baseline` was accepted, oldest
    first: the `evidence` rows the monitor stored for each nightly run against this
    baseline, or, for a nightly run it never analysed against it, computed afresh from
    the run's results."""
    nights = [
        night
        for night in nightly_runs(
            engine, route=run.route, set_name=run.sets[0], after=baseline.accepted_at, before=run
        )
        if night.id != baseline.run_id
    ]
    if not nights:
        return {}
    table = DriftFindingRow.__table__  # type: ignore[attr-defined]
    stored: dict[str, dict[str, PairedNight]] = {}
    with engine.connect() as conn:
        ids = [night.id for night in nights]
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select_columns(
                    table.c.run_id, table.c.scope, table.c.effect, table.c.ci_low, table.c.ci_high
                )
                .where(table.c.run_id.in_(ids[start : start + 500]))
                .where(table.c.kind == FindingKind.evidence.value)
                .where(table.c.baseline_run_id == baseline.run_id)
            )
            for run_id, scope, effect, ci_low, ci_high in rows:
                night = paired_night_of(effect, ci_low, ci_high)
                if night is not None:
                    stored.setdefault(run_id, {})[scope] = night
    history: dict[str, list[PairedNight]] = {}
    for night_run in nights:
        paired = stored.get(night_run.id)
        if paired is None:
            computed = analyse(
                load_results(engine, night_run, hashes=True), baseline_results, settings
            )
            paired = {}
            for finding in computed:
                if finding.kind is FindingKind.evidence:
                    night = paired_night_of(finding.effect, finding.ci_low, finding.ci_high)
                    if night is not None:
                        paired[finding.scope] = night
        for scope, night in paired.items():
            history.setdefault(scope, []).append(night)
    return history


def _with_flaky_history(engine: Engine, route: str, findings: list[Finding]) -> list[Finding]:
    """Say how long a flaky case has been flaky: once is noise, every night is a defect."""
    history = flaky_history(engine, route=route)
    tracked = []
    for finding in findings:
        earlier = history.get(finding.scope.removeprefix("case:"))
        if finding.kind is FindingKind.flaky and earlier:
            fractions = ", ".join(f"{v:.2f}" for v in earlier[-5:])
            note = f"flaky on {len(earlier)} earlier run(s) too (pass fractions {fractions})"
            finding = replace(finding, detail="; ".join(filter(None, [finding.detail, note])))
        tracked.append(finding)
    return tracked


def stored_findings(engine: Engine, run_id: str) -> list[DriftFindingRow]:
    with Session(engine) as session:
        stmt = select(DriftFindingRow).where(col(DriftFindingRow.run_id) == run_id)
        return list(session.exec(stmt.order_by(col(DriftFindingRow.id))).all())


def flaky_history(engine: Engine, *, route: str, limit_runs: int = 30) -> dict[str, list[float]]:
    """Per flaky case, its observed pass fraction over the latest monitoring runs (oldest
    first): a case that stays flaky night after night needs its expectation fixed."""
    with Session(engine) as session:
        stmt = (
            select(DriftFindingRow.scope, DriftFindingRow.current_value, DriftFindingRow.run_id)
            .where(col(DriftFindingRow.route) == route)
            .where(col(DriftFindingRow.kind) == FindingKind.flaky.value)
            .order_by(col(DriftFindingRow.created_at), col(DriftFindingRow.id))
        )
        rows = session.exec(stmt).all()
    runs = list(dict.fromkeys(r[2] for r in rows))[-limit_runs:]
    keep = set(runs)
    history: dict[str, list[float]] = {}
    for scope, value, run_id in rows:
        if run_id in keep and value is not None:
            history.setdefault(scope.removeprefix("case:"), []).append(value)
    return history


def monitor_artifacts(result: MonitorResult) -> Artifacts:
    key = f"nightly-monitor-{slug(result.route)}"
    return Artifacts(
        key=key,
        markdown=render("monitor.md.j2", result=result),
        description=f"Nightly monitor of {result.route}: {len(result.alarms)} alarm(s)",
        table=findings_table(result),
        table_key=f"{key}-findings",
        table_description=f"Findings of run {result.run_id[:12]}",
    )


def findings_table(result: MonitorResult) -> list[dict[str, object]]:
    return [
        {
            "kind": f.kind,
            "severity": f.severity,
            "metric": f.metric,
            "scope": f.scope,
            "baseline": f.baseline_value,
            "current": f.current_value,
            "effect": f.effect,
            "p": f.p_value,
            "detail": f.detail,
        }
        for f in result.findings
    ]
