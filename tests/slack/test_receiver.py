"""The interactivity receiver: requests signed exactly as Slack signs them; forged, unsigned,
stale and replayed ones refused with nothing recorded; an owner's click recorded once and
acknowledged in the digest's thread on the fake Slack; a non-owner's refused politely."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from evalcore.local.fake_slack.server import FakeSlackServer
from evalcore.slack.client import slack_client
from evalcore.slack.receiver import create_receiver
from evalcore.slack.signing import interactivity_body, sign_request
from evalcore.store.engine import get_engine
from evalcore.store.tables import BacklogItemRow, DecisionRow, SlackRequestRow
from evalcore.suite import load_suite
from evalcore.triage.clicks import record_clicks
from evalcore.triage.decisions import attempts
from tests.factories import add, backlog_item

ROOT = Path(__file__).resolve().parents[2]
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0EVALS01"
DANIEL, TOM = "U05B8RZT1QK", "U06KQ2VN8HD"


@pytest.fixture
def app(db_url: str, slack: FakeSlackServer) -> Iterator[TestClient]:
    engine = get_engine(db_url)
    add(engine, backlog_item())
    suite = load_suite(ROOT / "evals")
    receiver = create_receiver(
        signing_secret=SECRET,
        engine=lambda: engine,
        on_clicks=record_clicks(
            lambda: engine,
            lambda: suite,
            lambda: slack_client(slack.token, base_url=slack.api_url),
        ),
    )
    with TestClient(receiver) as client:
        yield client


def digest_message(slack: FakeSlackServer) -> str:
    client = slack_client(slack.token, base_url=slack.api_url)
    assert client is not None
    return str(client.chat_postMessage(channel=CHANNEL, text="Weekly triage digest")["ts"])


def click_body(user: str, message_ts: str, action: str = "block", ref: str = "BL-000001") -> bytes:
    return interactivity_body(
        {
            "type": "block_actions",
            "user": {"id": user},
            "channel": {"id": CHANNEL},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": CHANNEL},
            "message": {"ts": message_ts},
            "actions": [
                {
                    "action_id": f"decide:{action}",
                    "block_id": "item-1",
                    "value": orjson.dumps({"ref": ref, "action": action}).decode(),
                    "type": "button",
                }
            ],
        }
    )


def post(app: TestClient, body: bytes, headers: dict[str, str]) -> int:
    response = app.post(
        "/slack/interactivity",
        content=body,
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    return int(response.status_code)


def decisions(db_url: str) -> list[DecisionRow]:
    with Session(get_engine(db_url)) as session:
        return list(session.exec(select(DecisionRow)))


def thread(slack: FakeSlackServer, ts: str) -> list[str]:
    return [
        str(m["text"]) for m in slack.messages(CHANNEL) if m["thread_ts"] == ts and m["ts"] != ts
    ]


def test_an_owners_click_is_recorded_once_and_acknowledged_in_the_thread(
    app: TestClient, slack: FakeSlackServer, db_url: str
) -> None:
    ts = digest_message(slack)
    body = click_body(DANIEL, ts)
    assert post(app, body, sign_request(body, SECRET)) == 200
    (row,) = decisions(db_url)
    assert (row.item_ref, row.action, row.decided_by, row.source, row.slack_ts) == (
        "BL-000001",
        "block",
        "daniel.brandt",
        "button",
        ts,
    )
    # A second click (a new request, signed a second later) is a conflict, not a second row.
    second = click_body(DANIEL, ts, action="monitor")
    assert post(app, second, sign_request(second, SECRET, int(time.time()) + 1)) == 200
    assert len(decisions(db_url)) == 1
    replies = thread(slack, ts)
    assert replies[0] == f"<@{DANIEL}> recorded: block for ZD-48213, by Daniel Brandt"
    assert replies[1].startswith(
        f"<@{DANIEL}> ZD-48213 was already decided (block by daniel.brandt"
    )


def test_a_non_owners_click_is_refused_politely_and_logged(
    app: TestClient, slack: FakeSlackServer, db_url: str
) -> None:
    ts = digest_message(slack)
    body = click_body(TOM, ts)
    assert post(app, body, sign_request(body, SECRET)) == 200
    assert decisions(db_url) == []
    (reply,) = thread(slack, ts)
    assert reply.startswith(f"<@{TOM}> sorry Tom Lindqvist, owners.yaml does not give you")
    (attempt,) = attempts(get_engine(db_url))
    assert (attempt.outcome, attempt.slack_user) == ("refused", TOM)


@pytest.mark.parametrize(
    ("case", "status"),
    [("forged", 401), ("missing headers", 401), ("stale", 403), ("wrong secret", 401)],
)
def test_bad_requests_are_refused_and_nothing_is_recorded(
    app: TestClient, slack: FakeSlackServer, db_url: str, case: str, status: int
) -> None:
    ts = digest_message(slack)
    body = click_body(DANIEL, ts)
    headers = sign_request(body, SECRET)
    if case == "forged":
        body = click_body(DANIEL, ts, action="dismiss")  # the signature is for another body
    elif case == "missing headers":
        headers = {}
    elif case == "stale":
        headers = sign_request(body, SECRET, int(time.time()) - 6 * 60)
    else:
        headers = sign_request(body, "not-the-secret")
    assert post(app, body, headers) == status
    assert decisions(db_url) == []
    assert attempts(get_engine(db_url)) == []
    assert thread(slack, ts) == []
    with Session(get_engine(db_url)) as session:
        assert list(session.exec(select(SlackRequestRow))) == []


def test_a_replayed_request_is_refused(
    app: TestClient, slack: FakeSlackServer, db_url: str
) -> None:
    ts = digest_message(slack)
    body = click_body(DANIEL, ts)
    headers = sign_request(body, SECRET)
    assert post(app, body, headers) == 200
    assert post(app, body, headers) == 403
    assert len(decisions(db_url)) == 1
    assert len(attempts(get_engine(db_url))) == 1  # the replay never reached the decisions


def test_slack_serve_needs_a_signing_secret(tmp_path: Path) -> None:
    from tests.cli_helpers import evalcore

    done = evalcore("slack", "serve", cwd=ROOT, home=tmp_path, env={"SLACK_SIGNING_SECRET": ""})
    assert done.returncode == 3
    assert "SLACK_SIGNING_SECRET is not set" in done.stderr


def test_the_receiver_also_takes_production_failures_with_a_bearer_token(db_url: str) -> None:
    from evalcore.cli.intake import intake_routes

    engine = get_engine(db_url)
    suite = load_suite(ROOT / "evals")
    receiver = create_receiver(
        signing_secret=SECRET,
        engine=lambda: engine,
        on_clicks=record_clicks(lambda: engine, lambda: suite, lambda: None),
        extra_routes=intake_routes(lambda: engine, lambda: suite, "intake-token"),
    )
    failure = {
        "messages": [{"role": "user", "content": "My parcel never arrived, order 5512."}],
        "observed_output": "It was delivered yesterday.",
        "what_was_wrong": "Tracking says it is still in transit.",
        "ticket": "ZD-50001",
        "reporter": "support@lumenhome.example",
    }
    with TestClient(receiver) as http:
        assert http.post("/intake", json=failure).status_code == 401
        created = http.post(
            "/intake", json=failure, headers={"Authorization": "Bearer intake-token"}
        )
    assert created.status_code == 201, created.text
    with Session(engine) as session:
        (item,) = session.exec(select(BacklogItemRow)).all()
    assert (item.ticket, item.state, item.source) == ("ZD-50001", "open", "http")
