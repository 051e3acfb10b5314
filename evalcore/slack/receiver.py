"""`evalcore slack serve`: the endpoint Slack sends button clicks to (interactivity).

Every request is checked before anything is read into the database: both signing headers
present (else 401), a timestamp within five minutes of our clock (else 403), a valid
`v0` signature under the signing secret (slack_sdk's verifier; else 401), and a signature
never seen before (a replay gets 403). Slack wants an answer within three seconds, so the
receiver answers 200 at once and records the decision, then acknowledges it in the
digest's thread, after the response is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from evalcore.decisions import DecisionOutcome, DecisionRequest, record_decision
from evalcore.store.tables import SlackRequestRow
from evalcore.suite import Suite

logger = logging.getLogger("evalcore.slack")

MAX_AGE_S = 5 * 60
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
DECIDE_PREFIX = "decide:"


@dataclass(frozen=True)
class Click:
    """One decision button pressed in a digest."""

    ref: str
    action: str
    user: str
    channel: str | None
    message_ts: str | None


def clicks(payload: dict[str, Any]) -> list[Click]:
    """The decision buttons in a `block_actions` payload (anything else is ignored)."""
    if payload.get("type") != "block_actions":
        return []
    user = (payload.get("user") or {}).get("id", "")
    channel = (payload.get("channel") or {}).get("id")
    container = payload.get("container") or {}
    message_ts = container.get("message_ts") or (payload.get("message") or {}).get("ts")
    found = []
    for action in payload.get("actions") or []:
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
    return JSONResponse({"ok": False, "error": error}, status_code=status)


def create_receiver(
    *,
    signing_secret: str,
    engine: Callable[[], Engine],
    suite: Callable[[], Suite],
    client: Callable[[], WebClient | None],
    clock: Callable[[], float] = time.time,
    extra_routes: Sequence[BaseRoute] | None = None,
) -> Starlette:
    """The receiver app; `engine`, `suite` and `client` are read per request (cheap)."""
    if not signing_secret:
        raise ValueError("a signing secret is required (SLACK_SIGNING_SECRET)")
    verifier = SignatureVerifier(signing_secret, clock=_IntClock(clock))

    async def interactivity(request: Request) -> Response:
        body = await request.body()
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
        if not verifier.is_valid(body, timestamp, signature):
            return _refuse(401, "invalid signature")
        if not _first_time(engine(), signature, int(timestamp)):
            return _refuse(403, "replayed request")
        form = parse_qs(body.decode(errors="replace"))
        try:
            payload = orjson.loads(form.get("payload", ["{}"])[0])
        except orjson.JSONDecodeError:
            return _refuse(400, "payload is not JSON")
        found = clicks(payload) if isinstance(payload, dict) else []
        task = BackgroundTask(handle_clicks, found, engine, suite, client) if found else None
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


def _first_time(engine: Engine, signature: str, timestamp: int) -> bool:
    try:
        with Session(engine) as session:
            session.add(SlackRequestRow(signature=signature, timestamp=timestamp))
            session.commit()
    except IntegrityError:
        return False
    return True


def handle_clicks(
    found: list[Click],
    engine: Callable[[], Engine],
    suite: Callable[[], Suite],
    client: Callable[[], WebClient | None],
) -> None:
    """Record each click, then say in the digest's thread what happened to it."""
    loaded = suite()
    slack = client()
    for click in found:
        outcome = record_decision(
            engine(),
            loaded,
            DecisionRequest(
                click.ref,
                click.action,
                slack_user=click.user,
                source="button",
                slack_channel=click.channel,
                slack_ts=click.message_ts,
            ),
        )
        _acknowledge(slack, click, outcome)


def _acknowledge(slack: WebClient | None, click: Click, outcome: DecisionOutcome) -> None:
    if slack is None or click.channel is None:
        return
    try:
        slack.chat_postMessage(
            channel=click.channel,
            thread_ts=click.message_ts,
            text=f"<@{click.user}> {outcome.message}",
        )
    except SlackApiError as exc:
        # The decision (or refusal) is recorded and audited; only the courtesy reply failed.
        logger.warning("could not acknowledge %s on %s: %s", click.action, click.ref, exc)
