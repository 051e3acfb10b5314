"""Answering from a tool result: summarised when it is sound, an apology when it is not.

A result is broken when it is not valid JSON (cut off in transit), is an error payload,
holds a null value, or carries an id that is not a string: in each case some fact the
customer asked about is unknown, and an assistant that summarises it anyway invents or
misreports it. `regressed-tools` does exactly that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from evalcore.local.reference.replies import TOOL_RESULT_APOLOGY

__all__ = ["answer", "broken_because", "summarise", "summarise_as_if_fine"]

_ERROR_KEYS = frozenset({"error", "errors", "fault", "exception"})
_FAILED = frozenset({"error", "failed", "failure"})
_PAIR = re.compile(r'"([A-Za-z_][\w-]*)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false)')
_UNSHOWN_KEYS = frozenset({"message", "detail", "details", "error", "code", "trace"})


def _is_id(key: str) -> bool:
    lowered = key.lower()
    return lowered == "id" or lowered.endswith(("_id", "id_", "_number")) or key.endswith("Id")


def _first_flaw(value: Any, path: str) -> str | None:
    if value is None:
        return f"{path or 'the result'} is null"
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if item is None:
                return f"{where} is null"
            if _is_id(str(key)) and not isinstance(item, str):
                return f"{where} is not a string"
            flaw = _first_flaw(item, where)
            if flaw is not None:
                return flaw
    elif isinstance(value, list):
        for index, item in enumerate(value):
            flaw = _first_flaw(item, f"{path}[{index}]")
            if flaw is not None:
                return flaw
    return None


def broken_because(content: str) -> str | None:
    """Why the tool result cannot be trusted, or None when it can."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return "not valid JSON"
    if isinstance(data, Mapping):
        if _ERROR_KEYS & {str(key).lower() for key in data}:
            return "an error payload"
        status = data.get("status")
        if isinstance(status, str) and status.lower() in _FAILED:
            return "an error payload"
        if data.get("ok") is False or data.get("success") is False:
            return "an error payload"
    return _first_flaw(data, "")


def summarise(content: str) -> str:
    """The result's fields read back to the customer."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, Mapping) and data:
        facts = "; ".join(f"{str(k).replace('_', ' ')}: {v}" for k, v in data.items())
        return f"Here's what I found: {facts}. Is there anything else I can help with?"
    return f"Here's what I found: {content.strip()[:500]}"


def summarise_as_if_fine(content: str) -> str:
    """What a careless assistant says about a broken result: whatever fields it can read,
    errors and gaps ignored, presented as the answer."""
    pairs = [
        (key, value.strip('"'))
        for key, value in _PAIR.findall(content)
        if key.lower() not in _UNSHOWN_KEYS
    ]
    if not pairs:
        return (
            "Here's what I found: everything is in order. Is there anything else I can help with?"
        )
    facts = "; ".join(f"{key.replace('_', ' ')}: {value}" for key, value in pairs)
    return f"Here's what I found: {facts}. Is there anything else I can help with?"


def answer(content: str, version: str) -> str:
    """The reply to a conversation whose last message is this tool result."""
    if broken_because(content) is None:
        return summarise(content)
    if version == "regressed-tools":
        return summarise_as_if_fine(content)
    return TOOL_RESULT_APOLOGY
