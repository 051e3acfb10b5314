"""Failing conversations from an OTLP/JSON trace export (OpenTelemetry GenAI conventions).

The export is `{"resourceSpans": [{resource, scopeSpans: [{scope, spans: [...]}]}]}`, or
one such object per line (JSON Lines). Ids are hex (base64 ids, as a generic protobuf
JSON encoder writes them, are read too), times unix nanoseconds, attributes OTLP
`AnyValue`s (`evalcore.triage.traces.attributes`). Every span is checked, in one linear
pass, before any trace is read: a span without a valid `traceId` names its path, e.g.
`resourceSpans[0].scopeSpans[1].spans[4].traceId: missing`.

A trace's conversation is read from its chat span: the span a failing evaluation event
sits on (or whose `gen_ai.response.id` the event names), else the trace's last span with
`gen_ai.operation.name` chat (or text_completion, generate_content), else the last span
that records messages. The messages come from the first of:

- the current attributes `gen_ai.system_instructions`, `gen_ai.input.messages` and
  `gen_ai.output.messages` (JSON text or structured values of `{role, parts}`);
- the older span events `gen_ai.system.message`, `gen_ai.user.message`,
  `gen_ai.assistant.message`, `gen_ai.tool.message` and `gen_ai.choice`, their content in
  event attributes (`content`, `tool_calls`, `message`, or the JSON `gen_ai.event.content`);
- the widely used indexed attributes `gen_ai.prompt.N.role/content` and
  `gen_ai.completion.N.role/content` (with `tool_calls.M.name/arguments`).

The output is the first choice. Model (`gen_ai.response.model`, else `.request.model`),
provider (`gen_ai.provider.name`, else the older `gen_ai.system`), token usage, the span
id and its start time (ISO UTC) go into the item's provenance; the reporter defaults to
`otlp:<service.name>`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

import orjson

from evalcore.triage.intake import FieldError
from evalcore.triage.traces.attributes import BadValue, attributes
from evalcore.triage.traces.documents import kind_of, nonblank, read_documents
from evalcore.triage.traces.failures import (
    Refusals,
    TraceBatch,
    TraceFailure,
    build_failure,
    iso_from_nanos,
)
from evalcore.triage.traces.messages import Turn, conversation, message_turn, role_of
from evalcore.triage.traces.selection import (
    Evaluation,
    Selection,
    score_of,
    selected,
)

EVALUATION_EVENTS = ("gen_ai.evaluation.result", "gen_ai.evaluation.user_feedback")
CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
_CONTENT_ATTRIBUTES = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.prompt.0.content",
    "gen_ai.prompt.0.role",
    "gen_ai.completion.0.content",
)
_EVENT_FIELDS = ("role", "content", "tool_calls", "message", "index")
_HEX = re.compile(r"^[0-9a-f]+$")
_NOT_OTLP = (
    "not an OTLP/JSON trace export: no resourceSpans (export traces as OTLP/JSON, e.g. "
    "with the Collector's file exporter or OTLP/HTTP's JSON encoding)"
)
_CAPTURE_HINT = (
    "is message content capture on? (e.g. OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)"
)


@dataclass(slots=True)
class Event:
    name: str
    time: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class Span:
    where: str  # its path in the export, for messages
    order: int
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: object
    start: int
    end: int
    attributes: dict[str, Any]
    events: list[Event]
    resource: dict[str, Any]


def read_otlp(
    data: bytes,
    selection: Selection,
    *,
    reporter: str | None = None,
    route: str | None = None,
) -> TraceBatch:
    """The failing traces of an OTLP/JSON export, each a validated failure; `IntakeError`
    naming every field at fault (nothing half read) when the export or a selected trace
    is not usable."""
    refusals = Refusals()
    traces: dict[str, list[Span]] = {}
    order = 0
    for line, document in read_documents(data):
        order = _collect(document, line, traces, refusals, order)
    refusals.raise_any()
    wanted = selection.wanted
    for missing in sorted(wanted - traces.keys()):
        refusals.add("trace_id", f"{missing}: no trace with this id in the export")
    failures: list[TraceFailure] = []
    for trace_id, spans in traces.items():
        evaluations = _evaluations(spans, selection)
        taken, failing = selected(evaluations, selection, trace_id)
        if not taken:
            continue
        built = _failure(trace_id, spans, failing, selection, reporter, route)
        if isinstance(built, TraceFailure):
            failures.append(built)
        else:
            refusals.extend(built)
    refusals.raise_any()
    return TraceBatch("otlp", len(traces), failures)


# --- reading the export -------------------------------------------------------------------


def _collect(
    document: object,
    line: int | None,
    traces: dict[str, list[Span]],
    refusals: Refusals,
    order: int,
) -> int:
    """Adds the document's spans to `traces` (by trace id, in file order); the next
    span's order number."""
    prefix = f"line {line}, " if line is not None else ""
    if not isinstance(document, dict) or "resourceSpans" not in document:
        refusals.add(f"{prefix}payload", _NOT_OTLP)
        return order
    resource_spans = document["resourceSpans"]
    if not isinstance(resource_spans, list):
        refusals.add(f"{prefix}resourceSpans", f"must be a list, got {kind_of(resource_spans)}")
        return order
    for i, entry in enumerate(resource_spans):
        where = f"{prefix}resourceSpans[{i}]"
        if not isinstance(entry, dict):
            refusals.add(where, f"must be an object, got {kind_of(entry)}")
            continue
        try:
            resource = _resource(entry.get("resource"), f"{where}.resource")
        except BadValue as exc:
            refusals.add(exc.where, exc.message)
            continue
        scope_spans = _list(entry.get("scopeSpans"), f"{where}.scopeSpans", refusals)
        for j, scope in enumerate(scope_spans):
            scope_where = f"{where}.scopeSpans[{j}]"
            if not isinstance(scope, dict):
                refusals.add(scope_where, f"must be an object, got {kind_of(scope)}")
                continue
            for k, raw in enumerate(_list(scope.get("spans"), f"{scope_where}.spans", refusals)):
                try:
                    span = _span(raw, f"{scope_where}.spans[{k}]", resource, order)
                except BadValue as exc:
                    refusals.add(exc.where, exc.message)
                    continue
                order += 1
                traces.setdefault(span.trace_id, []).append(span)
    return order


def _list(value: object, where: str, refusals: Refusals) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        refusals.add(where, f"must be a list, got {kind_of(value)}")
        return []
    return value


def _resource(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadValue(where, f"must be an object, got {kind_of(value)}")
    return attributes(value.get("attributes"), f"{where}.attributes")


def _span(raw: object, where: str, resource: dict[str, Any], order: int) -> Span:
    if not isinstance(raw, dict):
        raise BadValue(where, f"must be an object, got {kind_of(raw)}")
    parent = raw.get("parentSpanId")
    events: list[Event] = []
    raw_events = raw.get("events")
    if raw_events is not None and not isinstance(raw_events, list):
        raise BadValue(f"{where}.events", f"must be a list, got {kind_of(raw_events)}")
    for n, event in enumerate(raw_events or []):
        event_where = f"{where}.events[{n}]"
        if not isinstance(event, dict):
            raise BadValue(event_where, f"must be an object, got {kind_of(event)}")
        name = event.get("name")
        events.append(
            Event(
                name if isinstance(name, str) else "",
                _nanos(event.get("timeUnixNano"), f"{event_where}.timeUnixNano"),
                attributes(event.get("attributes"), f"{event_where}.attributes"),
            )
        )
    name = raw.get("name")
    return Span(
        where=where,
        order=order,
        trace_id=_id(raw.get("traceId"), 16, f"{where}.traceId"),
        span_id=_id(raw.get("spanId"), 8, f"{where}.spanId"),
        parent_id=None if parent in (None, "") else _id(parent, 8, f"{where}.parentSpanId"),
        name=name if isinstance(name, str) else "",
        kind=raw.get("kind"),
        start=_nanos(raw.get("startTimeUnixNano"), f"{where}.startTimeUnixNano"),
        end=_nanos(raw.get("endTimeUnixNano"), f"{where}.endTimeUnixNano"),
        attributes=attributes(raw.get("attributes"), f"{where}.attributes"),
        events=events,
        resource=resource,
    )


def _id(value: object, size: int, where: str) -> str:
    """A trace (16 bytes) or span (8 bytes) id as lower-case hex."""
    if value is None or value == "":
        raise BadValue(where, "missing")
    if not isinstance(value, str):
        raise BadValue(where, f"must be a hex string, got {kind_of(value)}")
    text = value.strip().lower()
    if not (len(text) == 2 * size and _HEX.match(text)):
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != size:
            raise BadValue(where, f"must be {2 * size} hex digits, got {value!r}")
        text = decoded.hex()
    if not text.strip("0"):
        raise BadValue(where, "all zeros, which is not a valid id")
    return text


def _nanos(value: object, where: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise BadValue(where, f"must be unix nanoseconds, got {value!r}")


# --- which traces failed -------------------------------------------------------------------


def _evaluations(spans: list[Span], selection: Selection) -> list[Evaluation]:
    """Every evaluation recorded in the trace, in time order."""
    found: list[tuple[int, int, Evaluation]] = []
    for span in spans:
        for event in span.events:
            if event.name in EVALUATION_EVENTS:
                found.append((event.time or span.end, span.order, _evaluation(event, span)))
        if selection.feedback_attribute in span.attributes:
            value = span.attributes[selection.feedback_attribute]
            score = score_of(value)
            label = value if isinstance(value, str) and score is None else None
            feedback = Evaluation(
                "feedback", selection.feedback_attribute, score, label, None, span.span_id
            )
            found.append((span.end, span.order, feedback))
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [evaluation for _, _, evaluation in found]


def _evaluation(event: Event, span: Span) -> Evaluation:
    values = event.attributes
    name = values.get("gen_ai.evaluation.name")
    if name is None and event.name == "gen_ai.evaluation.user_feedback":
        name = "user_feedback"
    score = values.get("gen_ai.evaluation.score.value", values.get("gen_ai.evaluation.score"))
    return Evaluation(
        kind="evaluation",
        name=nonblank(name),
        score=score_of(score),
        label=nonblank(values.get("gen_ai.evaluation.score.label")),
        explanation=nonblank(values.get("gen_ai.evaluation.explanation", values.get("comment"))),
        at=span.span_id,
        response_id=nonblank(values.get("gen_ai.response.id")),
    )


# --- the failing conversation ------------------------------------------------------------


def _failure(
    trace_id: str,
    spans: list[Span],
    evaluation: Evaluation | None,
    selection: Selection,
    reporter: str | None,
    route: str | None,
) -> TraceFailure | list[FieldError]:
    span = _chat_span(spans, evaluation)
    if span is None:
        marked = evaluation.at if evaluation is not None else None
        where = next((s.where for s in spans if s.span_id == marked), spans[0].where)
        return [
            FieldError(
                where, f"trace {trace_id} has no GenAI chat span with messages; {_CAPTURE_HINT}"
            )
        ]
    try:
        inputs, output = _exchange(span)
    except BadValue as exc:
        return [FieldError(exc.where, exc.message)]
    if not inputs:
        return [
            FieldError(
                span.where,
                "no input messages (gen_ai.input.messages, gen_ai.*.message events or "
                f"gen_ai.prompt.N attributes) in trace {trace_id}; {_CAPTURE_HINT}",
            )
        ]
    if output is None or not output.text.strip():
        return [
            FieldError(
                span.where,
                "no output (gen_ai.output.messages, a gen_ai.choice event or "
                f"gen_ai.completion.0 attributes) in trace {trace_id}; {_CAPTURE_HINT}",
            )
        ]
    values = span.attributes
    service = nonblank(span.resource.get("service.name"))
    usage = {
        "input_tokens": values.get("gen_ai.usage.input_tokens"),
        "output_tokens": values.get("gen_ai.usage.output_tokens"),
    }
    provenance = {
        "format": "otlp",
        "span_id": span.span_id,
        "span_name": span.name or None,
        "timestamp": iso_from_nanos(span.start),
        "model": nonblank(
            values.get("gen_ai.response.model") or values.get("gen_ai.request.model")
        ),
        "provider": nonblank(values.get("gen_ai.provider.name") or values.get("gen_ai.system")),
        "operation": nonblank(values.get("gen_ai.operation.name")),
        "response_id": nonblank(values.get("gen_ai.response.id")),
        "conversation_id": nonblank(values.get("gen_ai.conversation.id")),
        "usage": {key: value for key, value in usage.items() if isinstance(value, int)},
        "service": service,
        "endpoint": _endpoint(spans),
    }
    return build_failure(
        where=span.where,
        trace_id=trace_id,
        conversation=conversation(inputs),
        observed_output=output.text,
        evaluation=evaluation,
        selection=selection,
        reporter=reporter or (f"otlp:{service}" if service else "otlp"),
        route=route,
        tags=["trace", "otlp"],
        provenance=provenance,
    )


def _chat_span(spans: list[Span], evaluation: Evaluation | None) -> Span | None:
    if evaluation is not None:
        for span in spans:
            if span.span_id == evaluation.at and _records_messages(span):
                return span
        if evaluation.response_id:
            for span in spans:
                if span.attributes.get("gen_ai.response.id") == evaluation.response_id:
                    return span
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") in CHAT_OPERATIONS]
    candidates = chats or [s for s in spans if _records_messages(s)]
    return max(candidates, key=lambda s: (s.start, s.order)) if candidates else None


def _records_messages(span: Span) -> bool:
    values = span.attributes
    return any(key in values for key in _CONTENT_ATTRIBUTES) or any(
        event.name in MESSAGE_EVENTS or event.name == CHOICE_EVENT for event in span.events
    )


def _endpoint(spans: list[Span]) -> str | None:
    """The HTTP route of the trace's server span, if one records it."""
    for span in spans:
        route = span.attributes.get("http.route")
        if isinstance(route, str):
            method = span.attributes.get("http.request.method", span.attributes.get("http.method"))
            return f"{method} {route}" if isinstance(method, str) else route
    return None


def _exchange(span: Span) -> tuple[list[Turn], Turn | None]:
    """The span's input turns and its first output choice."""
    values = span.attributes
    inputs = (
        _attribute_messages(span, "gen_ai.input.messages")
        or _event_messages(span)
        or _indexed_messages(values, "gen_ai.prompt", "user")
    )
    instructions = values.get("gen_ai.system_instructions")
    if instructions is not None and not any(t.role == "system" and t.text.strip() for t in inputs):
        parsed = _json(instructions, f"{span.where}.attributes[gen_ai.system_instructions]")
        system = message_turn({"role": "system", "content": parsed})
        if system is not None and system.text.strip():
            inputs = [system, *inputs]
    outputs = (
        _attribute_messages(span, "gen_ai.output.messages")
        or _choice_messages(span)
        or _indexed_messages(values, "gen_ai.completion", "assistant")
    )
    output = next((turn for turn in outputs if turn.role == "assistant"), None)
    return inputs, output or (outputs[0] if outputs else None)


def _attribute_messages(span: Span, key: str) -> list[Turn]:
    value = span.attributes.get(key)
    if value is None:
        return []
    where = f"{span.where}.attributes[{key}]"
    parsed = _json(value, where, strict=True)
    if not isinstance(parsed, list):
        raise BadValue(where, f"must be a list of messages, got {kind_of(parsed)}")
    turns = [message_turn(message) for message in parsed]
    return [turn for turn in turns if turn is not None]


def _event_messages(span: Span) -> list[Turn]:
    turns = []
    for n, event in enumerate(span.events):
        role = MESSAGE_EVENTS.get(event.name)
        if role is None:
            continue
        body = _event_body(event, f"{span.where}.events[{n}]")
        turn = message_turn({**body, "role": role})
        if turn is not None:
            turns.append(turn)
    return turns


def _choice_messages(span: Span) -> list[Turn]:
    choices: list[tuple[int, Turn]] = []
    for n, event in enumerate(span.events):
        if event.name != CHOICE_EVENT:
            continue
        where = f"{span.where}.events[{n}]"
        body = _event_body(event, where)
        message = _json(body.get("message"), f"{where}.attributes[message]")
        source = message if isinstance(message, dict) else body
        turn = message_turn({**source, "role": role_of(source.get("role")) or "assistant"})
        index = body.get("index")
        if turn is not None:
            choices.append((index if isinstance(index, int) else len(choices), turn))
    return [turn for _, turn in sorted(choices, key=lambda choice: choice[0])]


def _event_body(event: Event, where: str) -> dict[str, Any]:
    """An event's message fields: the JSON `gen_ai.event.content`, then plain attributes."""
    body: dict[str, Any] = {}
    packed = event.attributes.get("gen_ai.event.content")
    if packed is not None:
        parsed = _json(packed, f"{where}.attributes[gen_ai.event.content]", strict=True)
        if isinstance(parsed, dict):
            body.update(parsed)
    for key in _EVENT_FIELDS:
        if key in event.attributes:
            body[key] = event.attributes[key]
    return body


def _indexed_messages(values: dict[str, Any], prefix: str, default_role: str) -> list[Turn]:
    """`gen_ai.prompt.0.role`, `gen_ai.prompt.0.content`, `gen_ai.prompt.0.tool_calls.1.name`
    ... as messages in index order."""
    entries: dict[int, dict[str, Any]] = {}
    start = len(prefix) + 1
    for key, value in values.items():
        if not key.startswith(prefix) or key[start - 1 : start] != ".":
            continue
        number, _, field = key[start:].partition(".")
        if number.isdigit() and field:
            entries.setdefault(int(number), {})[field] = value
    turns = []
    for index in sorted(entries):
        fields = entries[index]
        calls: dict[int, dict[str, Any]] = {}
        for field, value in fields.items():
            head, _, rest = field.partition(".")
            call, _, name = rest.partition(".")
            if head == "tool_calls" and call.isdigit() and name:
                calls.setdefault(int(call), {})[name] = value
        content = fields.get("content")
        if isinstance(content, str) and content.lstrip().startswith("["):
            content = _json(content, "", strict=False)
        message = {
            "role": fields.get("role") or default_role,
            "content": content,
            "tool_calls": [calls[n] for n in sorted(calls)],
        }
        turn = message_turn(message)
        if turn is not None:
            turns.append(turn)
    return turns


def _json(value: object, where: str, *, strict: bool = False) -> Any:
    """A structured value as is; JSON text decoded. Text that is not JSON is refused when
    `strict` (the attribute must hold JSON), else kept as text."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        if strict:
            raise BadValue(where, f"not JSON: {exc}") from None
        return value
