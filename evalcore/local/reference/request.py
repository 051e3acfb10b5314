"""Reading an OpenAI chat request body: messages, offered tools, the context documents
(with their dates and trust) and the `Today is YYYY-MM-DD.` system message.

Errors are `RequestError`s carrying the OpenAI error shape, so clients handle a bad
request to the reference target exactly as they would one to a real endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

__all__ = [
    "CONTEXT_PREFIX",
    "Doc",
    "RequestError",
    "error_body",
    "parse_context",
    "parse_messages",
    "parse_today",
    "parse_tools",
]

CONTEXT_PREFIX = "Context documents:"


class RequestError(Exception):
    """The request cannot be answered as sent; the server turns it into an OpenAI error."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(
    message: str, type: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    """The OpenAI error shape, so clients parse reference errors like real ones."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


@dataclass(frozen=True, slots=True)
class Doc:
    """One context document as the route received it."""

    id: str
    as_of: str | None
    text: str
    trusted: bool = True


def _content_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    raise RequestError(
        f"messages[{index}].content must be a string, a list of parts or null",
        param=f"messages[{index}].content",
    )


def parse_messages(raw: Any) -> list[tuple[str, str]]:
    """`(role, text)` per message; a non-text content part is dropped."""
    if not isinstance(raw, list) or not raw:
        raise RequestError("'messages' must be a non-empty array", param="messages")
    messages: list[tuple[str, str]] = []
    for index, message in enumerate(raw):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise RequestError(
                f"messages[{index}] must be an object with a 'role'", param=f"messages[{index}]"
            )
        messages.append((message["role"], _content_text(message.get("content"), index)))
    return messages


def parse_tools(raw: Any) -> frozenset[str]:
    """The names of the offered function tools."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise RequestError("'tools' must be an array", param="tools")
    names = set()
    for tool in raw:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str):
            raise RequestError("each tool needs function.name", param="tools")
        names.add(name)
    return frozenset(names)


_DOC_HEAD = re.compile(r"^\s*\[([^\]\n]+)\]\s*(.*)$")
_AS_OF = re.compile(r"^\(as of (\d{4}-\d{2}-\d{2})\)\s*")
_UNTRUSTED = re.compile(r"^\(untrusted source\)\s*", re.IGNORECASE)


def _doc_head(line: str) -> tuple[str, str | None, bool, str] | None:
    """`[id] (as of D) (untrusted source) text` split up; the two marks in either order."""
    match = _DOC_HEAD.match(line)
    if match is None:
        return None
    rest = match.group(2)
    as_of: str | None = None
    trusted = True
    while True:
        dated = _AS_OF.match(rest) if as_of is None else None
        if dated is not None:
            as_of, rest = dated.group(1), rest[dated.end() :]
            continue
        untrusted = _UNTRUSTED.match(rest) if trusted else None
        if untrusted is not None:
            trusted, rest = False, rest[untrusted.end() :]
            continue
        return match.group(1).strip(), as_of, trusted, rest.strip()


def parse_context(messages: Sequence[tuple[str, str]]) -> list[Doc]:
    """Documents from every system message that starts with `CONTEXT_PREFIX`."""
    docs: list[Doc] = []
    for role, text in messages:
        if role != "system" or not text.startswith(CONTEXT_PREFIX):
            continue
        head: tuple[str, str | None, bool] | None = None
        lines: list[str] = []
        for line in text[len(CONTEXT_PREFIX) :].splitlines():
            parsed = _doc_head(line)
            if parsed is not None:
                if head is not None:
                    docs.append(Doc(head[0], head[1], " ".join(lines).strip(), head[2]))
                head, lines = parsed[:3], [parsed[3]]
            elif head is not None and line.strip():
                lines.append(line.strip())
        if head is not None:
            docs.append(Doc(head[0], head[1], " ".join(lines).strip(), head[2]))
    return docs


_TODAY = re.compile(r"^\s*today is (\d{4}-\d{2}-\d{2})\b", re.IGNORECASE)


def parse_today(messages: Sequence[tuple[str, str]]) -> date | None:
    """The date a `Today is YYYY-MM-DD.` system message sets; without one the assistant
    cannot tell how old its records are and never calls them stale."""
    for role, text in messages:
        if role != "system":
            continue
        match = _TODAY.match(text)
        if match is not None:
            try:
                return date.fromisoformat(match.group(1))
            except ValueError:
                return None
    return None
