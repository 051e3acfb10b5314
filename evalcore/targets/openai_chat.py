"""Any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM, Ollama, a gateway...).

Context documents travel as one leading system message in a fixed format, because the
bundled reference target (and any grader reading transcripts) parses exactly that text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from evalcore.targets._parse import as_text, load_json, token_count, tool_calls
from evalcore.targets.base import BadReply, ConfigError, Reply, ToolCall, Usage
from evalcore.targets.http import Endpoint, display_url, endpoint_url

__all__ = ["OpenAIChatTarget", "build_chat_body", "context_message", "parse_chat_completion"]

_RESERVED = frozenset({"model", "messages"})


def context_message(context: list[dict[str, Any]]) -> str:
    """The system message carrying the case's context documents, one `[id]` line each."""
    lines = ["Context documents:"]
    for doc in context:
        as_of = doc.get("as_of")
        when = f" (as of {as_of})" if as_of is not None else ""
        trust = " (untrusted source)" if doc.get("trusted") is False else ""
        lines.append(f"[{doc['id']}]{when}{trust} {doc['text']}")
    return "\n".join(lines)


def _chat_message(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """A case's message in the chat API's shape: earlier tool calls as `function` calls
    with their arguments as a JSON string."""
    calls = message.get("tool_calls")
    if not calls:
        return message
    return {
        **message,
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": orjson.dumps(call.get("arguments") or {}).decode(),
                },
            }
            for call in calls
        ],
    }


def build_chat_body(
    case_input: Mapping[str, Any], model: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """The request body: context first, the case's messages, its tools, then `params`."""
    messages = [_chat_message(message) for message in case_input["messages"]]
    context = case_input.get("context")
    if context:
        messages = [{"role": "system", "content": context_message(context)}, *messages]
    body: dict[str, Any] = {"model": model, "messages": messages}
    tools = case_input.get("tools")
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool["name"],
                    "description": tool.get("description", ""),
                    "parameters": tool.get("parameters") or {"type": "object"},
                },
            }
            for tool in tools
        ]
    if params:
        body.update(params)
    return body


def parse_chat_completion(content: bytes) -> Reply:
    """A chat completion body as a `Reply`; anything off-protocol is `BadReply`.

    `message.content` may be null (a pure tool call); a null content with a `refusal`
    string reads as that refusal. `usage` is optional in the protocol: absent means 0 tokens.
    """
    data = load_json(content)
    if not isinstance(data, dict):
        raise BadReply(f"reply is a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            # Whole: the engine shortens it once the target's secrets are redacted.
            raise BadReply(f"reply has no choices; error: {error['message']}")
        raise BadReply("reply has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise BadReply("choices[0].message is missing or not an object")
    return Reply(
        text=_content_text(message),
        tool_calls=_tool_calls(message),
        usage=_usage(data.get("usage")),
        model=_optional_str(data, "model"),
        finish_reason=_optional_str(choice, "finish_reason"),
    )


def _content_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if type(content) is str:
        return content
    if content is None:
        refusal = message.get("refusal")
        return refusal if isinstance(refusal, str) else ""
    if isinstance(content, list):  # content parts, as some compatible servers send
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    raise BadReply(f"choices[0].message.content is {type(content).__name__}, not text")


def _tool_calls(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    calls = tool_calls(message.get("tool_calls"), "choices[0].message.tool_calls")
    if not calls and isinstance(message.get("function_call"), dict):  # the legacy form
        calls = tool_calls([message["function_call"]], "choices[0].message.function_call")
    return calls


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    if not isinstance(usage, dict):
        raise BadReply(f"usage is {type(usage).__name__}, not an object")
    return Usage(
        prompt_tokens=token_count(usage.get("prompt_tokens"), "usage.prompt_tokens"),
        completion_tokens=token_count(usage.get("completion_tokens"), "usage.completion_tokens"),
    )


def _optional_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    return as_text(value)


class OpenAIChatTarget:
    """POST `{base_url}/chat/completions` with the case's messages, context and tools.

    `api_key_env` names the variable holding the key, `api_key_block` the Prefect Secret
    block (sent as `Authorization: Bearer`); the key itself is never kept in the name,
    `repr` or any error message.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        api_key_block: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        concurrency: int = 16,
        timeout_s: float = 30.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not model:
            raise ConfigError("openai_chat target needs a model")
        clash = _RESERVED.intersection(extra_body or {})
        if clash:
            raise ConfigError(f"extra_body may not set {', '.join(sorted(clash))}")
        self.model: str | None = model
        self._request_model = model
        self.name = f"openai_chat:{model}@{display_url(base_url)}"
        params: dict[str, Any] = {}
        if temperature is not None:
            params["temperature"] = temperature
        if max_tokens is not None:
            params["max_tokens"] = max_tokens
        params.update(extra_body or {})
        self._params = params
        self._endpoint = Endpoint(
            endpoint_url(base_url, "/chat/completions"),
            headers=headers,
            api_key_env=api_key_env,
            api_key_block=api_key_block,
            concurrency=concurrency,
            timeout_s=timeout_s,
            client=client,
            transport=transport,
            what="base_url",
        )
        self.enforces_deadline = self._endpoint.enforces_deadline
        self.secrets = self._endpoint.secrets

    async def __call__(self, case_input: dict[str, Any]) -> Reply:
        body = build_chat_body(case_input, self._request_model, self._params)
        return parse_chat_completion(await self._endpoint.send(orjson.dumps(body)))

    async def aclose(self) -> None:
        await self._endpoint.aclose()

    def __repr__(self) -> str:
        return f"<OpenAIChatTarget {self.name}>"
