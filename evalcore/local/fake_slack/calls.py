"""One Web API call as the fake's methods see it: its parameters, read the way Slack
reads them (flags, numbers and JSON given as strings or as values), the warnings and
detail messages it collects, and `SlackError`, the `ok: false` answer that ends it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["JSON", "Call", "SlackError", "flag", "missing", "text_param"]

JSON = dict[str, Any]


class SlackError(Exception):
    """An `ok: false` answer to a Web API call (HTTP 200, as on Slack), with Slack's
    detail messages, `errors` list or extra fields where it gives them."""

    def __init__(
        self,
        error: str,
        *,
        messages: Iterable[str] = (),
        errors: Iterable[str] | None = None,
        extra: JSON | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)
        self.errors = list(errors) if errors is not None else None
        self.extra = extra or {}


def missing(name: str) -> SlackError:
    """The error of a call without a required argument."""
    return SlackError("invalid_arguments", messages=[f"[ERROR] missing required field: {name}"])


@dataclass
class Call:
    """A Web API call: the method, its merged parameters and what the answer adds."""

    method: str
    params: JSON
    warnings: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def flag(value: Any) -> bool:
    """A boolean parameter: `true`, `1`, `yes` (any case) or a true JSON value."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in ("1", "true", "yes")


def text_param(params: JSON, name: str) -> str | None:
    """A parameter as the text a form would carry, whatever JSON type it came as."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
