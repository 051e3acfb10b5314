"""A local fake of the Slack Web API that honours Slack's contract, for tests and demos
without network access; the real `slack_sdk` clients talk to it through `base_url`.

    with FakeSlackServer() as slack:
        client = WebClient(token=slack.token, base_url=slack.api_url)
        client.chat_postMessage(channel="#support-assistant-evals", text="hello")
        slack.messages("C0EVALS01")  # what was posted, with edit history

Web API (`GET` or `POST /api/<method>`; query string, form-urlencoded, multipart or JSON
bodies; token in `Authorization: Bearer` or a form field): `auth.test`,
`chat.postMessage`, `chat.update`, `chat.delete`, `chat.postEphemeral`,
`chat.getPermalink`, `conversations.replies`, `conversations.history`,
`conversations.info`, `users.info`, `reactions.add`. Anything else answers
`unknown_method`. Errors are HTTP 200 `{"ok": false, "error": ...}` as on Slack, with
`response_metadata.messages` where Slack gives details; warnings (`missing_charset`,
`superfluous_charset`, `message_truncated`) come as `warning` plus
`response_metadata.warnings`.

Control API (not Slack's): `GET /health`, `POST /_fake/faults`, `GET /_fake/faults`,
`GET /_fake/requests`, `GET /_fake/messages`, `POST /_fake/user_message`,
`POST /_fake/reset`. A fault (`POST /_fake/faults`, see `Fault`) answers the next
matching calls with a 429, a 5xx, an `ok: false` error or a delay; with `takes_effect`
the call is carried out first, so a message is stored although the client sees a 500 or
times out waiting, as when Slack fails after storing it.

State lives in memory, in one process and one event loop: every handler reads and
mutates it without awaiting in between, so concurrent requests cannot interleave inside
an operation. It is not shared between workers; run one.
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import hashlib
import json
import os
import re
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from evalcore.local.loopback import LoopbackServer

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SCOPES",
    "DEFAULT_TOKEN",
    "MAX_BLOCKS",
    "MAX_TEXT_CHARS",
    "SUPPORTED_METHODS",
    "FakeChannel",
    "FakeSlack",
    "FakeSlackConfig",
    "FakeSlackError",
    "FakeSlackServer",
    "FakeUser",
    "Fault",
    "create_app",
    "serve",
]

DEFAULT_PORT = 8790
DEFAULT_TOKEN = "xoxb-fake-evalcore"
MAX_TEXT_CHARS = 40_000
MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100
MAX_RECORDED_REQUESTS = 10_000
DEFAULT_SCOPES: tuple[str, ...] = (
    "chat:write",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
    "users:read",
    "reactions:write",
)

JSON = dict[str, Any]


# --------------------------------------------------------------------------- configuration


class FakeChannel(BaseModel):
    """A conversation of the fake workspace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[CG][A-Z0-9]{2,}$")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,79}$")
    is_private: bool = False
    is_archived: bool = False
    is_general: bool = False
    bot_is_member: bool = True
    members: list[str] | None = None
    """User ids in the channel; None means every user of the directory."""
    topic: str = ""
    purpose: str = ""
    created: int = 1_700_000_000


class FakeUser(BaseModel):
    """A human of the fake workspace's directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[UW][A-Z0-9]{2,}$")
    name: str
    real_name: str
    display_name: str = ""
    email: str | None = None
    tz: str = "Europe/Berlin"
    tz_label: str = "Central European Time"
    tz_offset: int = 3600
    is_admin: bool = False
    deleted: bool = False


DEFAULT_APP_TOKEN = "xapp-1-fake-evalcore"


def _default_channels() -> list[FakeChannel]:
    return [
        FakeChannel(
            id="C0EVALS01",
            name="support-assistant-evals",
            topic="Eval results and the weekly triage digest",
            purpose="Where evalcore reports on the support assistant",
        ),
        FakeChannel(id="C0GENERAL1", name="general", is_general=True),
        FakeChannel(id="G0EVALPRIV", name="eval-owners-private", is_private=True),
    ]


def _default_users() -> list[FakeUser]:
    """The people of the example suite's owners.yaml, plus one who owns nothing."""
    people = [
        ("U04QH7KM2AB", "maya.okafor", "Maya Okafor", False),
        ("U05B8RZT1QK", "daniel.brandt", "Daniel Brandt", False),
        ("U03LMX9PE2C", "priya.raman", "Priya Raman", False),
        ("U06KQ2VN8HD", "tom.lindqvist", "Tom Lindqvist", False),
        ("U06LS3PQ8ZW", "lena.schmidt", "Lena Schmidt", True),
    ]
    return [
        FakeUser(
            id=user_id,
            name=name,
            real_name=real_name,
            display_name=name.split(".")[0],
            email=f"{name}@lumenhome.example",
            is_admin=admin,
        )
        for user_id, name, real_name, admin in people
    ]


class FakeSlackConfig(BaseModel):
    """The fake workspace: who may call, what the bot may do, channels and people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[str] = Field(default_factory=lambda: [DEFAULT_TOKEN], min_length=1)
    # App-level tokens, for Socket Mode's apps.connections.open only.
    app_tokens: list[str] = Field(default_factory=lambda: [DEFAULT_APP_TOKEN])
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    team_id: str = "T07EVALCORE"
    team_name: str = "Evalcore"
    team_domain: str = "evalcore"
    bot_user_id: str = "U07EVALBOT"
    bot_id: str = "B07EVALBOT"
    app_id: str = "A07EVALAPP"
    bot_name: str = "evalcore"
    signing_secret: str = "fake-signing-secret-evalcore"
    channels: list[FakeChannel] = Field(default_factory=_default_channels)
    users: list[FakeUser] = Field(default_factory=_default_users)

    @field_validator("tokens")
    @classmethod
    def _tokens_look_like_tokens(cls, value: list[str]) -> list[str]:
        for token in value:
            if not re.fullmatch(r"xox[abpe]-[A-Za-z0-9\-]+", token):
                raise ValueError(f"not a Slack token: {token[:8]!r}...")
        return value

    @model_validator(mode="after")
    def _unique(self) -> FakeSlackConfig:
        for what, values in (
            ("channel id", [c.id for c in self.channels]),
            ("channel name", [c.name for c in self.channels]),
            ("user id", [u.id for u in self.users]),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"duplicate {what} in the fake workspace")
        if self.bot_user_id in {u.id for u in self.users}:
            raise ValueError("the bot user id is also a human's id")
        known = {u.id for u in self.users}
        for channel in self.channels:
            unknown = set(channel.members or ()) - known
            if unknown:
                raise ValueError(f"#{channel.name} lists unknown members {sorted(unknown)}")
        return self

    @property
    def token(self) -> str:
        """The first configured token (the one `FakeSlackServer` hands to clients)."""
        return self.tokens[0]


class Fault(BaseModel):
    """A misbehaviour served to the next `times` matching Web API calls.

    `status=429` answers `ratelimited` with `Retry-After: retry_after` (default 1);
    `status>=500` answers that status with `{"ok": false, "error": "internal_error"}`;
    `error` alone (status 200) forces `{"ok": false, "error": error}`. `delay_s` waits
    before answering (then answers normally if nothing else is set). `method=None`
    matches every method.

    `takes_effect=True` carries the call out first (a posted message is stored) and only
    then delays or replaces the answer: Slack stored the message but the client saw a
    500, or its timeout passed before the answer came. Slack does not carry out a
    rate-limited call, so it does not go with 429.
    """

    model_config = ConfigDict(extra="forbid")

    method: str | None = None
    status: int = Field(default=200, ge=200, le=599)
    error: str | None = None
    retry_after: int | None = Field(default=None, ge=0)
    times: int = Field(default=1, ge=1)
    delay_s: float = Field(default=0.0, ge=0, le=60)
    takes_effect: bool = False

    @model_validator(mode="after")
    def _meaningful(self) -> Fault:
        if 200 < self.status < 400:
            raise ValueError("a fault status is 200 (with error), 4xx or 5xx")
        if self.status == 200 and self.error is None and self.delay_s == 0:
            raise ValueError("a fault needs a status other than 200, an error or a delay")
        if self.retry_after is not None and self.status != 429:
            raise ValueError("retry_after only goes with status 429")
        if self.takes_effect and self.status == 429:
            raise ValueError("a rate-limited call is not carried out: no takes_effect with 429")
        return self


# --------------------------------------------------------------------------- state


class SlackError(Exception):
    """An `ok: false` answer (HTTP 200 unless `status` says otherwise)."""

    def __init__(
        self,
        error: str,
        *,
        messages: Iterable[str] = (),
        errors: Iterable[str] | None = None,
        extra: JSON | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)
        self.errors = list(errors) if errors is not None else None
        self.extra = extra or {}


def _missing(name: str) -> SlackError:
    return SlackError("invalid_arguments", messages=[f"[ERROR] missing required field: {name}"])


@dataclass
class _Message:
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


@dataclass
class _Call:
    method: str
    params: JSON
    warnings: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


_TS = re.compile(r"^\d{1,12}(\.\d{1,6})?$")
_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)


def _ts_key(value: str) -> Decimal:
    return Decimal(value)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in ("1", "true", "yes")


def _text_param(params: JSON, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _block_id(ts: str, index: int) -> str:
    digest = hashlib.sha1(f"{ts}/{index}".encode()).digest()
    return base64.b32encode(digest).decode()[:5].lower()


_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def _rich_text(text: str, ts: str) -> list[JSON]:
    """The rich_text block Slack derives from a message's plain `text`."""
    elements: list[JSON] = []
    position = 0
    for match in _MENTION.finditer(text):
        if match.start() > position:
            elements.append({"type": "text", "text": text[position : match.start()]})
        elements.append({"type": "user", "user_id": match.group(1)})
        position = match.end()
    if position < len(text):
        elements.append({"type": "text", "text": text[position:]})
    return [
        {
            "type": "rich_text",
            "block_id": _block_id(ts, 0),
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


def _text_object_errors(obj: Any, pointer: str, limit: int, plain_only: bool) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must provide an object [json-pointer:{pointer}]"]
    errors: list[str] = []
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        errors.append(f"must be one of {', '.join(kinds)} [json-pointer:{pointer}/type]")
    text = obj.get("text")
    if not isinstance(text, str):
        errors.append(f"missing required field: text [json-pointer:{pointer}]")
    elif len(text) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{pointer}/text]")
    return errors


def _block_errors(blocks: list[Any]) -> list[str]:
    """Block Kit checks with Slack's wording; the common limits, not the whole schema."""
    if len(blocks) > MAX_BLOCKS:
        return [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"]
    errors: list[str] = []
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        pointer = f"/blocks/{index}"
        if not isinstance(block, dict):
            errors.append(f"must provide an object [json-pointer:{pointer}]")
            continue
        kind = block.get("type")
        if not isinstance(kind, str) or not kind:
            errors.append(f"missing required field: type [json-pointer:{pointer}]")
            continue
        if kind not in _BLOCK_TYPES:
            errors.append(f"unsupported type: {kind} [json-pointer:{pointer}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= 255:
                errors.append(f"must be 1-255 characters [json-pointer:{pointer}/block_id]")
            elif block_id in block_ids:
                errors.append(f"duplicate block_id: {block_id} [json-pointer:{pointer}/block_id]")
            else:
                block_ids.add(block_id)
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and fields is None:
                errors.append(f"must provide either text or fields [json-pointer:{pointer}]")
            if text is not None:
                errors += _text_object_errors(text, f"{pointer}/text", 3000, plain_only=False)
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > 10:
                    errors.append(f"no more than 10 items allowed [json-pointer:{pointer}/fields]")
                else:
                    for i, item in enumerate(fields):
                        errors += _text_object_errors(
                            item, f"{pointer}/fields/{i}", 2000, plain_only=False
                        )
        elif kind == "header":
            errors += _text_object_errors(block.get("text"), f"{pointer}/text", 150, True)
        elif kind in ("actions", "context"):
            elements = block.get("elements")
            most = 25 if kind == "actions" else 10
            if not isinstance(elements, list) or not elements:
                errors.append(f"missing required field: elements [json-pointer:{pointer}]")
            elif len(elements) > most:
                errors.append(
                    f"no more than {most} items allowed [json-pointer:{pointer}/elements]"
                )
            elif kind == "actions":
                for i, element in enumerate(elements):
                    errors += _button_errors(element, f"{pointer}/elements/{i}")
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str):
                errors.append(f"missing required field: text [json-pointer:{pointer}]")
            elif len(text) > 12000:
                errors.append(f"must be less than 12001 characters [json-pointer:{pointer}/text]")
    return errors


def _button_errors(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"missing required field: type [json-pointer:{pointer}]"]
    if element["type"] != "button":
        return []
    errors = _text_object_errors(element.get("text"), f"{pointer}/text", 75, plain_only=True)
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        errors.append(f"must be less than 256 characters [json-pointer:{pointer}/action_id]")
    value = element.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > 2000):
        errors.append(f"must be less than 2001 characters [json-pointer:{pointer}/value]")
    return errors


def _mask(token: str) -> str:
    return token[:6] + "*" * max(len(token) - 6, 0)


def _cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts.replace('.', '')}".encode()).decode()


def _cursor_ts(cursor: str) -> Decimal:
    try:
        raw = base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    prefix, _, digits = raw.partition(":")
    if prefix != "next_ts" or not digits.isdigit() or len(digits) < 7:
        raise SlackError("invalid_cursor")
    return Decimal(f"{digits[:-6]}.{digits[-6:]}")


Handler = Callable[[_Call], JSON]


class FakeSlack:
    """The fake workspace's state and the Web API methods over it (no HTTP here)."""

    def __init__(self, config: FakeSlackConfig) -> None:
        self.config = config
        self.channels = {c.id: c for c in config.channels}
        self.channels_by_name = {c.name: c for c in config.channels}
        self.users = {u.id: u for u in config.users}
        self.scopes = set(config.scopes)
        self.methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "apps.connections.open": self._apps_connections_open,
            "users.info": self._users_info,
            "reactions.add": self._reactions_add,
        }
        self.reset()

    def reset(self) -> None:
        """Forget messages, ephemeral messages, recorded requests and pending faults."""
        self.messages: dict[str, list[_Message]] = {c: [] for c in self.channels}
        self.by_ts: dict[tuple[str, str], _Message] = {}
        self.ephemeral: list[JSON] = []
        self.requests: deque[JSON] = deque(maxlen=MAX_RECORDED_REQUESTS)
        self.faults: list[Fault] = []
        self.ws_base = "ws://127.0.0.1"  # set from the first request's Host
        self.sockets: list[WebSocket] = []
        self.socket_acks: list[JSON] = []
        self._request_ids = 0
        self._last_us = 0

    # ----------------------------------------------------------------- helpers

    def next_ts(self) -> str:
        """A fresh message ts: the clock in microseconds, strictly increasing."""
        now_us = time.time_ns() // 1000
        self._last_us = max(now_us, self._last_us + 1)
        seconds, micros = divmod(self._last_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.method is None or fault.method == method:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault.model_copy()
        return None

    def _channel(self, value: Any, *, by_name: bool = False) -> FakeChannel:
        if not isinstance(value, str) or not value:
            raise _missing("channel")
        channel = self.channels.get(value)
        if channel is None and by_name:
            channel = self.channels_by_name.get(value.removeprefix("#"))
        if channel is None:
            raise SlackError("channel_not_found")
        if channel.is_private and not channel.bot_is_member:
            raise SlackError("channel_not_found")  # private channels are invisible to outsiders
        return channel

    def _members(self, channel: FakeChannel) -> set[str]:
        members = set(channel.members) if channel.members is not None else set(self.users)
        if channel.bot_is_member:
            members.add(self.config.bot_user_id)
        return members

    def _find(self, channel: str, ts: Any, *, error: str = "message_not_found") -> _Message:
        if not isinstance(ts, str | int | float) or isinstance(ts, bool):
            raise SlackError(error)
        message = self.by_ts.get((channel, str(ts)))
        if message is None or message.deleted:
            raise SlackError(error)
        return message

    def _live_replies(self, parent: _Message) -> list[_Message]:
        return [
            m
            for m in self.messages[parent.channel]
            if m.thread_ts == parent.ts and m.is_reply and not m.deleted
        ]

    def _content(self, call: _Call, *, require: bool = True) -> tuple[str | None, JSON]:
        """Text, blocks, attachments and metadata of a posting call, validated as Slack does."""
        params = call.params
        text = _text_param(params, "text")
        content: JSON = {}
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = orjson.loads(blocks) if blocks.strip() else []
            except orjson.JSONDecodeError:
                raise SlackError("invalid_blocks_format") from None
        if blocks is not None:
            if not isinstance(blocks, list):
                raise SlackError("invalid_blocks_format")
            errors = _block_errors(blocks)
            if errors:
                raise SlackError(
                    "invalid_blocks", errors=errors, messages=[f"[ERROR] {e}" for e in errors]
                )
            content["blocks"] = blocks
        attachments = params.get("attachments")
        if isinstance(attachments, str):
            try:
                attachments = orjson.loads(attachments) if attachments.strip() else []
            except orjson.JSONDecodeError:
                raise SlackError("invalid_attachments") from None
        if attachments is not None:
            if not isinstance(attachments, list) or not all(
                isinstance(a, dict) for a in attachments
            ):
                raise SlackError("invalid_attachments")
            if len(attachments) > MAX_ATTACHMENTS:
                raise SlackError("too_many_attachments")
            content["attachments"] = attachments
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = orjson.loads(metadata)
            except orjson.JSONDecodeError:
                raise SlackError("invalid_metadata_format") from None
        if metadata is not None:
            if (
                not isinstance(metadata, dict)
                or not isinstance(metadata.get("event_type"), str)
                or not isinstance(metadata.get("event_payload"), dict)
            ):
                raise SlackError("invalid_metadata_format")
            content["metadata"] = {
                "event_type": metadata["event_type"],
                "event_payload": metadata["event_payload"],
            }
        if require and not text and not content.get("blocks") and not content.get("attachments"):
            raise SlackError("no_text")
        return text, content

    # ----------------------------------------------------------------- rendering

    def _bot_profile(self) -> JSON:
        c = self.config
        return {
            "id": c.bot_id,
            "deleted": False,
            "name": c.bot_name,
            "updated": 1_700_000_000,
            "app_id": c.app_id,
            "user_id": c.bot_user_id,
            "icons": {
                "image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png",
                "image_48": "https://a.slack-edge.com/80588/img/plugins/app/bot_48.png",
                "image_72": "https://a.slack-edge.com/80588/img/plugins/app/service_72.png",
            },
            "team_id": c.team_id,
        }

    def render(self, m: _Message, *, metadata: bool = True, root: bool = True) -> JSON:
        """The message object as conversations.history/replies show it."""
        c = self.config
        if m.tombstone:
            out: JSON = {
                "type": "message",
                "subtype": "tombstone",
                "text": "This message was deleted.",
                "user": "USLACKBOT",
                "hidden": True,
                "ts": m.ts,
            }
            self._thread_fields(m, out)
            return out
        out = {"user": m.user, "type": "message", "ts": m.ts}
        if m.by_bot:
            out.update(bot_id=c.bot_id, app_id=c.app_id)
        elif m.client_msg_id:
            out["client_msg_id"] = m.client_msg_id
        if m.broadcast:
            out["subtype"] = "thread_broadcast"
        out["text"] = m.text
        out["team"] = c.team_id
        if m.by_bot:
            out["bot_profile"] = self._bot_profile()
        if m.is_reply:
            out["thread_ts"] = m.thread_ts
            parent = self.by_ts.get((m.channel, m.thread_ts or ""))
            if parent is not None:
                out["parent_user_id"] = parent.user
                if m.broadcast and root:
                    out["root"] = self.render(parent, metadata=metadata, root=False)
        else:
            self._thread_fields(m, out)
        if m.edited is not None:
            out["edited"] = dict(m.edited)
        if m.blocks:
            out["blocks"] = m.blocks
        elif m.text and not m.attachments:
            out["blocks"] = _rich_text(m.text, m.ts)
        if m.attachments:
            out["attachments"] = [{"id": i + 1, **a} for i, a in enumerate(m.attachments)]
        if m.reactions:
            out["reactions"] = [
                {"name": r["name"], "users": list(r["users"]), "count": len(r["users"])}
                for r in m.reactions
            ]
        if metadata and m.metadata is not None:
            out["metadata"] = dict(m.metadata)
        return out

    def _thread_fields(self, m: _Message, out: JSON) -> None:
        replies = self._live_replies(m)
        if not replies:
            return
        users: list[str] = []
        for reply in replies:
            if reply.user not in users:
                users.append(reply.user)
        out.update(
            thread_ts=m.ts,
            reply_count=len(replies),
            reply_users_count=len(users),
            latest_reply=replies[-1].ts,
            reply_users=users,
            is_locked=False,
            subscribed=False,
        )

    def record(self, m: _Message) -> JSON:
        """One stored message for the control API: the rendering plus fake-only facts."""
        return {
            "channel": m.channel,
            "ts": m.ts,
            "thread_ts": m.thread_ts if m.is_reply else None,
            "author": "bot" if m.by_bot else "user",
            "user": m.user,
            "text": m.text,
            "deleted": m.deleted,
            "tombstone": m.tombstone,
            "orphan": m.orphan,
            "broadcast": m.broadcast,
            "edits": [dict(h) for h in m.history],
            "message": self.render(m),
        }

    # ----------------------------------------------------------------- storing

    def _store(
        self,
        channel: FakeChannel,
        *,
        user: str,
        by_bot: bool,
        text: str,
        content: JSON,
        thread_ts: str | None,
        broadcast: bool,
    ) -> _Message:
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
                b if "block_id" in b else {**b, "block_id": _block_id(ts, i)}
                for i, b in enumerate(blocks)
            ]
        message = _Message(
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

    def _thread_ts(self, call: _Call) -> str | None:
        raw = call.params.get("thread_ts")
        if raw is None or raw == "":
            return None
        value = _text_param(call.params, "thread_ts") or ""
        if not _TS.match(value) or _ts_key(value) <= 0:
            raise SlackError(
                "invalid_thread_ts", messages=[f"[ERROR] {value} is not a valid thread_ts"]
            )
        return value

    def _truncate(self, call: _Call, text: str | None) -> str:
        text = text or ""
        if len(text) > MAX_TEXT_CHARS:
            call.warnings.append("message_truncated")
            call.messages.append(
                "[WARN] Your message was truncated but still posted. "
                f"The `text` field accepts up to {MAX_TEXT_CHARS:,} characters."
            )
            return text[:MAX_TEXT_CHARS]
        return text

    def inject_user_message(
        self,
        channel_ref: str,
        text: str,
        *,
        user: str | None = None,
        thread_ts: str | None = None,
        blocks: list[JSON] | None = None,
        reply_broadcast: bool = False,
    ) -> JSON:
        """A human posts (control API): raises SlackError on unknown channel/user/thread."""
        channel = self.channels.get(channel_ref) or self.channels_by_name.get(
            channel_ref.removeprefix("#")
        )
        if channel is None:
            raise SlackError("channel_not_found")
        user_id = user or next(iter(self.users), None)
        if user_id is None or user_id not in self.users:
            raise SlackError("user_not_found")
        if user_id not in self._members(channel):
            raise SlackError("not_in_channel")
        if thread_ts is not None:
            parent = self.by_ts.get((channel.id, thread_ts))
            if parent is None or parent.deleted:
                raise SlackError("thread_not_found")
        if blocks is not None:
            errors = _block_errors(blocks)
            if errors:
                raise SlackError("invalid_blocks", errors=errors)
        message = self._store(
            channel,
            user=user_id,
            by_bot=False,
            text=text,
            content={"blocks": blocks} if blocks else {},
            thread_ts=thread_ts,
            broadcast=reply_broadcast,
        )
        return {"channel": channel.id, "ts": message.ts, "message": self.render(message)}

    # ----------------------------------------------------------------- methods

    def _auth_test(self, call: _Call) -> JSON:
        c = self.config
        return {
            "url": f"https://{c.team_domain}.slack.com/",
            "team": c.team_name,
            "user": c.bot_name,
            "team_id": c.team_id,
            "user_id": c.bot_user_id,
            "bot_id": c.bot_id,
            "is_enterprise_install": False,
        }

    def _writable(self, channel: FakeChannel) -> None:
        if channel.is_archived:
            raise SlackError("is_archived")
        public_ok = not channel.is_private and "chat:write.public" in self.scopes
        if not channel.bot_is_member and not public_ok:
            raise SlackError("not_in_channel")

    def _chat_post_message(self, call: _Call) -> JSON:
        channel = self._channel(call.params.get("channel"), by_name=True)
        self._writable(channel)
        thread_ts = self._thread_ts(call)
        text, content = self._content(call)
        message = self._store(
            channel,
            user=self.config.bot_user_id,
            by_bot=True,
            text=self._truncate(call, text),
            content=content,
            thread_ts=thread_ts,
            broadcast=_flag(call.params.get("reply_broadcast")),
        )
        return {"channel": channel.id, "ts": message.ts, "message": self.render(message)}

    def _chat_update(self, call: _Call) -> JSON:
        params = call.params
        channel = self._channel(params.get("channel"))
        if params.get("ts") in (None, ""):
            raise _missing("ts")
        message = self._find(channel.id, _text_param(params, "ts"))
        if not message.by_bot or message.tombstone:
            raise SlackError("cant_update_message")
        text, content = self._content(call, require=False)
        new_text = message.text if text is None else text
        new_blocks = message.blocks if "blocks" not in content else content["blocks"] or None
        new_attachments = (
            message.attachments if "attachments" not in content else content["attachments"] or None
        )
        if not new_text and not new_blocks and not new_attachments:
            raise SlackError("no_text")
        if len(new_text) > MAX_TEXT_CHARS:
            raise SlackError("msg_too_long")
        edit_ts = self.next_ts()
        message.history.append(
            {
                "text": message.text,
                "blocks": message.blocks,
                "attachments": message.attachments,
                "replaced_at": edit_ts,
            }
        )
        message.text = new_text
        if new_blocks:
            new_blocks = [
                b if "block_id" in b else {**b, "block_id": _block_id(edit_ts, i)}
                for i, b in enumerate(new_blocks)
            ]
        message.blocks = new_blocks
        message.attachments = new_attachments
        if "metadata" in content:
            message.metadata = content["metadata"]
        message.edited = {"user": self.config.bot_user_id, "ts": edit_ts}
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": self.render(message),
        }

    def _chat_delete(self, call: _Call) -> JSON:
        channel = self._channel(call.params.get("channel"))
        if call.params.get("ts") in (None, ""):
            raise _missing("ts")
        message = self._find(channel.id, _text_param(call.params, "ts"))
        if not message.by_bot or message.tombstone:
            raise SlackError("cant_delete_message")
        if not message.is_reply and self._live_replies(message):
            message.tombstone = True  # a parent with replies leaves a tombstone behind
        else:
            message.deleted = True
        return {"channel": channel.id, "ts": message.ts}

    def _chat_post_ephemeral(self, call: _Call) -> JSON:
        params = call.params
        channel = self._channel(params.get("channel"), by_name=True)
        user = params.get("user")
        if not isinstance(user, str) or not user:
            raise _missing("user")
        self._writable(channel)
        if user not in self._members(channel) or user not in self.users:
            raise SlackError("user_not_in_channel")
        thread_ts = self._thread_ts(call)
        text, content = self._content(call)
        ts = self.next_ts()
        message: JSON = {
            "type": "message",
            "subtype": "bot_message",
            "text": self._truncate(call, text),
            "ts": ts,
            "bot_id": self.config.bot_id,
            "app_id": self.config.app_id,
        }
        if content.get("blocks"):
            message["blocks"] = content["blocks"]
        if content.get("attachments"):
            message["attachments"] = content["attachments"]
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        self.ephemeral.append({"channel": channel.id, "user": user, "message": message})
        return {"message_ts": ts}

    def _chat_get_permalink(self, call: _Call) -> JSON:
        channel = self._channel(call.params.get("channel"))
        if call.params.get("message_ts") in (None, ""):
            raise _missing("message_ts")
        message = self._find(channel.id, _text_param(call.params, "message_ts"))
        link = (
            f"https://{self.config.team_domain}.slack.com/archives/{channel.id}/"
            f"p{message.ts.replace('.', '')}"
        )
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def _readable(self, call: _Call, kind: str) -> FakeChannel:
        channel = self._channel(call.params.get("channel"))
        scope = f"{'groups' if channel.is_private else 'channels'}:{kind}"
        if scope not in self.scopes:
            raise SlackError("missing_scope", extra={"needed": scope})
        if kind == "history" and not channel.bot_is_member:
            raise SlackError("not_in_channel")
        return channel

    @staticmethod
    def _limit(call: _Call, default: int) -> int:
        raw = call.params.get("limit")
        if raw in (None, ""):
            return default
        try:
            limit = int(str(raw))
        except ValueError:
            raise SlackError("invalid_limit") from None
        return default if limit <= 0 else min(limit, 999)

    @staticmethod
    def _bound(call: _Call, name: str) -> Decimal | None:
        value = _text_param(call.params, name)
        if value in (None, ""):
            return None
        assert value is not None
        try:
            return _ts_key(value)
        except InvalidOperation:
            raise SlackError(f"invalid_ts_{name}") from None

    def _window(self, call: _Call, messages: list[_Message]) -> list[_Message]:
        oldest, latest = self._bound(call, "oldest"), self._bound(call, "latest")
        inclusive = _flag(call.params.get("inclusive"))

        def inside(m: _Message) -> bool:
            key = _ts_key(m.ts)
            if oldest is not None and (key < oldest or (key == oldest and not inclusive)):
                return False
            return latest is None or key < latest or (key == latest and inclusive)

        return [m for m in messages if inside(m)]

    def _page(
        self, call: _Call, items: list[_Message], default_limit: int, newest_first: bool
    ) -> tuple[list[_Message], str | None]:
        limit = self._limit(call, default_limit)
        cursor = call.params.get("cursor")
        if cursor:
            start = _cursor_ts(str(cursor))
            items = [
                m
                for m in items
                if (_ts_key(m.ts) <= start if newest_first else _ts_key(m.ts) >= start)
            ]
        page, rest = items[:limit], items[limit:]
        return page, (_cursor(rest[0].ts) if rest else None)

    def _conversations_history(self, call: _Call) -> JSON:
        channel = self._readable(call, "history")
        visible = [
            m
            for m in self.messages[channel.id]
            if not m.deleted and not m.orphan and (not m.is_reply or m.broadcast)
        ]
        visible = self._window(call, visible)
        visible.reverse()
        page, next_cursor = self._page(call, visible, 100, newest_first=True)
        with_metadata = _flag(call.params.get("include_all_metadata"))
        out: JSON = {
            "messages": [self.render(m, metadata=with_metadata) for m in page],
            "has_more": next_cursor is not None,
            "pin_count": 0,
        }
        if next_cursor is not None:
            out["response_metadata"] = {"next_cursor": next_cursor}
        return out

    def _conversations_replies(self, call: _Call) -> JSON:
        channel = self._readable(call, "history")
        if call.params.get("ts") in (None, ""):
            raise _missing("ts")
        message = self._find(channel.id, _text_param(call.params, "ts"), error="thread_not_found")
        if message.is_reply:
            if message.orphan:
                raise SlackError("thread_not_found")
            message = self._find(channel.id, message.thread_ts, error="thread_not_found")
        thread = [message, *self._window(call, self._live_replies(message))]
        page, next_cursor = self._page(call, thread, 1000, newest_first=False)
        with_metadata = _flag(call.params.get("include_all_metadata"))
        out: JSON = {
            "messages": [self.render(m, metadata=with_metadata) for m in page],
            "has_more": next_cursor is not None,
        }
        if next_cursor is not None:
            out["response_metadata"] = {"next_cursor": next_cursor}
        return out

    def _conversations_info(self, call: _Call) -> JSON:
        channel = self._readable(call, "read")
        info = self._channel_info(channel)
        if _flag(call.params.get("include_num_members")):
            info["num_members"] = len(self._members(channel))
        return {"channel": info}

    def _apps_connections_open(self, call: _Call) -> JSON:
        """Socket Mode: the WebSocket URL an app connects to with its app-level token."""
        return {"url": f"{self.ws_base}/_fake/socket?ticket={uuid.uuid4()}"}

    def _conversations_list(self, call: _Call) -> JSON:
        """Channels the token can see, `types` and `exclude_archived` honoured, paged by
        an opaque cursor as Slack pages them."""
        raw_types = str(call.params.get("types") or "public_channel")
        types = {t.strip() for t in raw_types.split(",") if t.strip()}
        unknown = types - {"public_channel", "private_channel", "mpim", "im"}
        if unknown:
            raise SlackError("invalid_types")
        needed = {"public_channel": "channels:read", "private_channel": "groups:read"}
        for kind, scope in needed.items():
            if kind in types and scope not in self.scopes:
                raise SlackError("missing_scope", extra={"needed": scope})
        listed = [
            c
            for c in self.channels.values()
            if ("private_channel" if c.is_private else "public_channel") in types
            and not (_flag(call.params.get("exclude_archived")) and c.is_archived)
        ]
        listed.sort(key=lambda c: c.id)
        limit = self._limit(call, 100)
        start = 0
        cursor = call.params.get("cursor")
        if cursor:
            try:
                after = base64.b64decode(str(cursor)).decode().removeprefix("channel:")
            except ValueError:
                raise SlackError("invalid_cursor") from None
            ids = [c.id for c in listed]
            if after not in ids:
                raise SlackError("invalid_cursor")
            start = ids.index(after)
        page, rest = listed[start : start + limit], listed[start + limit :]
        next_cursor = base64.b64encode(f"channel:{rest[0].id}".encode()).decode() if rest else ""
        return {
            "channels": [self._channel_info(c) for c in page],
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _channel_info(self, channel: FakeChannel) -> JSON:
        info: JSON = {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.is_private,
            "is_group": channel.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.is_private,
            "created": channel.created,
            "is_archived": channel.is_archived,
            "is_general": channel.is_general,
            "unlinked": 0,
            "name_normalized": channel.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.config.team_id,
            "updated": channel.created * 1000,
            "creator": next(iter(self.users), self.config.bot_user_id),
            "is_member": channel.bot_is_member,
            "topic": {"value": channel.topic, "creator": "", "last_set": 0},
            "purpose": {"value": channel.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
        }
        return info

    def _users_info(self, call: _Call) -> JSON:
        user_id = call.params.get("user")
        if not isinstance(user_id, str) or not user_id:
            raise _missing("user")
        c = self.config
        if user_id == c.bot_user_id:
            return {
                "user": {
                    "id": c.bot_user_id,
                    "team_id": c.team_id,
                    "name": c.bot_name,
                    "deleted": False,
                    "real_name": c.bot_name,
                    "profile": {
                        "real_name": c.bot_name,
                        "display_name": "",
                        "bot_id": c.bot_id,
                        "api_app_id": c.app_id,
                        "team": c.team_id,
                    },
                    "is_admin": False,
                    "is_owner": False,
                    "is_bot": True,
                    "is_app_user": False,
                    "updated": 1_700_000_000,
                }
            }
        user = self.users.get(user_id)
        if user is None:
            raise SlackError("user_not_found")
        profile: JSON = {
            "real_name": user.real_name,
            "display_name": user.display_name,
            "real_name_normalized": user.real_name,
            "display_name_normalized": user.display_name,
            "team": c.team_id,
        }
        if user.email is not None and "users:read.email" in self.scopes:
            profile["email"] = user.email
        return {
            "user": {
                "id": user.id,
                "team_id": c.team_id,
                "name": user.name,
                "deleted": user.deleted,
                "real_name": user.real_name,
                "tz": user.tz,
                "tz_label": user.tz_label,
                "tz_offset": user.tz_offset,
                "profile": profile,
                "is_admin": user.is_admin,
                "is_owner": False,
                "is_bot": False,
                "is_app_user": False,
                "updated": 1_700_000_000,
            }
        }

    def _reactions_add(self, call: _Call) -> JSON:
        params = call.params
        if params.get("timestamp") in (None, "") or params.get("channel") in (None, ""):
            raise SlackError("no_item_specified")
        channel = self._channel(params.get("channel"))
        timestamp = _text_param(params, "timestamp") or ""
        if not _TS.match(timestamp):
            raise SlackError("bad_timestamp")
        name = (_text_param(params, "name") or "").strip(":")
        if not re.fullmatch(r"[a-z0-9_+\-']+(::skin-tone-[2-6])?", name):
            raise SlackError("invalid_name")
        message = self._find(channel.id, timestamp)
        for reaction in message.reactions:
            if reaction["name"] == name:
                if self.config.bot_user_id in reaction["users"]:
                    raise SlackError("already_reacted")
                reaction["users"].append(self.config.bot_user_id)
                return {}
        message.reactions.append({"name": name, "users": [self.config.bot_user_id]})
        return {}


# Which scopes a method needs (any one of them): what Slack reports in
# `x-accepted-oauth-scopes` and `needed` of a missing_scope error.
_ACCEPTED_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.getPermalink": (),
    "conversations.replies": ("channels:history", "groups:history"),
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.list": ("channels:read", "groups:read"),
    "apps.connections.open": (),
    "users.info": ("users:read",),
    "reactions.add": ("reactions:write",),
}
SUPPORTED_METHODS: tuple[str, ...] = tuple(_ACCEPTED_SCOPES)


# --------------------------------------------------------------------------- HTTP


class _BodyError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _parse_body(content_type: str | None, body: bytes) -> tuple[JSON, list[str], bool]:
    """(params, warnings, is_form) of a request body, or _BodyError as Slack names it."""
    if not body.strip():
        return {}, [], True
    if content_type is None:
        raise _BodyError("missing_post_type")
    mime, _, rest = content_type.partition(";")
    mime = mime.strip().lower()
    charset = None
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"').lower()
    if charset is not None and charset not in ("utf-8", "utf8", "iso-8859-1", "latin1"):
        raise _BodyError("invalid_charset")
    encoding = "latin-1" if charset in ("iso-8859-1", "latin1") else "utf-8"
    warnings: list[str] = []
    if mime == "application/json":
        if charset is None:
            warnings.append("missing_charset")
        try:
            data = json.loads(body.decode(encoding))
        except (ValueError, UnicodeDecodeError):
            raise _BodyError("invalid_json") from None
        if not isinstance(data, dict):
            raise _BodyError("json_not_object")
        return data, warnings, False
    if mime == "application/x-www-form-urlencoded":
        if charset is not None:
            warnings.append("superfluous_charset")
        try:
            pairs = parse_qsl(body.decode(encoding), keep_blank_values=True, strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            raise _BodyError("invalid_form_data") from None
        return dict(pairs), warnings, True
    if mime == "multipart/form-data":
        if charset is not None:
            warnings.append("superfluous_charset")
        return _parse_multipart(content_type, body), warnings, True
    raise _BodyError("invalid_post_type")


def _parse_multipart(content_type: str, body: bytes) -> JSON:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not parsed.is_multipart():
        raise _BodyError("invalid_form_data")
    params: JSON = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None:
            params[name] = {"filename": part.get_filename(), "size": len(payload)}
        else:
            params[name] = payload.decode(part.get_content_charset() or "utf-8")
    return params


def _response(body: JSON, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers=dict(headers or {}),
    )


def _finish(body: JSON, call: _Call | None) -> JSON:
    """Attach warnings and detail messages the way Slack does."""
    if call is None or (not call.warnings and not call.messages):
        return body
    metadata: JSON = dict(body.get("response_metadata") or {})
    if call.messages:
        metadata["messages"] = [*metadata.get("messages", []), *call.messages]
    if call.warnings:
        body["warning"] = ",".join(call.warnings)
        metadata["warnings"] = list(call.warnings)
    body["response_metadata"] = metadata
    return body


_Answer = Callable[..., Response]


async def _fault_answer(fault: Fault, answer: _Answer) -> Response | None:
    """Wait out the fault's delay, then its answer (None: the normal answer goes out)."""
    if fault.delay_s:
        await asyncio.sleep(fault.delay_s)
    if fault.status == 429:
        retry = str(1 if fault.retry_after is None else fault.retry_after)
        return answer(
            {"ok": False, "error": fault.error or "ratelimited"},
            429,
            {"Retry-After": retry},
        )
    if fault.status >= 400:
        return answer({"ok": False, "error": fault.error or "internal_error"}, fault.status)
    if fault.error is not None:
        return answer({"ok": False, "error": fault.error})
    return None


class _App:
    """The Starlette routes over one `FakeSlack`."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self._pid = os.getpid()

    async def health(self, request: Request) -> Response:
        return _response({"ok": True, "pid": self._pid, "service": "evalcore-fake-slack"})

    async def api(self, request: Request) -> Response:
        slack = self.slack
        method = request.path_params["method"]
        arrived = time.time()
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        token = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip() or None

        record: JSON = {
            "method": method,
            "http_method": request.method,
            "path": request.url.path,
            "headers": {
                k: (f"{v[:7]}{_mask(v[7:])}" if k == "authorization" else v)
                for k, v in headers.items()
            },
            "query": dict(request.query_params),
            "body": None,
            "time": arrived,
        }
        slack._request_ids += 1
        record["id"] = slack._request_ids
        slack.requests.append(record)

        def answer(
            body: JSON, status: int = 200, extra: Mapping[str, str] | None = None
        ) -> Response:
            record["status"] = status
            record["ok"] = bool(body.get("ok"))
            record["error"] = body.get("error")
            return _response(body, status, extra)

        try:
            params, warnings, is_form = _parse_body(headers.get("content-type"), raw)
        except _BodyError as exc:
            params, warnings, is_form = {}, [], False
            body_error: str | None = exc.error
        else:
            body_error = None
        merged: JSON = {**dict(request.query_params), **params}
        # A token counts in the header or a form body, never in JSON or the query string
        # (Slack refuses query-string tokens for apps created since 2021).
        if is_form and token is None and isinstance(params.get("token"), str):
            token = params["token"] or None
        for shown in (merged, record["query"]):
            if isinstance(shown.get("token"), str):
                shown["token"] = _mask(shown["token"])
        record["body"] = merged

        fault = slack.take_fault(method)
        if fault is not None:
            record["fault"] = fault.model_dump(exclude_defaults=True, exclude={"times"})
            if not fault.takes_effect:
                refused = await _fault_answer(fault, answer)
                if refused is not None:
                    return refused
        carried_out = self._carry_out(request, method, merged, warnings, body_error, token, answer)
        if fault is not None and fault.takes_effect:
            return await _fault_answer(fault, answer) or carried_out
        return carried_out

    def _carry_out(
        self,
        request: Request,
        method: str,
        merged: JSON,
        warnings: list[str],
        body_error: str | None,
        token: str | None,
        answer: _Answer,
    ) -> Response:
        """The Web API call itself: authentication, scopes, then the method's handler."""
        slack = self.slack
        handler = slack.methods.get(method)
        if handler is None:
            return answer({"ok": False, "error": "unknown_method", "req_method": method})
        call = _Call(method=method, params=merged, warnings=list(warnings))
        accepted = _ACCEPTED_SCOPES[method]
        scope_headers: dict[str, str] = {}
        if body_error is not None:
            return answer({"ok": False, "error": body_error})
        if token is None:
            return answer(_finish({"ok": False, "error": "not_authed"}, call))
        valid = (
            slack.config.app_tokens if method == "apps.connections.open" else slack.config.tokens
        )
        if token not in valid:
            return answer(_finish({"ok": False, "error": "invalid_auth"}, call))
        slack.ws_base = f"ws://{request.url.netloc}"
        scope_headers = {
            "x-oauth-scopes": ",".join(slack.config.scopes),
            "x-accepted-oauth-scopes": ",".join(accepted),
        }
        if accepted and not slack.scopes.intersection(accepted):
            body = {
                "ok": False,
                "error": "missing_scope",
                "needed": ",".join(accepted),
                "provided": ",".join(slack.config.scopes),
            }
            return answer(_finish(body, call), 200, scope_headers)
        try:
            result = handler(call)
        except SlackError as exc:
            body = {"ok": False, "error": exc.error}
            if exc.error == "missing_scope":
                exc.extra.setdefault("provided", ",".join(slack.config.scopes))
            body.update(exc.extra)
            if exc.errors is not None:
                body["errors"] = exc.errors
            call.messages = [*exc.messages, *call.messages]
            return answer(_finish(body, call), 200, scope_headers)
        return answer(_finish({"ok": True, **result}, call), 200, scope_headers)

    # ----------------------------------------------------------------- control API

    async def add_fault(self, request: Request) -> Response:
        try:
            fault = Fault.model_validate_json(await request.body())
        except ValidationError as exc:
            return _response({"ok": False, "error": "invalid_fault", "detail": str(exc)}, 400)
        self.slack.faults.append(fault)
        return _response({"ok": True, "fault": fault.model_dump(), "pending": self._faults()})

    def _faults(self) -> list[JSON]:
        return [f.model_dump() for f in self.slack.faults]

    async def list_faults(self, request: Request) -> Response:
        return _response({"ok": True, "faults": self._faults()})

    async def list_requests(self, request: Request) -> Response:
        method = request.query_params.get("method")
        found = [r for r in self.slack.requests if method is None or r["method"] == method]
        return _response({"ok": True, "requests": found})

    async def list_messages(self, request: Request) -> Response:
        slack = self.slack
        wanted = request.query_params.get("channel")
        channel_ids = list(slack.channels)
        if wanted:
            channel = slack.channels.get(wanted) or slack.channels_by_name.get(
                wanted.removeprefix("#")
            )
            if channel is None:
                return _response({"ok": False, "error": "channel_not_found"}, 404)
            channel_ids = [channel.id]
        messages = sorted(
            (slack.record(m) for c in channel_ids for m in slack.messages[c]),
            key=lambda r: _ts_key(r["ts"]),
        )
        ephemeral = [e for e in slack.ephemeral if e["channel"] in channel_ids]
        return _response({"ok": True, "messages": messages, "ephemeral": ephemeral})

    async def user_message(self, request: Request) -> Response:
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _response({"ok": False, "error": "invalid_json"}, 400)
        if not isinstance(data, dict):
            return _response({"ok": False, "error": "json_not_object"}, 400)
        channel, text = data.get("channel"), data.get("text")
        user, thread_ts, blocks = data.get("user"), data.get("thread_ts"), data.get("blocks")
        if not isinstance(channel, str) or not isinstance(text, str):
            return _response(
                {"ok": False, "error": "invalid_arguments", "detail": "channel and text"}, 400
            )
        if (
            (user is not None and not isinstance(user, str))
            or (thread_ts is not None and not isinstance(thread_ts, str))
            or (blocks is not None and not isinstance(blocks, list))
        ):
            return _response({"ok": False, "error": "invalid_arguments"}, 400)
        try:
            posted = self.slack.inject_user_message(
                channel,
                text,
                user=user,
                thread_ts=thread_ts,
                blocks=blocks,
                reply_broadcast=_flag(data.get("reply_broadcast")),
            )
        except SlackError as exc:
            status = 404 if exc.error.endswith("_not_found") else 400
            return _response({"ok": False, "error": exc.error}, status)
        return _response({"ok": True, **posted})

    async def reset(self, request: Request) -> Response:
        self.slack.reset()
        return _response({"ok": True})

    async def socket(self, websocket: WebSocket) -> None:
        """A Socket Mode connection: hello, then envelopes out and acknowledgements in."""
        slack = self.slack
        await websocket.accept()
        await websocket.send_json(
            {
                "type": "hello",
                "num_connections": len(slack.sockets) + 1,
                "debug_info": {"host": "fake-evalcore", "approximate_connection_time": 3600},
                "connection_info": {"app_id": slack.config.app_id},
            }
        )
        slack.sockets.append(websocket)
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    message = orjson.loads(text)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(message, dict) and "envelope_id" in message:
                    slack.socket_acks.append(message)
        except WebSocketDisconnect:
            pass
        finally:
            if websocket in slack.sockets:
                slack.sockets.remove(websocket)

    async def send_interactive(self, request: Request) -> Response:
        """Deliver an interactive payload (a button click) to the connected apps."""
        body = orjson.loads(await request.body() or b"{}")
        if not self.slack.sockets:
            return _response({"ok": False, "error": "no_socket_connection"}, 409)
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": "interactive",
            "accepts_response_payload": False,
            "payload": body.get("payload", {}),
            "retry_attempt": 0,
            "retry_reason": "",
        }
        for websocket in list(self.slack.sockets):
            await websocket.send_json(envelope)
        return _response({"ok": True, "envelope_id": envelope_id})

    async def list_socket_acks(self, request: Request) -> Response:
        return _response({"ok": True, "acks": self.slack.socket_acks})


def create_app(config: FakeSlackConfig | None = None) -> Starlette:
    """The ASGI app of a fresh fake workspace (`app.state.slack` is its `FakeSlack`)."""
    slack = FakeSlack(config or FakeSlackConfig())
    routes = _App(slack)
    app = Starlette(
        routes=[
            Route("/health", routes.health, methods=["GET"]),
            Route("/api/{method}", routes.api, methods=["GET", "POST"]),
            Route("/_fake/faults", routes.add_fault, methods=["POST"]),
            Route("/_fake/faults", routes.list_faults, methods=["GET"]),
            Route("/_fake/requests", routes.list_requests, methods=["GET"]),
            Route("/_fake/messages", routes.list_messages, methods=["GET"]),
            Route("/_fake/user_message", routes.user_message, methods=["POST"]),
            Route("/_fake/reset", routes.reset, methods=["POST"]),
            Route("/_fake/socket/interactive", routes.send_interactive, methods=["POST"]),
            Route("/_fake/socket/acks", routes.list_socket_acks, methods=["GET"]),
            WebSocketRoute("/_fake/socket", routes.socket),
        ]
    )
    app.state.slack = slack
    return app


def serve(host: str, port: int, config: FakeSlackConfig | None = None) -> None:
    """Serve the fake until interrupted (blocking)."""
    import uvicorn

    uvicorn_config = uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(uvicorn_config).run()


# --------------------------------------------------------------------------- subprocess


class FakeSlackError(RuntimeError):
    """The fake's control API refused a request (the message carries its answer)."""


class FakeSlackServer(LoopbackServer):
    """The fake Slack in a subprocess on loopback, as a context manager.

        with FakeSlackServer() as slack:
            client = WebClient(token=slack.token, base_url=slack.api_url)

    Start-up, health check and shutdown are `LoopbackServer`'s; the helpers call the
    control API.
    """

    name = "fake Slack server"

    def __init__(
        self,
        config: FakeSlackConfig | None = None,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 15.0,
    ) -> None:
        super().__init__(port=port, host=host, startup_timeout_s=startup_timeout_s)
        self.config = config or FakeSlackConfig()
        self._config_file: Path | None = None
        self._http: httpx.Client | None = None

    @property
    def api_url(self) -> str:
        """The Web API base URL for `WebClient(base_url=...)`, with its trailing slash."""
        return f"{self.url}/api/"

    @property
    def token(self) -> str:
        """A bot token the fake accepts."""
        return self.config.token

    @property
    def signing_secret(self) -> str:
        return self.config.signing_secret

    @property
    def app_token(self) -> str:
        """An app-level token for Socket Mode (apps.connections.open)."""
        return self.config.app_tokens[0]

    def send_interactive(self, payload: JSON) -> str:
        """Deliver an interactive payload to the apps connected over Socket Mode; returns
        the envelope id the app must acknowledge."""
        sent: JSON = self._control("POST", "/_fake/socket/interactive", json={"payload": payload})
        return str(sent["envelope_id"])

    def socket_acks(self) -> list[JSON]:
        """The acknowledgements apps sent back over Socket Mode."""
        acks: list[JSON] = self._control("GET", "/_fake/socket/acks")["acks"]
        return acks

    def module_args(self, port: int) -> list[str]:
        assert self._config_file is not None
        return [
            "evalcore.local.fake_slack",
            *("--host", self.host, "--port", str(port), "--config", str(self._config_file)),
        ]

    def before_launch(self) -> None:
        """The child reads the workspace from a temporary JSON file."""
        self.after_stop()
        with tempfile.NamedTemporaryFile(
            "wb", prefix="evalcore-fake-slack-", suffix=".json", delete=False
        ) as handle:
            handle.write(self.config.model_dump_json().encode())
        self._config_file = Path(handle.name)

    def after_start(self) -> None:
        self._http = httpx.Client(base_url=self.url, timeout=10.0)

    def after_stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._config_file is not None:
            self._config_file.unlink(missing_ok=True)
            self._config_file = None

    # ----------------------------------------------------------------- control API

    def _control(self, verb: Literal["GET", "POST"], path: str, **kwargs: Any) -> JSON:
        if self._http is None:
            raise RuntimeError("the fake Slack server is not running")
        response = self._http.request(verb, path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict) or not data.get("ok"):
            raise FakeSlackError(f"{verb} {path} -> {response.status_code}: {response.text}")
        return data

    def requests(self, method: str | None = None) -> list[JSON]:
        """Every Web API request received since the last reset, oldest first: `method`,
        `http_method`, `headers` (token masked after 6 characters), `query`, `body` (the
        parsed parameters), `time`, and the answer's `status`, `ok`, `error`."""
        params = {"method": method} if method else None
        found: list[JSON] = self._control("GET", "/_fake/requests", params=params)["requests"]
        return found

    def messages(self, channel: str | None = None) -> list[JSON]:
        """Stored messages (thread replies, deleted ones, edit history included) in ts
        order, for one channel (id or name) or all."""
        params = {"channel": channel} if channel else None
        found: list[JSON] = self._control("GET", "/_fake/messages", params=params)["messages"]
        return found

    def ephemeral(self, channel: str | None = None) -> list[JSON]:
        """Ephemeral messages posted (never visible in history)."""
        params = {"channel": channel} if channel else None
        found: list[JSON] = self._control("GET", "/_fake/messages", params=params)["ephemeral"]
        return found

    def add_fault(
        self,
        method: str | None = None,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        delay_s: float = 0.0,
        takes_effect: bool = False,
    ) -> JSON:
        """Misbehave on the next `times` calls of `method` (every method if None); with
        `takes_effect` the call is carried out before the fault answers (see `Fault`)."""
        fault = Fault(
            method=method,
            status=status,
            error=error,
            retry_after=retry_after,
            times=times,
            delay_s=delay_s,
            takes_effect=takes_effect,
        )
        added: JSON = self._control("POST", "/_fake/faults", json=fault.model_dump())["fault"]
        return added

    def reset(self) -> None:
        """Forget messages, requests and pending faults (the configuration stays)."""
        self._control("POST", "/_fake/reset")

    def post_as_user(
        self,
        channel: str,
        text: str,
        *,
        user: str | None = None,
        thread_ts: str | None = None,
        blocks: list[JSON] | None = None,
        reply_broadcast: bool = False,
    ) -> JSON:
        """A human (default: the directory's first user) posts to a channel or thread;
        returns `{"channel", "ts", "message"}`."""
        body: JSON = {"channel": channel, "text": text, "reply_broadcast": reply_broadcast}
        if user is not None:
            body["user"] = user
        if thread_ts is not None:
            body["thread_ts"] = thread_ts
        if blocks is not None:
            body["blocks"] = blocks
        data = self._control("POST", "/_fake/user_message", json=body)
        return {k: data[k] for k in ("channel", "ts", "message")}
