"""Intake from an OTLP/JSON trace export of 10,000 spans, into a fresh SQLite store.

2,000 traces of the support route, 5 spans each (the HTTP server span, a retrieval span,
a chat span calling `lookup_order`, the tool's span, and the chat span that answers),
half recording messages in the current `gen_ai.input.messages` attributes and half in the
older span events; 10% carry a failing `gen_ai.evaluation.result` event. The export is
written to a temporary folder, then read back and taken in through the real path: the
file's bytes, `read_trace_failures` (parse, select, convert, validate every failure) and
`take_in` for each failure against the example suite at `evals/` (de-duplicated against
its cases and the items stored before it). Reported: the export's size, each phase, the
median `take_in`, and the total against the goal.

`python -m bench.traces`
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.intake import case_texts

TRACES = 2_000
SPANS_PER_TRACE = 5
FAILED_SHARE = 0.10
SEED = 20_260_310
GOAL_S = 5.0
EVALS = Path(__file__).resolve().parent.parent / "evals"
SYSTEM = "You are Lumen Home's support assistant. Answer from the policy excerpts you are given."
START_NS = 1_773_150_000_000_000_000


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _value(value)} for key, value in values.items()]


def _span(
    trace_id: str,
    span_id: str,
    parent: str,
    name: str,
    start: int,
    end: int,
    attributes: dict[str, Any],
    events: list[dict[str, Any]] | None = None,
    kind: int = 1,
) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": _attributes(attributes),
        "events": events or [],
        "status": {},
    }


def _event(name: str, at: int, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"timeUnixNano": str(at), "name": name, "attributes": _attributes(attributes)}


def _chat(
    ids: tuple[str, str, str],
    start: int,
    messages: list[dict[str, Any]],
    output: dict[str, Any],
    *,
    events_style: bool,
    extra_events: list[dict[str, Any]],
) -> dict[str, Any]:
    trace_id, span_id, parent = ids
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 400,
        "gen_ai.usage.output_tokens": 40,
    }
    events = list(extra_events)
    if events_style:
        names = {"system": "gen_ai.system.message", "user": "gen_ai.user.message"}
        names |= {"assistant": "gen_ai.assistant.message", "tool": "gen_ai.tool.message"}
        for message in messages:
            body = {"content": message.get("content") or ""}
            if "tool_calls" in message:
                body["tool_calls"] = orjson.dumps(message["tool_calls"]).decode()
            events.insert(0, _event(names[message["role"]], start, body))
        choice = {"index": 0, "finish_reason": "stop", "content": output.get("content") or ""}
        if "tool_calls" in output:
            choice["tool_calls"] = orjson.dumps(output["tool_calls"]).decode()
        events.append(_event("gen_ai.choice", start + 900_000_000, choice))
    else:
        attributes["gen_ai.input.messages"] = orjson.dumps(
            [_parts(message) for message in messages]
        ).decode()
        attributes["gen_ai.output.messages"] = orjson.dumps([_parts(output)]).decode()
    return _span(
        trace_id,
        span_id,
        parent,
        "chat gpt-4o-mini",
        start,
        start + 1_000_000_000,
        attributes,
        events,
        kind=3,
    )


def _parts(message: dict[str, Any]) -> dict[str, Any]:
    """A chat-API message in the `{role, parts}` shape of `gen_ai.*.messages`."""
    parts: list[dict[str, Any]] = []
    if message.get("content"):
        kind = "tool_call_response" if message["role"] == "tool" else "text"
        key = "result" if kind == "tool_call_response" else "content"
        parts.append({"type": kind, key: message["content"]})
    for call in message.get("tool_calls", []):
        function = call["function"]
        parts.append(
            {"type": "tool_call", "id": call["id"], "name": function["name"],
             "arguments": function["arguments"]}
        )  # fmt: skip
    return {"role": message["role"], "parts": parts}


def build_export(traces: int = TRACES, seed: int = SEED) -> tuple[bytes, int]:
    """The OTLP/JSON export and how many of its traces are marked failed."""
    rng = random.Random(seed)
    questions = case_texts(traces, seed=seed)
    spans: list[dict[str, Any]] = []
    failed = 0

    def new_id(size: int) -> str:
        return f"{rng.getrandbits(8 * size):0{2 * size}x}"

    for n, question in enumerate(questions):
        trace_id, server, retrieve, first, tool, second = (new_id(16), *map(new_id, [8] * 5))
        start = START_NS + n * 5_000_000_000
        order = f"LH-{rng.randint(100_000, 999_999)}"
        call = {
            "id": f"call_{new_id(8)}",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": f'{{"order_id": "{order}"}}'},
        }
        conversation = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
        ]
        answer = f"Your order {order} left our warehouse yesterday and arrives in 3-5 days."
        events_style = n % 2 == 1
        marked = rng.random() < FAILED_SHARE
        failed += marked
        verdict = (
            [
                _event(
                    "gen_ai.evaluation.result",
                    start + 4_100_000_000,
                    {
                        "gen_ai.evaluation.name": "policy_accuracy",
                        "gen_ai.evaluation.score.value": 0.0,
                        "gen_ai.evaluation.explanation": "Answered with an order status "
                        "instead of the policy the customer asked about.",
                    },
                )
            ]
            if marked
            else []
        )
        http = {"http.request.method": "POST", "http.route": "/v1/support/chat"}
        spans += [
            _span(trace_id, server, "", "POST /v1/support/chat", start, start + 4_000_000_000,
                  {**http, "http.response.status_code": 200}, kind=2),
            _span(trace_id, retrieve, server, "retrieve kb", start + 10_000_000,
                  start + 60_000_000, {"db.system.name": "qdrant", "db.operation.name": "query"}),
            _chat((trace_id, first, server), start + 100_000_000, conversation,
                  {"role": "assistant", "tool_calls": [call]}, events_style=events_style,
                  extra_events=[]),
            _span(trace_id, tool, server, "execute_tool lookup_order", start + 1_200_000_000,
                  start + 1_300_000_000, {"gen_ai.operation.name": "execute_tool",
                                          "gen_ai.tool.name": "lookup_order"}),
            _chat((trace_id, second, server), start + 1_400_000_000,
                  [*conversation, {"role": "assistant", "content": "", "tool_calls": [call]},
                   {"role": "tool", "content": '{"status": "shipped"}'}],
                  {"role": "assistant", "content": answer}, events_style=events_style,
                  extra_events=verdict),
        ]  # fmt: skip
    resource = {"attributes": _attributes({"service.name": "lumen-support-api"})}
    export = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    return orjson.dumps(export), failed


def _line(label: str, value: str, goal: str = "") -> None:
    print(f"  {label:<58} {value:>16}   {goal}")


def traces_bench() -> None:
    """Print the time to take in a 10,000-span OTLP export (goal < 5 s)."""
    from evalcore.store.engine import dispose_engines, get_engine
    from evalcore.suite import load_suite
    from evalcore.triage.intake import case_index, take_in
    from evalcore.triage.traces import Selection, read_trace_failures

    with tempfile.TemporaryDirectory(prefix="evalcore-traces-bench-") as tmp:
        work = Path(tmp)
        data, marked = build_export()
        export = work / "traces.json"
        export.write_bytes(data)
        suite = load_suite(EVALS)
        case_index(suite)  # built once per dataset version in a serving process
        engine = get_engine(f"sqlite:///{work / 'traces-bench.db'}")
        try:
            started = time.perf_counter()
            batch = read_trace_failures("otlp", export.read_bytes(), Selection())
            parsed = time.perf_counter()
            each: list[float] = []
            created = 0
            for traced in batch.failures:
                before = time.perf_counter()
                result = take_in(
                    engine, suite, traced.failure, source="cli", provenance=traced.provenance
                )
                each.append(time.perf_counter() - before)
                created += result.created
            done = time.perf_counter()
        finally:
            dispose_engines()
    spans = TRACES * SPANS_PER_TRACE
    if len(batch.failures) != marked:
        raise RuntimeError(f"selected {len(batch.failures)} traces, {marked} are marked failed")
    print(
        f"\n[trace intake: OTLP/JSON export of {spans:,} spans in {TRACES:,} traces "
        f"({len(data) / 1e6:.1f} MB), {marked} marked failed]"
    )
    _line("read, select, convert and validate", f"{parsed - started:.2f} s")
    _line(
        f"take_in x {len(each)} ({created} new), median per item",
        f"{done - parsed:.2f} s",
        f"{statistics.median(each) * 1000:.1f} ms per item" if each else "",
    )
    _line("total", f"{done - started:.2f} s", f"goal < {GOAL_S:.0f} s")


if __name__ == "__main__":
    traces_bench()
