"""Stored messages as the Web API shows them (thread fields, bot profile, the rich_text
block Slack derives from plain text, tombstones), and as the control API reports them."""

from __future__ import annotations

import re

from evalcore.local.fake_slack.calls import JSON
from evalcore.local.fake_slack.store import FakeSlack, StoredMessage, block_id

__all__ = ["record", "render"]

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def render(slack: FakeSlack, m: StoredMessage, *, metadata: bool = True, root: bool = True) -> JSON:
    """The message object as conversations.history/replies show it."""
    c = slack.config
    if m.tombstone:
        out: JSON = {
            "type": "message",
            "subtype": "tombstone",
            "text": "This message was deleted.",
            "user": "USLACKBOT",
            "hidden": True,
            "ts": m.ts,
        }
        _thread_fields(slack, m, out)
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
        out["bot_profile"] = _bot_profile(slack)
    if m.is_reply:
        out["thread_ts"] = m.thread_ts
        parent = slack.by_ts.get((m.channel, m.thread_ts or ""))
        if parent is not None:
            out["parent_user_id"] = parent.user
            if m.broadcast and root:
                out["root"] = render(slack, parent, metadata=metadata, root=False)
    else:
        _thread_fields(slack, m, out)
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


def record(slack: FakeSlack, m: StoredMessage) -> JSON:
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
        "message": render(slack, m),
    }


def _thread_fields(slack: FakeSlack, m: StoredMessage, out: JSON) -> None:
    replies = slack.live_replies(m)
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


def _bot_profile(slack: FakeSlack) -> JSON:
    c = slack.config
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
            "block_id": block_id(ts, 0),
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]
