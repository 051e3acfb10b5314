"""From the scorecard's `target:` block (plus command-line overrides) to a live target.

`describe_target` is what a run stores about its target: enough to tell two runs' routes
apart, never a key or a header value (header *names* are kept, values may be secrets).
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from evalcore.suite.scorecard import HttpJsonTarget as HttpJsonConfig
from evalcore.suite.scorecard import OpenAIChatTarget as OpenAIChatConfig
from evalcore.suite.scorecard import PythonTarget as PythonConfig
from evalcore.suite.scorecard import TargetConfig
from evalcore.targets.base import ConfigError, Target
from evalcore.targets.http import display_url
from evalcore.targets.http_json import HttpJsonTarget
from evalcore.targets.openai_chat import OpenAIChatTarget
from evalcore.targets.python_callable import PythonTarget

__all__ = ["build_target", "describe_target"]


def build_target(
    config: TargetConfig,
    *,
    concurrency: int,
    timeout_s: float,
    base_url: str | None = None,
    model: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Target:
    """The target for `config`; `base_url` (`--target-url`) and `model` (`--model`) win over it.

    `base_url` replaces `base_url` of an OpenAI-compatible target and `url` of an HTTP JSON
    one; it cannot apply to a Python target (`ConfigError`). `transport` replaces the
    network (tests pass `httpx.MockTransport`).
    """
    if isinstance(config, OpenAIChatConfig):
        return OpenAIChatTarget(
            base_url or config.base_url,
            model or config.model,
            api_key_env=config.api_key_env,
            api_key_block=config.api_key_block,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            headers=config.headers,
            extra_body=config.extra_body,
            concurrency=concurrency,
            timeout_s=timeout_s,
            transport=transport,
        )
    if isinstance(config, HttpJsonConfig):
        return HttpJsonTarget(
            base_url or config.url,
            config.body_template,
            config.answer_path,
            method=config.method,
            prompt_tokens_path=config.prompt_tokens_path,
            completion_tokens_path=config.completion_tokens_path,
            tool_calls_path=config.tool_calls_path,
            model=model or config.model,
            api_key_env=config.api_key_env,
            api_key_block=config.api_key_block,
            headers=config.headers,
            concurrency=concurrency,
            timeout_s=timeout_s,
            transport=transport,
        )
    if isinstance(config, PythonConfig):
        if base_url is not None:
            raise ConfigError("--target-url does not apply to a python target")
        return PythonTarget(
            config.callable,
            model=model or config.model,
            threaded=config.threaded,
            concurrency=concurrency,
        )
    raise ConfigError(f"unknown target kind {getattr(config, 'kind', type(config).__name__)!r}")


def describe_target(
    config: TargetConfig, *, base_url: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """A JSON-safe description of the target for storing with a run (overrides applied)."""
    data = config.model_dump(mode="json")
    if model is not None:
        data["model"] = model
    if isinstance(config, OpenAIChatConfig | HttpJsonConfig):
        configured = data.pop("base_url", None) or data.pop("url")
        data["url"] = display_url(base_url or configured)
        data["headers"] = sorted(data["headers"])  # names only: values may carry secrets
    if isinstance(config, HttpJsonConfig):
        # The template may hold a literal token; its hash still tells versions apart.
        template = data.pop("body_template")
        data["body_template_sha256"] = hashlib.sha256(template.encode()).hexdigest()[:16]
    return data
