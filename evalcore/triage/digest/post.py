"""Posting the digest to Slack once per (channel, week), and writing it to files.

Idempotent: every part posted is recorded in `digest_post` (channel id, week, part, ts,
content hash) right after Slack accepts it. A run for a week already posted updates the
recorded messages with `chat.update` (and skips parts whose content did not change); only
parts with no row are posted. A part posted by a run that died before recording it is
found in the channel's history by its message metadata (`evalcore_digest`, week, part)
and adopted — updated and recorded — instead of being posted a second time.

Slack's 429 (after Retry-After) and 500/503 answers are retried by slack_sdk's
RateLimitErrorRetryHandler and ServerErrorRetryHandler on the client, except for
`chat.postMessage`: after a 5xx or a lost answer (timeout, dropped connection) Slack may
have stored the part, so the channel's history is searched for it by its metadata and a
part found there is taken as posted; only a part really absent is posted again (as
often and as far apart as the client's 5xx handler would retry). When Slack stays down,
`DigestPostError` says what was done and that the next run finishes the job.

Channels: `digest_post.channel` holds the channel id (what Slack's events carry). A
channel given by name (`#support-assistant-evals`) is looked up among the channels
digests went to before (`conversations.info`), then in `conversations.list`; a name
found nowhere is posted to by name and the id taken from Slack's answer, and then the
history check is skipped for that first part (it needs the id).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.error import URLError

import orjson
from pydantic import BaseModel
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.web import SlackResponse
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col
from sqlmodel import select as model_select

from evalcore.files import write_atomic
from evalcore.slack.client import rate_limit_retries_only, retry_handlers, web_client
from evalcore.store.tables import DigestPostRow, utcnow
from evalcore.triage.digest.gather import Digest
from evalcore.triage.digest.render import SlackMessage, render_markdown, render_slack

__all__ = [
    "DIGEST_EVENT",
    "DigestFiles",
    "DigestPostError",
    "PartOutcome",
    "PostReport",
    "digest_client",
    "post_digest",
    "recorded_parts",
    "retry_handlers",
    "write_digest_files",
]

DIGEST_EVENT = "evalcore_digest"
HISTORY_PAGES = 10  # x 200 messages searched for an unrecorded part
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_NOT_THERE = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
_NO_LIST = frozenset({"unknown_method", "missing_scope", "not_allowed_token_type"})
_DIGEST_POST = DigestPostRow.__table__  # type: ignore[attr-defined]


class DigestPostError(RuntimeError):
    """Slack did not take the digest (down, refusing, unknown channel): nothing half-known
    is left behind; parts already in Slack are recorded and the next run finishes."""


class PartOutcome(BaseModel):
    part: int
    ts: str
    action: Literal["posted", "adopted", "updated", "unchanged", "emptied"]


class PostReport(BaseModel):
    channel: str  # as given
    channel_id: str
    week: str
    parts: list[PartOutcome]
    notes: list[str] = []

    def count(self, action: str) -> int:
        return sum(1 for p in self.parts if p.action == action)

    def summary(self) -> str:
        counts = ", ".join(
            f"{self.count(a)} {a}"
            for a in ("posted", "adopted", "updated", "unchanged", "emptied")
            if self.count(a)
        )
        return f"digest {self.week} in {self.channel} ({self.channel_id}): {counts}"


class DigestFiles(NamedTuple):
    markdown: Path
    blocks: Path


# --------------------------------------------------------------------------- client


digest_client = web_client  # the digest's client is evalcore's Slack client


def _ensure_retries(client: WebClient) -> None:
    """A client built elsewhere gets the 429 and 5xx handlers it lacks."""
    present = {type(h) for h in client.retry_handlers}
    for handler in retry_handlers():
        if type(handler) not in present:
            client.retry_handlers.append(handler)


# --------------------------------------------------------------------------- records


def recorded_parts(engine: Engine, channel_id: str, week: str) -> dict[int, DigestPostRow]:
    with Session(engine) as session:
        rows = session.exec(
            model_select(DigestPostRow)
            .where(col(DigestPostRow.channel) == channel_id)
            .where(col(DigestPostRow.week) == week)
        ).all()
    return {row.part: row for row in rows}


def _known_channels(engine: Engine) -> list[str]:
    c = _DIGEST_POST.c
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(select(c.channel).distinct())]


def _insert(engine: Engine, row: DigestPostRow) -> bool:
    """Record a part; False when another run recorded it first."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
    except IntegrityError:
        return False
    return True


def _error_of(exc: SlackApiError) -> str | None:
    """Slack's `error` code of a failed call, when the answer was JSON."""
    data = exc.response.data
    return data.get("error") if isinstance(data, dict) else None


def _answer_lost(exc: Exception) -> bool:
    """True when Slack may have carried the call out without the client hearing so: a
    5xx, or no answer at all (timeout, dropped connection)."""
    if isinstance(exc, SlackApiError):
        return int(exc.response.status_code) >= 500
    return isinstance(exc, OSError)


def _failure(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _save(engine: Engine, row: DigestPostRow) -> None:
    with Session(engine, expire_on_commit=False) as session:
        session.add(row)
        session.commit()


# --------------------------------------------------------------------------- posting


class _Poster:
    def __init__(
        self,
        engine: Engine,
        client: WebClient,
        channel: str,
        digest: Digest,
        messages: list[SlackMessage],
        history_pages: int,
    ) -> None:
        self.engine = engine
        self.client = client
        self.posting_client = rate_limit_retries_only(client)
        server_errors = next(
            h for h in client.retry_handlers if isinstance(h, ServerErrorRetryHandler)
        )
        self.post_retries = server_errors.max_retry_count
        self.post_interval = server_errors.interval_calculator
        self.channel = channel
        self.week = digest.week
        self.refs = {item.number: item.ref for item in digest.items}
        self.messages = messages
        self.history_pages = history_pages
        self.step = "starting"
        self.report = PostReport(channel=channel, channel_id="", week=self.week, parts=[])
        self._history: dict[int, str] | None = None
        self._bot_id: str | None = None

    def call(self, step: str, method: Callable[..., SlackResponse], **kwargs: Any) -> Any:
        self.step = step
        return method(**kwargs)

    def metadata(self, part: int) -> dict[str, Any]:
        """Week and part find the message again; `items` maps the item numbers shown in
        this part to their refs, so `block 3` in its thread means what the owner saw."""
        message = next((m for m in self.messages if m.part == part), None)
        numbers = message.item_numbers() if message else []
        items = {str(n): self.refs[n] for n in numbers if n in self.refs}
        return {
            "event_type": DIGEST_EVENT,
            "event_payload": {"week": self.week, "part": part, "items": items},
        }

    # ----------------------------------------------------------------- channel

    def resolve(self) -> str | None:
        channel = self.channel.strip()
        if _CHANNEL_ID.fullmatch(channel):
            return channel
        name = channel.removeprefix("#")
        for known in _known_channels(self.engine):
            try:
                info = self.call(
                    "looking up the channel", self.client.conversations_info, channel=known
                )
            except SlackApiError as exc:
                if _error_of(exc) in _NOT_THERE:
                    continue
                raise
            if info["channel"].get("name") == name:
                return known
        cursor = None
        while True:
            try:
                page = self.call(
                    "listing channels",
                    self.client.conversations_list,
                    types="public_channel,private_channel",
                    exclude_archived=True,
                    limit=1000,
                    cursor=cursor,
                )
            except SlackApiError as exc:
                if _error_of(exc) in _NO_LIST:
                    return None  # post by name and learn the id from the answer
                raise
            for found in page.get("channels") or []:
                if found.get("name") == name:
                    return str(found["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    # ----------------------------------------------------------------- history

    def posted_before(self, channel_id: str) -> dict[int, str]:
        """Part -> ts of this week's digest messages of our bot in the channel before
        this run posted anything (searched once)."""
        if self._history is None:
            self._history = self.find_posted(channel_id, "searching the channel history")
        return self._history

    def find_posted(self, channel_id: str, step: str) -> dict[int, str]:
        """Part -> ts of this week's digest messages of our bot found in the channel now."""
        if self._bot_id is None:
            own = self.call("asking Slack who the bot is", self.client.auth_test)
            self._bot_id = own.get("bot_id") or ""
        bot_id = self._bot_id
        found: dict[int, str] = {}
        cursor = None
        for _ in range(self.history_pages):
            page = self.call(
                step,
                self.client.conversations_history,
                channel=channel_id,
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") != DIGEST_EVENT or payload.get("week") != self.week:
                    continue
                if bot_id and message.get("bot_id") != bot_id:
                    continue
                raw_part = payload.get("part")
                if isinstance(raw_part, bool) or not isinstance(raw_part, int | str):
                    continue
                try:
                    part = int(raw_part)
                except ValueError:
                    continue
                found.setdefault(part, str(message["ts"]))  # newest first: keep the newest
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return found

    # ----------------------------------------------------------------- parts

    def update(self, channel_id: str, ts: str, message: SlackMessage) -> bool:
        """Replace a message's content; False when the message is gone from Slack."""
        try:
            self.call(
                f"updating part {message.part}",
                self.client.chat_update,
                channel=channel_id,
                ts=ts,
                text=message.text,
                blocks=message.blocks,
                metadata=self.metadata(message.part),
            )
        except SlackApiError as exc:
            if _error_of(exc) in ("message_not_found", "cant_update_message"):
                return False
            raise
        return True

    def post(self, channel: str, message: SlackMessage) -> tuple[str, str]:
        """Post a part once. After a 5xx or a lost answer the part may be in Slack already:
        it is looked for by its metadata before each new attempt, never posted blindly
        (a channel given by a name Slack could not resolve cannot be searched: fail)."""
        posting = f"posting part {message.part}"
        attempt = 0
        while True:
            try:
                answer = self.call(
                    posting,
                    self.posting_client.chat_postMessage,
                    channel=channel,
                    text=message.text,
                    blocks=message.blocks,
                    metadata=self.metadata(message.part),
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except (SlackApiError, OSError) as exc:
                if not _answer_lost(exc) or not _CHANNEL_ID.fullmatch(channel):
                    raise
                time.sleep(self.post_interval.calculate_sleep_duration(attempt))
                step = f"checking whether part {message.part} was posted"
                found = self.find_posted(channel, step).get(message.part)
                if found is not None:
                    self.report.notes.append(
                        f"part {message.part} was stored by Slack although the post failed "
                        f"({_failure(exc)}); it was found in the channel, not posted again"
                    )
                    return channel, found
                if attempt >= self.post_retries:
                    self.step = posting
                    raise
                attempt += 1
            else:
                return str(answer["channel"]), str(answer["ts"])

    def run(self) -> PostReport:
        channel_id = self.resolve()
        if channel_id is None:
            self.report.notes.append(
                f"{self.channel} could not be looked up before posting (no conversations.list);"
                " part 0 was posted by name without the history check"
            )
        recorded = recorded_parts(self.engine, channel_id, self.week) if channel_id else {}
        for message in self.messages:
            row = recorded.get(message.part)
            if channel_id is None:
                channel_id, ts = self.post(self.channel, message)
                self.report.channel_id = channel_id
                self.record(channel_id, message, ts, "posted")
                recorded = recorded_parts(self.engine, channel_id, self.week)
                continue
            self.report.channel_id = channel_id
            if row is not None:
                self.refresh(channel_id, row, message)
                continue
            adopted = self.posted_before(channel_id).get(message.part)
            if adopted is not None and self.update(channel_id, adopted, message):
                self.record(channel_id, message, adopted, "adopted")
                continue
            _, ts = self.post(channel_id, message)
            self.record(channel_id, message, ts, "posted")
        assert channel_id is not None
        self.report.channel_id = channel_id
        self.empty_leftovers(channel_id, recorded)
        return self.report

    def refresh(self, channel_id: str, row: DigestPostRow, message: SlackMessage) -> None:
        digest = message.content_hash
        if row.content_hash == digest:
            self.report.parts.append(PartOutcome(part=row.part, ts=row.ts, action="unchanged"))
            return
        if self.update(channel_id, row.ts, message):
            action: Literal["updated", "posted"] = "updated"
        else:  # deleted in Slack since: post it again, same row
            _, row.ts = self.post(channel_id, message)
            row.posted_at = utcnow()
            action = "posted"
        row.content_hash = digest
        row.updated_at = utcnow()
        _save(self.engine, row)
        self.report.parts.append(PartOutcome(part=row.part, ts=row.ts, action=action))

    def record(
        self,
        channel_id: str,
        message: SlackMessage,
        ts: str,
        action: Literal["posted", "adopted"],
    ) -> None:
        self.step = f"recording part {message.part}"
        now = utcnow()
        row = DigestPostRow(
            channel=channel_id,
            week=self.week,
            part=message.part,
            ts=ts,
            content_hash=message.content_hash,
            posted_at=now,
            updated_at=now if action == "adopted" else None,
        )
        if _insert(self.engine, row):
            self.report.parts.append(PartOutcome(part=message.part, ts=ts, action=action))
            return
        # Another run recorded this part while we posted it: keep theirs, take ours back.
        theirs = recorded_parts(self.engine, channel_id, self.week).get(message.part)
        if action == "posted" and theirs is not None and theirs.ts != ts:
            with contextlib.suppress(SlackApiError):
                self.client.chat_delete(channel=channel_id, ts=ts)
        self.report.notes.append(f"part {message.part} was recorded by another run meanwhile")
        if theirs is not None:
            self.report.parts.append(
                PartOutcome(part=message.part, ts=theirs.ts, action="unchanged")
            )

    def empty_leftovers(self, channel_id: str, recorded: dict[int, DigestPostRow]) -> None:
        """Parts recorded earlier this week beyond today's count say they are empty now."""
        total = len(self.messages)
        for part in sorted(p for p in recorded if p >= total):
            row = recorded[part]
            note = SlackMessage(
                part=part,
                text=f"This part of the {self.week} digest is empty now.",
                blocks=[
                    {
                        "type": "context",
                        "block_id": "empty.note",
                        "elements": [
                            {
                                "type": "mrkdwn",
                                "text": f"_This part of the {self.week} digest is empty now: "
                                f"the digest has {total} part(s)._",
                            }
                        ],
                    }
                ],
            )
            if row.content_hash == note.content_hash:
                continue
            if self.update(channel_id, row.ts, note):
                row.content_hash = note.content_hash
                row.updated_at = utcnow()
                _save(self.engine, row)
                self.report.parts.append(PartOutcome(part=part, ts=row.ts, action="emptied"))


def post_digest(
    engine: Engine,
    client: WebClient,
    channel: str,
    digest: Digest,
    *,
    messages: list[SlackMessage] | None = None,
    history_pages: int = HISTORY_PAGES,
) -> PostReport:
    """Post (or update) the week's digest in `channel` (id or `#name`); see the module.

    A client without slack_sdk's 429 or 5xx retry handlers gets them added. `messages`
    are the rendered parts when the caller has them already (else rendered here)."""
    _ensure_retries(client)
    poster = _Poster(
        engine,
        client,
        channel,
        digest,
        messages if messages is not None else render_slack(digest),
        history_pages,
    )
    try:
        return poster.run()
    except SlackApiError as exc:
        error = _error_of(exc)
        problem = f"Slack answered {error or 'an error'} (HTTP {exc.response.status_code})"
        cause: Exception = exc
    except (SlackClientError, URLError, OSError) as exc:
        problem = f"Slack could not be reached ({type(exc).__name__}: {exc})"
        cause = exc
    done = len([p for p in poster.report.parts if p.action != "unchanged"])
    raise DigestPostError(
        f"the {digest.week} digest for {channel} stopped while {poster.step}: {problem}. "
        f"{done} part(s) were posted or updated and recorded before that; run it again to "
        "finish: recorded parts are updated, never posted twice"
    ) from cause


# --------------------------------------------------------------------------- files


def write_digest_files(
    digest: Digest,
    home: Path,
    *,
    markdown: str | None = None,
    messages: list[SlackMessage] | None = None,
) -> DigestFiles:
    """`<home>/digests/<week>.md` and `<week>.blocks.json` (the Slack messages: text and
    blocks of each part), replaced on every run of the week."""
    folder = Path(home) / "digests"
    folder.mkdir(parents=True, exist_ok=True)
    md_path = folder / f"{digest.week}.md"
    blocks_path = folder / f"{digest.week}.blocks.json"
    md_text = markdown if markdown is not None else render_markdown(digest)
    parts = messages if messages is not None else render_slack(digest)
    payload = {
        "week": digest.week,
        "route": digest.route,
        "generated_at": digest.generated_at.astimezone(dt.UTC).isoformat(),
        "messages": [{"part": m.part, "text": m.text, "blocks": m.blocks} for m in parts],
    }
    write_atomic(md_path, md_text.encode())
    write_atomic(blocks_path, orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return DigestFiles(markdown=md_path, blocks=blocks_path)
