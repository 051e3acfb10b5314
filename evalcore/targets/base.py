"""What every target answers, and the errors it may raise instead.

A target turns a case input into a `Reply`. Anything that goes wrong on the way is a
`TargetError` subclass with a stable `error_class`: the run engine records it as an error,
never as a quality failure, and retries the classes marked `retryable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call in the reply; `arguments` is the raw JSON text, parsed by the scorer."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    finish_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored form of the output (no request data, no secrets)."""
        out: dict[str, Any] = {"text": self.text}
        if self.tool_calls:
            out["tool_calls"] = [
                {"name": c.name, "arguments": c.arguments, "id": c.id} for c in self.tool_calls
            ]
        if self.model:
            out["model"] = self.model
        if self.finish_reason:
            out["finish_reason"] = self.finish_reason
        return out


class TargetError(Exception):
    """Base class: the target did not give a usable reply."""

    error_class = "target_error"
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TargetTimeout(TargetError):
    error_class = "timeout"
    retryable = True


class TargetConnectionError(TargetError):
    error_class = "connection"
    retryable = True


class RateLimited(TargetError):
    """429: too many requests; `retry_after` holds the server's wish when it gave one."""

    error_class = "rate_limited"
    retryable = True


class ServerError(TargetError):
    """5xx from the target."""

    error_class = "server_error"
    retryable = True


class ClientError(TargetError):
    """4xx other than 429: the request itself is wrong (bad key, bad model); not retried."""

    error_class = "client_error"


class BadReply(TargetError):
    """The target answered 2xx but the body is not what its protocol promises."""

    error_class = "bad_reply"


class CallableError(TargetError):
    """A Python target's function raised; `exc_type` names the exception it raised.

    Not retried: a bug in the function under test fails the same way every time.
    """

    error_class = "callable_error"

    def __init__(self, message: str, *, exc_type: str) -> None:
        super().__init__(message)
        self.exc_type = exc_type


class ConfigError(Exception):
    """The target cannot be built from its configuration (missing env var, bad callable)."""


@runtime_checkable
class Target(Protocol):
    """One model route under test. `name` identifies it in runs; `model` prices its tokens."""

    name: str
    model: str | None
    # A target may set `enforces_deadline = True` when each call is already bounded by its
    # own timeout (saves the engine a second timer per call).
    # A target may set `secrets` to the credentials it sends (keys, header values, URL
    # passwords): the engine redacts them from every error message it stores.

    async def __call__(self, case_input: dict[str, Any]) -> Reply: ...

    async def aclose(self) -> None: ...
