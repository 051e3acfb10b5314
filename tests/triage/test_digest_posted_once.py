"""A digest part Slack stored although its answer to the post was a 500 or never came is
found in the channel by its metadata and recorded, never posted a second time; the fake
Slack's `takes_effect` faults reproduce those failures. Store tests run on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from evalcore.local.fake_slack import FakeSlackServer
from evalcore.store.engine import get_engine
from evalcore.triage.digest import DigestPostError, digest_client, post_digest, render_slack
from tests.triage.test_digest import EVALS, FAST, make_digest, post_rows

SLOW_ANSWER_S = 10.0  # the fake's delay, far past the client's timeout below
CLIENT_TIMEOUT_S = 2


@pytest.fixture
def client(slack: FakeSlackServer) -> WebClient:
    return digest_client(slack.token, base_url=slack.api_url, interval=FAST, timeout=10)


def digest_messages(slack: FakeSlackServer) -> list[tuple[int, str]]:
    """(part, ts) of every digest message the fake holds in the channel, deleted or not."""
    found = []
    for stored in slack.messages(EVALS):
        metadata = stored["message"].get("metadata") or {}
        if metadata.get("event_type") == "evalcore_digest":
            found.append((metadata["event_payload"]["part"], stored["ts"]))
    return found


def post_attempts(slack: FakeSlackServer) -> list[tuple[Any, Any]]:
    return [(r["status"], r["error"]) for r in slack.requests("chat.postMessage")]


def test_a_part_stored_then_answered_500_is_recorded_not_posted_again(
    db_url: str, slack: FakeSlackServer, client: WebClient
) -> None:
    engine = get_engine(db_url)
    digest = make_digest(60)
    parts = len(render_slack(digest))
    slack.add_fault("chat.postMessage", status=500, takes_effect=True)

    report = post_digest(engine, client, EVALS, digest)

    assert [p.action for p in report.parts] == ["posted"] * parts
    assert sorted(part for part, _ in digest_messages(slack)) == list(range(parts))
    assert post_attempts(slack) == [(500, "internal_error")] + [(200, None)] * (parts - 1)
    assert [r.ts for r in post_rows(engine)] == [ts for _, ts in sorted(digest_messages(slack))]
    assert report.notes == [
        "part 0 was stored by Slack although the post failed (HTTP 500); "
        "it was found in the channel, not posted again"
    ]
    # The caller's client keeps retrying 5xx for everything else.
    assert any(isinstance(h, ServerErrorRetryHandler) for h in client.retry_handlers)


def test_a_part_stored_then_timed_out_is_recorded_not_posted_again(
    db_url: str, slack: FakeSlackServer
) -> None:
    engine = get_engine(db_url)
    impatient = digest_client(
        slack.token, base_url=slack.api_url, interval=FAST, timeout=CLIENT_TIMEOUT_S
    )
    slack.add_fault("chat.postMessage", delay_s=SLOW_ANSWER_S, takes_effect=True)

    report = post_digest(engine, impatient, EVALS, make_digest(3))

    stored = digest_messages(slack)
    assert [part for part, _ in stored] == [0]
    assert [(p.action, p.ts) for p in report.parts] == [("posted", stored[0][1])]
    assert len(slack.requests("chat.postMessage")) == 1
    assert [(r.part, r.ts) for r in post_rows(engine)] == stored
    assert report.notes == [
        "part 0 was stored by Slack although the post failed (TimeoutError); "
        "it was found in the channel, not posted again"
    ]


def test_a_stored_part_that_cannot_be_checked_fails_clearly_and_the_next_run_adopts_it(
    db_url: str, slack: FakeSlackServer, client: WebClient
) -> None:
    engine = get_engine(db_url)
    digest = make_digest(60)
    parts = len(render_slack(digest))
    assert parts >= 2
    # The search before posting works; part 0 goes through; part 1 is stored but answered
    # 500; the search for it then fails, with the client's three retries.
    slack.add_fault("conversations.history", delay_s=0.01)
    slack.add_fault("chat.postMessage", delay_s=0.01)
    slack.add_fault("chat.postMessage", status=500, takes_effect=True)
    slack.add_fault("conversations.history", status=500, times=4)

    with pytest.raises(DigestPostError) as caught:
        post_digest(engine, client, EVALS, digest)

    message = str(caught.value)
    assert "stopped while checking whether part 1 was posted" in message
    assert "internal_error (HTTP 500)" in message and "run it again" in message
    assert [r.part for r in post_rows(engine)] == [0]
    assert sorted(part for part, _ in digest_messages(slack)) == [0, 1]
    assert len(slack.requests("chat.postMessage")) == 2

    again = post_digest(engine, client, EVALS, digest)

    assert [p.action for p in again.parts] == ["unchanged", "adopted"] + ["posted"] * (parts - 2)
    assert sorted(part for part, _ in digest_messages(slack)) == list(range(parts))
    assert [r.ts for r in post_rows(engine)] == [ts for _, ts in sorted(digest_messages(slack))]


def test_takes_effect_fault_stores_the_message_then_answers_500(slack: FakeSlackServer) -> None:
    queued = httpx.post(
        f"{slack.url}/_fake/faults",
        json={"method": "chat.postMessage", "status": 500, "takes_effect": True},
    )
    assert queued.status_code == 200
    pending = httpx.get(f"{slack.url}/_fake/faults").json()["faults"]
    assert [(f["method"], f["status"], f["takes_effect"]) for f in pending] == [
        ("chat.postMessage", 500, True)
    ]
    plain = WebClient(token=slack.token, base_url=slack.api_url, timeout=10, retry_handlers=[])
    with pytest.raises(SlackApiError) as caught:
        plain.chat_postMessage(channel=EVALS, text="stored although the answer is 500")
    assert caught.value.response.status_code == 500
    assert caught.value.response["error"] == "internal_error"
    assert [m["text"] for m in slack.messages(EVALS)] == ["stored although the answer is 500"]
    [request] = slack.requests("chat.postMessage")
    assert (request["status"], request["fault"]) == (
        500,
        {"method": "chat.postMessage", "status": 500, "takes_effect": True},
    )


def test_takes_effect_with_429_is_refused_and_nothing_is_queued(slack: FakeSlackServer) -> None:
    refused = httpx.post(f"{slack.url}/_fake/faults", json={"status": 429, "takes_effect": True})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_fault"
    assert "a rate-limited call is not carried out" in refused.json()["detail"]
    assert httpx.get(f"{slack.url}/_fake/faults").json()["faults"] == []
