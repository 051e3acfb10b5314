"""Failures read from Langfuse trace exports: the shapes an export comes in, which traces
its scores mark failed, the conversation each becomes, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalcore.triage.intake import IntakeError
from evalcore.triage.traces import Selection, TraceBatch, read_trace_failures

EXPORT = Path(__file__).resolve().parents[1] / "data" / "langfuse" / "traces.json"


def read(document: Any, **selection: Any) -> TraceBatch:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    return read_trace_failures("langfuse", data, Selection(**selection))


def refusal(document: Any, **selection: Any) -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        read(document, **selection)
    return caught.value


def example() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(EXPORT.read_text())
    return loaded


def trace(scores: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": "7d0c1b2a-0000-4000-8000-000000000001",
        "timestamp": "2026-03-11T09:00:00+01:00",
        "name": "support-chat",
        "input": "Can I pay in instalments?",
        "output": "Yes, in 3 instalments.",
        "scores": scores if scores is not None else [{"name": "ok", "value": 0}],
        **fields,
    }


def test_the_traces_scored_as_failures_are_taken_in() -> None:
    traces = example()
    batch = read(EXPORT.read_bytes())
    assert batch.traces == 4
    assert [f.trace_id for f in batch.failures] == [traces[0]["id"], traces[1]["id"]]

    feedback = batch.failures[0]
    assert feedback.failure.messages[1].content == traces[0]["input"]["question"]
    assert feedback.failure.observed_output == traces[0]["observations"][0]["output"]["content"]
    assert feedback.failure.what_was_wrong == traces[0]["scores"][0]["comment"]
    assert feedback.failure.reporter == f"langfuse:{traces[0]['userId']}"
    assert feedback.failure.tags == ["langfuse", "refunds", "trace", "web-chat"]
    assert feedback.provenance["span_id"] == traces[0]["observations"][0]["id"]
    assert feedback.provenance["model"] == "gpt-4o-mini-2024-07-18"
    assert feedback.provenance["timestamp"] == "2026-03-11T09:14:02.402Z"
    assert feedback.provenance["usage"] == {"input_tokens": 388, "output_tokens": 41}


def test_the_scored_generation_is_the_conversation_not_the_last_one() -> None:
    traces = example()
    labelled = read(EXPORT.read_bytes()).failures[1]
    scored = traces[1]["scores"][0]["observationId"]
    [generation] = [o for o in traces[1]["observations"] if o["id"] == scored]
    assert labelled.provenance["span_id"] == scored != traces[1]["observations"][-1]["id"]
    assert labelled.failure.observed_output == generation["output"]["content"]
    assert labelled.failure.what_was_wrong == "score 'correctness' labelled 'incorrect'"
    assert labelled.failure.messages[-1].content == (
        'tool_call lookup_order({"order_id": "LH-604417"})\n'
        'tool_result: {"status": "shipped", "carrier": "DPD", "tracking": "15501234567890"}'
    )


@pytest.mark.parametrize("shape", ["array", "api-list", "json-lines"])
def test_every_export_shape_gives_the_same_failures(shape: str) -> None:
    traces = example()
    if shape == "array":
        data = json.dumps(traces).encode()
    elif shape == "api-list":
        data = json.dumps({"data": traces, "meta": {"page": 1, "totalItems": 4}}).encode()
    else:
        data = "\n".join(json.dumps(t) for t in traces).encode()
    assert [f.trace_id for f in read(data).failures] == [traces[0]["id"], traces[1]["id"]]


def test_one_trace_as_the_api_returns_it_and_a_trace_named_by_id() -> None:
    traces = example()
    [single] = read(traces[0]).failures
    assert single.trace_id == traces[0]["id"]
    # No observations: the trace's own input and output are the conversation.
    [named] = read(EXPORT.read_bytes(), trace_ids=(traces[3]["id"].upper(),)).failures
    assert [(m.role, m.content) for m in named.failure.messages] == [("user", traces[3]["input"])]
    assert named.failure.observed_output == traces[3]["output"]
    assert named.failure.reporter == "langfuse:support-chat"  # no user id: the trace name
    assert named.provenance["selected_by"] == "trace_id"
    assert named.provenance["timestamp"] == "2026-03-12T10:21:55.440Z"


@pytest.mark.parametrize(
    ("score", "below", "taken"),
    [
        ({"name": "thumbs", "value": 0, "dataType": "BOOLEAN", "stringValue": "False"}, 0, True),
        ({"name": "thumbs", "value": 1, "dataType": "BOOLEAN", "stringValue": "True"}, 0, False),
        ({"name": "quality", "value": 2, "dataType": "NUMERIC"}, 2, True),
        ({"name": "quality", "value": 3, "dataType": "NUMERIC"}, 2, False),
        (
            {"name": "verdict", "value": 0, "dataType": "CATEGORICAL", "stringValue": "good"},
            0,
            False,
        ),
        ({"name": "verdict", "dataType": "CATEGORICAL", "stringValue": "Failed"}, 0, True),
    ],
)
def test_a_score_fails_at_or_under_the_threshold_or_with_a_failing_label(
    score: dict[str, Any], below: float, taken: bool
) -> None:
    assert len(read([trace([score])], below=below).failures) == int(taken)


def test_scores_listed_by_id_only_are_said_to_be_unusable() -> None:
    batch = read({"data": [trace(["sc_1", "sc_2"])]})
    assert batch.failures == []
    assert "scores are listed by id only in 1 trace(s)" in batch.notes[0]


@pytest.mark.parametrize(
    ("field", "recorded", "messages", "output"),
    [
        (
            "input",
            {"args": ["Do you price match?"], "kwargs": {}},
            [("user", "Do you price match?")],
            None,
        ),
        (
            "input",
            {
                "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "Refund LH-300127"}]},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "tool_use",
                                "id": "t1",
                                "name": "create_refund",
                                "input": {"order_id": "LH-300127"},
                            }
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "t1", "content": "refunded"}
                        ],
                    },
                ],
            },
            [
                ("system", "Be brief."),
                ("user", "Refund LH-300127"),
                (
                    "assistant",
                    'tool_call create_refund({"order_id": "LH-300127"})\ntool_result: refunded',
                ),
            ],
            None,
        ),
        (
            "output",
            {"choices": [{"message": {"role": "assistant", "content": "We do not."}}]},
            None,
            "We do not.",
        ),
    ],
    ids=["decorator-args", "anthropic-blocks", "chat-completion"],
)
def test_inputs_and_outputs_in_the_shapes_langfuse_records_them(
    field: str,
    recorded: Any,
    messages: list[tuple[str, str]] | None,
    output: str | None,
) -> None:
    [failure] = read([trace(**{field: recorded})]).failures
    if messages is not None:
        assert [(m.role, m.content) for m in failure.failure.messages] == messages
    if output is not None:
        assert failure.failure.observed_output == output


def test_a_selected_trace_lacking_input_is_refused_naming_it() -> None:
    traces = example()
    del traces[3]["input"]
    error = refusal(traces, trace_ids=(traces[3]["id"],))
    assert [f.field for f in error.fields] == ["[3].input"]
    assert error.fields[0].message.startswith("missing: trace e92f1b6c")


def test_exports_that_are_not_langfuse_are_refused() -> None:
    error = refusal({"resourceSpans": []})
    assert [str(f) for f in error.fields] == [
        "payload: not a Langfuse trace export: expected an array of traces, "
        '{"data": [...]} (the API\'s list) or one trace object'
    ]
    error = refusal({"data": [{"name": "no id"}, "x"]})
    assert [str(f) for f in error.fields] == [
        "data[0].id: missing",
        "data[1]: must be a trace object, got a string",
    ]
