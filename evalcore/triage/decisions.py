"""Owners' decisions on triage items, recorded once, audited always.

A decision is accepted only from a person whom owners.yaml gives the scope it touches;
every attempt — accepted, refused, conflicting, about an unknown item — leaves a row in
`decision_attempt`. One item gets one decision: a second click or a reply for an item
already decided records nothing and reports the conflict. Applying decisions to the
versioned files is `evalcore decisions apply`, later and separately.

Item refs: backlog `BL-000123` (or its ticket, `ZD-48213`); drift
`drift:<route>:<scope>:<metric>`; flaky `flaky:<case_id>`; threshold
`<set>.min_pass_rate` or `tag:<tag>.min_pass_rate`; promotion `graduate:<set>:<case_id>`
(`promote` also takes a bare case id: the case goes one step up from where it is).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from evalcore.store.tables import (
    BacklogItemRow,
    DecisionAttemptRow,
    DecisionRow,
    DriftFindingRow,
)
from evalcore.suite import EvalSet, Suite
from evalcore.suite.owners import Owner
from evalcore.triage.graduation import (
    GRADUATION_KIND,
    graduation_ref,
    next_set,
    parse_graduation_ref,
    previous_set,
    promotion_owners,
)


class ItemKind(StrEnum):
    backlog = "backlog"
    drift = "drift"
    flaky = "flaky"
    threshold = "threshold"
    graduation = GRADUATION_KIND


ACTIONS: dict[ItemKind, tuple[str, ...]] = {
    ItemKind.backlog: ("block", "monitor", "keep", "dismiss"),
    ItemKind.drift: ("accept_baseline", "investigate"),
    ItemKind.flaky: ("demote", "keep"),
    ItemKind.threshold: ("threshold",),
    ItemKind.graduation: ("promote", "keep"),
}


class Outcome(StrEnum):
    accepted = "accepted"
    refused = "refused"
    conflict = "conflict"
    unknown = "unknown"


@dataclass(frozen=True)
class DecisionRequest:
    item_ref: str
    action: str
    slack_user: str | None = None  # who, as Slack knows them
    owner_id: str | None = None  # who, as owners.yaml knows them (CLI)
    value: str | None = None
    source: str = "button"  # button | reply | cli
    slack_channel: str | None = None
    slack_ts: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Item:
    """What a decision is about, with what deciding on it needs: its scopes."""

    kind: ItemKind
    ref: str
    title: str
    sets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    route: str | None = None
    named_owners: tuple[str, ...] = ()  # owner ids the suite's files name for this item


@dataclass(frozen=True)
class DecisionOutcome:
    outcome: Outcome
    message: str
    decision: DecisionRow | None = None
    owner: Owner | None = None


def item_kind_of(ref: str) -> ItemKind:
    if ref.startswith("drift:"):
        return ItemKind.drift
    if ref.startswith("flaky:"):
        return ItemKind.flaky
    if ref.endswith(".min_pass_rate"):
        return ItemKind.threshold
    if parse_graduation_ref(ref) is not None:
        return ItemKind.graduation
    return ItemKind.backlog


def normalized_ref(suite: Suite, ref: str, action: str) -> str:
    """`promote <case-id>` means the case's next step up: its graduation ref (for a
    blocking case, the step into blocking, which is then refused with the reason)."""
    if action != "promote" or item_kind_of(ref) is not ItemKind.backlog:
        return ref
    case = suite.get(ref)
    if case is None:
        return ref
    return graduation_ref(ref, next_set(case.set) or EvalSet.blocking)


def resolve_item(engine: Engine, suite: Suite, ref: str) -> Item | None:
    """The item `ref` names, or None when there is no such item."""
    kind = item_kind_of(ref)
    if kind is ItemKind.backlog:
        with Session(engine) as session:
            row = (
                session.get(BacklogItemRow, ref)
                or session.exec(
                    select(BacklogItemRow)
                    .where(col(BacklogItemRow.ticket) == ref)
                    .order_by(col(BacklogItemRow.received_at))
                ).first()
            )
        if row is None:
            return None
        return Item(kind, row.id, row.ticket or row.id, ("backlog",), tuple(row.tags), row.route)
    if kind is ItemKind.flaky:
        case = suite.get(ref.removeprefix("flaky:"))
        if case is None:
            return None
        return Item(kind, ref, case.id, (case.set.value,), tuple(case.tags), suite.scorecard.route)
    if kind is ItemKind.graduation:
        return promotion_item(suite, ref)
    if kind is ItemKind.threshold:
        key = ref.removesuffix(".min_pass_rate")
        scorecard = suite.scorecard
        if key.startswith("tag:"):
            tag = key.removeprefix("tag:")
            if tag not in scorecard.tag_thresholds:
                return None
            return Item(kind, ref, ref, (), (tag,), scorecard.route)
        if key not in scorecard.thresholds:
            return None
        return Item(kind, ref, ref, (key,), (), scorecard.route)
    parts = ref.split(":")
    if len(parts) < 4:
        return None
    route, scope_kind, scope_name = parts[1], parts[2], ":".join(parts[3:-1])
    metric = parts[-1]
    scope = f"{scope_kind}:{scope_name}" if scope_name else scope_kind
    with Session(engine) as session:
        finding = session.exec(
            select(DriftFindingRow)
            .where(col(DriftFindingRow.route) == route)
            .where(col(DriftFindingRow.scope) == scope)
            .where(col(DriftFindingRow.metric) == metric)
            .limit(1)
        ).first()
    if finding is None:
        return None
    sets = (scope_name,) if scope_kind == "set" else ()
    tags = (scope_name,) if scope_kind == "tag" else ()
    return Item(kind, ref, f"{metric} of {scope}", sets, tags, route)


def promotion_item(suite: Suite, ref: str) -> Item | None:
    """The promotion `ref` names, from the suite alone; None when its case is gone."""
    parsed = parse_graduation_ref(ref)
    case = suite.get(parsed[1]) if parsed is not None else None
    if parsed is None or case is None:
        return None
    target = parsed[0]
    return Item(
        ItemKind.graduation,
        ref,
        f"{case.id} ({previous_set(target).value} → {target.value})",
        (case.set.value,),
        tuple(case.tags),
        suite.scorecard.route,
        promotion_owners(suite.scorecard, case, target),
    )


def may_decide(owner: Owner, item: Item, action: str) -> bool:
    """Whether owners.yaml gives `owner` the scope this decision touches.

    A promotion changes which set a case is in, so it goes to those who answer for that
    change, as a backlog item's `monitor` / `block` does: the route's owners and the
    owners of the case's tags (as for every item); to monitoring, the curators of the
    backlog or monitoring set and the owners of the monitoring threshold; to blocking —
    which gates releases — the curators of the blocking set, release owners and the
    owners of the blocking threshold, not the curators of monitoring alone. The files
    name owners too, and those may decide: the case's `owner`, the scorecard's
    `graduation.owner` and the `owner` of the target set's threshold.
    """
    owns = owner.owns

    def has(values: list[str], wanted: tuple[str, ...]) -> bool:
        return "*" in values or any(w in values for w in wanted)

    if item.kind is ItemKind.threshold:
        key = item.ref.removesuffix(".min_pass_rate")
        return has(owns.thresholds, (key, *item.sets))
    if item.route is not None and item.route in owns.routes:
        return True
    if has(owns.tags, item.tags):
        return True
    if item.kind is ItemKind.graduation:
        parsed = parse_graduation_ref(item.ref)
        if parsed is None:  # pragma: no cover - resolve_item made the item from its ref
            return False
        if owner.id in item.named_owners:
            return True
        if parsed[0] is EvalSet.blocking:
            return (
                owns.release or has(owns.sets, ("blocking",)) or has(owns.thresholds, ("blocking",))
            )
        return has(owns.sets, ("backlog", "monitoring")) or has(owns.thresholds, ("monitoring",))
    if item.kind is ItemKind.backlog:
        # Blocking a case gates releases: release owners and blocking-set owners decide.
        target = {"block": ("blocking",), "monitor": ("monitoring",)}.get(action, ())
        return has(owns.sets, ("backlog", *target)) or (action == "block" and owns.release)
    return has(owns.sets, item.sets)


def _who(suite: Suite, request: DecisionRequest) -> Owner | None:
    owners = suite.owners
    if request.owner_id is not None:
        return owners.get(request.owner_id)
    if request.slack_user is not None:
        return owners.by_slack_id(request.slack_user)
    return None


def _audit(
    engine: Engine, request: DecisionRequest, item: Item | None, outcome: DecisionOutcome
) -> None:
    with Session(engine) as session:
        session.add(
            DecisionAttemptRow(
                item_kind=item.kind.value if item else None,
                item_ref=item.ref if item else request.item_ref,
                action=request.action,
                slack_user=request.slack_user or request.owner_id,
                source=request.source,
                outcome=outcome.outcome.value,
                message=outcome.message,
            )
        )
        session.commit()


def record_decision(engine: Engine, suite: Suite, request: DecisionRequest) -> DecisionOutcome:
    """Record `request` if its author may make it and the item has no decision yet."""
    ref = normalized_ref(suite, request.item_ref, request.action)
    if ref != request.item_ref:
        request = replace(request, item_ref=ref)
    item = resolve_item(engine, suite, request.item_ref)
    outcome = _decide(engine, suite, request, item)
    _audit(engine, request, item, outcome)
    return outcome


def _decide(
    engine: Engine, suite: Suite, request: DecisionRequest, item: Item | None
) -> DecisionOutcome:
    owner = _who(suite, request)
    who = request.owner_id or request.slack_user or "someone"
    if owner is None:
        return DecisionOutcome(
            Outcome.refused,
            f"sorry, {who} is not in owners.yaml, so this decision was not recorded",
        )
    if item is None:
        return DecisionOutcome(
            Outcome.unknown, f"there is no item {request.item_ref!r} to decide on", owner=owner
        )
    allowed = ACTIONS[item.kind]
    if request.action not in allowed:
        return DecisionOutcome(
            Outcome.refused,
            f"{request.action!r} is not a decision for a {item.kind.value} item "
            f"(choose {', '.join(allowed)})",
            owner=owner,
        )
    if item.kind is ItemKind.threshold:
        problem = _threshold_problem(request.value)
        if problem:
            return DecisionOutcome(Outcome.refused, problem, owner=owner)
    if not may_decide(owner, item, request.action):
        return DecisionOutcome(
            Outcome.refused,
            f"sorry {owner.name}, owners.yaml does not give you the scope of {item.title} "
            f"({_scope_words(item)}), so your {request.action} was not recorded",
            owner=owner,
        )
    if item.kind is ItemKind.graduation and decision_for(engine, item.kind, item.ref) is None:
        problem = _promotion_problem(suite, item, request.action)
        if problem:
            return DecisionOutcome(Outcome.refused, problem, owner=owner)
    row = DecisionRow(
        item_kind=item.kind.value,
        item_ref=item.ref,
        action=request.action,
        value=request.value,
        decided_by=owner.id,
        slack_user=request.slack_user,
        source=request.source,
        slack_channel=request.slack_channel,
        slack_ts=request.slack_ts,
        reason=request.reason,
    )
    try:
        with Session(engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
    except IntegrityError:
        first = decision_for(engine, item.kind, item.ref)
        said = (
            f"{first.action} by {first.decided_by} at {first.decided_at:%Y-%m-%d %H:%M} UTC"
            if first
            else "another decision"
        )
        return DecisionOutcome(
            Outcome.conflict,
            f"{item.title} was already decided ({said}); your {request.action} was not recorded",
            decision=first,
            owner=owner,
        )
    value = f" {request.value}" if request.value else ""
    return DecisionOutcome(
        Outcome.accepted,
        f"recorded: {request.action}{value} for {item.title}, by {owner.name}",
        decision=row,
        owner=owner,
    )


def _threshold_problem(value: str | None) -> str | None:
    try:
        number = float(value or "")
    except ValueError:
        return f"a threshold needs a number between 0 and 1, not {value!r}"
    if not 0.0 <= number <= 1.0:
        return f"a threshold needs a number between 0 and 1, not {number:g}"
    return None


def _promotion_problem(suite: Suite, item: Item, action: str) -> str | None:
    """A promotion is decided on a case that is still where the promotion starts."""
    parsed = parse_graduation_ref(item.ref)
    case = suite.get(parsed[1]) if parsed is not None else None
    if parsed is None or case is None:  # pragma: no cover - resolve_item found both
        return f"there is no item {item.ref!r} to decide on"
    source = previous_set(parsed[0])
    if case.set is source:
        return None
    return (
        f"{case.id} is in the {case.set.value} set, not {source.value}: only a {source.value} "
        f"case is promoted to {parsed[0].value}, so your {action} was not recorded"
    )


def _scope_words(item: Item) -> str:
    parts = [f"set {s}" for s in item.sets] + [f"tag {t}" for t in item.tags]
    if item.route:
        parts.append(f"route {item.route}")
    return ", ".join(parts) or item.kind.value


def decision_for(engine: Engine, kind: ItemKind, ref: str) -> DecisionRow | None:
    with Session(engine) as session:
        return session.exec(
            select(DecisionRow)
            .where(col(DecisionRow.item_kind) == kind.value)
            .where(col(DecisionRow.item_ref) == ref)
        ).first()


def attempts(engine: Engine) -> list[DecisionAttemptRow]:
    with Session(engine) as session:
        return list(session.exec(select(DecisionAttemptRow).order_by(col(DecisionAttemptRow.id))))
