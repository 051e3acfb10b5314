"""Sign requests the way Slack signs the ones it sends to an app (interactivity, events,
slash commands), so tests can play Slack's part against the app's own endpoints.

Slack's scheme (version `v0`): the basestring `v0:{timestamp}:{raw body}` is hashed with
HMAC-SHA256 keyed by the app's signing secret; the request carries the timestamp in
`X-Slack-Request-Timestamp` and `v0=<hex digest>` in `X-Slack-Signature`. Receivers reject
timestamps more than five minutes away from their clock (replay protection), which is what
`slack_sdk.signature.SignatureVerifier` does.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "TIMESTAMP_HEADER",
    "interactivity_body",
    "sign_request",
    "signature",
]

SIGNATURE_VERSION = "v0"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"


def signature(body: bytes | str, secret: str, timestamp: int) -> str:
    """`v0=` + the hex HMAC-SHA256 of `v0:{timestamp}:{body}` under `secret`."""
    raw = body.encode() if isinstance(body, str) else body
    base = f"{SIGNATURE_VERSION}:{timestamp}:".encode() + raw
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def sign_request(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds to a request whose raw body is `body`.

    `timestamp` is Unix seconds, now by default; pass an old one to test replay rejection.
    Sign the exact bytes you send: any re-encoding of the body breaks the signature.
    """
    if not secret:
        raise ValueError("the signing secret must not be empty")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(body, secret, ts)}


def interactivity_body(payload: Mapping[str, Any]) -> bytes:
    """The body Slack POSTs to an app's interactivity URL for block actions, view
    submissions and shortcuts: `application/x-www-form-urlencoded` with one field,
    `payload`, holding the JSON-encoded payload (compact, as Slack sends it)."""
    encoded = orjson.dumps(dict(payload)).decode()
    return urlencode({"payload": encoded}).encode()
