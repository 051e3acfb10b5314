"""Socket Mode against the fake Slack: the app opens its WebSocket with the app-level
token, a button click arrives as an envelope, is acknowledged, recorded once from an
owner, and answered in the digest's thread."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from sqlmodel import Session, select

from evalcore.local.fake_slack.server import FakeSlackServer
from evalcore.slack.client import slack_client
from evalcore.slack.socket_mode import socket_mode_client
from evalcore.store.engine import get_engine
from evalcore.store.tables import DecisionRow
from evalcore.suite import load_suite
from evalcore.triage.clicks import record_clicks
from tests.factories import add, backlog_item

ROOT = Path(__file__).resolve().parents[2]
CHANNEL, DANIEL = "C0EVALS01", "U05B8RZT1QK"


def wait_for(check: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_click_over_socket_mode_is_acknowledged_recorded_and_answered(
    db_url: str, slack: FakeSlackServer
) -> None:
    engine = get_engine(db_url)
    add(engine, backlog_item(ticket="ZD-51001", question="Do you deliver to Norway?"))
    suite = load_suite(ROOT / "evals")
    web = slack_client(slack.token, base_url=slack.api_url)
    assert web is not None
    ts = web.chat_postMessage(channel=CHANNEL, text="Weekly triage digest")["ts"]
    client = socket_mode_client(
        app_token=slack.app_token,
        web_client=web,
        on_clicks=record_clicks(lambda: engine, lambda: suite, lambda: web),
    )
    client.connect()
    try:
        wait_for(client.is_connected)
        envelope = slack.send_interactive(
            {
                "type": "block_actions",
                "user": {"id": DANIEL},
                "channel": {"id": CHANNEL},
                "container": {"type": "message", "message_ts": ts},
                "actions": [
                    {
                        "action_id": "decide:block",
                        "value": orjson.dumps({"ref": "BL-000001", "action": "block"}).decode(),
                    }
                ],
            }
        )
        wait_for(lambda: any(a["envelope_id"] == envelope for a in slack.socket_acks()))
        wait_for(
            lambda: any(m["thread_ts"] == ts and m["ts"] != ts for m in slack.messages(CHANNEL))
        )
    finally:
        client.close()
    (reply,) = [
        m["text"] for m in slack.messages(CHANNEL) if m["thread_ts"] == ts and m["ts"] != ts
    ]
    assert reply == f"<@{DANIEL}> recorded: block for ZD-51001, by Daniel Brandt"
    with Session(engine) as session:
        (row,) = session.exec(select(DecisionRow)).all()
    assert (row.item_ref, row.action, row.source, row.slack_ts) == (
        "BL-000001",
        "block",
        "button",
        ts,
    )


def test_socket_mode_needs_an_app_token(tmp_path: Path) -> None:
    from tests.cli_helpers import evalcore

    done = evalcore(
        "slack", "serve", "--socket-mode", cwd=ROOT, home=tmp_path, env={"SLACK_APP_TOKEN": ""}
    )
    assert done.returncode == 3
    assert "SLACK_APP_TOKEN (an app-level xapp- token) is needed" in done.stderr
