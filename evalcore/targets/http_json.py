"""Any HTTP service that takes and returns JSON: a Jinja2 body template and dotted paths.

The template sees `messages`, `context`, `tools`, `last_user` (the last user message's
content), `input` (the whole case input) and `model`. Interpolate values with
`{{ last_user | tojson }}`, never inside quotes: the template is tried at construction on
an input full of quotes and newlines, so `"{{ last_user }}"` is caught before any run.

Paths are dotted, `data.choices.0.text`: an integer segment indexes a list (`-1` is the
last item). A configured path missing from a reply is `BadReply` saying where it stopped.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import httpx
import orjson

if TYPE_CHECKING:
    import jinja2

from evalcore.targets._parse import (
    MISSING,
    Path,
    as_text,
    compile_path,
    explain_missing,
    load_json,
    lookup,
    token_count,
    tool_calls,
)
from evalcore.targets.base import ClientError, ConfigError, Reply, ToolCall, Usage
from evalcore.targets.http import Endpoint, display_url

__all__ = ["HttpJsonTarget", "template_variables"]

# Rendered once at construction: quotes, backslashes and newlines in every kind of value
# make an unescaped interpolation produce invalid JSON here rather than mid-run.
_SAMPLE_INPUT: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": 'You are "helpful".\nBe brief.'},
        {"role": "user", "content": 'Can I return it?\nIt says "final sale" \\ no refunds.'},
    ],
    "context": [{"id": "doc-1", "text": 'Returns "within" 14 days.\nEU only.', "as_of": None}],
    "tools": [
        {
            "name": "lookup_order",
            "description": 'Find an order by "id".',
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        }
    ],
}


def _tojson(value: Any) -> str:
    import jinja2

    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable
    return orjson.dumps(value).decode()


@functools.cache
def _environment() -> jinja2.Environment:
    """Built on first use: a run against another kind of target does not load Jinja2."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    env.filters["tojson"] = _tojson  # JSON text without Jinja's HTML escaping, and faster
    return env


def template_variables(case_input: Mapping[str, Any], model: str | None) -> dict[str, Any]:
    """What a body template can use."""
    messages = case_input.get("messages") or []
    last_user = next(
        (m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), ""
    )
    return {
        "messages": messages,
        "context": case_input.get("context") or [],
        "tools": case_input.get("tools") or [],
        "last_user": last_user,
        "input": case_input,
        "model": model,
    }


class HttpJsonTarget:
    """POST (or PUT) a rendered JSON body to `url`; read the answer at `answer_path`."""

    def __init__(
        self,
        url: str,
        body_template: str,
        answer_path: str,
        *,
        method: Literal["POST", "PUT"] = "POST",
        prompt_tokens_path: str | None = None,
        completion_tokens_path: str | None = None,
        tool_calls_path: str | None = None,
        model: str | None = None,
        api_key_env: str | None = None,
        api_key_block: str | None = None,
        headers: Mapping[str, str] | None = None,
        concurrency: int = 16,
        timeout_s: float = 30.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self.name = (
            f"http_json:{model}@{display_url(url)}" if model else f"http_json@{display_url(url)}"
        )
        self._template = _compile(body_template)
        _render(self._template, template_variables(_SAMPLE_INPUT, model), sample=True)
        self._answer_path = answer_path
        self._answer = compile_path(answer_path, "answer_path")
        self._prompt_tokens = _optional_path(prompt_tokens_path, "prompt_tokens_path")
        self._completion_tokens = _optional_path(completion_tokens_path, "completion_tokens_path")
        self._tool_calls = _optional_path(tool_calls_path, "tool_calls_path")
        self._endpoint = Endpoint(
            url,
            method=method,
            headers=headers,
            api_key_env=api_key_env,
            api_key_block=api_key_block,
            concurrency=concurrency,
            timeout_s=timeout_s,
            client=client,
            transport=transport,
        )
        self.enforces_deadline = self._endpoint.enforces_deadline
        self.secrets = self._endpoint.secrets

    async def __call__(self, case_input: dict[str, Any]) -> Reply:
        body = _render(self._template, template_variables(case_input, self.model))
        return self.parse(await self._endpoint.send(body))

    def parse(self, content: bytes) -> Reply:
        """The reply body as a `Reply`, by the configured paths."""
        data = load_json(content)
        answer = lookup(data, self._answer)
        if answer is MISSING:
            raise explain_missing(data, self._answer, "answer_path")
        calls: tuple[ToolCall, ...] = ()
        if self._tool_calls is not None:
            calls = tool_calls(_required(data, self._tool_calls, "tool_calls_path"), "tool calls")
        usage = Usage(
            prompt_tokens=_tokens(data, self._prompt_tokens, "prompt_tokens_path"),
            completion_tokens=_tokens(data, self._completion_tokens, "completion_tokens_path"),
        )
        return Reply(text=as_text(answer), tool_calls=calls, usage=usage, model=self.model)

    async def aclose(self) -> None:
        await self._endpoint.aclose()

    def __repr__(self) -> str:
        return f"<HttpJsonTarget {self.name}>"


def _compile(source: str) -> jinja2.Template:
    import jinja2

    try:
        return _environment().from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"body_template line {exc.lineno}: {exc.message}") from None


def _render(template: jinja2.Template, variables: dict[str, Any], *, sample: bool = False) -> bytes:
    """The rendered body, checked to be JSON so a broken template is named, not sent."""
    try:
        text = template.render(variables)
    except Exception as exc:
        if sample:
            raise ConfigError(f"body_template cannot render: {exc}") from None
        raise ClientError(f"body_template cannot render this case: {exc}") from None
    body = text.encode()
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        hint = " (interpolate values with `| tojson`, without quotes around them)"
        if sample:
            raise ConfigError(f"body_template does not render valid JSON: {exc}{hint}") from None
        raise ClientError(
            f"body_template rendered invalid JSON for this case: {exc}{hint}"
        ) from None
    return body


def _optional_path(path: str | None, field: str) -> Path | None:
    return compile_path(path, field) if path else None


def _required(data: Any, path: Path, field: str) -> Any:
    value = lookup(data, path)
    if value is MISSING:
        raise explain_missing(data, path, field)
    return value


def _tokens(data: Any, path: Path | None, field: str) -> int:
    if path is None:
        return 0
    return token_count(_required(data, path, field), field)
