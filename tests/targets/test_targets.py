"""Targets: request shape, reply parsing, error classes, and a real loopback server."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
import uvicorn

from evalcore.suite.scorecard import HttpJsonTarget as HttpJsonConfig
from evalcore.suite.scorecard import OpenAIChatTarget as OpenAIChatConfig
from evalcore.suite.scorecard import PythonTarget as PythonConfig
from evalcore.targets import (
    BadReply,
    CallableError,
    ClientError,
    ConfigError,
    HttpJsonTarget,
    OpenAIChatTarget,
    PythonTarget,
    RateLimited,
    Reply,
    ServerError,
    Target,
    TargetConnectionError,
    TargetError,
    TargetTimeout,
    ToolCall,
    Usage,
    build_target,
    classify_http_error,
    describe_target,
    make_client,
)
from evalcore.targets.http import display_url, parse_retry_after

SECRET = "sk-test-0123456789abcdef"

CASE: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": "I bought it 10 days ago in Berlin, can I return it?"}
    ],
    "context": [
        {
            "id": "kb-112",
            "text": "EU customers may withdraw within 14 days.",
            "as_of": "2026-01-01",
        },
        {"id": "kb-7", "text": "Sale items are final.", "as_of": None},
    ],
    "tools": [
        {
            "name": "create_refund",
            "description": "Open a refund",
            "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
        }
    ],
}

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1",
    "model": "ref-model-2026",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Yes, within 14 days."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
}

Handler = Callable[[httpx.Request], httpx.Response]


def mock(handler: Handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


def chat(handler: Handler, **kwargs: Any) -> OpenAIChatTarget:
    return OpenAIChatTarget("http://model.test/v1/", "ref-model", transport=mock(handler), **kwargs)


# --- OpenAI-compatible chat ------------------------------------------------------------


async def test_chat_request_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVAL_KEY", SECRET)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=COMPLETION)

    target = chat(
        handler,
        api_key_env="EVAL_KEY",
        temperature=0.0,
        max_tokens=256,
        headers={"X-Route": "support"},
        extra_body={"seed": 7},
    )
    assert isinstance(target, Target)
    await target(CASE)
    await target.aclose()

    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "http://model.test/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-route"] == "support"
    body = json.loads(request.content)
    assert body["model"] == "ref-model"
    assert body["messages"] == [
        {
            "role": "system",
            "content": "Context documents:\n"
            "[kb-112] (as of 2026-01-01) EU customers may withdraw within 14 days.\n"
            "[kb-7] Sale items are final.",
        },
        CASE["messages"][0],
    ]
    assert body["tools"] == [{"type": "function", "function": CASE["tools"][0]}]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.0, 256, 7)


async def test_chat_without_context_or_tools_sends_only_messages() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=COMPLETION)

    target = chat(handler)
    await target({"messages": [{"role": "user", "content": "hi"}], "context": [], "tools": []})
    assert seen == [{"model": "ref-model", "messages": [{"role": "user", "content": "hi"}]}]
    assert "authorization" not in {k.lower() for k in seen[0]}


async def test_chat_reply_parsing() -> None:
    reply = await chat(json_reply(COMPLETION))(CASE)
    assert reply == Reply(
        text="Yes, within 14 days.",
        usage=Usage(prompt_tokens=42, completion_tokens=7),
        model="ref-model-2026",
        finish_reason="stop",
    )


async def test_chat_tool_calls_with_null_content() -> None:
    body = {
        "model": "m",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "create_refund", "arguments": '{"order": "A1"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    reply = await chat(json_reply(body))(CASE)
    assert reply.text == ""
    assert reply.tool_calls == (ToolCall("create_refund", '{"order": "A1"}', "call_1"),)
    assert reply.usage == Usage()  # usage is optional in the protocol
    assert reply.finish_reason == "tool_calls"
    assert reply.to_json()["tool_calls"][0]["name"] == "create_refund"


async def test_rate_limited_retry_after_seconds() -> None:
    target = chat(json_reply({"error": {"message": "slow down"}}, 429, {"Retry-After": "7"}))
    with pytest.raises(RateLimited) as info:
        await target(CASE)
    assert info.value.retry_after == 7.0
    assert info.value.retryable and info.value.error_class == "rate_limited"
    assert "slow down" in str(info.value)


async def test_rate_limited_retry_after_http_date() -> None:
    when = email.utils.format_datetime(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True
    )
    target = chat(json_reply({}, 429, {"Retry-After": when}))
    with pytest.raises(RateLimited) as info:
        await target(CASE)
    assert info.value.retry_after is not None and 25 < info.value.retry_after <= 30


def test_retry_after_variants() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert parse_retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


async def test_server_errors() -> None:
    with pytest.raises(ServerError) as info:
        await chat(json_reply({"error": {"message": "boom"}}, 500))(CASE)
    assert info.value.retry_after is None and "HTTP 500" in str(info.value)
    with pytest.raises(ServerError) as info:
        await chat(json_reply({}, 503, {"Retry-After": "3"}))(CASE)
    assert info.value.retry_after == 3.0


async def test_unauthorized_quotes_the_api_but_never_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVAL_KEY", SECRET)

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(
            401, json={"error": {"message": f"Incorrect API key provided: {key}"}}
        )

    target = chat(handler, api_key_env="EVAL_KEY")
    with pytest.raises(ClientError) as info:
        await target(CASE)
    assert not info.value.retryable
    assert "HTTP 401" in str(info.value) and "Incorrect API key provided" in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(target) and SECRET not in target.name


async def test_malformed_replies_are_bad_reply() -> None:
    def text(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>gateway</html>")

    with pytest.raises(BadReply, match="not JSON"):
        await chat(text)(CASE)
    with pytest.raises(BadReply, match="no choices"):
        await chat(json_reply({"id": "x"}))(CASE)
    with pytest.raises(BadReply, match="content"):
        await chat(json_reply({"choices": [{"message": {"content": 5}}]}))(CASE)
    with pytest.raises(BadReply, match="prompt_tokens"):
        await chat(json_reply({**COMPLETION, "usage": {"prompt_tokens": "many"}}))(CASE)


def test_missing_or_empty_key_variable_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        OpenAIChatTarget("http://model.test/v1", "m", api_key_env="NO_SUCH_KEY_VAR")
    monkeypatch.setenv("NO_SUCH_KEY_VAR", " ")
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        OpenAIChatTarget("http://model.test/v1", "m", api_key_env="NO_SUCH_KEY_VAR")
    with pytest.raises(ConfigError, match="HEADER_VAR"):
        OpenAIChatTarget("http://model.test/v1", "m", headers={"X-Key": "${HEADER_VAR}"})
    with pytest.raises(ConfigError, match="absolute"):
        OpenAIChatTarget("model.test/v1", "m")


def test_display_url_hides_credentials() -> None:
    assert (
        display_url("https://user:pw@api.test/v1?key=abc&v=2")
        == "https://***@api.test/v1?key=***&v=2"
    )


# --- HTTP JSON -------------------------------------------------------------------------

TEMPLATE = """{
  "model": {{ model | tojson }},
  "question": {{ last_user | tojson }},
  "history": {{ messages | tojson }},
  "docs": [{% for d in context %}{{ d.text | tojson }}{% if not loop.last %}, {% endif %}{% endfor %}],
  "n_tools": {{ tools | length }}
}"""


async def test_http_json_template_and_paths() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "data": {"choices": [{"text": "within 14 days"}]},
                "meta": {"tokens": {"in": 12, "out": 3}},
                "calls": [{"name": "create_refund", "arguments": {"order": "A1"}}],
            },
        )

    target = HttpJsonTarget(
        "http://svc.test/answer",
        TEMPLATE,
        "data.choices.0.text",
        prompt_tokens_path="meta.tokens.in",
        completion_tokens_path="meta.tokens.out",
        tool_calls_path="calls",
        model="svc-1",
        method="PUT",
        transport=mock(handler),
    )
    reply = await target(CASE)
    assert seen[0] == {
        "model": "svc-1",
        "question": CASE["messages"][0]["content"],
        "history": CASE["messages"],
        "docs": ["EU customers may withdraw within 14 days.", "Sale items are final."],
        "n_tools": 1,
    }
    assert reply.text == "within 14 days"
    assert reply.usage == Usage(12, 3)
    assert reply.tool_calls == (ToolCall("create_refund", '{"order":"A1"}'),)
    assert target.name == "http_json:svc-1@http://svc.test/answer"


async def test_http_json_missing_path_names_it() -> None:
    target = HttpJsonTarget(
        "http://svc.test/answer",
        '{"q": {{ last_user | tojson }}}',
        "data.choices.0.text",
        transport=mock(json_reply({"data": {"result": "x"}})),
    )
    with pytest.raises(BadReply) as info:
        await target(CASE)
    assert "data.choices.0.text" in str(info.value) and "result" in str(info.value)
    second = HttpJsonTarget("http://svc.test", "{}", "data.choices.1.text")
    with pytest.raises(BadReply, match="index 1 out of range"):
        second.parse(b'{"data": {"choices": [{"text": "a"}]}}')
    await second.aclose()


def test_http_json_template_errors_found_at_construction() -> None:
    with pytest.raises(ConfigError, match="valid JSON"):
        HttpJsonTarget("http://svc.test", '{"q": "{{ last_user }}"}', "a")
    with pytest.raises(ConfigError, match="line 1"):
        HttpJsonTarget("http://svc.test", '{"q": {{ last_user | tojson }', "a")
    with pytest.raises(ConfigError, match="last_usr"):
        HttpJsonTarget("http://svc.test", '{"q": {{ last_usr | tojson }}}', "a")
    with pytest.raises(ConfigError, match="answer_path"):
        HttpJsonTarget("http://svc.test", "{}", "a..b")


# --- Python callables ------------------------------------------------------------------


def sync_answer(case_input: dict[str, Any]) -> str:
    return "echo: " + str(case_input["messages"][-1]["content"])


async def async_answer(case_input: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {
        "text": "refund opened",
        "tool_calls": [{"name": "create_refund", "arguments": {"order": "A1"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }


ALL_EIGHT = threading.Barrier(8, timeout=5)


def blocking_answer(case_input: dict[str, Any]) -> Reply:
    ALL_EIGHT.wait()  # returns only once eight calls block side by side
    return Reply(text=threading.current_thread().name)


def raising_answer(case_input: dict[str, Any]) -> str:
    raise KeyError("order_id")


async def test_python_sync_async_threaded() -> None:
    reply = await PythonTarget(sync_answer)(CASE)
    assert reply.text.startswith("echo: I bought it")

    reply = await PythonTarget(async_answer, model="m")(CASE)
    assert reply.tool_calls == (ToolCall("create_refund", '{"order":"A1"}'),)
    assert reply.usage == Usage(5, 2)

    threaded = PythonTarget(blocking_answer, threaded=True, concurrency=8)
    replies = await asyncio.gather(*(threaded(CASE) for _ in range(8)))
    assert all(r.text.startswith("evalcore-target") for r in replies)
    await threaded.aclose()


async def test_python_spec_import() -> None:
    target = PythonTarget("json:dumps")
    assert target.name == "python:json:dumps"
    assert json.loads((await target(CASE)).text) == CASE
    with pytest.raises(ConfigError, match="json:nope"):
        PythonTarget("json:nope")
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        PythonTarget("no_such_module_xyz:answer")
    with pytest.raises(ConfigError, match="not callable"):
        PythonTarget("json:__doc__")


async def test_python_bad_returns_and_raising() -> None:
    with pytest.raises(BadReply, match="int"):
        await PythonTarget(lambda _: 42)(CASE)
    with pytest.raises(BadReply, match="txt"):
        await PythonTarget(lambda _: {"txt": "typo"})(CASE)
    with pytest.raises(CallableError) as info:
        await PythonTarget(raising_answer)(CASE)
    assert info.value.error_class == "callable_error" and not info.value.retryable
    assert info.value.exc_type == "KeyError" and "order_id" in str(info.value)
    assert "test_targets.py" in str(info.value)

    def rate_limited(_: dict[str, Any]) -> str:
        raise RateLimited("upstream busy", retry_after=2)

    with pytest.raises(RateLimited):  # a TargetError from the function keeps its class
        await PythonTarget(rate_limited)(CASE)


# --- factory ---------------------------------------------------------------------------


async def test_build_and_describe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVAL_KEY", SECRET)
    config = OpenAIChatConfig(
        base_url="http://scorecard.test/v1",
        model="from-scorecard",
        api_key_env="EVAL_KEY",
        headers={"X-Team": "literal-token-value"},
    )
    target = build_target(
        config,
        concurrency=4,
        timeout_s=5,
        base_url="http://cli.test/v1",
        model="from-cli",
        transport=mock(json_reply(COMPLETION)),
    )
    assert target.name == "openai_chat:from-cli@http://cli.test/v1"
    assert target.model == "from-cli"
    assert (await target(CASE)).text == "Yes, within 14 days."
    await target.aclose()

    described = describe_target(config, base_url="http://cli.test/v1", model="from-cli")
    assert described["kind"] == "openai_chat" and described["url"] == "http://cli.test/v1"
    assert described["model"] == "from-cli" and described["headers"] == ["X-Team"]
    text = orjson.dumps(described).decode()
    assert SECRET not in text and "literal-token-value" not in text

    http = HttpJsonConfig(url="http://svc.test", body_template='{"a": 1}', answer_path="a")
    described = describe_target(http)
    assert described["url"] == "http://svc.test" and described["answer_path"] == "a"
    assert "body_template" not in described and len(described["body_template_sha256"]) == 16
    assert "base_url" not in describe_target(config)
    python = PythonConfig(callable="json:dumps")
    assert describe_target(python)["callable"] == "json:dumps"
    assert isinstance(build_target(python, concurrency=1, timeout_s=1), PythonTarget)
    with pytest.raises(ConfigError, match="target-url"):
        build_target(python, concurrency=1, timeout_s=1, base_url="http://x.test")


def test_aiohttp_causes_are_classified_by_origin() -> None:
    def wrapped(outer: Exception, cause: Exception) -> Exception:
        outer.__cause__ = cause
        return outer

    hung_up = wrapped(httpx.ConnectTimeout("x"), aiohttp.ServerDisconnectedError())
    assert type(classify_http_error(hung_up)) is TargetConnectionError
    slow = wrapped(httpx.ReadTimeout("x"), aiohttp.SocketTimeoutError("read"))
    assert type(classify_http_error(slow)) is TargetTimeout
    assert type(classify_http_error(httpx.ConnectTimeout("plain"))) is TargetTimeout
    assert type(classify_http_error(httpx.RemoteProtocolError("bad"))) is TargetConnectionError
    assert type(classify_http_error(ValueError("?"))) is TargetError


# --- a real loopback server through the aiohttp transport --------------------------------


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/slow/chat/completions":
        await asyncio.sleep(0.6)
    if scope["path"] == "/cut/chat/completions":  # headers promise more body than comes
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"500")]}
        )
        await send({"type": "http.response.body", "body": b'{"choices": [', "more_body": True})
        raise RuntimeError("handler dies mid-body")
    body = orjson.dumps(COMPLETION)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def loopback_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        _asgi_app, log_level="critical", lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(5)
    sock.close()


async def test_loopback_reply(loopback_url: str) -> None:
    client = make_client(concurrency=4, timeout_s=2)
    target = OpenAIChatTarget(loopback_url + "/ok", "ref-model", client=client)
    replies = await asyncio.gather(*(target(CASE) for _ in range(8)))
    assert {r.text for r in replies} == {"Yes, within 14 days."}
    await client.aclose()


async def test_loopback_cut_mid_body_is_connection_error(loopback_url: str) -> None:
    async with make_client(concurrency=1, timeout_s=2) as client:
        target = OpenAIChatTarget(loopback_url + "/cut", "ref-model", client=client)
        with pytest.raises(TargetConnectionError):
            await target(CASE)


async def test_loopback_slow_is_timeout(loopback_url: str) -> None:
    async with make_client(concurrency=1, timeout_s=0.2) as client:
        target = OpenAIChatTarget(loopback_url + "/slow", "ref-model", client=client)
        started = time.monotonic()
        with pytest.raises(TargetTimeout):
            await target(CASE)
        assert time.monotonic() - started < 0.5


async def test_loopback_hang_up_before_reply_is_connection_error() -> None:
    """The aiohttp transport reports this as `httpx.ConnectTimeout`; it is no timeout."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = OpenAIChatTarget(f"http://127.0.0.1:{port}/v1", "m", concurrency=1, timeout_s=2)
    try:
        with pytest.raises(TargetConnectionError) as info:
            await target(CASE)
        assert "ServerDisconnected" in str(info.value)
    finally:
        await target.aclose()
        server.close()
        await server.wait_closed()

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connection refused
    target = OpenAIChatTarget(f"http://127.0.0.1:{port}/v1", "m", concurrency=1, timeout_s=2)
    with pytest.raises(TargetConnectionError):
        await target(CASE)
    await target.aclose()
