"""The Slack Web API client evalcore uses: slack_sdk's, with its retry handlers for 429
(honouring Retry-After) and 5xx, pointed at `SLACK_BASE_URL` when set (the local fake)."""

from __future__ import annotations

import os

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

DEFAULT_BASE_URL = "https://slack.com/api/"


def slack_client(
    token: str | None = None, *, base_url: str | None = None, retries: int = 3
) -> WebClient | None:
    """A client for the bot token (SLACK_BOT_TOKEN), or None when there is no token."""
    token = token or os.environ.get("SLACK_BOT_TOKEN")
    if not token:
        return None
    return WebClient(
        token=token,
        base_url=base_url or os.environ.get("SLACK_BASE_URL") or DEFAULT_BASE_URL,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=retries),
            ServerErrorRetryHandler(max_retry_count=retries),
            ConnectionErrorRetryHandler(max_retry_count=retries),
        ],
    )
