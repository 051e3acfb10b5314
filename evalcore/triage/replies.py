"""Decisions typed as replies in a digest's thread: `block ZD-48213`, `monitor 3`,
`promote <case-id>`, `threshold monitoring.min_pass_rate 0.92 because the new model is
noisier`.

A number refers to the digest item with that number; the digest message carries the
numbering in its Slack metadata (`event_payload.items`), so a reply is read against the
message it answers, not against today's data. A case id is read the same way: `keep
<case-id>` or `promote <case-id>` means the item of that case the message shows (its
proposed promotion, or its flaky-case item); `promote` of a case the message does not
show still means one step up from where the case is. Each reply is handled once (its ts is
remembered), and every reply gets an answer in the thread: recorded, refused, conflict,
or "I did not understand". Answers quote what people typed, so every answer the bot posts
in a thread, here or for a button, is escaped for Slack first (`answer_in_thread`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from evalcore.slack.text import mention, slack_escape
from evalcore.store.tables import DecisionAttemptRow, DigestPostRow, SlackRequestRow, utcnow
from evalcore.suite import Suite
from evalcore.triage.decisions import (
    ACTIONS,
    DecisionOutcome,
    DecisionRequest,
    ItemKind,
    item_kind_of,
    record_decision,
)
from evalcore.triage.graduation import parse_graduation_ref, promotion_ref

logger = logging.getLogger("evalcore.slack")

WORDS = {
    "block": "block",
    "monitor": "monitor",
    "keep": "keep",
    "dismiss": "dismiss",
    "demote": "demote",
    "promote": "promote",
    "investigate": "investigate",
    "accept": "accept_baseline",
    "threshold": "threshold",
}
HELP = (
    "try `block ZD-48213`, `monitor 3`, `keep 2`, `dismiss BL-000004`, `demote <case-id>`, "
    "`promote <case-id>`, `keep <case-id>`, `accept 5`, `investigate 5` or "
    "`threshold monitoring.min_pass_rate 0.92 <reason>`"
)
_REPLY = re.compile(r"^\s*(?P<word>[a-zA-Z_]+)\s+(?P<target>\S+)(?:\s+(?P<rest>.*))?$", re.S)


@dataclass(frozen=True)
class ReplyCommand:
    action: str
    target: str  # an item ref, a ticket, a case id, or a digest item number
    value: str | None = None
    reason: str = ""


class ReplyError(ValueError):
    """The reply is not a command; the message says what would be."""


def parse_reply(text: str) -> ReplyCommand:
    # Slack wraps pasted links and mentions in <...>; the command is in plain words.
    cleaned = re.sub(r"<[^>|]*\|([^>]*)>", r"\1", text).strip()
    match = _REPLY.match(cleaned)
    if match is None or match["word"].lower() not in WORDS:
        raise ReplyError(f"I did not understand {cleaned[:80]!r}: {HELP}")
    action = WORDS[match["word"].lower()]
    target, rest = match["target"], (match["rest"] or "").strip()
    if action == "threshold":
        value, _, reason = rest.partition(" ")
        if not value:
            raise ReplyError(f"a threshold needs a value: {HELP}")
        return ReplyCommand(action, target, value, reason.strip())
    return ReplyCommand(action, target, None, rest)


def resolve_target(target: str, numbering: dict[str, str], action: str | None = None) -> str:
    """A digest item number to its ref (via the digest's metadata); a case id to the one
    item of that case the message shows that takes `action` (`flaky:`, `graduate:`)."""
    if target.isdigit():
        if target not in numbering:
            raise ReplyError(f"the digest has no item {target}")
        return numbering[target]
    if action is not None:
        shown = [
            ref
            for ref in dict.fromkeys(numbering.values())
            if _case_of(ref) == target and action in ACTIONS[item_kind_of(ref)]
        ]
        if len(shown) == 1:
            return shown[0]
    return target


def _case_of(ref: str) -> str | None:
    """The case a flaky-case or promotion ref is about."""
    if ref.startswith("flaky:"):
        return ref.removeprefix("flaky:")
    parsed = parse_graduation_ref(ref)
    return parsed[1] if parsed is not None else None


@dataclass(frozen=True)
class ReplyResult:
    ts: str
    user: str
    text: str
    answer: str
    outcome: DecisionOutcome | None


def thread_messages(client: WebClient, channel: str, thread_ts: str) -> Iterator[dict[str, Any]]:
    cursor = None
    while True:
        page = client.conversations_replies(
            channel=channel, ts=thread_ts, cursor=cursor, limit=200, include_all_metadata=True
        )
        yield from page.get("messages") or []
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not page.get("has_more") or not cursor:
            return


def _first_time(engine: Engine, key: str) -> bool:
    try:
        with Session(engine) as session:
            session.add(SlackRequestRow(signature=key[:80], timestamp=0))
            session.commit()
    except IntegrityError:
        return False
    return True


def process_thread(
    engine: Engine, suite: Suite, client: WebClient, *, channel: str, thread_ts: str
) -> list[ReplyResult]:
    """Read the replies under one digest message and act on the new ones."""
    messages = list(thread_messages(client, channel, thread_ts))
    if not messages:
        return []
    parent, replies = messages[0], messages[1:]
    payload = (parent.get("metadata") or {}).get("event_payload") or {}
    numbering = {str(k): str(v) for k, v in (payload.get("items") or {}).items()}
    results = []
    for reply in replies:
        if reply.get("bot_id") or not reply.get("user"):
            continue  # our own acknowledgements
        ts, user, text = str(reply["ts"]), str(reply["user"]), str(reply.get("text", ""))
        if not _first_time(engine, f"reply:{channel}:{ts}"):
            continue
        outcome = None
        try:
            command = parse_reply(text)
            ref = resolve_target(command.target, numbering, command.action)
            if command.action == "demote" and not ref.startswith("flaky:"):
                ref = f"flaky:{ref}"
            if command.action == "keep" and ref == command.target:
                ref = _promotion_of(suite, ref)
            outcome = record_decision(
                engine,
                suite,
                DecisionRequest(
                    ref,
                    command.action,
                    slack_user=user,
                    value=command.value,
                    source="reply",
                    slack_channel=channel,
                    slack_ts=ts,
                    reason=command.reason,
                ),
            )
            answer = outcome.message
        except ReplyError as exc:
            answer = str(exc)
            _log_unknown(engine, user, text, answer)
        answer_in_thread(client, channel, thread_ts, user, answer)
        results.append(ReplyResult(ts, user, text, answer, outcome))
    return results


def _promotion_of(suite: Suite, target: str) -> str:
    """`keep <case-id>` for a case the message does not show: its next promotion. A name
    that is no case of the suite (a backlog item, a ticket) is left as it is."""
    case = suite.get(target)
    if case is None or item_kind_of(target) is not ItemKind.backlog:
        return target
    return promotion_ref(case) or target


def _log_unknown(engine: Engine, user: str, text: str, answer: str) -> None:
    with Session(engine) as session:
        session.add(
            DecisionAttemptRow(
                slack_user=user,
                source="reply",
                outcome="unknown",
                message=f"{text[:200]} -> {answer}",
            )
        )
        session.commit()


def answer_in_thread(
    client: WebClient, channel: str, thread_ts: str | None, user: str, answer: str
) -> None:
    """Post `answer` to `user` in the thread. The answer may quote a reply, a ref or an
    action someone sent, so all of it is escaped: only the mention we add is markup."""
    text = f"{mention(user)} {slack_escape(answer)}"
    try:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
    except SlackApiError as exc:
        # The decision (or refusal) is recorded and audited; only the courtesy reply failed.
        logger.warning("could not answer in thread %s: %s", thread_ts, exc)


def recent_digest_threads(engine: Engine, *, days: int = 14) -> list[tuple[str, str]]:
    """(channel, ts) of the digest messages posted in the last `days` days."""
    since = utcnow() - dt.timedelta(days=days)
    with Session(engine) as session:
        rows = session.exec(
            select(DigestPostRow.channel, DigestPostRow.ts)
            .where(col(DigestPostRow.posted_at) >= since)
            .order_by(col(DigestPostRow.posted_at))
        ).all()
    return [(channel, ts) for channel, ts in rows]


def process_recent_digests(
    engine: Engine, suite: Suite, client: WebClient, *, days: int = 14
) -> list[ReplyResult]:
    """Act on new replies in every recent digest thread."""
    results: list[ReplyResult] = []
    for channel, ts in recent_digest_threads(engine, days=days):
        results += process_thread(engine, suite, client, channel=channel, thread_ts=ts)
    return results
