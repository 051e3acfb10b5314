"""Failures read from OTLP/JSON trace exports: which traces are taken in, the conversation
each becomes (in every way GenAI instrumentations record messages), and the refusals
that name where an export is broken."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from evalcore.triage.intake import MAX_MESSAGES, MAX_TEXT, IntakeError
from evalcore.triage.traces import Selection, TraceBatch, read_trace_failures

EXPORT = Path(__file__).resolve().parents[1] / "data" / "otlp" / "genai_traces.json"
TRACE = "5b8efff798038103d269b633813fc60c"
CHAT = "051581bf3ef4c316"
SERVER = "eee19b7e3ed45cbb"


def read(document: Any, **selection: Any) -> TraceBatch:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    return read_trace_failures("otlp", data, Selection(**selection))


def refusal(document: Any, **selection: Any) -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        read(document, **selection)
    return caught.value


# --- building exports the way an instrumentation writes them ------------------------------


def value(item: Any) -> dict[str, Any]:
    if isinstance(item, bool):
        return {"boolValue": item}
    if isinstance(item, int):
        return {"intValue": str(item)}
    if isinstance(item, float):
        return {"doubleValue": item}
    if isinstance(item, list):
        return {"arrayValue": {"values": [value(i) for i in item]}}
    if isinstance(item, dict):
        return {"kvlistValue": {"values": attributes(item)}}
    return {"stringValue": item}


def attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": value(item)} for key, item in values.items()]


def span(
    span_id: str = CHAT,
    *,
    trace_id: str = TRACE,
    parent: str = SERVER,
    start: int = 1_773_150_000_000_000_000,
    values: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1_500_000_000),
        "attributes": attributes(values or {}),
        "events": events or [],
    }


def event(name: str, values: dict[str, Any], at: int = 1_773_150_002_000_000_000) -> dict[str, Any]:
    return {"timeUnixNano": str(at), "name": name, "attributes": attributes(values)}


def verdict(**values: Any) -> dict[str, Any]:
    names = {"name": "gen_ai.evaluation.name", "score": "gen_ai.evaluation.score.value"}
    names |= {"label": "gen_ai.evaluation.score.label"}
    names |= {"explanation": "gen_ai.evaluation.explanation"}
    return event("gen_ai.evaluation.result", {names[k]: v for k, v in values.items()})


def chat(user: str, answer: str, **extra: Any) -> dict[str, Any]:
    """Attributes of a chat span in the current conventions."""
    messages = [{"role": "user", "parts": [{"type": "text", "content": user}]}]
    output = [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.input.messages": json.dumps(messages),
        "gen_ai.output.messages": json.dumps(output),
        **extra,
    }


def export(*spans: dict[str, Any], service: str = "lumen-support-api") -> dict[str, Any]:
    resource = {"attributes": attributes({"service.name": service})}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]}


def example() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXPORT.read_text())
    return loaded


def example_spans() -> list[dict[str, Any]]:
    return [s for scope in example()["resourceSpans"][0]["scopeSpans"] for s in scope["spans"]]


def example_trace_ids() -> list[str]:
    return list(dict.fromkeys(s["traceId"] for s in example_spans()))


# --- the example export -----------------------------------------------------------------------


def test_the_traces_marked_failed_are_taken_in_with_their_coordinates() -> None:
    first, second, *_ = example_trace_ids()
    batch = read(EXPORT.read_bytes())
    assert batch.traces == 4
    assert [f.trace_id for f in batch.failures] == [first, second]

    explained = batch.failures[0]
    assert [m.role for m in explained.failure.messages] == ["system", "user"]
    assert explained.failure.messages[1].content.startswith("Hi! My Aldous armchair")
    assert explained.failure.observed_output.startswith("You can return any item within 30")
    # An explanation is the best account of what was wrong; the label is not needed then.
    assert explained.failure.what_was_wrong.startswith("Quoted the 30-day US return window")
    assert explained.provenance["what_was_wrong_from"] == "explanation"
    assert explained.failure.reporter == "otlp:lumen-support-api"
    assert explained.failure.tags == ["otlp", "trace"]
    [chat_span] = [s for s in example_spans() if s["traceId"] == first and s["kind"] == 3]
    assert explained.provenance["span_id"] == chat_span["spanId"]
    assert explained.provenance["model"] == "gpt-4o-mini-2024-07-18"  # the response's model
    assert explained.provenance["provider"] == "openai"
    assert explained.provenance["timestamp"] == "2026-03-10T13:40:00.120Z"
    assert explained.provenance["usage"] == {"input_tokens": 412, "output_tokens": 38}
    assert explained.provenance["endpoint"] == "POST /v1/support/chat"
    assert explained.provenance["evaluation"]["score"] == 0.0


def test_older_event_style_and_an_evaluation_naming_the_response_it_judges() -> None:
    """Trace 2 records messages as span events and its evaluation on the server span,
    pointing at the chat span by gen_ai.response.id."""
    _, second, _, _ = example_trace_ids()
    [labelled] = [f for f in read(EXPORT.read_bytes()).failures if f.trace_id == second]
    assert labelled.failure.messages[1].content.startswith("please cancel order LH-530981")
    assert labelled.failure.observed_output == (
        'tool_call create_refund({"order_id": "LH-530981", "reason": "wrong size"})'
    )
    assert labelled.failure.what_was_wrong == "evaluation 'tool_choice' labelled 'incorrect'"
    assert labelled.provenance["what_was_wrong_from"] == "label"
    assert labelled.provenance["provider"] == "openai"  # from the older gen_ai.system
    [chat_span] = [s for s in example_spans() if s["traceId"] == second and s["kind"] == 3]
    assert labelled.provenance["span_id"] == chat_span["spanId"]


def test_named_traces_are_taken_in_marked_or_not_and_the_last_chat_span_is_the_failure() -> None:
    _, _, passing, unmarked = example_trace_ids()
    batch = read(EXPORT.read_bytes(), trace_ids=(unmarked.upper(), passing))
    assert [f.trace_id for f in batch.failures] == [passing, unmarked]  # file order
    named, tool_round = batch.failures
    assert named.failure.what_was_wrong == (
        "taken in by trace id; the trace records no failing evaluation "
        "(evaluation 'policy_accuracy': score 1, label 'pass')"
    )
    assert named.provenance["selected_by"] == "trace_id"
    # gen_ai.prompt.N / gen_ai.completion.N attributes, two chat spans around a tool span:
    # the later chat span is the conversation, its tool round trip kept readable.
    assert [m.role for m in tool_round.failure.messages] == ["system", "user", "assistant"]
    assert tool_round.failure.messages[2].content == (
        'tool_call lookup_order({"order_id": "LH-482913"})\n'
        'tool_result: {"status": "processing", "warehouse": "Leipzig", "ship_by": "2026-03-14"}'
    )
    assert tool_round.failure.observed_output.startswith("Your order LH-482913 is still")
    chat_spans = [s for s in example_spans() if s["traceId"] == unmarked and s["kind"] == 3]
    assert tool_round.provenance["span_id"] == chat_spans[-1]["spanId"]


# --- which traces are failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marks", "below", "taken"),
    [
        ({"score": 0.0}, 0.0, True),
        ({"score": 1.0, "label": "pass"}, 0.0, False),
        ({"score": 0.5}, 0.5, True),
        ({"score": 0.51}, 0.5, False),
        ({"score": -1.0}, -0.5, True),
        ({"score": 4.0, "label": "Thumbs-Down"}, 0.0, True),
        ({"label": "NOT RELEVANT"}, 0.0, True),
        ({"label": "relevant"}, 0.0, False),
        ({"name": "tone"}, 0.0, False),
    ],
)
def test_an_evaluation_fails_at_or_under_the_score_or_with_a_failing_label(
    marks: dict[str, Any], below: float, taken: bool
) -> None:
    document = export(span(values=chat("Is the sofa in stock?", "Yes."), events=[verdict(**marks)]))
    assert len(read(document, below=below).failures) == int(taken)


@pytest.mark.parametrize(
    ("feedback", "taken", "wrong"),
    [
        (False, True, "user feedback 'user.feedback' scored 0 (at or under 0, a failure)"),
        (True, False, None),
        ("thumbs_down", True, "user feedback 'user.feedback' labelled 'thumbs_down'"),
        ("-1", True, "user feedback 'user.feedback' scored -1 (at or under 0, a failure)"),
        (1, False, None),
    ],
)
def test_user_feedback_on_a_span_attribute_marks_the_trace(
    feedback: Any, taken: bool, wrong: str | None
) -> None:
    server = span(SERVER, parent="", values={"http.route": "/chat", "user.feedback": feedback})
    document = export(server, span(values=chat("Do you deliver to Oslo?", "No.")))
    failures = read(document).failures
    assert len(failures) == int(taken)
    if taken:
        assert failures[0].failure.what_was_wrong == wrong
        assert failures[0].provenance["span_id"] == CHAT  # the chat span, not the server's


def test_the_feedback_attribute_is_configurable() -> None:
    document = export(span(values=chat("Hi", "Hello.", **{"app.rating": "bad"})))
    assert read(document).failures == []
    assert len(read(document, feedback_attribute="app.rating").failures) == 1


def test_an_unknown_trace_id_is_refused() -> None:
    error = refusal(EXPORT.read_bytes(), trace_ids=("0af7651916cd43dd8448eb211c80319c",))
    assert [str(f) for f in error.fields] == [
        "trace_id: 0af7651916cd43dd8448eb211c80319c: no trace with this id in the export"
    ]


# --- the shapes messages come in ----------------------------------------------------------------


def test_structured_messages_system_instructions_and_tool_results_in_parts() -> None:
    values = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system_instructions": [{"type": "text", "content": "Be brief."}],
        "gen_ai.input.messages": [
            {"role": "user", "parts": [{"type": "text", "content": "Where is LH-100200?"}]},
            {
                "role": "assistant",
                "parts": [
                    {
                        "type": "tool_call",
                        "id": "c1",
                        "name": "lookup_order",
                        "arguments": {"order_id": "LH-100200"},
                    },
                ],
            },
            {
                "role": "tool",
                "parts": [{"type": "tool_call_response", "id": "c1", "result": "in transit"}],
            },
        ],
        "gen_ai.output.messages": [
            {"role": "assistant", "parts": [{"type": "text", "content": "It is in transit."}]}
        ],
    }
    [failure] = read(export(span(values=values, events=[verdict(score=0.0)]))).failures
    assert [(m.role, m.content) for m in failure.failure.messages] == [
        ("system", "Be brief."),
        ("user", "Where is LH-100200?"),
        ("assistant", 'tool_call lookup_order({"order_id": "LH-100200"})\ntool_result: in transit'),
    ]


def test_events_with_packed_content_and_a_choice_among_several() -> None:
    events = [
        event("gen_ai.user.message", {"gen_ai.event.content": json.dumps({"content": "Hi?"})}),
        event("gen_ai.choice", {"index": 1, "message": {"content": "second choice"}}),
        event("gen_ai.choice", {"index": 0, "message": {"content": "first choice"}}),
        verdict(score=0.0),
    ]
    [failure] = read(export(span(values={"gen_ai.operation.name": "chat"}, events=events))).failures
    assert failure.failure.messages[0].content == "Hi?"
    assert failure.failure.observed_output == "first choice"


def test_a_long_conversation_keeps_its_latest_turns_and_says_so() -> None:
    turns: list[dict[str, Any]] = [
        {"role": "system", "parts": [{"type": "text", "content": "Be kind."}]}
    ]
    for n in range(60):
        turns.append({"role": "user", "parts": [{"type": "text", "content": f"question {n}"}]})
        turns.append({"role": "assistant", "parts": [{"type": "text", "content": f"answer {n}"}]})
    turns.append({"role": "user", "parts": [{"type": "text", "content": "x" * (MAX_TEXT + 50)}]})
    values = {**chat("", "ok"), "gen_ai.input.messages": json.dumps(turns)}
    [failure] = read(export(span(values=values, events=[verdict(score=0.0)]))).failures
    messages = failure.failure.messages
    assert len(messages) == MAX_MESSAGES
    latest = turns[-(MAX_MESSAGES - 1) :]
    assert messages[0].content == "Be kind."
    assert messages[1].content == latest[0]["parts"][0]["content"]
    assert len(messages[-1].content) == MAX_TEXT and "characters cut]" in messages[-1].content
    assert failure.provenance["conversation_notes"] == [
        f"cut 1 message(s) to {MAX_TEXT:,} characters",
        f"kept the last {MAX_MESSAGES - 1} of 122 messages",
    ]


def test_base64_ids_are_read_as_hex_and_json_lines_are_one_export() -> None:
    encoded = base64.b64encode(bytes.fromhex(TRACE)).decode()
    first = export(span(trace_id=encoded, values=chat("Hi", "Hello."), events=[verdict(score=0.0)]))
    other = "1c6a2f0e9d8b7a6f5e4d3c2b1a098f7e"
    second = export(span(trace_id=other, values=chat("Bye", "Bye."), events=[verdict(label="bad")]))
    lines = f"{json.dumps(first)}\n\n{json.dumps(second)}\n".encode()
    assert [f.trace_id for f in read(lines).failures] == [TRACE, other]


# --- refusals name where the export is broken -------------------------------------------------


def test_a_json_document_that_is_not_otlp_is_refused() -> None:
    error = refusal({"traces": []})
    assert error.kind == "invalid"
    assert error.fields[0].field == "payload"
    assert "not an OTLP/JSON trace export: no resourceSpans" in error.fields[0].message


def test_every_broken_span_is_named_by_its_path() -> None:
    document = example()
    spans = document["resourceSpans"][0]["scopeSpans"][1]["spans"]
    del spans[4]["traceId"]
    spans[2]["spanId"] = "xyz"
    spans[1]["attributes"].append(
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12x"}}
    )
    spans[0]["events"][0]["timeUnixNano"] = "yesterday"
    error = refusal(document)
    assert sorted(str(f) for f in error.fields) == [
        "resourceSpans[0].scopeSpans[1].spans[0].events[0].timeUnixNano: "
        "must be unix nanoseconds, got 'yesterday'",
        "resourceSpans[0].scopeSpans[1].spans[1].attributes[gen_ai.usage.input_tokens]"
        ".intValue: must be an integer, got '12x'",
        "resourceSpans[0].scopeSpans[1].spans[2].spanId: must be 16 hex digits, got 'xyz'",
        "resourceSpans[0].scopeSpans[1].spans[4].traceId: missing",
    ]


def test_broken_json_names_the_line() -> None:
    text = EXPORT.read_text().splitlines()
    broken = next(n for n, line in enumerate(text) if '"spanId"' in line)
    text[broken] = text[broken].replace('"', "", 1)
    error = refusal("\n".join(text).encode())
    assert error.kind == "not_json"
    assert f"line {broken + 1} column" in error.message


def test_a_broken_line_of_json_lines_is_named() -> None:
    good = json.dumps(export(span(values=chat("Hi", "Hello."))))
    error = refusal(f"{good}\n{good[:-3]}\n".encode())
    assert error.kind == "not_json"
    assert error.message.startswith("not JSON: line 2 (of JSON Lines)")


def test_a_selected_trace_without_captured_content_is_refused_with_a_hint() -> None:
    values = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
    error = refusal(export(span(values=values, events=[verdict(score=0.0)])))
    [problem] = error.fields
    assert problem.field == "resourceSpans[0].scopeSpans[0].spans[0]"
    assert problem.message.startswith("no input messages")
    assert "CAPTURE_MESSAGE_CONTENT" in problem.message


def test_messages_that_are_not_json_and_a_conversation_without_user_are_refused() -> None:
    bad_json = span(values={**chat("Hi", "Hello."), "gen_ai.input.messages": "[{role: user"})
    no_user = span(
        "1b2c3d4e5f607182",
        trace_id="2b8efff798038103d269b633813fc60c",
        values={
            **chat("Hi", "Hello."),
            "gen_ai.input.messages": json.dumps([{"role": "system", "parts": []}]),
            "gen_ai.system_instructions": "Be brief.",
        },
    )
    bad_json["events"] = no_user["events"] = [verdict(score=0.0)]
    error = refusal(export(bad_json, no_user))
    fields = {f.field: f.message for f in error.fields}
    where = "resourceSpans[0].scopeSpans[0].spans[0].attributes[gen_ai.input.messages]"
    assert fields[where].startswith("not JSON: ")
    assert fields["resourceSpans[0].scopeSpans[0].spans[1]"] == (
        "messages: needs at least one user message that is not blank "
        "(trace 2b8efff798038103d269b633813fc60c)"
    )


def test_an_unmarked_trace_is_not_read_so_its_gaps_do_not_matter() -> None:
    values = {"gen_ai.operation.name": "chat"}  # content capture off, but nobody asked
    assert read(export(span(values=values))).failures == []
