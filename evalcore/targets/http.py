"""The HTTP client every target shares, and how HTTP failures become target errors.

httpx's own connection pool costs ~11 ms of CPU per request with 100 open connections on
two cores; the same `httpx.AsyncClient` on the aiohttp transport stays near the ideal, so
`make_client` always builds that one.

The aiohttp transport turns *every* `aiohttp.ClientConnectionError` (a refused connection,
a server that hangs up mid-request) into `httpx.ConnectTimeout`. `classify_http_error`
therefore looks at the original aiohttp exception first: a hang-up is a connection error,
never a timeout.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence

import aiohttp
import httpx
import orjson

from evalcore.targets.base import (
    BadReply,
    ClientError,
    ConfigError,
    RateLimited,
    ServerError,
    TargetConnectionError,
    TargetError,
    TargetTimeout,
)
from evalcore.targets.transport import BufferedAiohttpTransport

__all__ = [
    "MASK",
    "Endpoint",
    "check_status",
    "classify_http_error",
    "display_url",
    "endpoint_url",
    "has_masked_parts",
    "make_client",
    "parse_retry_after",
    "redact_text",
    "resolve_headers",
    "url_secrets",
]

MASK = "***"
_MAX_MESSAGE = 300
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A cut can leave the start of a secret behind; this many of its first characters (or
# more) are masked wherever they appear. Shorter runs would mask ordinary words.
_MIN_FRAGMENT = 8
# Query parameters whose value is a credential, matched against the whole name and each
# word of it (split at `-`, `_`, `.` and camelCase), case-insensitively: `api_key`,
# `apiKey`, `X-Amz-Signature`, `access_token`, `client_secret`, Azure SAS's `sig`...
# Any other parameter (`api-version`, `deployment`) is shown as it is.
SECRET_QUERY_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "accesstoken",
        "secret",
        "password",
        "passwd",
        "pwd",
        "pass",
        "sig",
        "signature",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "session",
        "sessionid",
        "jwt",
        "bearer",
    }
)
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def make_client(
    *, concurrency: int, timeout_s: float, headers: Mapping[str, str] | None = None
) -> httpx.AsyncClient:
    """An httpx client on the aiohttp transport with one pooled connection per concurrent call.

    `timeout_s` bounds connecting (including the wait for a free pooled connection) and each
    read from the socket; the run engine puts an overall deadline around every call.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    return httpx.AsyncClient(
        transport=BufferedAiohttpTransport(max_connections=concurrency),
        timeout=httpx.Timeout(timeout_s),
        headers=dict(headers) if headers else None,
    )


def classify_http_error(exc: BaseException, *, redact: Sequence[str] = ()) -> TargetError:
    """The target error for a failed request; secrets in `redact` never reach the message.

    | raised                                                   | becomes                 |
    | -------------------------------------------------------- | ----------------------- |
    | aiohttp timeouts (socket read, connect, pool wait),      | `TargetTimeout`         |
    | any `httpx.TimeoutException` not caused by one below,    |                         |
    | `TimeoutError`                                           |                         |
    | server hung up, refused or reset connection, body cut    | `TargetConnectionError` |
    | off, proxy failure, malformed HTTP, other network errors |                         |
    | invalid URL or unsupported scheme                        | `ClientError`           |
    | undecodable `Content-Encoding`                           | `BadReply`              |
    """
    if isinstance(exc, TargetError):
        return exc
    origin = exc
    if isinstance(exc, httpx.TransportError) and isinstance(exc.__cause__, aiohttp.ClientError):
        origin = exc.__cause__
    text = str(origin).strip()
    message = f"{type(origin).__name__}: {text}" if text else type(origin).__name__
    return _error_class_for(origin)(redact_text(message, redact))


def _error_class_for(exc: BaseException) -> type[TargetError]:
    # Timeouts first: aiohttp's timeout errors are also connection errors and OSErrors.
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return TargetTimeout
    if isinstance(
        exc,
        httpx.UnsupportedProtocol
        | httpx.InvalidURL
        | httpx.LocalProtocolError
        | aiohttp.InvalidURL,
    ):
        return ClientError
    if isinstance(exc, httpx.DecodingError):
        return BadReply
    if isinstance(exc, httpx.TransportError | aiohttp.ClientError | OSError):
        return TargetConnectionError
    return TargetError


def check_status(response: httpx.Response, *, redact: Sequence[str] = ()) -> None:
    """Raise the target error a non-2xx response stands for; 2xx returns at once.

    429 is `RateLimited` and 5xx `ServerError`, both with the server's `Retry-After`;
    408 is `TargetTimeout` (retried); other statuses are `ClientError`, quoting the API's
    own `{"error": {"message": ...}}` when it gave one.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    message = redact_text(f"HTTP {status} {response.reason_phrase}".rstrip(), redact)
    # Redacted whole, then shortened: a cut first could keep the start of a key.
    detail = _shorten(redact_text(_api_message(response), redact))
    if detail:
        message = f"{message}: {detail}"
    if status == 429:
        raise RateLimited(message, retry_after=parse_retry_after(response.headers))
    if status >= 500:
        raise ServerError(message, retry_after=parse_retry_after(response.headers))
    if status == 408:
        raise TargetTimeout(message)
    if 300 <= status < 400 and "location" in response.headers:
        location = display_url(response.headers["location"])
        message = f"{message} (redirected to {location}; point the target there)"
    raise ClientError(message)


def _api_message(response: httpx.Response) -> str:
    """The error text an API put in its body (OpenAI style, FastAPI style, or the body
    itself), whole: it is shortened only once its secrets are redacted."""
    content = response.content
    if not content:
        return ""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content.decode("utf-8", "replace")
    if isinstance(data, dict):
        for key in ("error", "detail", "message"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value:
                return value
    return content.decode("utf-8", "replace")


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def parse_retry_after(
    headers: Mapping[str, str], *, now: dt.datetime | None = None
) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, or `Retry-After` as seconds or
    an HTTP-date. A date in the past is 0; anything unparseable is None (not a guess)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis)
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return max(0.0, value / 1000)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def resolve_headers(
    headers: Mapping[str, str] | None,
    api_key_env: str | None,
    api_key_block: str | None = None,
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Headers to send, and the secret values in them (to redact from every message).

    `api_key_env` (a variable) or `api_key_block` (a Prefect Secret block) adds
    `Authorization: Bearer <value>`. A header value may name an environment variable as
    `${NAME}` (e.g. `X-Api-Key: ${SEARCH_API_KEY}`), so keys never have to sit in the
    scorecard. A missing or empty variable, or a block that cannot be read, is a
    `ConfigError` naming it.
    """
    resolved: dict[str, str] = {}
    secrets: list[str] = []
    for name, value in (headers or {}).items():

        def expand(match: re.Match[str], header: str = name) -> str:
            secret = _env(match.group(1), f"header {header!r}")
            secrets.append(secret)
            return secret

        resolved[name] = _ENV_REF.sub(expand, value)
    if api_key_env and api_key_block:
        raise ConfigError("give api_key_env or api_key_block, not both")
    if api_key_env or api_key_block:
        if any(name.lower() == "authorization" for name in resolved):
            option = "api_key_env" if api_key_env else "api_key_block"
            raise ConfigError(f"give either {option} or an Authorization header, not both")
        key = _env(api_key_env, "api_key_env") if api_key_env else _block(api_key_block)
        secrets.append(key)
        resolved["Authorization"] = f"Bearer {key}"
    return resolved, tuple(secrets)


def _block(name: str | None) -> str:
    from evalcore.secrets import SecretBlockError, block_secret

    assert name is not None
    try:
        return block_secret(name, used_for="api_key_block").get_secret_value()
    except SecretBlockError as exc:
        raise ConfigError(str(exc)) from None


def _env(variable: str, used_by: str) -> str:
    value = os.environ.get(variable, "")
    if not value.strip():
        raise ConfigError(f"environment variable {variable} ({used_by}) is not set or empty")
    return value.strip()


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by `***`, and every run of 8 or more characters
    that a secret starts with: what a cut, ours or the API's own, leaves of a key."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if len(secret) < _MIN_FRAGMENT:
            text = text.replace(secret, MASK)
        else:
            text = _mask_prefixes(text, secret)
    return text


def _mask_prefixes(text: str, secret: str) -> str:
    head = secret[:_MIN_FRAGMENT]
    kept: list[str] = []
    position = 0
    while (start := text.find(head, position)) != -1:
        end = start + _MIN_FRAGMENT
        while end - start < len(secret) and end < len(text) and text[end] == secret[end - start]:
            end += 1
        kept.append(text[position:start])
        kept.append(MASK)
        position = end
    kept.append(text[position:])
    return "".join(kept)


def _is_secret_param(name: str) -> bool:
    words = {word.lower() for word in _NAME_WORDS.findall(name)}
    words.add(re.sub(r"[^a-z0-9]", "", name.lower()))
    return not SECRET_QUERY_WORDS.isdisjoint(words)


def _query_parts(query: str) -> list[tuple[str, str, str]]:
    """(raw part, decoded name, decoded value) per `&`-separated part of a raw query."""
    parts = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        parts.append((part, urllib.parse.unquote_plus(name), urllib.parse.unquote_plus(value)))
    return parts


def display_url(url: str) -> str:
    """The URL as names, logs, stored runs and flow parameters may show it: user info
    (any) and the values of secret-looking query parameters (`SECRET_QUERY_WORDS`)
    become `***`; everything else is kept, so runs against different routes differ."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid url>"
    if parsed.userinfo:
        parsed = parsed.copy_with(userinfo=MASK.encode())
    if parsed.query:
        masked = "&".join(
            f"{raw.partition('=')[0]}={MASK}" if _is_secret_param(name) and value else raw
            for raw, name, value in _query_parts(parsed.query.decode("ascii"))
        )
        parsed = parsed.copy_with(query=masked.encode("ascii"))
    return str(parsed)


def url_secrets(url: str) -> tuple[str, ...]:
    """The credentials in a URL, to redact from messages: the password (or a user name
    given without one, which is then the token), the user info as written, and the
    values of secret-looking query parameters, each decoded and as written."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return ()
    found: list[str] = []
    if parsed.userinfo:
        found.append(parsed.userinfo.decode("ascii"))
        found.append(parsed.password or parsed.username)
    for raw, name, value in _query_parts(parsed.query.decode("ascii")):
        if _is_secret_param(name) and value:
            found.extend((value, raw.partition("=")[2]))
    return tuple(dict.fromkeys(s for s in found if s))


def has_masked_parts(url: str) -> bool:
    """True when `url` is a `display_url` form that lost credentials: it cannot be called."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.userinfo == MASK.encode() or any(
        _is_secret_param(name) and value == MASK
        for _, name, value in _query_parts(parsed.query.decode("ascii"))
    )


def endpoint_url(base_url: str, path: str) -> str:
    """`path` appended to the path of `base_url`, keeping its query (`?api-version=...`)."""
    try:
        parsed = httpx.URL(base_url)
    except httpx.InvalidURL:
        return base_url.rstrip("/") + path  # the endpoint reports the bad URL
    return str(parsed.copy_with(path=parsed.path.rstrip("/") + path))


def _checked_url(url: str, what: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"{what} {display_url(url)!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{what} {display_url(url)!r} must be an absolute http(s) URL")
    return parsed


class Endpoint:
    """One URL a target sends JSON to: credentials, the client, and error classification.

    Pass `client` (you keep owning it) or `transport` (e.g. `httpx.MockTransport` in tests);
    by default the endpoint builds and owns a `make_client` client.
    """

    __slots__ = (
        "_client",
        "_extensions",
        "_headers",
        "_method",
        "_request_headers",
        "_secrets",
        "_timeout_s",
        "_transport",
        "_url_text",
        "url",
    )

    def __init__(
        self,
        url: str,
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        api_key_env: str | None = None,
        api_key_block: str | None = None,
        concurrency: int = 16,
        timeout_s: float = 30.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        what: str = "url",
    ) -> None:
        if client is not None and transport is not None:
            raise ValueError("pass either client or transport, not both")
        self.url = _checked_url(url, what)
        self._method = method
        resolved, header_secrets = resolve_headers(headers, api_key_env, api_key_block)
        self._secrets = header_secrets + url_secrets(url)
        resolved.setdefault("Content-Type", "application/json")
        self._client: httpx.AsyncClient | None = client
        self._transport: httpx.AsyncBaseTransport | None = None
        if client is not None:
            self._headers: dict[str, str] = resolved
        else:
            self._transport = transport or BufferedAiohttpTransport(max_connections=concurrency)
            self._headers = resolved
        # Sent straight to the transport: an endpoint needs none of the client's cookie,
        # redirect or auth handling, and skipping it is most of the per-request CPU.
        self._request_headers = httpx.Headers(resolved)
        self._extensions = {"timeout": httpx.Timeout(timeout_s).as_dict()}
        self._url_text = str(self.url)
        self._timeout_s = timeout_s

    async def send(self, body: bytes) -> bytes:
        """POST (or PUT) `body` and return the body of the 2xx reply, or raise a `TargetError`."""
        transport = self._transport
        if isinstance(transport, BufferedAiohttpTransport):
            try:
                status, raw_headers, content = await transport.exchange(
                    self._method,
                    self._url_text,
                    self._headers,
                    body,
                    transport.deadline(self._timeout_s),
                )
            except Exception as exc:
                raise classify_http_error(exc, redact=self._secrets) from exc
            if 200 <= status < 300:
                return content
            # Only a reply that is an error is worth httpx's full response object.
            check_status(
                httpx.Response(status, headers=raw_headers, content=content),
                redact=self._secrets,
            )
            raise AssertionError("check_status raises for every non-2xx status")
        try:
            if self._transport is not None:
                request = httpx.Request(
                    self._method,
                    self.url,
                    headers=self._request_headers,
                    content=body,
                    extensions=self._extensions,
                )
                response = await self._transport.handle_async_request(request)
                await response.aread()
            else:
                assert self._client is not None
                response = await self._client.request(
                    self._method, self.url, content=body, headers=self._headers
                )
        except Exception as exc:
            raise classify_http_error(exc, redact=self._secrets) from exc
        check_status(response, redact=self._secrets)
        return response.content

    @property
    def enforces_deadline(self) -> bool:
        """True when the transport bounds each whole exchange by `timeout_s` itself."""
        return isinstance(self._transport, BufferedAiohttpTransport)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The key, header and URL credentials this endpoint sends, to redact elsewhere."""
        return self._secrets

    def redact(self, text: str) -> str:
        return redact_text(text, self._secrets)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()

    def __repr__(self) -> str:
        return f"Endpoint({self._method} {display_url(str(self.url))})"
