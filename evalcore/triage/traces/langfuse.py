"""Failing conversations from a Langfuse trace export.

Read: a JSON array of traces (the UI's export), `{"data": [...]}` (the public API's list
shape), one trace object (`GET /api/public/traces/{id}`), or JSON Lines of traces. A trace
has `id`, `timestamp`, `name`, `input`, `output`, `userId`, `tags`, `scores` and
`observations`; a score is `{name, value, stringValue, comment, dataType, observationId}`,
a GENERATION observation carries `input` (chat messages), `output`, `model`, `usage`,
`startTime` and `id`. The API's list endpoint gives scores and observations as ids only:
such a trace can be named with a trace id but not selected by its scores (said when
nothing was selected).

The conversation is the scored GENERATION's (a score with `observationId`), else the
trace's last GENERATION's, else the trace's own `input`/`output`: a string is the user's
message, a list of messages or `{"messages": [...]}` a conversation, the decorator's
`{"args": [...], "kwargs": {...}}` its arguments. The reporter defaults to
`langfuse:<userId>` (or the trace name); the trace's tags are kept.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from evalcore.triage.intake import FieldError
from evalcore.triage.traces.documents import kind_of, nonblank, read_documents
from evalcore.triage.traces.failures import (
    Refusals,
    TraceBatch,
    TraceFailure,
    build_failure,
    iso_utc,
)
from evalcore.triage.traces.messages import Turn, content_text, conversation, message_turn
from evalcore.triage.traces.selection import (
    Evaluation,
    Selection,
    score_of,
    selected,
    trace_id_key,
)

_NOT_LANGFUSE = (
    'not a Langfuse trace export: expected an array of traces, {"data": [...]} (the '
    "API's list) or one trace object"
)
_INPUT_KEYS = ("question", "query", "input", "message", "prompt", "text", "content")
_OUTPUT_KEYS = ("output", "answer", "response", "completion", "text", "content", "result")
_IDS_ONLY = (
    "scores are listed by id only in {count} trace(s) (the list API's shape): export the "
    "traces with their scores (GET /api/public/traces/{{id}}) or name them with --trace-id"
)


def read_langfuse(
    data: bytes,
    selection: Selection,
    *,
    reporter: str | None = None,
    route: str | None = None,
) -> TraceBatch:
    """The failing traces of a Langfuse export, each a validated failure; `IntakeError`
    naming every field at fault when the export or a selected trace is not usable."""
    refusals = Refusals()
    entries: list[tuple[str, dict[str, Any]]] = []
    for line, document in read_documents(data):
        entries.extend(_traces(document, line, refusals))
    refusals.raise_any()
    wanted = selection.wanted
    found = {trace_id_key(trace["id"]) for _, trace in entries}
    for missing in sorted(wanted - found):
        refusals.add("trace_id", f"{missing}: no trace with this id in the export")
    failures: list[TraceFailure] = []
    ids_only = 0
    for where, trace in entries:
        scores, listed_by_id = _scores(trace.get("scores"), f"{where}.scores", refusals)
        ids_only += listed_by_id
        taken, failing = selected(scores, selection, trace_id_key(trace["id"]))
        if not taken:
            continue
        built = _failure(where, trace, failing, selection, reporter, route)
        if isinstance(built, TraceFailure):
            failures.append(built)
        else:
            refusals.extend(built)
    refusals.raise_any()
    notes = [_IDS_ONLY.format(count=ids_only)] if ids_only else []
    return TraceBatch("langfuse", len(entries), failures, notes)


def _traces(
    document: object, line: int | None, refusals: Refusals
) -> list[tuple[str, dict[str, Any]]]:
    """(where, trace) for each trace of one document, each checked to have an id."""
    if line is not None:
        listed: list[tuple[str, object]] = [(f"line {line}", document)]
    elif isinstance(document, list):
        listed = [(f"[{i}]", trace) for i, trace in enumerate(document)]
    elif isinstance(document, dict) and isinstance(document.get("data"), list):
        listed = [(f"data[{i}]", trace) for i, trace in enumerate(document["data"])]
    elif isinstance(document, dict) and "id" in document and "resourceSpans" not in document:
        listed = [("trace", document)]
    else:
        refusals.add("payload", _NOT_LANGFUSE)
        return []
    out = []
    for where, trace in listed:
        if not isinstance(trace, dict):
            refusals.add(where, f"must be a trace object, got {kind_of(trace)}")
            continue
        trace_id = trace.get("id")
        if not isinstance(trace_id, str) or not trace_id.strip():
            refusals.add(f"{where}.id", "missing" if trace_id in (None, "") else "not a string")
            continue
        out.append((where, trace))
    return out


def _scores(value: object, where: str, refusals: Refusals) -> tuple[list[Evaluation], bool]:
    """The trace's scores as evaluations; whether some were listed by id only."""
    if value is None:
        return [], False
    if not isinstance(value, list):
        refusals.add(where, f"must be a list, got {kind_of(value)}")
        return [], False
    evaluations = []
    ids_only = False
    for score in value:
        if isinstance(score, str):
            ids_only = True
            continue
        if not isinstance(score, dict):
            continue
        data_type = score.get("dataType")
        raw = score.get("value")
        string_value = score.get("stringValue")
        label = string_value if isinstance(string_value, str) else None
        if label is None and isinstance(raw, str):
            label = raw
        evaluations.append(
            Evaluation(
                kind="score",
                name=nonblank(score.get("name")),
                score=None if data_type == "CATEGORICAL" else score_of(raw),
                label=label,
                explanation=nonblank(score.get("comment")),
                at=nonblank(score.get("observationId")),
            )
        )
    return evaluations, ids_only


def _failure(
    where: str,
    trace: dict[str, Any],
    evaluation: Evaluation | None,
    selection: Selection,
    reporter: str | None,
    route: str | None,
) -> TraceFailure | list[FieldError]:
    trace_id: str = trace["id"]
    generation, at = _generation(trace, where, evaluation)
    source = generation if generation is not None else trace
    inputs = _turns(source.get("input"))
    if not inputs and generation is not None:
        inputs, source, at = _turns(trace.get("input")), trace, where
    if not inputs:
        missing = "missing" if source.get("input") in (None, "", [], {}) else "no user message"
        return [
            FieldError(
                f"{at}.input",
                f"{missing}: trace {trace_id} has no input and no GENERATION observation "
                "with input",
            )
        ]
    output = _output_text(source.get("output"))
    if not output.strip() and source is not trace:
        output = _output_text(trace.get("output"))
    if not output.strip():
        return [FieldError(f"{at}.output", f"missing: trace {trace_id} has no output")]
    usage = _usage(generation) if generation is not None else {}
    user = nonblank(trace.get("userId"))
    name = nonblank(trace.get("name"))
    tags = trace.get("tags")
    provenance = {
        "format": "langfuse",
        "span_id": nonblank(generation.get("id")) if generation is not None else None,
        "observation_name": nonblank(generation.get("name")) if generation is not None else None,
        "timestamp": iso_utc(generation.get("startTime") if generation is not None else None)
        or iso_utc(trace.get("timestamp")),
        "model": nonblank(generation.get("model")) if generation is not None else None,
        "usage": usage,
        "trace_name": name,
        "user_id": user,
        "session_id": nonblank(trace.get("sessionId")),
        "release": nonblank(trace.get("release")),
        "environment": nonblank(trace.get("environment")),
    }
    return build_failure(
        where=where,
        trace_id=trace_id,
        conversation=conversation(inputs),
        observed_output=output,
        evaluation=evaluation,
        selection=selection,
        reporter=reporter or (f"langfuse:{user or name}" if user or name else "langfuse"),
        route=route,
        tags=["trace", "langfuse", *(t for t in tags or [] if isinstance(t, str))],
        provenance=provenance,
    )


def _generation(
    trace: dict[str, Any], where: str, evaluation: Evaluation | None
) -> tuple[dict[str, Any] | None, str]:
    """The GENERATION the conversation comes from (the scored one, else the last), and
    its path."""
    observations = trace.get("observations")
    if not isinstance(observations, list):
        return None, where
    generations = [
        (n, item)
        for n, item in enumerate(observations)
        if isinstance(item, dict) and str(item.get("type", "")).upper() == "GENERATION"
    ]
    if evaluation is not None and evaluation.at:
        for n, item in generations:
            if item.get("id") == evaluation.at:
                return item, f"{where}.observations[{n}]"
    if not generations:
        return None, where
    n, item = max(generations, key=lambda pair: (_moment(pair[1].get("startTime")), pair[0]))
    return item, f"{where}.observations[{n}]"


def _moment(value: object) -> float:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return float("-inf")


def _turns(value: object) -> list[Turn]:
    """What was sent to the model, in the shapes Langfuse records inputs."""
    if value is None:
        return []
    if isinstance(value, str):
        return [Turn("user", value)] if value.strip() else []
    if isinstance(value, list):
        read = [message_turn(item) for item in value]
        return [turn for turn in read if turn is not None]
    if not isinstance(value, dict):
        return [Turn("user", json.dumps(value))]
    if isinstance(value.get("messages"), list):
        turns = _turns(value["messages"])
        system = value.get("system")
        if system and not (turns and turns[0].role == "system"):
            turns = [Turn("system", content_text(system)), *turns]
        return turns
    if "role" in value:
        turn = message_turn(value)
        return [turn] if turn is not None else []
    if "args" in value or "kwargs" in value:
        return _turns(value.get("args")) or _turns(value.get("kwargs") or None)
    for key in _INPUT_KEYS:
        if key in value:
            return _turns(value[key])
    return [Turn("user", json.dumps(value, ensure_ascii=False))] if value else []


def _output_text(value: object) -> str:
    """What the model answered, as readable text (tool calls included)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        turns = _turns(value)
        answers = [turn for turn in turns if turn.role == "assistant"]
        if answers:
            return answers[-1].text
        return content_text(value)
    if not isinstance(value, dict):
        return json.dumps(value)
    choices = value.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return _output_text(choices[0].get("message", choices[0].get("text")))
    if any(key in value for key in ("role", "tool_calls", "function_call")) or (
        "content" in value and not isinstance(value["content"], dict)
    ):
        turn = message_turn({**value, "role": value.get("role") or "assistant"})
        return turn.text if turn is not None else ""
    for key in _OUTPUT_KEYS:
        if key in value:
            return _output_text(value[key])
    return json.dumps(value, ensure_ascii=False) if value else ""


def _usage(generation: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for source in (generation.get("usageDetails"), generation.get("usage")):
        if not isinstance(source, dict):
            continue
        for ours, theirs in (("input_tokens", "input"), ("output_tokens", "output")):
            value = source.get(theirs)
            if isinstance(value, int) and not isinstance(value, bool):
                out.setdefault(ours, value)
    return out
