"""The Slack Web API client evalcore uses: slack_sdk's, with its retry handlers for 429
(honouring Retry-After), 5xx and dropped connections, pointed at `SLACK_BASE_URL` when set
(the local fake).

Those handlers repeat a call blindly. That is safe for reads and edits, not for
`chat.postMessage`: after a 5xx or a lost answer Slack may have stored the message, and
a blind retry posts it twice. `rate_limit_retries_only` gives the client for such posts;
their caller looks for the message before posting again."""

from __future__ import annotations

import copy
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator

from evalcore.secrets import SLACK_BOT_TOKEN, setting_secret
from evalcore.settings import get_settings


def retry_handlers(
    retries: int = 3, *, interval: RetryIntervalCalculator | None = None
) -> list[RetryHandler]:
    """slack_sdk's handlers for 429 (sleeping Retry-After), 500/503 and dropped
    connections. The attempt count is shared by the handlers of one call, so `retries`
    bounds the retries of a call whatever mix of failures it meets."""
    options: dict[str, Any] = {"max_retry_count": retries}
    if interval is not None:
        options["interval_calculator"] = interval
    return [
        RateLimitErrorRetryHandler(max_retry_count=retries),
        ServerErrorRetryHandler(**options),
        ConnectionErrorRetryHandler(**options),
    ]


def rate_limit_retries_only(client: WebClient) -> WebClient:
    """`client` retrying only 429s, which Slack did not carry out; its 5xx and
    dropped-connection handlers are left out, as those calls may have been carried out.
    `client` itself is left as it is."""
    posting = copy.copy(client)
    posting.retry_handlers = [
        handler
        for handler in client.retry_handlers
        if isinstance(handler, RateLimitErrorRetryHandler)
    ]
    return posting


def web_client(
    token: str,
    *,
    base_url: str | None = None,
    retries: int = 3,
    interval: RetryIntervalCalculator | None = None,
    timeout: int = 30,
) -> WebClient:
    """A WebClient for `token` with the retry handlers; `base_url` (else SLACK_BASE_URL,
    else Slack's) may point at the local fake."""
    return WebClient(
        token=token,
        base_url=base_url or get_settings().slack_base_url,
        timeout=timeout,
        retry_handlers=retry_handlers(retries, interval=interval),
    )


def slack_client(token: str | None = None, *, base_url: str | None = None) -> WebClient | None:
    """A client for the bot token (SLACK_BOT_TOKEN, else the Secret block named in
    EVALCORE_SLACK_BOT_TOKEN_BLOCK), or None when there is no token; a named block that
    cannot be read raises `SecretBlockError`."""
    if not token:
        configured = setting_secret(SLACK_BOT_TOKEN)
        token = configured.get_secret_value() if configured else None
    return web_client(token, base_url=base_url) if token else None
