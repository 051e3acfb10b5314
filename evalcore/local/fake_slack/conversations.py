"""The Web API methods that read: `auth.test`, `conversations.history`,
`conversations.replies`, `conversations.info`, `conversations.list` and `users.info`,
with Slack's scopes, time windows and cursor paging."""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation

from evalcore.local.fake_slack.calls import JSON, Call, SlackError, flag, missing, text_param
from evalcore.local.fake_slack.config import FakeChannel
from evalcore.local.fake_slack.rendering import render
from evalcore.local.fake_slack.store import FakeSlack, StoredMessage, ts_key

__all__ = [
    "auth_test",
    "conversations_history",
    "conversations_info",
    "conversations_list",
    "conversations_replies",
    "users_info",
]


def auth_test(slack: FakeSlack, call: Call) -> JSON:
    c = slack.config
    return {
        "url": f"https://{c.team_domain}.slack.com/",
        "team": c.team_name,
        "user": c.bot_name,
        "team_id": c.team_id,
        "user_id": c.bot_user_id,
        "bot_id": c.bot_id,
        "is_enterprise_install": False,
    }


def conversations_history(slack: FakeSlack, call: Call) -> JSON:
    channel = _readable(slack, call, "history")
    visible = [
        m
        for m in slack.messages[channel.id]
        if not m.deleted and not m.orphan and (not m.is_reply or m.broadcast)
    ]
    visible = _window(call, visible)
    visible.reverse()
    page, next_cursor = _page(call, visible, 100, newest_first=True)
    with_metadata = flag(call.params.get("include_all_metadata"))
    out: JSON = {
        "messages": [render(slack, m, metadata=with_metadata) for m in page],
        "has_more": next_cursor is not None,
        "pin_count": 0,
    }
    if next_cursor is not None:
        out["response_metadata"] = {"next_cursor": next_cursor}
    return out


def conversations_replies(slack: FakeSlack, call: Call) -> JSON:
    channel = _readable(slack, call, "history")
    if call.params.get("ts") in (None, ""):
        raise missing("ts")
    message = slack.find(channel.id, text_param(call.params, "ts"), error="thread_not_found")
    if message.is_reply:
        if message.orphan:
            raise SlackError("thread_not_found")
        message = slack.find(channel.id, message.thread_ts, error="thread_not_found")
    thread = [message, *_window(call, slack.live_replies(message))]
    page, next_cursor = _page(call, thread, 1000, newest_first=False)
    with_metadata = flag(call.params.get("include_all_metadata"))
    out: JSON = {
        "messages": [render(slack, m, metadata=with_metadata) for m in page],
        "has_more": next_cursor is not None,
    }
    if next_cursor is not None:
        out["response_metadata"] = {"next_cursor": next_cursor}
    return out


def conversations_info(slack: FakeSlack, call: Call) -> JSON:
    channel = _readable(slack, call, "read")
    info = _channel_info(slack, channel)
    if flag(call.params.get("include_num_members")):
        info["num_members"] = len(slack.members(channel))
    return {"channel": info}


def conversations_list(slack: FakeSlack, call: Call) -> JSON:
    """Channels the token can see, `types` and `exclude_archived` honoured, paged by
    an opaque cursor as Slack pages them."""
    raw_types = str(call.params.get("types") or "public_channel")
    types = {t.strip() for t in raw_types.split(",") if t.strip()}
    unknown = types - {"public_channel", "private_channel", "mpim", "im"}
    if unknown:
        raise SlackError("invalid_types")
    needed = {"public_channel": "channels:read", "private_channel": "groups:read"}
    for kind, scope in needed.items():
        if kind in types and scope not in slack.scopes:
            raise SlackError("missing_scope", extra={"needed": scope})
    listed = [
        c
        for c in slack.channels.values()
        if ("private_channel" if c.is_private else "public_channel") in types
        and not (flag(call.params.get("exclude_archived")) and c.is_archived)
    ]
    listed.sort(key=lambda c: c.id)
    limit = _limit(call, 100)
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
        "channels": [_channel_info(slack, c) for c in page],
        "response_metadata": {"next_cursor": next_cursor},
    }


def users_info(slack: FakeSlack, call: Call) -> JSON:
    user_id = call.params.get("user")
    if not isinstance(user_id, str) or not user_id:
        raise missing("user")
    c = slack.config
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
    user = slack.users.get(user_id)
    if user is None:
        raise SlackError("user_not_found")
    profile: JSON = {
        "real_name": user.real_name,
        "display_name": user.display_name,
        "real_name_normalized": user.real_name,
        "display_name_normalized": user.display_name,
        "team": c.team_id,
    }
    if user.email is not None and "users:read.email" in slack.scopes:
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


# --------------------------------------------------------------------------- helpers


def _readable(slack: FakeSlack, call: Call, kind: str) -> FakeChannel:
    channel = slack.channel(call.params.get("channel"))
    scope = f"{'groups' if channel.is_private else 'channels'}:{kind}"
    if scope not in slack.scopes:
        raise SlackError("missing_scope", extra={"needed": scope})
    if kind == "history" and not channel.bot_is_member:
        raise SlackError("not_in_channel")
    return channel


def _channel_info(slack: FakeSlack, channel: FakeChannel) -> JSON:
    return {
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
        "context_team_id": slack.config.team_id,
        "updated": channel.created * 1000,
        "creator": next(iter(slack.users), slack.config.bot_user_id),
        "is_member": channel.bot_is_member,
        "topic": {"value": channel.topic, "creator": "", "last_set": 0},
        "purpose": {"value": channel.purpose, "creator": "", "last_set": 0},
        "previous_names": [],
    }


def _limit(call: Call, default: int) -> int:
    raw = call.params.get("limit")
    if raw in (None, ""):
        return default
    try:
        limit = int(str(raw))
    except ValueError:
        raise SlackError("invalid_limit") from None
    return default if limit <= 0 else min(limit, 999)


def _bound(call: Call, name: str) -> Decimal | None:
    value = text_param(call.params, name)
    if value in (None, ""):
        return None
    assert value is not None
    try:
        return ts_key(value)
    except InvalidOperation:
        raise SlackError(f"invalid_ts_{name}") from None


def _window(call: Call, messages: list[StoredMessage]) -> list[StoredMessage]:
    """The messages between `oldest` and `latest` (`inclusive` of both ends or not)."""
    oldest, latest = _bound(call, "oldest"), _bound(call, "latest")
    inclusive = flag(call.params.get("inclusive"))

    def inside(m: StoredMessage) -> bool:
        key = ts_key(m.ts)
        if oldest is not None and (key < oldest or (key == oldest and not inclusive)):
            return False
        return latest is None or key < latest or (key == latest and inclusive)

    return [m for m in messages if inside(m)]


def _page(
    call: Call, items: list[StoredMessage], default_limit: int, newest_first: bool
) -> tuple[list[StoredMessage], str | None]:
    """One page of `items` from the call's cursor on, and the cursor of the next page."""
    limit = _limit(call, default_limit)
    cursor = call.params.get("cursor")
    if cursor:
        start = _cursor_ts(str(cursor))
        items = [
            m for m in items if (ts_key(m.ts) <= start if newest_first else ts_key(m.ts) >= start)
        ]
    page, rest = items[:limit], items[limit:]
    return page, (_cursor(rest[0].ts) if rest else None)


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
