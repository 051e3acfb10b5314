"""A Python function as the target: `module:function`, sync or async, in-process.

The sync path is a plain call, so a cheap function runs at thousands of cases per second;
`threaded=True` moves a blocking sync function to worker threads instead, one per
concurrent call (asyncio's shared default pool has only a handful on a small machine). Like
`python -m`, the current directory is importable, so `my_app.evals:answer` works from the
project root.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from evalcore.targets._parse import as_text, token_count, tool_calls
from evalcore.targets.base import (
    BadReply,
    CallableError,
    ConfigError,
    Reply,
    TargetError,
    ToolCall,
    Usage,
)

__all__ = ["PythonTarget", "load_callable", "to_reply"]

_REPLY_KEYS = frozenset({"text", "tool_calls", "usage", "model", "finish_reason"})


def load_callable(spec: str) -> Callable[..., Any]:
    """Import `module:function`; a `ConfigError` names the spec when that fails."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"python target {spec!r} must look like 'package.module:function'")
    try:
        module = _import(module_name)
    except ImportError as exc:
        raise ConfigError(f"python target {spec!r}: cannot import {module_name!r}: {exc}") from None
    except Exception as exc:
        raise ConfigError(
            f"python target {spec!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, attr, None)
    if function is None:
        raise ConfigError(f"python target {spec!r}: {module_name!r} has no {attr!r}")
    if not callable(function):
        raise ConfigError(f"python target {spec!r}: {attr!r} is not callable")
    return function  # type: ignore[no-any-return]


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        top = module_name.partition(".")[0]
        if exc.name != top or cwd in sys.path or "" in sys.path:
            raise
        sys.path.append(cwd)
        return importlib.import_module(module_name)


def to_reply(result: Any) -> Reply:
    """A function's return as a `Reply`: a `str`, a `Reply`, or a dict with `text`,
    `tool_calls` (`arguments` as JSON text or an object), `usage`, `model`, `finish_reason`.
    Unknown dict keys are `BadReply`, so a typo like `txt` is not read as an empty answer."""
    if isinstance(result, str):
        return Reply(text=result)
    if isinstance(result, Reply):
        return result
    if isinstance(result, dict):
        return _dict_reply(result)
    raise BadReply(f"python target returned {type(result).__name__}; expected str, Reply or dict")


def _dict_reply(result: dict[str, Any]) -> Reply:
    unknown = set(result) - _REPLY_KEYS
    if unknown:
        raise BadReply(
            f"python target returned unknown keys {sorted(map(str, unknown))}; "
            f"expected {sorted(_REPLY_KEYS)}"
        )
    text = result.get("text")
    if text is not None and not isinstance(text, str):
        raise BadReply(f"python target's text is {type(text).__name__}, not str")
    calls: tuple[ToolCall, ...] = tool_calls(result.get("tool_calls"), "tool_calls")
    usage = result.get("usage")
    if usage is None:
        parsed_usage = Usage()
    elif isinstance(usage, Usage):
        parsed_usage = usage
    elif isinstance(usage, dict):
        parsed_usage = Usage(
            prompt_tokens=token_count(usage.get("prompt_tokens"), "usage.prompt_tokens"),
            completion_tokens=token_count(
                usage.get("completion_tokens"), "usage.completion_tokens"
            ),
        )
    else:
        raise BadReply(f"python target's usage is {type(usage).__name__}, not a dict")
    model, finish = result.get("model"), result.get("finish_reason")
    return Reply(
        text=text or "",
        tool_calls=calls,
        usage=parsed_usage,
        model=None if model is None else as_text(model),
        finish_reason=None if finish is None else as_text(finish),
    )


def _callable_error(exc: Exception) -> CallableError:
    """What the function raised and where, in one line for the report."""
    text = str(exc).strip()
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if len(frames) > 1:  # frame 0 is our own call site
        last = frames[-1]
        message += f" (at {os.path.basename(last.filename)}:{last.lineno} in {last.name})"
    return CallableError(message, exc_type=type(exc).__name__)


class PythonTarget:
    """Calls `function(case_input)`; an exception it raises becomes `CallableError`.

    A `TargetError` the function raises itself (e.g. `RateLimited` from a wrapped client)
    passes through unchanged, so it is retried like any other target's.
    """

    def __init__(
        self,
        function: str | Callable[..., Any],
        *,
        model: str | None = None,
        threaded: bool = False,
        concurrency: int = 16,
    ) -> None:
        if isinstance(function, str):
            spec = function
            self._function = load_callable(function)
        else:
            self._function = function
            module = getattr(function, "__module__", None) or "?"
            spec = f"{module}:{getattr(function, '__qualname__', type(function).__name__)}"
        self.name = f"python:{spec}"
        self.model = model
        self._is_async = inspect.iscoroutinefunction(self._function) or (
            inspect.iscoroutinefunction(type(self._function).__call__)  # an async __call__
        )
        self._executor: ThreadPoolExecutor | None = None
        if threaded and not self._is_async:  # threads start lazily, as calls need them
            self._executor = ThreadPoolExecutor(
                max_workers=max(1, concurrency), thread_name_prefix="evalcore-target"
            )

    async def __call__(self, case_input: dict[str, Any]) -> Reply:
        try:
            if self._is_async:
                result = await self._function(case_input)
            elif self._executor is not None:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._executor, self._function, case_input)
            else:
                result = self._function(case_input)
            if type(result) is str:
                return Reply(text=result)
            if inspect.isawaitable(result):
                result = await result
        except TargetError:
            raise
        except Exception as exc:
            raise _callable_error(exc) from exc
        return to_reply(result)

    async def aclose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"<PythonTarget {self.name}>"
