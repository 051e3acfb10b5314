"""Chat messages as traces record them, turned into the intake's conversation and output.

Traces carry messages in several shapes: OpenTelemetry's `{role, parts: [{type: text,
content} | {type: tool_call, name, arguments} | {type: tool_call_response, result}]}`,
the chat API's `{role, content, tool_calls: [{function: {name, arguments}}]}` (content a
string or a list of `{type: text, text}` parts), Anthropic's `tool_use`/`tool_result`
blocks. All become `Turn`s (a role and readable text); a tool call reads
`tool_call lookup_order({"order_id": "LH-482913"})`, so a reviewer sees what the model
did without the raw JSON.

The intake keeps user, assistant and system turns only: a tool's answer is appended to
the assistant turn that called it (`tool_result: ...`), so it is kept but never taken for
something the user said (user turns are what de-duplication compares). Texts over the
intake's limit are cut with a marker, and a conversation over 50 turns keeps its first
system turn and the latest ones; both are noted in the item's provenance.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from evalcore.triage.intake import MAX_MESSAGES, MAX_TEXT

_ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}
_TEXT_PARTS = {"text", "input_text", "output_text"}
_TOOL_CALL_PARTS = {"tool_call", "function_call", "tool_use"}
_TOOL_RESULT_PARTS = {"tool_call_response", "tool_result", "function_call_output"}
_SILENT_PARTS = {"reasoning", "thinking", "redacted_thinking"}


@dataclass(frozen=True)
class Turn:
    """One message: `role` is system, user, assistant or tool."""

    role: str
    text: str


@dataclass(frozen=True)
class Conversation:
    """The turns the intake keeps, as (role, content), and what was changed to fit."""

    messages: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


def role_of(raw: object) -> str | None:
    """A known role, whatever the spelling (`human`, `developer`, `model`...), else None."""
    return _ROLES.get(raw.strip().lower()) if isinstance(raw, str) else None


def arguments_text(arguments: object) -> str:
    """Tool-call arguments as compact JSON (a JSON string is decoded first)."""
    if arguments is None:
        return ""
    value = arguments
    if isinstance(arguments, str):
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return arguments
    return json.dumps(value, ensure_ascii=False)


def tool_call_text(name: object, arguments: object) -> str:
    return (
        f"tool_call {name if isinstance(name, str) and name else '?'}({arguments_text(arguments)})"
    )


def tool_calls_text(calls: object) -> list[str]:
    """The chat API's `tool_calls` (`{function: {name, arguments}}` or flat `{name,
    arguments}`), each as a readable line."""
    listed: object = calls
    if isinstance(calls, str):
        try:
            listed = orjson.loads(calls)
        except orjson.JSONDecodeError:
            return [calls] if calls.strip() else []
    if isinstance(listed, dict):
        listed = [listed]
    if not isinstance(listed, list):
        return []
    lines = []
    for call in listed:
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        source = function if isinstance(function, dict) else call
        arguments = source.get("arguments", source.get("input", source.get("args")))
        lines.append(tool_call_text(source.get("name"), arguments))
    return lines


def content_text(content: object) -> str:
    """Message content (a string, a part, or a list of parts) as text."""
    return "\n".join(text for _, text in _parts(content) if text)


def message_turn(message: object) -> Turn | None:
    """A message in any of the shapes above, or None when it has no known role."""
    if isinstance(message, str):
        return Turn("user", message)
    if not isinstance(message, dict):
        return None
    role = role_of(message.get("role"))
    if role is None:
        return None
    body = message["parts"] if "parts" in message else message.get("content")
    parts = _parts(body)
    if role == "user" and parts and all(kind == "tool_result" for kind, _ in parts):
        role = "tool"  # Anthropic sends tool results in a user message
    texts = [
        f"tool_result: {text}" if kind == "tool_result" and role != "tool" else text
        for kind, text in parts
        if text
    ]
    texts += tool_calls_text(message.get("tool_calls"))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        texts.append(tool_call_text(legacy.get("name"), legacy.get("arguments")))
    return Turn(role, "\n".join(texts))


def conversation(turns: Iterable[Turn]) -> Conversation:
    """The turns as the intake takes them: tool answers folded into the assistant turn
    that called them, empty turns left out, long texts cut, at most 50 turns."""
    messages: list[list[str]] = []
    notes: list[str] = []
    unanswered = 0
    for turn in turns:
        if turn.role == "tool":
            if messages and messages[-1][0] == "assistant":
                messages[-1][1] += f"\ntool_result: {turn.text}"
            else:
                unanswered += 1
            continue
        if turn.text.strip():
            messages.append([turn.role, turn.text])
    if unanswered:
        notes.append(f"left out {unanswered} tool message(s) with no assistant turn before")
    cut = 0
    for message in messages:
        if len(message[1]) > MAX_TEXT:
            message[1] = cut_text(message[1], MAX_TEXT)
            cut += 1
    if cut:
        notes.append(f"cut {cut} message(s) to {MAX_TEXT:,} characters")
    if len(messages) > MAX_MESSAGES:
        head = messages[:1] if messages[0][0] == "system" else []
        kept = head + messages[len(messages) - (MAX_MESSAGES - len(head)) :]
        notes.append(f"kept the last {len(kept) - len(head)} of {len(messages)} messages")
        messages = kept
    return Conversation([(role, text) for role, text in messages], notes)


def cut_text(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    marker = f" … [{len(text) - limit:,}+ characters cut]"
    return text[: limit - len(marker)] + marker


def _parts(content: object) -> list[tuple[str, str]]:
    """(kind, text) per part; kind is text, tool_call, tool_result or other."""
    if content is None:
        return []
    if isinstance(content, str):
        return [("text", content)]
    if isinstance(content, list):
        return [part for item in content for part in _parts(item)]
    if not isinstance(content, dict):
        return [("text", json.dumps(content))]
    return [_part(content)]


def _part(part: dict[str, Any]) -> tuple[str, str]:
    kind = part.get("type")
    if kind in _TOOL_CALL_PARTS:
        arguments = part.get("arguments", part.get("input"))
        return "tool_call", tool_call_text(part.get("name"), arguments)
    if kind in _TOOL_RESULT_PARTS:
        result = part.get("result", part.get("content", part.get("output")))
        text = result if isinstance(result, str) else content_text(result)
        return "tool_result", text if text else json.dumps(result)
    if kind in _SILENT_PARTS:
        return "other", ""
    if kind in _TEXT_PARTS or kind is None:
        body = part.get("content", part.get("text"))
        if isinstance(body, str):
            return "text", body
        if kind is None:
            return "text", json.dumps(part, ensure_ascii=False)
        return "text", content_text(body)
    return "other", f"[{kind}]"
