"""The week in one object: what the weekly triage digest says, read from the database.

`gather_week` looks back `days` days from `now` (the week is the ISO week of `now` in the
scorecard's `drift.timezone`) and collects:

- release gates: the newest run of each release started in the window, with its verdict
  against the scorecard it ran with and the names of the criteria that failed;
- regressions: the failed criteria of those verdicts, and drift alarms (kind drift,
  severity low or above) of the window's monitoring runs, one per item ref, marked new
  when first seen inside the window;
- the latest nightly run's pass rate per set, per case under the scorecard's samples rule
  (what the verdict judges) with the per-sample rate beside it, and its pass^k and k
  where the set's cases have two or more samples (from the run's `run_stats` row);
- flaky cases of the latest nightly run, with their pass fractions on earlier nights;
- backlog items received in the window (open ones listed, duplicates counted apart);
- p95 latency and cost per run of the window's nights against the budgets, with the trend
  (a night whose run could not price its calls has no cost, and the line says why);
- every decision still pending, with its age: backlog items in state open, drift alarms
  and flaky cases of the latest nightly, none of them with a decision row. Each carries a
  stable ref, a short number for thread replies and the decisions that fit it; those
  waiting longer than a week are marked overdue;
- proposed promotions (`evalcore.triage.graduation`): cases proposed one step up, each an
  item to promote or keep, numbered after the pending decisions, with how many more the
  scorecard's cap held back.

Item refs are the ones `evalcore.triage.decisions` resolves: backlog `BL-000123`, drift
`drift:<route>:<scope>:<metric>`, flaky `flaky:<case_id>`, promotion
`graduate:<set>:<case_id>`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Literal

import orjson
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from evalcore.monitor.drift import FindingKind, Severity
from evalcore.monitor.steps import flaky_history
from evalcore.results.history import run_verdict
from evalcore.results.nightly import is_nightly
from evalcore.results.run_stats import STATS_TABLE, as_utc, record_run_stats
from evalcore.results.trends import NightPoint, nightly_trend, zone
from evalcore.store.tables import BacklogItemRow, DecisionRow, DriftFindingRow, RunRow, utcnow
from evalcore.suite import EvalSet, Suite
from evalcore.suite.scorecard import Scorecard
from evalcore.triage.decisions import ACTIONS, Item, ItemKind, may_decide, promotion_item
from evalcore.triage.graduation import Proposal, propose

__all__ = [
    "OVERDUE_AFTER",
    "BacklogEntry",
    "BudgetLine",
    "BudgetNight",
    "Decider",
    "Digest",
    "DigestItem",
    "DuplicateEntry",
    "FlakyCase",
    "NightlySet",
    "Regression",
    "ReleaseVerdict",
    "backlog_ref",
    "drift_ref",
    "flaky_ref",
    "gather_week",
    "iso_week",
]

OVERDUE_AFTER = dt.timedelta(days=7)
MONITOR_SET = EvalSet.monitoring.value
ALARM_SEVERITIES = tuple(s.value for s in Severity if s.rank >= Severity.low.rank)
DETAIL_CHARS = 1000  # user text kept per detail line; the renderers clip further
_KIND_ORDER = {"backlog": 0, "drift": 1, "flaky": 2, "graduation": 3}

_BACKLOG = BacklogItemRow.__table__  # type: ignore[attr-defined]
_DECISION = DecisionRow.__table__  # type: ignore[attr-defined]
_FINDING = DriftFindingRow.__table__  # type: ignore[attr-defined]
_RUN = RunRow.__table__  # type: ignore[attr-defined]

ItemKindName = Literal["backlog", "drift", "flaky", "graduation"]


def backlog_ref(item_id: str) -> str:
    return item_id


def drift_ref(route: str, scope: str, metric: str) -> str:
    return f"drift:{route}:{scope}:{metric}"


def flaky_ref(case_id: str) -> str:
    return f"flaky:{case_id}"


def iso_week(moment: dt.datetime, timezone: str) -> str:
    """`2026-W48`: the ISO week `moment` falls in, in `timezone`."""
    year, week, _ = as_utc(moment).astimezone(zone(timezone)).isocalendar()
    return f"{year}-W{week:02d}"


# --------------------------------------------------------------------------- models


class Decider(BaseModel):
    """An owner whom owners.yaml lets decide on an item."""

    id: str
    name: str
    slack_id: str


class DigestItem(BaseModel):
    """A decision still pending: what it is about and the decisions that fit it."""

    number: int  # short number for thread replies ("3 keep"), unique within the digest
    kind: ItemKindName
    ref: str
    title: str
    details: list[str]
    actions: list[str]
    since: dt.datetime  # received (backlog) or first seen (drift, flaky)
    age_days: int
    overdue: bool  # waiting longer than a week
    severity: str | None = None
    deciders: list[Decider] = []


class ReleaseVerdict(BaseModel):
    release: str
    run_id: str
    created_at: dt.datetime
    status: str
    verdict: str | None  # pass | fail | inconclusive; None while the run is unfinished
    reason: str
    failed_criteria: list[str]
    runs: int  # runs of this release in the window; the verdict is the newest one's


class Regression(BaseModel):
    source: Literal["gate", "drift"]
    ref: str
    metric: str
    scope: str
    severity: str | None
    effect: float | None
    baseline_value: float | None
    current_value: float | None
    detail: str
    seen_at: dt.datetime
    first_seen: dt.datetime
    new: bool  # first seen inside the window
    run_id: str
    item_number: int | None = None  # its pending item, if any


class FlakyCase(BaseModel):
    case_id: str
    ref: str
    set: str | None
    pass_fraction: float | None
    history: list[float]  # pass fractions on the latest nightly runs that found it flaky
    blocking: bool
    detail: str
    item_number: int | None = None


class NightlySet(BaseModel):
    """One set of the latest nightly run: its pass rate per case and per sample, and pass@k
    and pass^k over its cases with two or more samples (None, with k, when it has none)."""

    set: str
    pass_rate: float | None  # per case, under the samples rule
    sample_pass_rate: float | None = None  # per sample
    k: int | None = None
    pass_at_k: float | None = None
    pass_hat_k: float | None = None


class BacklogEntry(BaseModel):
    id: str
    ticket: str | None
    route: str
    title: str
    reporter: str
    received_at: dt.datetime
    tags: list[str]
    item_number: int | None = None


class DuplicateEntry(BaseModel):
    id: str
    ticket: str | None
    duplicate_of: str | None
    similarity: float | None
    received_at: dt.datetime


class BudgetNight(BaseModel):
    night: dt.date
    value: float | None
    over: bool


class BudgetLine(BaseModel):
    """p95 latency or cost per run of the window's nights against its budget."""

    metric: Literal["latency_p95_ms", "cost_per_run_usd"]
    label: str
    budget: float | None
    latest: float | None
    nights: list[BudgetNight]
    over_nights: int
    change: float | None  # relative change from the window's first night to its last
    trend: Literal["rising", "falling", "flat", "n/a"]
    status: Literal["over", "within", "no budget", "no data", "unknown"]
    unknown: str | None = None  # why the latest night's value is unknown (an unpriced model)


class Digest(BaseModel):
    route: str
    week: str
    timezone: str
    window_start: dt.datetime
    window_end: dt.datetime
    generated_at: dt.datetime
    latest_nightly_run: str | None
    latest_nightly_at: dt.datetime | None
    releases: list[ReleaseVerdict]
    regressions: list[Regression]
    flaky: list[FlakyCase]
    new_backlog: list[BacklogEntry]
    duplicates: list[DuplicateEntry]
    budgets: list[BudgetLine]
    pending: list[DigestItem]
    latest_nightly_sets: list[NightlySet] = []
    # Cases proposed one step up (kind graduation), numbered after `pending`, and how
    # many more each target set has that the scorecard's cap held back.
    proposals: list[DigestItem] = []
    proposals_held_back: dict[str, int] = {}

    @property
    def overdue(self) -> list[DigestItem]:
        return [item for item in self.pending if item.overdue]

    @property
    def items(self) -> list[DigestItem]:
        """Everything to decide on, by number: pending decisions, then proposals."""
        return [*self.pending, *self.proposals]

    def item(self, number: int) -> DigestItem | None:
        return next((i for i in self.items if i.number == number), None)


# --------------------------------------------------------------------------- gathering


def gather_week(
    engine: Engine, suite: Suite, *, now: dt.datetime | None = None, days: int = 7
) -> Digest:
    """Everything the weekly digest of the suite's route says, as of `now`."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a whole number of at least 1, got {days!r}")
    scorecard = suite.scorecard
    route = scorecard.route
    timezone = scorecard.drift.timezone
    end = as_utc(now) if now is not None else utcnow()
    start = end - dt.timedelta(days=days)

    decided = _decided_refs(engine)
    releases, gate_regressions = _releases(engine, route, start, end)
    nightly = _latest_nightly(engine, route, end)
    first_seen = _first_seen(engine, route, end)
    nightly_findings = _findings_of(engine, nightly.id, route) if nightly is not None else []
    history = flaky_history(engine, route=route)

    pending: list[DigestItem] = []
    pending += _backlog_items(engine, suite, route, end, decided)
    alarms = _dedupe(
        f
        for f in nightly_findings
        if f.kind == FindingKind.drift.value and f.severity in ALARM_SEVERITIES
    )
    for finding in alarms:
        ref = drift_ref(route, finding.scope, finding.metric)
        if ("drift", ref) not in decided:
            pending.append(
                _drift_item(suite, finding, ref, first_seen.get(ref, finding.created_at), end)
            )
    flaky_cases: list[FlakyCase] = []
    for finding in _dedupe(f for f in nightly_findings if f.kind == FindingKind.flaky.value):
        case_id = finding.scope.removeprefix("case:")
        ref = flaky_ref(case_id)
        case = suite.get(case_id)
        blocking = case is not None and case.set is EvalSet.blocking
        flaky = FlakyCase(
            case_id=case_id,
            ref=ref,
            set=case.set.value if case is not None else None,
            pass_fraction=finding.current_value,
            history=history.get(case_id, []),
            blocking=blocking,
            detail=_clip(finding.detail),
        )
        flaky_cases.append(flaky)
        if ("flaky", ref) not in decided:
            pending.append(
                _flaky_item(suite, flaky, finding, first_seen.get(ref, finding.created_at), end)
            )

    pending.sort(key=lambda i: (i.since, _KIND_ORDER[i.kind], i.ref))
    numbered = [item.model_copy(update={"number": n}) for n, item in enumerate(pending, 1)]
    numbers = {item.ref: item.number for item in numbered}
    proposed = propose(engine, suite, now=end)
    proposals = [
        _proposal_item(suite, proposal, end).model_copy(update={"number": n})
        for n, proposal in enumerate(proposed.shown, len(numbered) + 1)
    ]

    regressions = gate_regressions + _drift_regressions(engine, route, start, end, first_seen)
    for regression in regressions:
        regression.item_number = numbers.get(regression.ref)
    for flaky in flaky_cases:
        flaky.item_number = numbers.get(flaky.ref)
    new_backlog, duplicates = _new_backlog(engine, route, start, end)
    for entry in new_backlog:
        entry.item_number = numbers.get(entry.id)

    return Digest(
        route=route,
        week=iso_week(end, timezone),
        timezone=timezone,
        window_start=start,
        window_end=end,
        generated_at=utcnow(),
        latest_nightly_run=nightly.id if nightly is not None else None,
        latest_nightly_at=as_utc(nightly.created_at) if nightly is not None else None,
        latest_nightly_sets=_nightly_sets(engine, nightly.id) if nightly is not None else [],
        releases=releases,
        regressions=regressions,
        flaky=flaky_cases,
        new_backlog=new_backlog,
        duplicates=duplicates,
        budgets=_budgets(engine, scorecard, end, days),
        pending=numbered,
        proposals=proposals,
        proposals_held_back={k.value: v for k, v in proposed.held_back.items()},
    )


def _clip(text: str | None, limit: int = DETAIL_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _age(since: dt.datetime, now: dt.datetime) -> tuple[int, bool]:
    waited = now - as_utc(since)
    return max(waited.days, 0), waited > OVERDUE_AFTER


def _decided_refs(engine: Engine) -> set[tuple[str, str]]:
    d = _DECISION.c
    with engine.connect() as conn:
        return {
            (row.item_kind, row.item_ref) for row in conn.execute(select(d.item_kind, d.item_ref))
        }


def _releases(
    engine: Engine, route: str, start: dt.datetime, end: dt.datetime
) -> tuple[list[ReleaseVerdict], list[Regression]]:
    """The newest run of every release started in the window, judged; failed criteria."""
    r = _RUN.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.id, r.release, r.created_at)
            .where(
                r.route == route,
                r.release.is_not(None),
                r.created_at >= start,
                r.created_at <= end,
            )
            .order_by(r.created_at, r.id)
        ).all()
    newest: dict[str, str] = {}
    counts: dict[str, int] = {}
    for row in rows:
        newest[row.release] = row.id  # ordered oldest first: the last one wins
        counts[row.release] = counts.get(row.release, 0) + 1
    releases: list[ReleaseVerdict] = []
    regressions: list[Regression] = []
    for release, run_id in newest.items():
        with engine.connect() as conn:
            run_row = conn.execute(select(_RUN).where(r.id == run_id)).one()
        run = RunRow.model_validate(run_row._mapping)
        created = as_utc(run.created_at)
        if run.status != "finished":
            releases.append(
                ReleaseVerdict(
                    release=release,
                    run_id=run.id,
                    created_at=created,
                    status=run.status,
                    verdict=None,
                    reason=f"the run is {run.status}; no verdict yet",
                    failed_criteria=[],
                    runs=counts[release],
                )
            )
            continue
        verdict = run_verdict(engine, run)
        failed = verdict.failed_criteria
        releases.append(
            ReleaseVerdict(
                release=release,
                run_id=run.id,
                created_at=created,
                status=run.status,
                verdict=verdict.verdict.value,
                reason=verdict.reason,
                failed_criteria=[c.name for c in failed],
                runs=counts[release],
            )
        )
        if verdict.verdict.value != "fail":
            continue
        for criterion in failed:
            regressions.append(
                Regression(
                    source="gate",
                    ref=f"release:{release}",
                    metric=criterion.name,
                    scope=f"release:{release}",
                    severity=None,
                    effect=None,
                    baseline_value=None,
                    current_value=None,
                    detail=_clip(
                        f"{criterion.measured}, needs {criterion.threshold}"
                        + (f"; {criterion.detail}" if criterion.detail else "")
                    ),
                    seen_at=created,
                    first_seen=created,
                    new=True,
                    run_id=run.id,
                )
            )
    releases.sort(key=lambda v: v.created_at, reverse=True)
    return releases, regressions


def _latest_nightly(engine: Engine, route: str, end: dt.datetime) -> RunRow | None:
    """The newest finished monitoring run of the route that the monitor analysed: started by
    the nightly flow or `evalcore monitor`, or with findings stored."""
    r = _RUN.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(_RUN)
            .where(r.route == route, r.status == "finished", r.created_at <= end)
            .where(is_nightly())
            .order_by(r.created_at.desc(), r.id.desc())
            .limit(50)
        ).all()
    for row in rows:
        if list(row.sets) == [MONITOR_SET]:
            return RunRow.model_validate(row._mapping)
    return None


def _nightly_sets(engine: Engine, run_id: str) -> list[NightlySet]:
    """The run's figures per set from its `run_stats` row, computed first when the row is
    missing or predates the per-set or per-case figures."""
    s = STATS_TABLE.c
    with engine.connect() as conn:
        row = conn.execute(
            select(s.set_stats, s.cases_passed).where(s.run_id == run_id)
        ).one_or_none()
    set_stats = row.set_stats if row is not None and row.cases_passed is not None else None
    if set_stats is None:
        set_stats = record_run_stats(engine, run_id).set_stats or {}
    return [NightlySet(set=name, **set_stats[name]) for name in sorted(set_stats)]


def _findings_of(engine: Engine, run_id: str, route: str) -> list[DriftFindingRow]:
    f = _FINDING.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(_FINDING).where(f.run_id == run_id, f.route == route).order_by(f.id)
        ).all()
    return [DriftFindingRow.model_validate(row._mapping) for row in rows]


def _dedupe(findings: Iterable[DriftFindingRow]) -> list[DriftFindingRow]:
    """One finding per (kind, scope, metric), the last stored."""
    by_key = {(f.kind, f.scope, f.metric): f for f in findings}
    return list(by_key.values())


def _first_seen(engine: Engine, route: str, end: dt.datetime) -> dict[str, dt.datetime]:
    """Item ref -> when the route's monitor first reported it (drift alarms, flaky cases)."""
    f = _FINDING.c
    first = func.min(f.created_at)
    with engine.connect() as conn:
        alarms = conn.execute(
            select(f.scope, f.metric, first)
            .where(
                f.route == route,
                f.kind == FindingKind.drift.value,
                f.severity.in_(ALARM_SEVERITIES),
                f.created_at <= end,
            )
            .group_by(f.scope, f.metric)
        ).all()
        flaky = conn.execute(
            select(f.scope, first)
            .where(f.route == route, f.kind == FindingKind.flaky.value, f.created_at <= end)
            .group_by(f.scope)
        ).all()
    seen = {drift_ref(route, scope, metric): as_utc(at) for scope, metric, at in alarms}
    seen.update({flaky_ref(scope.removeprefix("case:")): as_utc(at) for scope, at in flaky})
    return seen


def _drift_regressions(
    engine: Engine,
    route: str,
    start: dt.datetime,
    end: dt.datetime,
    first_seen: dict[str, dt.datetime],
) -> list[Regression]:
    f = _FINDING.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(_FINDING)
            .where(
                f.route == route,
                f.kind == FindingKind.drift.value,
                f.severity.in_(ALARM_SEVERITIES),
                f.created_at >= start,
                f.created_at <= end,
            )
            .order_by(f.created_at, f.id)
        ).all()
    latest: dict[str, DriftFindingRow] = {}
    for row in rows:
        finding = DriftFindingRow.model_validate(row._mapping)
        latest[drift_ref(route, finding.scope, finding.metric)] = finding
    regressions = []
    for ref, finding in latest.items():
        seen = as_utc(finding.created_at)
        first = first_seen.get(ref, seen)
        regressions.append(
            Regression(
                source="drift",
                ref=ref,
                metric=finding.metric,
                scope=finding.scope,
                severity=finding.severity,
                effect=finding.effect,
                baseline_value=finding.baseline_value,
                current_value=finding.current_value,
                detail=_clip(finding.detail),
                seen_at=seen,
                first_seen=first,
                new=first >= start,
                run_id=finding.run_id,
            )
        )
    regressions.sort(key=lambda g: (-Severity(g.severity or "info").rank, g.scope, g.metric))
    return regressions


# --------------------------------------------------------------------------- items


def _deciders(suite: Suite, item: Item, actions: Sequence[str]) -> list[Decider]:
    return [
        Decider(id=o.id, name=o.name, slack_id=o.slack_id)
        for o in suite.owners.owners
        if any(may_decide(o, item, action) for action in actions)
    ]


def _last_user_message(messages: list[dict[str, object]]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def _pending_item(
    suite: Suite,
    item: Item,
    *,
    title: str,
    details: list[str],
    actions: list[str],
    since: dt.datetime,
    end: dt.datetime,
    severity: str | None = None,
) -> DigestItem:
    """A decision waiting on `item`: its age, and who may take it (numbered later)."""
    age, overdue = _age(since, end)
    return DigestItem(
        number=0,
        kind=item.kind.value,
        ref=item.ref,
        title=title,
        details=details,
        actions=actions,
        since=since,
        age_days=age,
        overdue=overdue,
        severity=severity,
        deciders=_deciders(suite, item, actions),
    )


def _backlog_items(
    engine: Engine, suite: Suite, route: str, end: dt.datetime, decided: set[tuple[str, str]]
) -> list[DigestItem]:
    b = _BACKLOG.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(_BACKLOG)
            .where(b.route == route, b.state == "open", b.received_at <= end)
            .order_by(b.received_at, b.id)
        ).all()
    actions = list(ACTIONS[ItemKind.backlog])
    items = []
    for row in rows:
        ref = backlog_ref(row.id)
        if ("backlog", ref) in decided:
            continue
        since = as_utc(row.received_at)
        details = [
            f"reported by {row.reporter} ({row.source}) on {since:%Y-%m-%d}"
            + (f", ticket {row.ticket}" if row.ticket else ""),
        ]
        if row.tags:
            details.append("tags: " + ", ".join(row.tags))
        asked = _last_user_message(list(row.messages or []))
        if asked:
            details.append("asked: " + _clip(asked))
        details.append("answered: " + _clip(row.observed_output))
        if row.suggested_expect:
            details.append(
                "suggested expectation: " + _clip(orjson.dumps(row.suggested_expect).decode())
            )
        title = (f"{row.ticket}: " if row.ticket else "") + _clip(row.what_was_wrong, 300)
        item = Item(ItemKind.backlog, ref, title, ("backlog",), tuple(row.tags), row.route)
        items.append(
            _pending_item(
                suite, item, title=title, details=details, actions=actions, since=since, end=end
            )
        )
    return items


def format_value(metric: str, value: float | None) -> str:
    """A finding's value in its unit: rates in %, latency in ms, cost in $."""
    if value is None:
        return "n/a"
    if metric == "latency":
        return f"{value:.0f} ms"
    if metric.startswith("cost"):
        return f"${value:.6f}"
    return f"{value:.1%}"


def format_effect(metric: str, effect: float | None) -> str:
    """Rates change in percentage points; latency and cost relatively."""
    if effect is None:
        return "n/a"
    if metric == "latency" or metric.startswith("cost"):
        return f"{effect:+.1%}"
    return f"{effect * 100:+.1f} pts"


def _drift_item(
    suite: Suite, finding: DriftFindingRow, ref: str, since: dt.datetime, end: dt.datetime
) -> DigestItem:
    metric, scope = finding.metric, finding.scope
    title = (
        f"{metric} of {scope}: {format_value(metric, finding.baseline_value)} → "
        f"{format_value(metric, finding.current_value)} "
        f"({format_effect(metric, finding.effect)}), {finding.severity}"
    )
    details = []
    if finding.detail:
        details.append(_clip(finding.detail))
    if finding.proposal:
        details.append("proposal: " + _clip(finding.proposal))
    details.append(
        f"latest nightly {finding.run_id[:12]} on {as_utc(finding.created_at):%Y-%m-%d}; "
        f"first seen {since:%Y-%m-%d}"
    )
    scope_kind, _, scope_name = scope.partition(":")
    item = Item(
        ItemKind.drift,
        ref,
        title,
        (scope_name,) if scope_kind == "set" else (),
        (scope_name,) if scope_kind == "tag" else (),
        suite.scorecard.route,
    )
    return _pending_item(
        suite,
        item,
        title=title,
        details=details,
        actions=list(ACTIONS[ItemKind.drift]),
        since=since,
        end=end,
        severity=finding.severity,
    )


def _flaky_item(
    suite: Suite,
    flaky: FlakyCase,
    finding: DriftFindingRow,
    since: dt.datetime,
    end: dt.datetime,
) -> DigestItem:
    fraction = "n/a" if flaky.pass_fraction is None else f"{flaky.pass_fraction:.0%}"
    title = f"case {flaky.case_id} is flaky: {fraction} of its samples passed"
    details = [flaky.detail] if flaky.detail else []
    if flaky.history:
        shown = ", ".join(f"{v:.2f}" for v in flaky.history[-7:])
        details.append(f"flaky on {len(flaky.history)} nightly run(s); pass fractions {shown}")
    details.append(
        f"set {flaky.set or 'unknown (no longer in the suite)'}; first flaky {since:%Y-%m-%d}"
    )
    actions = [a for a in ACTIONS[ItemKind.flaky] if a != "demote" or flaky.blocking]
    case = suite.get(flaky.case_id)
    item = Item(
        ItemKind.flaky,
        flaky.ref,
        flaky.case_id,
        (case.set.value,) if case is not None else (),
        tuple(case.tags) if case is not None else (),
        suite.scorecard.route,
    )
    return _pending_item(
        suite,
        item,
        title=title,
        details=details,
        actions=actions,
        since=since,
        end=end,
        severity=finding.severity,
    )


def _proposal_item(suite: Suite, proposal: Proposal, end: dt.datetime) -> DigestItem:
    """A proposed promotion as an item to decide on: what the case is, where it came
    from, what it expects, and why it is proposed now."""
    case = proposal.case
    source = case.source
    origin = f"source: {source.kind.value}"
    if source.family:
        origin += f" {source.family}"
    if source.parent:
        origin += f" of {source.parent}"
    extras = [
        f"{name} {value}"
        for name, value in (("variant", source.variant), ("seed", source.seed))
        if value is not None
    ]
    if source.ref:
        extras.append(f"ref {source.ref}")
    if extras:
        origin += f" ({', '.join(extras)})"
    details = [proposal.evidence, origin]
    if case.tags:
        details.append("tags: " + ", ".join(case.tags))
    asked = _last_user_message([m.model_dump() for m in case.input.messages])
    if asked:
        details.append("asks: " + _clip(asked))
    expected = case.expect.model_dump(mode="json", exclude_defaults=True)
    details.append("expects: " + _clip(orjson.dumps(expected).decode()))
    item = promotion_item(suite, proposal.ref)
    assert item is not None  # the proposal was made from a case of this suite
    return _pending_item(
        suite,
        item,
        title=(f"promote {case.id} from {proposal.from_set.value} to {proposal.to_set.value}"),
        details=details,
        actions=list(ACTIONS[ItemKind.graduation]),
        since=proposal.since,
        end=end,
        severity=case.severity.value,
    )


def _new_backlog(
    engine: Engine, route: str, start: dt.datetime, end: dt.datetime
) -> tuple[list[BacklogEntry], list[DuplicateEntry]]:
    b = _BACKLOG.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                b.id,
                b.ticket,
                b.route,
                b.what_was_wrong,
                b.reporter,
                b.received_at,
                b.tags,
                b.state,
                b.duplicate_of,
                b.similarity,
            )
            .where(
                b.route == route,
                b.state.in_(("open", "duplicate")),
                b.received_at >= start,
                b.received_at <= end,
            )
            .order_by(b.received_at, b.id)
        ).all()
    entries, duplicates = [], []
    for row in rows:
        received = as_utc(row.received_at)
        if row.state == "duplicate":
            duplicates.append(
                DuplicateEntry(
                    id=row.id,
                    ticket=row.ticket,
                    duplicate_of=row.duplicate_of,
                    similarity=row.similarity,
                    received_at=received,
                )
            )
            continue
        entries.append(
            BacklogEntry(
                id=row.id,
                ticket=row.ticket,
                route=row.route,
                title=_clip(row.what_was_wrong, 300),
                reporter=row.reporter,
                received_at=received,
                tags=list(row.tags or []),
            )
        )
    return entries, duplicates


# --------------------------------------------------------------------------- budgets


def _limit(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _budget_line(
    metric: Literal["latency_p95_ms", "cost_per_run_usd"],
    label: str,
    budget: float | None,
    points: Sequence[tuple[dt.date, float | None]],
    unknown: str | None = None,
) -> BudgetLine:
    """The nights' values against the budget; `unknown`: why the latest night's value is
    unknown (it then has none, and is neither over nor within)."""
    nights = [
        BudgetNight(night=night, value=value, over=budget is not None and (value or 0) > budget)
        for night, value in points
    ]
    values = [n.value for n in nights if n.value is not None]
    latest = values[-1] if values and unknown is None else None
    change: float | None = None
    trend: Literal["rising", "falling", "flat", "n/a"] = "n/a"
    if len(values) >= 2 and values[0] > 0:
        change = values[-1] / values[0] - 1
        trend = "rising" if change > 0.05 else "falling" if change < -0.05 else "flat"
    status: Literal["over", "within", "no budget", "no data", "unknown"]
    if unknown is not None:
        status = "unknown"
    elif latest is None:
        status = "no data"
    elif budget is None:
        status = "no budget"
    else:
        status = "over" if latest > budget else "within"
    return BudgetLine(
        metric=metric,
        label=label,
        budget=budget,
        latest=latest,
        nights=nights,
        over_nights=sum(1 for n in nights if n.over),
        change=change,
        trend=trend,
        status=status,
        unknown=unknown,
    )


def _budgets(engine: Engine, scorecard: Scorecard, end: dt.datetime, days: int) -> list[BudgetLine]:
    """The nights' p95 latency and cost per run (`nightly_trend`) against the budgets; a
    per-set budget of the monitoring set counts where it is stricter."""
    points: list[NightPoint] = nightly_trend(
        engine,
        route=scorecard.route,
        days=days,
        set_name=MONITOR_SET,
        timezone=scorecard.drift.timezone,
        now=end,
    )
    budgets = scorecard.budgets
    per_set = budgets.sets.get(MONITOR_SET)
    return [
        _budget_line(
            "latency_p95_ms",
            "p95 latency",
            _limit(budgets.latency_p95_ms, per_set.latency_p95_ms if per_set else None),
            [(p.night, p.latency_p95_ms) for p in points],
        ),
        _budget_line(
            "cost_per_run_usd",
            "cost per run",
            _limit(budgets.cost_per_run_usd, per_set.cost_per_run_usd if per_set else None),
            [(p.night, p.cost_usd) for p in points],
            unknown=points[-1].cost_unknown if points else None,
        ),
    ]
