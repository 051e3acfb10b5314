"""The reference target over HTTP: a raw ASGI app on uvicorn (httptools, uvloop, orjson),
plus `ReferenceServer`, which runs it in a subprocess for tests, demos and benchmarks.

The app adds what a real endpoint does to the pure assistant: latency, 5xx errors, hangs
and 429 bursts, all drawn from one `random.Random(seed)` owned by the app, so a seeded run
is reproducible in its draws. Raw ASGI keeps the server far cheaper than the client, so a
benchmark against it measures the harness, not the target.

Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`. With the `api_key`
knob, the first two answer 401 to a request without `Authorization: Bearer <api_key>`, as
a real gateway does, so a test can tell the key reached the target.

Per-request overrides (headers): `x-ref-version`, `x-ref-latency-ms`, `x-ref-error-rate`,
`x-ref-timeout-rate`, `x-ref-nondeterminism`. The version is, in order: the header, the
request `model`'s `@suffix` (`support-assistant@regressed-tools`), the server's knob.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import random
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from evalcore.local.loopback import LoopbackServer, free_port
from evalcore.local.reference.assistant import (
    DEFAULT_MODEL,
    EXTRA_LATENCY_MS,
    JUDGE_MODEL,
    VERSIONS,
    RequestError,
    complete,
    error_body,
    resolve_version,
)

__all__ = [
    "DEFAULT_PORT",
    "Knobs",
    "ReferenceApp",
    "ReferenceServer",
    "create_app",
    "free_port",
    "serve",
]

DEFAULT_PORT = 8765

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Knobs(BaseModel):
    """How the reference target misbehaves; every field maps to a `--kebab-case` option."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = "v1"
    latency_ms: float = Field(default=0.0, ge=0)
    latency_sd_ms: float = Field(default=0.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    hang_s: float = Field(default=30.0, ge=0)
    burst_429_every: int = Field(default=0, ge=0)
    burst_429_len: int = Field(default=0, ge=0)
    retry_after_s: float = Field(default=1.0, ge=0)
    nondeterminism: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    # The first N answers drawn from the knowledge base or the context documents drop
    # their key fact, and none after them: one flaky slip, placed for a demonstration.
    slip_first: int = Field(default=0, ge=0)
    # The bearer token every chat and models request must carry; None accepts any.
    api_key: str | None = Field(default=None, min_length=1, repr=False)

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value not in VERSIONS:
            raise ValueError(f"unknown version {value!r} (known: {', '.join(VERSIONS)})")
        return value

    def cli_args(self) -> list[str]:
        """The `python -m evalcore.local.reference` options that reproduce these knobs."""
        args: list[str] = []
        for name, value in self.model_dump().items():
            if value is not None:
                args += [f"--{name.replace('_', '-')}", str(value)]
        return args


def _lognormal_ms(rng: random.Random, mean: float, sd: float) -> float:
    """A latency around `mean` with spread `sd`, skewed right like real ones, never negative."""
    if mean <= 0:
        return 0.0
    if sd <= 0:
        return mean
    sigma2 = math.log1p((sd / mean) ** 2)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))


def _json_headers(
    body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if extra:
        headers += extra
    return headers


_SERVER_ERRORS: tuple[tuple[int, str, str], ...] = (
    (500, "internal_error", "The server had an error while processing your request."),
    (502, "bad_gateway", "Bad gateway: the upstream model did not answer."),
    (503, "service_unavailable", "The engine is currently overloaded, please try again later."),
)
_HEADER_KNOBS = {
    b"x-ref-latency-ms": "latency_ms",
    b"x-ref-error-rate": "error_rate",
    b"x-ref-timeout-rate": "timeout_rate",
    b"x-ref-nondeterminism": "nondeterminism",
}


class ReferenceApp:
    """The ASGI application; one instance owns the random draws and the request counter."""

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.rng = random.Random(knobs.seed)
        self.requests = 0
        self.slips_left = knobs.slip_first
        self._authorization = f"Bearer {knobs.api_key}".encode() if knobs.api_key else None
        self._health = orjson.dumps(
            {
                "status": "ok",
                "service": "evalcore-reference",
                "version": knobs.version,
                "pid": os.getpid(),
            }
        )
        models = [DEFAULT_MODEL, *(f"{DEFAULT_MODEL}@{v}" for v in VERSIONS), JUDGE_MODEL]
        self._models = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "evalcore"}
                    for m in models
                ],
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path != "/health" and not self._authorized(scope):
            await self._error(
                send,
                401,
                "Incorrect API key provided.",
                "invalid_request_error",
                "invalid_api_key",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        if path in ("/v1/chat/completions", "/chat/completions"):
            if method != "POST":
                await self._error(
                    send, 405, "use POST", "invalid_request_error", "method_not_allowed"
                )
                return
            await self._chat(scope, receive, send)
        elif path == "/health" and method in ("GET", "HEAD"):
            await self._send(send, 200, self._health)
        elif path in ("/v1/models", "/models") and method == "GET":
            await self._send(send, 200, self._models)
        else:
            await self._error(
                send, 404, f"no route {method} {path}", "invalid_request_error", "not_found"
            )

    def _authorized(self, scope: Scope) -> bool:
        """True without the `api_key` knob, else for `Authorization: Bearer <api_key>`."""
        if self._authorization is None:
            return True
        given = dict(scope["headers"]).get(b"authorization", b"")
        return hmac.compare_digest(given, self._authorization)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _send(
        send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        await send(
            {"type": "http.response.start", "status": status, "headers": _json_headers(body, extra)}
        )
        await send({"type": "http.response.body", "body": body})

    async def _error(
        self,
        send: Send,
        status: int,
        message: str,
        type: str,
        code: str | None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        await self._send(send, status, orjson.dumps(error_body(message, type, code)), extra)

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        knobs = self.knobs
        try:
            try:
                body = orjson.loads(b"".join(chunks))
            except orjson.JSONDecodeError as exc:
                raise RequestError(f"the request body is not valid JSON: {exc}") from None
            if not isinstance(body, dict):
                raise RequestError("the request body must be a JSON object")
            headers = dict(scope["headers"])
            overrides: dict[str, float] = {}
            for header, name in _HEADER_KNOBS.items():
                raw = headers.get(header)
                if raw is not None:
                    try:
                        value = float(raw)
                    except ValueError:
                        raise RequestError(f"header {header.decode()} must be a number") from None
                    if value < 0 or (name != "latency_ms" and value > 1) or math.isnan(value):
                        raise RequestError(f"header {header.decode()} is out of range: {value}")
                    overrides[name] = value
            model = body.get("model")
            version_header = headers.get(b"x-ref-version")
            version = resolve_version(
                model if isinstance(model, str) else None,
                version_header.decode() if version_header else None,
                knobs.version,
            )
        except RequestError as exc:
            await self._send(send, exc.status, orjson.dumps(exc.body()))
            return

        self.requests += 1
        every, burst = knobs.burst_429_every, knobs.burst_429_len
        if every and burst and (self.requests - 1) % (every + burst) >= every:
            wait = knobs.retry_after_s
            retry = str(int(wait)) if wait == int(wait) else f"{wait:g}"
            await self._error(
                send,
                429,
                f"Rate limit reached for {DEFAULT_MODEL}; please retry after {retry} s.",
                "rate_limit_error",
                "rate_limit_exceeded",
                [(b"retry-after", retry.encode())],
            )
            return

        rng = self.rng
        error_rate = overrides.get("error_rate", knobs.error_rate)
        timeout_rate = overrides.get("timeout_rate", knobs.timeout_rate)
        latency_ms = overrides.get("latency_ms", knobs.latency_ms)
        failure = None
        if error_rate > 0 and rng.random() < error_rate:
            failure = _SERVER_ERRORS[rng.randrange(len(_SERVER_ERRORS))]
        hang = timeout_rate > 0 and rng.random() < timeout_rate
        delay_ms = _lognormal_ms(rng, latency_ms, knobs.latency_sd_ms)
        delay_ms += EXTRA_LATENCY_MS.get(version, 0.0)
        if hang:
            delay_ms += knobs.hang_s * 1000.0
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)
        if failure is not None:
            status, code, text = failure
            await self._error(send, status, text, "server_error", code)
            return
        nondeterminism = overrides.get("nondeterminism", knobs.nondeterminism)
        slip = _Slip() if self.slips_left > 0 else None
        try:
            result = complete(
                body,
                version=version,
                nondeterminism=1.0 if slip else nondeterminism,
                rng=slip or rng,
                completion_id=f"chatcmpl-ref{self.requests:08d}",
            )
        except RequestError as exc:
            await self._send(send, exc.status, orjson.dumps(exc.body()))
            return
        if slip is not None and slip.used:
            self.slips_left -= 1
        await self._send(send, 200, orjson.dumps(result))


class _Slip(random.Random):
    """The draws of one answer that varies and drops its fact (`Knobs.slip_first`); `used`
    says whether the answer drew at all (refusals, hand-offs and tool calls do not)."""

    def __init__(self) -> None:
        super().__init__(0)
        self.used = False

    def random(self) -> float:
        first = not self.used
        self.used = True
        return 0.0 if first else 0.99  # vary, then the fact-free phrasing


def create_app(knobs: Knobs | None = None) -> ReferenceApp:
    """The ASGI app for `knobs`, for embedding in another server or an in-process test."""
    return ReferenceApp(knobs or Knobs())


def serve(host: str, port: int, knobs: Knobs) -> None:
    """Serve the reference target until interrupted (blocking)."""
    import uvicorn

    config = uvicorn.Config(
        create_app(knobs),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        backlog=4096,
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run()


class ReferenceServer(LoopbackServer):
    """The reference target in a subprocess on loopback, as a context manager.

        with ReferenceServer(Knobs(version="regressed-tools")) as ref:
            client = httpx.Client(base_url=ref.base_url)  # http://127.0.0.1:PORT/v1

    Start-up, health check and shutdown are `LoopbackServer`'s.
    """

    name = "reference server"

    def __init__(
        self,
        knobs: Knobs | None = None,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 15.0,
    ) -> None:
        super().__init__(port=port, host=host, startup_timeout_s=startup_timeout_s)
        self.knobs = knobs or Knobs()

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. `http://127.0.0.1:8765/v1`."""
        return f"{self.url}/v1"

    def module_args(self, port: int) -> list[str]:
        return [
            "evalcore.local.reference",
            *("--host", self.host, "--port", str(port)),
            *self.knobs.cli_args(),
        ]
