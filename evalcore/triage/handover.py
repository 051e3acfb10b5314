"""`evalcore handover`: the five questions a team must be able to answer, from live data.

Which cases block a release? Which are monitored but not blocking? How does a production
failure become an eval case? Who owns threshold changes? What are the route's cost and
latency budgets? Each answer is read from the versioned files and the database now, not
written by hand, so it cannot go stale.

Cases the fixture generator wrote (`source.kind: fixture`) are counted apart, by family,
in every set: a generated case reaches monitoring or blocking only by an owner's
decision on a proposed promotion, and the proposals still waiting are counted too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from evalcore.monitor.baseline import current_baseline
from evalcore.report.rendering import render
from evalcore.store.tables import BacklogItemRow, DecisionRow, RunRow, RunStatsRow
from evalcore.suite import Case, EvalSet, Suite
from evalcore.suite.models import SourceKind
from evalcore.suite.sensitivity import DetectableDrop, suite_sensitivity
from evalcore.triage.graduation import GRADUATION_KIND, propose

BACKLOG_STATES = ("open", "duplicate", "blocked", "monitored", "kept", "dismissed")


@dataclass(frozen=True)
class ThresholdOwner:
    key: str  # blocking, monitoring, tag:refunds
    min_pass_rate: float
    owner: str | None  # named on the threshold itself
    may_change: list[str]  # owners.yaml `owns.thresholds` covering it


@dataclass(frozen=True)
class GeneratedFamily:
    """How many cases of one fixture family sit in each set."""

    family: str | None  # None: a fixture written before families were recorded
    blocking: int
    monitoring: int
    backlog: int


@dataclass(frozen=True)
class Graduation:
    """Generated cases per set and family, and the promotions waiting for an owner."""

    families: list[GeneratedFamily]
    proposed_to_monitoring: int  # eligible now, the digest's cap aside
    proposed_to_blocking: int
    promotions_unapplied: int  # decided `promote`, not yet written by `decisions apply`
    to_blocking_nights: int

    def total(self, set_name: str) -> int:
        return sum(getattr(f, set_name) for f in self.families)


@dataclass(frozen=True)
class Measured:
    """A run's latency and cost; the cost None (shown as unknown) when the run's model has
    no price."""

    run_id: str
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: float | None
    cost_per_case_usd: float | None


@dataclass
class Handover:
    route: str
    dataset: str
    blocking: list[Case]
    monitoring: list[Case]
    monitoring_tags: list[tuple[str, int]]
    baseline_run: str | None
    backlog_in_suite: int
    backlog_states: dict[str, int]
    pending_decisions: int
    unapplied_decisions: int
    thresholds: list[ThresholdOwner]
    budgets: dict[str, float | None]
    budgets_owner: str | None
    budget_owners: list[str]
    graduation: Graduation | None = None
    last_gate: Measured | None = None
    last_nightly: Measured | None = None
    channel: str | None = None
    notes: list[str] = field(default_factory=list)
    # The smallest drop in pass rate each set and tag can detect in a nightly comparison.
    sensitivity: list[DetectableDrop] = field(default_factory=list)
    min_effect: float = 0.0


# Runs of the blocking set that were no gate: `evalcore run --set blocking` and the like.
_NOT_GATES = ("cli",)


def _latest_stats(
    engine: Engine, route: str, set_name: str, *, gates_only: bool = False
) -> Measured | None:
    """The newest run of the route over exactly `set_name` with stats recorded; with
    `gates_only`, the newest release gate (a plain `evalcore run` of the set is no gate)."""
    stmt = (
        select(RunStatsRow)
        .join(RunRow, col(RunRow.id) == col(RunStatsRow.run_id))
        .where(col(RunStatsRow.route) == route)
        .order_by(col(RunStatsRow.created_at).desc())
        .limit(50)
    )
    if gates_only:
        stmt = stmt.where(col(RunRow.trigger).not_in(_NOT_GATES))
    with Session(engine) as session:
        rows = session.exec(stmt).all()
    for row in rows:
        if row.sets == [set_name]:
            priced = not (row.unpriced or {}).get("target")
            return Measured(
                row.run_id,
                row.latency_p50_ms,
                row.latency_p95_ms,
                row.cost_usd if priced else None,
                row.cost_per_case_usd if priced else None,
            )
    return None


def gather_handover(engine: Engine, suite: Suite) -> Handover:
    scorecard, owners = suite.scorecard, suite.owners
    blocking = sorted(suite.select(sets=[EvalSet.blocking]), key=lambda c: c.id)
    monitoring = sorted(suite.select(sets=[EvalSet.monitoring]), key=lambda c: c.id)
    tags = Counter(t for c in monitoring for t in c.tags)
    with Session(engine) as session:
        states = dict(
            session.exec(
                select(BacklogItemRow.state, func.count()).group_by(col(BacklogItemRow.state))
            ).all()
        )
        decided = session.exec(select(func.count()).select_from(DecisionRow)).one()
        unapplied = session.exec(
            select(func.count())
            .select_from(DecisionRow)
            .where(col(DecisionRow.applied_at).is_(None))
        ).one()
    thresholds = []
    for key, rule in [
        *scorecard.thresholds.items(),
        *((f"tag:{t}", r) for t, r in scorecard.tag_thresholds.items()),
    ]:
        scope = key.removeprefix("tag:")
        may = [
            o.id
            for o in owners.owners
            if "*" in o.owns.thresholds or key in o.owns.thresholds or scope in o.owns.thresholds
        ]
        thresholds.append(ThresholdOwner(key, rule.min_pass_rate, rule.owner, may))
    budgets = scorecard.budgets
    baseline = current_baseline(engine, route=scorecard.route, set_name="monitoring")
    handover = Handover(
        route=scorecard.route,
        dataset=suite.version.short,
        blocking=blocking,
        monitoring=monitoring,
        monitoring_tags=tags.most_common(),
        baseline_run=baseline.run_id if baseline else None,
        backlog_in_suite=len(suite.select(sets=[EvalSet.backlog])),
        backlog_states={s: int(states.get(s, 0)) for s in BACKLOG_STATES},
        pending_decisions=int(states.get("open", 0)),
        unapplied_decisions=int(unapplied),
        thresholds=thresholds,
        budgets={
            "latency_p50_ms": budgets.latency_p50_ms,
            "latency_p95_ms": budgets.latency_p95_ms,
            "cost_per_case_usd": budgets.cost_per_case_usd,
            "cost_per_run_usd": budgets.cost_per_run_usd,
            "max_error_rate": budgets.max_error_rate,
        },
        budgets_owner=budgets.owner,
        budget_owners=[o.id for o in owners.owners if o.owns.budgets],
        last_gate=_latest_stats(engine, scorecard.route, "blocking", gates_only=True),
        last_nightly=_latest_stats(engine, scorecard.route, "monitoring"),
        channel=owners.channel,
        graduation=_graduation(engine, suite),
        sensitivity=suite_sensitivity(suite),
        min_effect=scorecard.drift.min_effect,
    )
    if not decided:
        handover.notes.append("no decision has been recorded yet")
    return handover


def _graduation(engine: Engine, suite: Suite) -> Graduation:
    counts: dict[str | None, Counter[str]] = {}
    for case in suite.cases:
        if case.source.kind is SourceKind.fixture:
            counts.setdefault(case.source.family, Counter())[case.set.value] += 1
    families = [
        GeneratedFamily(family, c["blocking"], c["monitoring"], c["backlog"])
        for family, c in sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    ]
    proposals = propose(engine, suite)
    with Session(engine) as session:
        unapplied = session.exec(
            select(func.count())
            .select_from(DecisionRow)
            .where(col(DecisionRow.item_kind) == GRADUATION_KIND)
            .where(col(DecisionRow.action) == "promote")
            .where(col(DecisionRow.applied_at).is_(None))
        ).one()
    return Graduation(
        families=families,
        proposed_to_monitoring=proposals.eligible(EvalSet.monitoring),
        proposed_to_blocking=proposals.eligible(EvalSet.blocking),
        promotions_unapplied=int(unapplied),
        to_blocking_nights=suite.scorecard.graduation.to_blocking.nights,
    )


def handover_markdown(handover: Handover) -> str:
    return render("handover.md.j2", h=handover)
