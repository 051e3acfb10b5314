"""How a production failure becomes a backlog item: validated, de-duplicated, stored.

A failure arrives as JSON (from `evalcore intake`, the HTTP endpoint behind the Slack
receiver, or the `intake` flow): the conversation, what the route answered, what was
wrong with it, who reports it and, if known, the ticket and a suggested expectation.
`parse_payload` rejects a bad payload naming every field at fault, before anything is
stored. `take_in` then looks for what the failure duplicates: a case whose source is the
same ticket, an earlier item with the same ticket, a case or open item with the same
normalised user messages (fingerprint), or the most similar case or open item at or
above the similarity threshold (see `evalcore.triage.dedup`). A duplicate is stored too, in
state `duplicate` and linked (`case:<id>` or `item:<id>`, with the similarity), so the
report and its reporter are never lost; a new failure is stored `open` for its owner.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from evalcore.store.tables import BacklogItemRow
from evalcore.suite import Suite
from evalcore.suite.models import SCORER_KEYS, Expect, SourceKind
from evalcore.triage.dedup import DEFAULT_THRESHOLD, DedupIndex, Match, jaccard, normalise

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_PAYLOAD_LABEL = "256 KiB"
MAX_MESSAGES = 50
MAX_TEXT = 20_000
MAX_WRONG = 5_000
TICKET_PATTERN = r"^[A-Z][A-Z0-9]+-\d+$"
SOURCES = ("cli", "http", "flow")
STATES = ("open", "blocked", "monitored", "kept", "dismissed", "duplicate")
ID_PREFIX = "BL-"
_ID = re.compile(r"^BL-(\d+)$")
_INSERT_ATTEMPTS = 8
# Serialises intake on PostgreSQL (the migration lock is 7243001): the ticket and
# open-item checks and the id allocation see every item committed before them.
_INTAKE_LOCK = 7243002
_INDEX_CACHE_SIZE = 4

_TICKET = re.compile(TICKET_PATTERN)
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


class IntakeMessage(BaseModel):
    """One turn of the conversation that failed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant", "system"]
    content: str = Field(min_length=1, max_length=MAX_TEXT)


class ProductionFailure(BaseModel):
    """A failure seen in production, as reported: the payload of every intake channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: list[IntakeMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    observed_output: str = Field(min_length=1, max_length=MAX_TEXT)
    what_was_wrong: str = Field(min_length=1, max_length=MAX_WRONG)
    ticket: str | None = Field(default=None, max_length=64)
    reporter: str = Field(min_length=1, max_length=128)
    route: str | None = Field(default=None, min_length=1, max_length=128)
    suggested_expect: Expect | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("messages")
    @classmethod
    def _has_user_message(cls, value: list[IntakeMessage]) -> list[IntakeMessage]:
        if not any(m.role == "user" and m.content.strip() for m in value):
            raise PydanticCustomError(
                "no_user_message", "needs at least one user message that is not blank"
            )
        return value

    @field_validator("what_was_wrong", "reporter")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "must not be blank")
        return value

    @field_validator("ticket")
    @classmethod
    def _ticket_shape(cls, value: str | None) -> str | None:
        if value is not None and not _TICKET.fullmatch(value):
            raise PydanticCustomError(
                "ticket", "must look like ZD-48213 (capitals and digits, a dash, a number)"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tags_sorted_unique(cls, value: list[str]) -> list[str]:
        bad = [tag for tag in value if not _TAG.fullmatch(tag)]
        if bad:
            raise PydanticCustomError(
                "tag",
                "invalid tag(s) {tags}: letters, digits and _ . : - only, at most 64",
                {"tags": ", ".join(repr(tag) for tag in bad)},
            )
        return sorted(set(value))

    @field_validator("suggested_expect", mode="before")
    @classmethod
    def _known_scorers_only(cls, value: Any) -> Any:
        # Expect names only the first unknown key; a reporter should see them all at once.
        if isinstance(value, dict):
            unknown = sorted(str(key) for key in value if key not in SCORER_KEYS)
            if unknown:
                raise PydanticCustomError(
                    "unknown_scorer",
                    "unknown scorer(s) {names} (known: {known})",
                    {
                        "names": ", ".join(repr(k) for k in unknown),
                        "known": ", ".join(SCORER_KEYS),
                    },
                )
        return value

    def user_text(self) -> str:
        """The user messages, one per line: what is de-duplicated."""
        return user_text((m.role, m.content) for m in self.messages)


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path, e.g. messages.0.content; "payload" for the whole document
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class IntakeError(ValueError):
    """A payload refused before anything was stored.

    `kind` is `too_large`, `not_json` or `invalid` (then `fields` names each problem).
    """

    def __init__(self, kind: str, message: str, fields: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.fields = list(fields)

    def as_json(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "kind": self.kind,
            "fields": [{"field": f.field, "message": f.message} for f in self.fields],
        }


def _invalid(fields: Sequence[FieldError]) -> IntakeError:
    return IntakeError("invalid", "; ".join(str(f) for f in fields), fields)


def _field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or "payload"
        message = str(error["msg"]).removeprefix("Value error, ")
        out.append(FieldError(path, message))
    return out


def parse_payload(raw: bytes | str) -> ProductionFailure:
    """The failure in a JSON document, or `IntakeError` naming what is wrong.

    The size is checked first (at most 256 KiB of UTF-8), then the JSON, then the fields.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > MAX_PAYLOAD_BYTES:
        raise IntakeError("too_large", too_large_message(len(data)))
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise IntakeError("not_json", f"not JSON: {exc}") from None
    return validate_payload(document)


def too_large_message(size: int, *, over: bool = False) -> str:
    """`over`: the size is where reading stopped, not the whole payload's."""
    return f"payload too large: {'over ' if over else ''}{size} bytes (limit {MAX_PAYLOAD_LABEL})"


def validate_payload(document: object) -> ProductionFailure:
    """The failure in an already-parsed JSON document (an object), or `IntakeError`."""
    if not isinstance(document, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
        got = kind.get(type(document), "a number")
        raise _invalid([FieldError("payload", f"must be a JSON object, got {got}")])
    try:
        return ProductionFailure.model_validate(document)
    except ValidationError as exc:
        raise _invalid(_field_errors(exc)) from None


def user_text(messages: Iterable[tuple[str, str]]) -> str:
    """The user turns of a conversation, one per line."""
    return "\n".join(content for role, content in messages if role == "user")


# --- the suite's side: cases indexed once per dataset version ---------------------------


@dataclass(frozen=True)
class CaseIndex:
    """The cases of one dataset version, ready for de-duplication."""

    dataset: str
    index: DedupIndex
    by_ticket: dict[str, str]  # source ref of a production case -> case id


_index_cache: OrderedDict[tuple[str, float], CaseIndex] = OrderedDict()
_index_lock = threading.Lock()


def case_index(suite: Suite, threshold: float = DEFAULT_THRESHOLD) -> CaseIndex:
    """The index over the suite's cases, built once per dataset version in this process."""
    key = (suite.version.hash, threshold)
    with _index_lock:
        cached = _index_cache.get(key)
        if cached is not None:
            _index_cache.move_to_end(key)
            return cached
        pairs = (
            (f"case:{case.id}", user_text((m.role, m.content) for m in case.input.messages))
            for case in suite.cases
        )
        by_ticket: dict[str, str] = {}
        for case in suite.cases:
            source = case.source
            if source.kind is SourceKind.production and source.ref:
                by_ticket.setdefault(source.ref, case.id)
        built = CaseIndex(suite.version.hash, DedupIndex(pairs, threshold=threshold), by_ticket)
        _index_cache[key] = built
        while len(_index_cache) > _INDEX_CACHE_SIZE:
            _index_cache.popitem(last=False)
        return built


# --- taking a failure in -----------------------------------------------------------------


@dataclass(frozen=True)
class IntakeResult:
    """The stored item; `created` is false when it was stored as a duplicate."""

    item: BacklogItemRow
    created: bool
    duplicate_of: str | None
    similarity: float | None
    matched_by: str | None = None  # ticket | fingerprint | similarity

    def as_json(self) -> dict[str, Any]:
        """The stored item as JSON, with whether it is new and how a duplicate was found."""
        return {**item_dict(self.item), "created": self.created, "matched_by": self.matched_by}


@dataclass
class _Decision:
    duplicate_of: str | None = None
    similarity: float | None = None
    matched_by: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def take_in(
    engine: Engine,
    suite: Suite,
    failure: ProductionFailure,
    *,
    source: str,
    provenance: dict[str, Any],
    threshold: float = DEFAULT_THRESHOLD,
) -> IntakeResult:
    """De-duplicate `failure` against the suite's cases and the open items, then store it.

    Always stores one row: `open`, or `duplicate` linked to what it duplicates. Raises
    `IntakeError` (nothing stored) when the failure names a route other than the suite's.
    Safe under concurrent intake: ids come from the highest stored one and an insert
    that loses a race for an id is retried; on PostgreSQL intake is serialised by an
    advisory lock, on SQLite by the write lock taken at `BEGIN IMMEDIATE`.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    route = suite.scorecard.route
    if failure.route is not None and failure.route != route:
        raise _invalid(
            [
                FieldError(
                    "route",
                    f"this suite evaluates route {route!r}, not {failure.route!r}",
                )
            ]
        )
    query = failure.user_text()
    norm = normalise(query)
    fingerprint = hashlib.sha256(norm.encode()).hexdigest()
    cases = case_index(suite, threshold)
    # The cases do not change under us: look them up before taking any lock.
    case_by_ticket = cases.by_ticket.get(failure.ticket) if failure.ticket else None
    case_exact = cases.index.exact(query)
    case_near = None if case_exact else cases.index.similar(query)
    base = {
        **provenance,
        "dataset": suite.version.hash,
        "payload_sha256": hashlib.sha256(
            orjson.dumps(failure.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest(),
    }
    suggested = (
        failure.suggested_expect.model_dump(mode="json", exclude_defaults=True)
        if failure.suggested_expect is not None
        else None
    )
    for _ in range(_INSERT_ATTEMPTS):
        with Session(engine, expire_on_commit=False) as session:
            conn = session.connection()  # BEGIN (IMMEDIATE on SQLite)
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INTAKE_LOCK})
            decision = _decide(
                session,
                suite,
                failure,
                route=route,
                norm=norm,
                fingerprint=fingerprint,
                threshold=threshold,
                case_by_ticket=case_by_ticket,
                case_exact=case_exact,
                case_near=case_near,
            )
            row = BacklogItemRow(
                id=_next_id(session),
                ticket=failure.ticket,
                reporter=failure.reporter,
                route=route,
                messages=[m.model_dump() for m in failure.messages],
                observed_output=failure.observed_output,
                what_was_wrong=failure.what_was_wrong,
                suggested_expect=suggested,
                tags=list(failure.tags),
                normalized_text=norm,
                fingerprint=fingerprint,
                state="duplicate" if decision.duplicate_of else "open",
                duplicate_of=decision.duplicate_of,
                similarity=decision.similarity,
                source=source,
                provenance={**base, "dedup": decision.details},
            )
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                continue  # another writer took this id: look again and take the next
            return IntakeResult(
                item=row,
                created=decision.duplicate_of is None,
                duplicate_of=decision.duplicate_of,
                similarity=decision.similarity,
                matched_by=decision.matched_by,
            )
    raise RuntimeError(f"could not allocate a backlog id after {_INSERT_ATTEMPTS} attempts")


def _decide(
    session: Session,
    suite: Suite,
    failure: ProductionFailure,
    *,
    route: str,
    norm: str,
    fingerprint: str,
    threshold: float,
    case_by_ticket: str | None,
    case_exact: str | None,
    case_near: Match | None,
) -> _Decision:
    """What the failure duplicates, in order: a case from the same ticket, the first item
    with the same ticket, a case then an open item with the same fingerprint, else the
    most similar case or open item at or above the threshold (a case on a tie)."""
    details: dict[str, Any] = {"threshold": threshold}
    if case_by_ticket is not None:
        case = suite.get(case_by_ticket)
        other = user_text((m.role, m.content) for m in case.input.messages) if case else ""
        return _linked(f"case:{case_by_ticket}", _similarity(norm, other), "ticket", details)
    if failure.ticket is not None:
        first = session.exec(
            select(BacklogItemRow)
            .where(BacklogItemRow.ticket == failure.ticket)
            .order_by(col(BacklogItemRow.received_at), col(BacklogItemRow.id))
            .limit(1)
        ).first()
        if first is not None:
            similarity = _similarity(norm, first.normalized_text)
            return _linked(f"item:{first.id}", similarity, "ticket", details)
    if case_exact is not None:
        return _linked(case_exact, 1.0, "fingerprint", details)
    if not norm:
        return _Decision(details={**details, "by": None, "note": "no text to compare"})
    open_items = session.exec(
        select(BacklogItemRow.id, BacklogItemRow.normalized_text)
        .where(BacklogItemRow.state == "open", BacklogItemRow.route == route)
        .order_by(col(BacklogItemRow.received_at), col(BacklogItemRow.id))
    ).all()
    items = DedupIndex(
        ((f"item:{item_id}", text) for item_id, text in open_items),
        threshold=threshold,
        normalised=True,
    )
    item_exact = items.exact(norm)
    if item_exact is not None:
        return _linked(item_exact, 1.0, "fingerprint", details)
    item_near = items.similar(norm)
    best = case_near
    if item_near is not None and (best is None or item_near.similarity > best.similarity):
        best = item_near
    if best is not None:
        return _linked(best.ref, best.similarity, "similarity", details)
    return _Decision(details={**details, "by": None})


def _linked(ref: str, similarity: float, by: str, details: dict[str, Any]) -> _Decision:
    similarity = round(similarity, 4)
    return _Decision(ref, similarity, by, {**details, "by": by})


def _similarity(norm: str, other: str) -> float:
    if not norm or not other:
        return 0.0
    return jaccard(norm, other)


def _next_id(session: Session) -> str:
    """One past the highest stored id (numerically: BL-1000000 sorts after BL-999999)."""
    last = session.exec(
        select(BacklogItemRow.id)
        .order_by(func.length(BacklogItemRow.id).desc(), col(BacklogItemRow.id).desc())
        .limit(1)
    ).first()
    match = _ID.match(last) if last else None
    number = int(match.group(1)) if match else 0
    return f"{ID_PREFIX}{number + 1:06d}"


# --- reading the backlog ----------------------------------------------------------------


def list_items(engine: Engine, state: str | None = None) -> list[BacklogItemRow]:
    """Backlog items in the order they arrived, all or those in one state."""
    if state is not None and state not in STATES:
        raise ValueError(f"unknown state {state!r} (known: {', '.join(STATES)})")
    query = select(BacklogItemRow)
    if state is not None:
        query = query.where(BacklogItemRow.state == state)
    query = query.order_by(col(BacklogItemRow.received_at), col(BacklogItemRow.id))
    with Session(engine) as session:
        return list(session.exec(query).all())


def get_item(engine: Engine, item_id: str) -> BacklogItemRow | None:
    with Session(engine) as session:
        return session.get(BacklogItemRow, item_id)


def item_counts(engine: Engine) -> dict[str, int]:
    """Items per state, every state listed (0 when none)."""
    counts = dict.fromkeys(STATES, 0)
    with Session(engine) as session:
        rows = session.exec(
            select(BacklogItemRow.state, func.count()).group_by(BacklogItemRow.state)
        ).all()
    for state, count in rows:
        counts[state] = int(count)
    return counts


def item_dict(item: BacklogItemRow) -> dict[str, Any]:
    """An item as JSON-ready data (the normalised text left out: it is derived)."""
    data = item.model_dump(mode="json", exclude={"normalized_text"})
    return {
        "id": data.pop("id"),
        "state": data.pop("state"),
        "duplicate_of": data.pop("duplicate_of"),
        "similarity": data.pop("similarity"),
        **data,
    }
