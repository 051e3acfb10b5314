"""Decision buttons clicked in a digest, from the receiver or Socket Mode: each recorded
as an owner's decision (or refused), then answered in the digest's thread."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from evalcore.slack.receiver import Click, OnClicks
from evalcore.suite import Suite
from evalcore.triage.decisions import DecisionOutcome, DecisionRequest, record_decision
from evalcore.triage.replies import answer_in_thread


def record_clicks(
    engine: Callable[[], Engine],
    suite: Callable[[], Suite],
    client: Callable[[], WebClient | None],
) -> OnClicks:
    """What the receiver calls with new clicks; `engine`, `suite` and `client` are read
    per request (cheap), so a reloaded suite or a new token takes effect at once."""

    def on_clicks(found: list[Click]) -> None:
        handle_clicks(found, engine, suite, client)

    return on_clicks


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
    answer_in_thread(slack, click.channel, click.message_ts, click.user, outcome.message)
