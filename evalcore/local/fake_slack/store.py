"""The fake workspace's state: channels and people from the configuration, the messages
posted (with threads, edits, reactions and deletions), ephemeral messages, and what the
control API and Socket Mode keep (recorded requests, pending faults, connections).

State lives in memory, in one process and one event loop: every handler reads and
mutates it without awaiting in between, so concurrent requests cannot interleave inside
an operation.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.websockets import WebSocket

from evalcore.local.fake_slack.calls import JSON, SlackError, missing
from evalcore.local.fake_slack.config import FakeChannel, FakeSlackConfig, Fault
from evalcore.slack.blockkit import block_errors

__all__ = ["MAX_RECORDED_REQUESTS", "TS", "FakeSlack", "StoredMessage", "block_id", "ts_key"]

MAX_RECORDED_REQUESTS = 10_000
TS = re.compile(r"^\d{1,12}(\.\d{1,6})?$")


def ts_key(value: str) -> Decimal:
    """A message ts as a number, for ordering and comparing."""
    return Decimal(value)


def block_id(ts: str, index: int) -> str:
    """The block id Slack gives a block posted without one: stable per message and place."""
    digest = hashlib.sha1(f"{ts}/{index}".encode()).digest()
    return base64.b32encode(digest).decode()[:5].lower()


@dataclass
class StoredMessage:
    """A message as the fake keeps it, deleted ones and edit history included."""

    channel: str
    ts: str
    text: str
    user: str
    by_bot: bool
    thread_ts: str | None = None
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    metadata: JSON | None = None
    broadcast: bool = False
    orphan: bool = False
    edited: JSON | None = None
    reactions: list[JSON] = field(default_factory=list)
    deleted: bool = False
    tombstone: bool = False
    client_msg_id: str | None = None
    history: list[JSON] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


class FakeSlack:
    """The fake workspace's state and the lookups the Web API methods share (no HTTP)."""

    def __init__(self, config: FakeSlackConfig) -> None:
        self.config = config
        self.channels = {c.id: c for c in config.channels}
        self.channels_by_name = {c.name: c for c in config.channels}
        self.users = {u.id: u for u in config.users}
        self.scopes = set(config.scopes)
        self.reset()

    def reset(self) -> None:
        """Forget messages, ephemeral messages, recorded requests and pending faults."""
        self.messages: dict[str, list[StoredMessage]] = {c: [] for c in self.channels}
        self.by_ts: dict[tuple[str, str], StoredMessage] = {}
        self.ephemeral: list[JSON] = []
        self.requests: deque[JSON] = deque(maxlen=MAX_RECORDED_REQUESTS)
        self.faults: list[Fault] = []
        self.ws_base = "ws://127.0.0.1"  # set from the first request's Host
        self.sockets: list[WebSocket] = []
        self.socket_acks: list[JSON] = []
        self._request_ids = 0
        self._last_us = 0

    # ----------------------------------------------------------------- bookkeeping

    def next_ts(self) -> str:
        """A fresh message ts: the clock in microseconds, strictly increasing."""
        now_us = time.time_ns() // 1000
        self._last_us = max(now_us, self._last_us + 1)
        seconds, micros = divmod(self._last_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def remember_request(self, record: JSON) -> None:
        """Keep a Web API request for the control API, numbered in arrival order."""
        self._request_ids += 1
        record["id"] = self._request_ids
        self.requests.append(record)

    def take_fault(self, method: str) -> Fault | None:
        """The first pending fault for `method`, counted as served once."""
        for fault in self.faults:
            if fault.method is None or fault.method == method:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault.model_copy()
        return None

    # ----------------------------------------------------------------- lookups

    def channel(self, value: Any, *, by_name: bool = False) -> FakeChannel:
        """The channel a call names (by id, or `#name` where Slack accepts names)."""
        if not isinstance(value, str) or not value:
            raise missing("channel")
        channel = self.channels.get(value)
        if channel is None and by_name:
            channel = self.channels_by_name.get(value.removeprefix("#"))
        if channel is None:
            raise SlackError("channel_not_found")
        if channel.is_private and not channel.bot_is_member:
            raise SlackError("channel_not_found")  # private channels are invisible to outsiders
        return channel

    def members(self, channel: FakeChannel) -> set[str]:
        members = set(channel.members) if channel.members is not None else set(self.users)
        if channel.bot_is_member:
            members.add(self.config.bot_user_id)
        return members

    def find(self, channel: str, ts: Any, *, error: str = "message_not_found") -> StoredMessage:
        """A live message by channel and ts, or `error`."""
        if not isinstance(ts, str | int | float) or isinstance(ts, bool):
            raise SlackError(error)
        message = self.by_ts.get((channel, str(ts)))
        if message is None or message.deleted:
            raise SlackError(error)
        return message

    def live_replies(self, parent: StoredMessage) -> list[StoredMessage]:
        return [
            m
            for m in self.messages[parent.channel]
            if m.thread_ts == parent.ts and m.is_reply and not m.deleted
        ]

    # ----------------------------------------------------------------- storing

    def store(
        self,
        channel: FakeChannel,
        *,
        user: str,
        by_bot: bool,
        text: str,
        content: JSON,
        thread_ts: str | None,
        broadcast: bool,
    ) -> StoredMessage:
        """Keep a new message; a reply goes under its thread's root."""
        parent_ts: str | None = None
        orphan = False
        if thread_ts is not None:
            parent = self.by_ts.get((channel.id, thread_ts))
            if parent is None or parent.deleted:
                # Slack accepts a well-formed ts it does not know and files the reply under
                # it: the call succeeds but the message shows up nowhere in the channel.
                parent_ts, orphan = thread_ts, True
            else:
                parent_ts = parent.thread_ts if parent.is_reply else parent.ts
        ts = self.next_ts()
        blocks = content.get("blocks")
        if blocks:
            blocks = [
                b if "block_id" in b else {**b, "block_id": block_id(ts, i)}
                for i, b in enumerate(blocks)
            ]
        message = StoredMessage(
            channel=channel.id,
            ts=ts,
            text=text,
            user=user,
            by_bot=by_bot,
            thread_ts=parent_ts,
            blocks=blocks or None,
            attachments=content.get("attachments") or None,
            metadata=content.get("metadata"),
            broadcast=broadcast and parent_ts is not None,
            orphan=orphan,
            client_msg_id=None if by_bot else str(uuid.uuid4()),
        )
        self.messages[channel.id].append(message)
        self.by_ts[(channel.id, ts)] = message
        return message

    def inject_user_message(
        self,
        channel_ref: str,
        text: str,
        *,
        user: str | None = None,
        thread_ts: str | None = None,
        blocks: list[JSON] | None = None,
        reply_broadcast: bool = False,
    ) -> StoredMessage:
        """A human posts (control API): raises SlackError on unknown channel/user/thread."""
        channel = self.channels.get(channel_ref) or self.channels_by_name.get(
            channel_ref.removeprefix("#")
        )
        if channel is None:
            raise SlackError("channel_not_found")
        user_id = user or next(iter(self.users), None)
        if user_id is None or user_id not in self.users:
            raise SlackError("user_not_found")
        if user_id not in self.members(channel):
            raise SlackError("not_in_channel")
        if thread_ts is not None:
            parent = self.by_ts.get((channel.id, thread_ts))
            if parent is None or parent.deleted:
                raise SlackError("thread_not_found")
        if blocks is not None:
            errors = block_errors(blocks)
            if errors:
                raise SlackError("invalid_blocks", errors=errors)
        return self.store(
            channel,
            user=user_id,
            by_bot=False,
            text=text,
            content={"blocks": blocks} if blocks else {},
            thread_ts=thread_ts,
            broadcast=reply_broadcast,
        )
