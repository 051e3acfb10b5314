"""`evalcore slack serve`: the endpoint Slack sends button clicks to (interactivity).

Every request is checked before anything is read into the database, and its body is not
read at all until the headers say Slack could have sent it: both signing headers present
(else 401), a timestamp within five minutes of our clock (else 403), a body of at most
1 MiB, by `Content-Length` and while it streams in (else 413), a valid `v0` signature
under the signing secret (slack_sdk's verifier; else 401), and a signature never seen
before (a replay gets 403). A payload's actions are read up to a handful (Slack sends one
per click); the rest are ignored with a warning.

Slack wants an answer within three seconds, so the receiver answers 200 at once and
records the decision, then acknowledges it in the digest's thread, after the response is
sent. Database work runs in worker threads, never on the event loop, so a busy database
slows only the requests that wait for it: when the replay check has not finished within
half a second, the receiver answers 200 anyway and records the clicks once the check
says the request is new.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from evalcore.store.tables import SlackRequestRow

logger = logging.getLogger("evalcore.slack")

MAX_AGE_S = 5 * 60
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
DECIDE_PREFIX = "decide:"
# A block_actions payload carries the whole digest message (at most 50 blocks of 3,000
# characters, URL-encoded): far below this, while a body of hundreds of MB is refused.
MAX_BODY_BYTES = 1024 * 1024
MAX_BODY_LABEL = "1 MiB"
# Slack sends the one action that was clicked; more is a forged or broken payload.
MAX_ACTIONS = 5
# Well inside Slack's three seconds, the longest a click waits for the replay check.
REPLAY_CHECK_WAIT_S = 0.5


@dataclass(frozen=True)
class Click:
    """One decision button pressed in a digest."""

    ref: str
    action: str
    user: str
    channel: str | None
    message_ts: str | None


OnClicks = Callable[[list[Click]], None]
"""What the receiver does with the buttons of a new, verified request."""


def clicks(payload: dict[str, Any]) -> list[Click]:
    """The decision buttons in a `block_actions` payload (anything else is ignored)."""
    if payload.get("type") != "block_actions":
        return []
    user = (payload.get("user") or {}).get("id", "")
    channel = (payload.get("channel") or {}).get("id")
    container = payload.get("container") or {}
    message_ts = container.get("message_ts") or (payload.get("message") or {}).get("ts")
    actions = payload.get("actions")
    if not isinstance(actions, list):
        return []
    if len(actions) > MAX_ACTIONS:
        logger.warning(
            "a block_actions payload from %r carried %d actions; only the first %d are read",
            user,
            len(actions),
            MAX_ACTIONS,
        )
    found = []
    for action in actions[:MAX_ACTIONS]:
        action_id = str(action.get("action_id", ""))
        if not action_id.startswith(DECIDE_PREFIX):
            continue
        try:
            value = orjson.loads(action.get("value") or "{}")
        except orjson.JSONDecodeError:
            value = {}
        ref = value.get("ref") if isinstance(value, dict) else None
        if ref:
            found.append(
                Click(str(ref), action_id.removeprefix(DECIDE_PREFIX), user, channel, message_ts)
            )
    return found


def _refuse(status: int, error: str) -> JSONResponse:
    """The error, on a connection then closed, so a body left unread is not drained."""
    return JSONResponse(
        {"ok": False, "error": error}, status_code=status, headers={"Connection": "close"}
    )


async def _body_within(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be over `limit` bytes: declared by
    `Content-Length`, or counted while it streams in (a chunked body declares nothing)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    kept = bytearray()
    async for chunk in request.stream():
        kept += chunk
        if len(kept) > limit:
            return None
    return bytes(kept)


def create_receiver(
    *,
    signing_secret: str,
    engine: Callable[[], Engine],
    on_clicks: OnClicks,
    clock: Callable[[], float] = time.time,
    extra_routes: Sequence[BaseRoute] | None = None,
) -> Starlette:
    """The receiver app. `engine` (read per request) remembers signatures against replays;
    `on_clicks` gets the decision buttons of each new request, after it was answered, in a
    worker thread (triage's `record_clicks` records and acknowledges them)."""
    if not signing_secret:
        raise ValueError("a signing secret is required (SLACK_SIGNING_SECRET)")
    verifier = SignatureVerifier(signing_secret, clock=_IntClock(clock))

    async def interactivity(request: Request) -> Response:
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not timestamp or not signature:
            return _refuse(401, "missing Slack signature headers")
        try:
            age = abs(clock() - int(timestamp))
        except ValueError:
            return _refuse(401, "malformed timestamp")
        if age > MAX_AGE_S:
            return _refuse(403, "request timestamp is more than five minutes off")
        body = await _body_within(request, MAX_BODY_BYTES)
        if body is None:
            return _refuse(413, f"request body over {MAX_BODY_LABEL}")
        if not verifier.is_valid(body, timestamp, signature):
            return _refuse(401, "invalid signature")
        form = parse_qs(body.decode(errors="replace"))
        try:
            payload = orjson.loads(form.get("payload", ["{}"])[0])
        except orjson.JSONDecodeError:
            return _refuse(400, "payload is not JSON")
        found = clicks(payload) if isinstance(payload, dict) else []
        first_time = asyncio.create_task(
            run_in_threadpool(_first_time, engine, signature, int(timestamp))
        )
        await asyncio.wait({first_time}, timeout=REPLAY_CHECK_WAIT_S)
        if first_time.done() and not first_time.result():
            return _refuse(403, "replayed request")
        task = BackgroundTask(_record_when_new, first_time, found, on_clicks)
        return Response(status_code=200, background=task)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    routes: list[BaseRoute] = [
        Route("/slack/interactivity", interactivity, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        *(extra_routes or []),
    ]
    return Starlette(routes=routes)


class _IntClock(Clock):
    """slack_sdk's verifier asks a Clock for `now()`; ours can be set by tests."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock()


def _first_time(engine: Callable[[], Engine], signature: str, timestamp: int) -> bool:
    """Remember the signature; False when it was already remembered (a replay)."""
    try:
        with Session(engine()) as session:
            session.add(SlackRequestRow(signature=signature, timestamp=timestamp))
            session.commit()
    except IntegrityError:
        return False
    return True


async def _record_when_new(
    first_time: asyncio.Task[bool], found: list[Click], on_clicks: OnClicks
) -> None:
    """Record the clicks once the replay check, maybe still waiting for a busy database,
    says the request is new."""
    if not await first_time:
        logger.warning("a replayed request, answered while the database was busy, was ignored")
        return
    if found:
        await run_in_threadpool(on_clicks, found)
