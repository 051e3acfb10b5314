"""Reading replies: JSON bodies, dotted paths, tool calls and token counts.

Every function here raises `BadReply` with a reason short enough to show in a report row,
because a reply the harness cannot read is an error of the target, not a quality failure.
"""

from __future__ import annotations

from typing import Any

import orjson

from evalcore.targets.base import BadReply, ConfigError, ToolCall

Path = tuple[tuple[str, int | None], ...]

MISSING: Any = object()


def load_json(content: bytes) -> Any:
    """The parsed body, or `BadReply` quoting the start of what came instead."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        snippet = " ".join(content[:80].decode("utf-8", "replace").split())
        raise BadReply(f"reply is not JSON: {snippet!r}" if snippet else "reply is empty") from None


def compile_path(path: str, field: str) -> Path:
    """Parse `a.b.0.c`: keys separated by dots; an integer segment also indexes a list.

    A segment like `0` or `-1` is a list index when the value there is a list and a key
    when it is an object, so `{"0": ...}` still works. Keys that contain dots cannot be
    addressed.
    """
    segments = path.split(".") if path else []
    if not segments or any(not s for s in segments):
        raise ConfigError(f"{field} {path!r} is not a dotted path like 'data.choices.0.text'")
    compiled: list[tuple[str, int | None]] = []
    for segment in segments:
        try:
            index: int | None = int(segment)
        except ValueError:
            index = None
        compiled.append((segment, index))
    return tuple(compiled)


def lookup(data: Any, path: Path) -> Any:
    """The value at `path`, or `MISSING`."""
    current = data
    for key, index in path:
        if type(current) is dict:
            current = current.get(key, MISSING)
            if current is MISSING:
                return MISSING
        elif type(current) is list and index is not None:
            try:
                current = current[index]
            except IndexError:
                return MISSING
        else:
            return MISSING
    return current


def explain_missing(data: Any, path: Path, field: str) -> BadReply:
    """Say where `path` stopped matching the reply, so a wrong path is fixed in one go."""
    current = data
    walked: list[str] = []
    for key, index in path:
        where = ".".join(walked) or "the reply"
        if isinstance(current, dict):
            if key not in current:
                keys = ", ".join(list(current)[:10]) or "none"
                return BadReply(f"{field} {_dotted(path)!r}: no {key!r} in {where} (keys: {keys})")
            current = current[key]
        elif isinstance(current, list) and index is not None:
            if not -len(current) <= index < len(current):
                return BadReply(
                    f"{field} {_dotted(path)!r}: index {index} out of range in {where} "
                    f"(length {len(current)})"
                )
            current = current[index]
        else:
            kind = type(current).__name__ if current is not None else "null"
            return BadReply(f"{field} {_dotted(path)!r}: {where} is {kind}, not an object or list")
        walked.append(key)
    return BadReply(f"{field} {_dotted(path)!r} not found")


def _dotted(path: Path) -> str:
    return ".".join(key for key, _ in path)


def as_text(value: Any) -> str:
    """A reply's answer as text: strings as they are, null as "", anything else as JSON."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()


def token_count(value: Any, where: str) -> int:
    """A token count: a non-negative integer, or null for "not reported" (0)."""
    if value is None:
        return 0
    if type(value) is int and value >= 0:
        return value
    if type(value) is float and value.is_integer() and value >= 0:
        return int(value)
    raise BadReply(f"{where} is {value!r}, not a token count")


def tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    """Tool calls in OpenAI form (`{"id", "function": {"name", "arguments"}}`) or flat
    (`{"name", "arguments"}`); arguments given as an object are serialised to JSON text."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadReply(f"{where} is {type(value).__name__}, not a list")
    calls = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadReply(f"{where}[{i}] is {type(item).__name__}, not an object")
        function = item.get("function")
        spec = function if isinstance(function, dict) else item
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise BadReply(f"{where}[{i}] has no function name")
        arguments = spec.get("arguments", MISSING)
        if arguments is MISSING:
            arguments = spec.get("input")
        call_id = item.get("id")
        calls.append(
            ToolCall(
                name=name,
                arguments=_arguments_text(arguments),
                id=call_id if isinstance(call_id, str) else None,
            )
        )
    return tuple(calls)


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return "{}"
    return orjson.dumps(arguments).decode()
