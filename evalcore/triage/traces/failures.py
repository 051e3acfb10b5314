"""A failing trace as the intake's payload: validated like any other report, with the
trace's coordinates (trace id, span id, model, time) kept as provenance.

Every format builds its failures here, so a trace that does not make a valid payload is
refused the same way: the field is named by where the trace sits in the export (e.g.
`resourceSpans[0].scopeSpans[0].spans[3]`) and the payload field that is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from evalcore.triage.intake import (
    MAX_TEXT,
    MAX_WRONG,
    FieldError,
    IntakeError,
    ProductionFailure,
    validate_payload,
)
from evalcore.triage.traces.messages import Conversation, cut_text
from evalcore.triage.traces.selection import Evaluation, Selection, what_was_wrong

MAX_REPORTED_FIELDS = 20
_REPORTER_LIMIT = 128
_TAG_LIMIT = 20
_NOT_TAG = re.compile(r"[^A-Za-z0-9_.:\-]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TraceFailure:
    """One failing trace, ready for `take_in(..., provenance=provenance)`."""

    trace_id: str
    failure: ProductionFailure
    provenance: dict[str, Any]


@dataclass(frozen=True)
class TraceBatch:
    """What an export gave: how many traces it holds and the failing ones, in file order."""

    format: str
    traces: int
    failures: list[TraceFailure]
    notes: list[str] = field(default_factory=list)  # why fewer may be selected than expected


class Refusals:
    """Field errors gathered across an export (the first 20 are kept, the rest counted),
    raised together so a user fixes them in one pass."""

    def __init__(self) -> None:
        self.fields: list[FieldError] = []
        self.more = 0

    def add(self, where: str, message: str) -> None:
        if len(self.fields) < MAX_REPORTED_FIELDS:
            self.fields.append(FieldError(where, message))
        else:
            self.more += 1

    def extend(self, errors: Iterable[FieldError]) -> None:
        for error in errors:
            self.add(error.field, error.message)

    def raise_any(self) -> None:
        if not self.fields:
            return
        fields = list(self.fields)
        if self.more:
            fields.append(FieldError("export", f"and {self.more} more problem(s) not listed"))
        raise IntakeError("invalid", "; ".join(str(f) for f in fields), fields)


def build_failure(
    *,
    where: str,
    trace_id: str,
    conversation: Conversation,
    observed_output: str,
    evaluation: Evaluation | None,
    selection: Selection,
    reporter: str,
    route: str | None,
    tags: Iterable[str],
    provenance: dict[str, Any],
) -> TraceFailure | list[FieldError]:
    """The validated failure, or the field errors named by `where` and the trace id."""
    wrong, wrong_from = what_was_wrong(evaluation, selection)
    payload: dict[str, Any] = {
        "messages": [{"role": r, "content": c} for r, c in conversation.messages],
        "observed_output": cut_text(observed_output, MAX_TEXT),
        "what_was_wrong": cut_text(wrong, MAX_WRONG),
        "reporter": reporter[:_REPORTER_LIMIT],
        "tags": clean_tags(tags),
    }
    if route is not None:
        payload["route"] = route
    try:
        failure = validate_payload(payload)
    except IntakeError as exc:
        return [FieldError(where, f"{f.field}: {f.message} (trace {trace_id})") for f in exc.fields]
    kept = {
        **{key: value for key, value in provenance.items() if value not in (None, {}, [])},
        "trace_id": trace_id,
        "selected_by": "evaluation" if wrong_from != "trace_id" else "trace_id",
        "what_was_wrong_from": wrong_from,
    }
    if evaluation is not None:
        kept["evaluation"] = evaluation.as_json()
    if conversation.notes:
        kept["conversation_notes"] = conversation.notes
    return TraceFailure(trace_id, failure, kept)


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Tags the intake accepts: other characters as `-`, at most 64 long, at most 20."""
    out: list[str] = []
    for tag in tags:
        cleaned = _NOT_TAG.sub("-", tag.strip()).strip("-_.:")[:64]
        if cleaned and cleaned not in out:
            out.append(cleaned)
    return out[:_TAG_LIMIT]


def iso_from_nanos(nanos: int) -> str | None:
    """Unix nanoseconds as ISO 8601 UTC (milliseconds), None for 0 (unset)."""
    if nanos <= 0:
        return None
    moment = _EPOCH + timedelta(microseconds=nanos // 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_utc(text: object) -> str | None:
    """An ISO timestamp as UTC with a Z, or None when it is not one."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
