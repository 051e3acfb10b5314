"""Decisions typed in a digest's thread, read through conversations.replies on the fake
Slack: numbers resolved through the digest's metadata, each reply handled once and
answered, unknown commands and non-owners refused with nothing recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from evalcore.local.fake_slack.server import FakeSlackServer
from evalcore.slack.client import slack_client
from evalcore.slack.text import slack_escape
from evalcore.store.engine import get_engine
from evalcore.store.tables import DecisionRow
from evalcore.suite import load_suite
from evalcore.triage.replies import ReplyError, parse_reply, process_thread
from tests.factories import add, backlog_item

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "C0EVALS01"
DANIEL, TOM = "U05B8RZT1QK", "U06KQ2VN8HD"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("block ZD-48213", ("block", "ZD-48213", None, "")),
        ("Monitor 3 flaky on weekends", ("monitor", "3", None, "flaky on weekends")),
        ("accept 5", ("accept_baseline", "5", None, "")),
        (
            "threshold monitoring.min_pass_rate 0.92 new model is noisier",
            ("threshold", "monitoring.min_pass_rate", "0.92", "new model is noisier"),
        ),
    ],
)
def test_reply_commands_parse(text: str, parsed: tuple[str, str, str | None, str]) -> None:
    command = parse_reply(text)
    assert (command.action, command.target, command.value, command.reason) == parsed


@pytest.mark.parametrize("text", ["lgtm", "please block", "threshold monitoring.min_pass_rate"])
def test_anything_else_is_not_a_command(text: str) -> None:
    with pytest.raises(ReplyError, match="block ZD-48213"):
        parse_reply(text)


def test_thread_replies_become_decisions_once_and_are_answered(
    db_url: str, slack: FakeSlackServer
) -> None:
    engine = get_engine(db_url)
    add(
        engine,
        backlog_item("BL-000004", observed_output="Delivered.", what_was_wrong="It was not."),
    )
    client = slack_client(slack.token, base_url=slack.api_url)
    assert client is not None
    parent = client.chat_postMessage(
        channel=CHANNEL,
        text="Weekly triage digest",
        metadata={
            "event_type": "evalcore_digest",
            "event_payload": {"week": "2026-W48", "part": 0, "items": {"1": "BL-000004"}},
        },
    )["ts"]
    slack.post_as_user(CHANNEL, "monitor 1", user=TOM, thread_ts=parent)
    slack.post_as_user(CHANNEL, "ship it", user=DANIEL, thread_ts=parent)
    slack.post_as_user(CHANNEL, "block 9", user=DANIEL, thread_ts=parent)
    slack.post_as_user(CHANNEL, "block 1 repeat customer complaint", user=DANIEL, thread_ts=parent)
    suite = load_suite(ROOT / "evals")

    results = process_thread(engine, suite, client, channel=CHANNEL, thread_ts=parent)
    answers = [r.answer for r in results]
    assert answers[0].startswith("sorry Tom Lindqvist, owners.yaml does not give you the scope")
    assert answers[1].startswith("I did not understand 'ship it'")
    assert answers[2] == "the digest has no item 9"
    assert answers[3] == "recorded: block for ZD-48213, by Daniel Brandt"
    with Session(engine) as session:
        (row,) = session.exec(select(DecisionRow)).all()
    assert (row.item_ref, row.action, row.source, row.reason) == (
        "BL-000004",
        "block",
        "reply",
        "repeat customer complaint",
    )
    in_thread = [
        m["text"]
        for m in slack.messages(CHANNEL)
        if m["thread_ts"] == parent and m["author"] == "bot"
    ]
    # Posted escaped: the help's `<case-id>` would otherwise be a link in Slack.
    assert in_thread == [f"<@{r.user}> {slack_escape(r.answer)}" for r in results]

    # Read again: nothing new is handled, nothing answered twice.
    assert process_thread(engine, suite, client, channel=CHANNEL, thread_ts=parent) == []
    slack.post_as_user(CHANNEL, "dismiss 1", user=DANIEL, thread_ts=parent)
    (late,) = process_thread(engine, suite, client, channel=CHANNEL, thread_ts=parent)
    assert late.answer.startswith("ZD-48213 was already decided (block by daniel.brandt")


def test_the_triage_replies_flow_reads_recent_digest_threads(
    slack: FakeSlackServer, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    from evalcore.store.tables import DigestPostRow
    from flows.triage_replies import triage_replies

    engine = get_engine()
    client = slack_client(slack.token, base_url=slack.api_url)
    assert client is not None
    parent = client.chat_postMessage(channel=CHANNEL, text="Weekly triage digest")["ts"]
    with Session(engine) as session:
        session.add(
            DigestPostRow(channel=CHANNEL, week="2026-W48", part=0, ts=parent, content_hash="h")
        )
        session.commit()
    slack.post_as_user(
        CHANNEL,
        "threshold monitoring.min_pass_rate 0.92 noisier model",
        user=DANIEL,
        thread_ts=parent,
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
    monkeypatch.setenv("SLACK_BASE_URL", slack.api_url)
    with temporary_settings({PREFECT_API_URL: prefect_api, PREFECT_LOGGING_TO_API_ENABLED: False}):
        counts = triage_replies(suite=str(ROOT / "evals"))
        again = triage_replies(suite=str(ROOT / "evals"))
    assert counts == {"replies": 1, "recorded": 1}
    assert again == {"replies": 0, "recorded": 0}
    with Session(engine) as session:
        (row,) = session.exec(select(DecisionRow)).all()
    assert (row.item_ref, row.value, row.decided_by) == (
        "monitoring.min_pass_rate",
        "0.92",
        "daniel.brandt",
    )
