"""The Web API methods that write: `chat.postMessage`, `chat.update`, `chat.delete`,
`chat.postEphemeral`, `chat.getPermalink` and `reactions.add`, with the checks Slack
makes on a message's text, blocks, attachments and metadata."""

from __future__ import annotations

import re

import orjson

from evalcore.local.fake_slack.calls import JSON, Call, SlackError, flag, missing, text_param
from evalcore.local.fake_slack.config import FakeChannel
from evalcore.local.fake_slack.rendering import render
from evalcore.local.fake_slack.store import TS, FakeSlack, block_id, ts_key
from evalcore.slack.blockkit import FALLBACK_TEXT_MAX, block_errors

__all__ = [
    "MAX_ATTACHMENTS",
    "chat_delete",
    "chat_get_permalink",
    "chat_post_ephemeral",
    "chat_post_message",
    "chat_update",
    "reactions_add",
]

MAX_ATTACHMENTS = 100


def chat_post_message(slack: FakeSlack, call: Call) -> JSON:
    channel = slack.channel(call.params.get("channel"), by_name=True)
    _writable(slack, channel)
    thread_ts = _thread_ts(call)
    text, content = _content(call)
    message = slack.store(
        channel,
        user=slack.config.bot_user_id,
        by_bot=True,
        text=_truncate(call, text),
        content=content,
        thread_ts=thread_ts,
        broadcast=flag(call.params.get("reply_broadcast")),
    )
    return {"channel": channel.id, "ts": message.ts, "message": render(slack, message)}


def chat_update(slack: FakeSlack, call: Call) -> JSON:
    params = call.params
    channel = slack.channel(params.get("channel"))
    if params.get("ts") in (None, ""):
        raise missing("ts")
    message = slack.find(channel.id, text_param(params, "ts"))
    if not message.by_bot or message.tombstone:
        raise SlackError("cant_update_message")
    text, content = _content(call, require=False)
    new_text = message.text if text is None else text
    new_blocks = message.blocks if "blocks" not in content else content["blocks"] or None
    new_attachments = (
        message.attachments if "attachments" not in content else content["attachments"] or None
    )
    if not new_text and not new_blocks and not new_attachments:
        raise SlackError("no_text")
    if len(new_text) > FALLBACK_TEXT_MAX:
        raise SlackError("msg_too_long")
    edit_ts = slack.next_ts()
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
            b if "block_id" in b else {**b, "block_id": block_id(edit_ts, i)}
            for i, b in enumerate(new_blocks)
        ]
    message.blocks = new_blocks
    message.attachments = new_attachments
    if "metadata" in content:
        message.metadata = content["metadata"]
    message.edited = {"user": slack.config.bot_user_id, "ts": edit_ts}
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": render(slack, message),
    }


def chat_delete(slack: FakeSlack, call: Call) -> JSON:
    channel = slack.channel(call.params.get("channel"))
    if call.params.get("ts") in (None, ""):
        raise missing("ts")
    message = slack.find(channel.id, text_param(call.params, "ts"))
    if not message.by_bot or message.tombstone:
        raise SlackError("cant_delete_message")
    if not message.is_reply and slack.live_replies(message):
        message.tombstone = True  # a parent with replies leaves a tombstone behind
    else:
        message.deleted = True
    return {"channel": channel.id, "ts": message.ts}


def chat_post_ephemeral(slack: FakeSlack, call: Call) -> JSON:
    params = call.params
    channel = slack.channel(params.get("channel"), by_name=True)
    user = params.get("user")
    if not isinstance(user, str) or not user:
        raise missing("user")
    _writable(slack, channel)
    if user not in slack.members(channel) or user not in slack.users:
        raise SlackError("user_not_in_channel")
    thread_ts = _thread_ts(call)
    text, content = _content(call)
    ts = slack.next_ts()
    message: JSON = {
        "type": "message",
        "subtype": "bot_message",
        "text": _truncate(call, text),
        "ts": ts,
        "bot_id": slack.config.bot_id,
        "app_id": slack.config.app_id,
    }
    if content.get("blocks"):
        message["blocks"] = content["blocks"]
    if content.get("attachments"):
        message["attachments"] = content["attachments"]
    if thread_ts is not None:
        message["thread_ts"] = thread_ts
    slack.ephemeral.append({"channel": channel.id, "user": user, "message": message})
    return {"message_ts": ts}


def chat_get_permalink(slack: FakeSlack, call: Call) -> JSON:
    channel = slack.channel(call.params.get("channel"))
    if call.params.get("message_ts") in (None, ""):
        raise missing("message_ts")
    message = slack.find(channel.id, text_param(call.params, "message_ts"))
    link = (
        f"https://{slack.config.team_domain}.slack.com/archives/{channel.id}/"
        f"p{message.ts.replace('.', '')}"
    )
    if message.is_reply:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}


def reactions_add(slack: FakeSlack, call: Call) -> JSON:
    params = call.params
    if params.get("timestamp") in (None, "") or params.get("channel") in (None, ""):
        raise SlackError("no_item_specified")
    channel = slack.channel(params.get("channel"))
    timestamp = text_param(params, "timestamp") or ""
    if not TS.match(timestamp):
        raise SlackError("bad_timestamp")
    name = (text_param(params, "name") or "").strip(":")
    if not re.fullmatch(r"[a-z0-9_+\-']+(::skin-tone-[2-6])?", name):
        raise SlackError("invalid_name")
    message = slack.find(channel.id, timestamp)
    for reaction in message.reactions:
        if reaction["name"] == name:
            if slack.config.bot_user_id in reaction["users"]:
                raise SlackError("already_reacted")
            reaction["users"].append(slack.config.bot_user_id)
            return {}
    message.reactions.append({"name": name, "users": [slack.config.bot_user_id]})
    return {}


# --------------------------------------------------------------------------- checks


def _writable(slack: FakeSlack, channel: FakeChannel) -> None:
    if channel.is_archived:
        raise SlackError("is_archived")
    public_ok = not channel.is_private and "chat:write.public" in slack.scopes
    if not channel.bot_is_member and not public_ok:
        raise SlackError("not_in_channel")


def _thread_ts(call: Call) -> str | None:
    raw = call.params.get("thread_ts")
    if raw is None or raw == "":
        return None
    value = text_param(call.params, "thread_ts") or ""
    if not TS.match(value) or ts_key(value) <= 0:
        raise SlackError(
            "invalid_thread_ts", messages=[f"[ERROR] {value} is not a valid thread_ts"]
        )
    return value


def _truncate(call: Call, text: str | None) -> str:
    text = text or ""
    if len(text) > FALLBACK_TEXT_MAX:
        call.warnings.append("message_truncated")
        call.messages.append(
            "[WARN] Your message was truncated but still posted. "
            f"The `text` field accepts up to {FALLBACK_TEXT_MAX:,} characters."
        )
        return text[:FALLBACK_TEXT_MAX]
    return text


def _content(call: Call, *, require: bool = True) -> tuple[str | None, JSON]:
    """Text, blocks, attachments and metadata of a posting call, validated as Slack does."""
    params = call.params
    text = text_param(params, "text")
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
        errors = block_errors(blocks)
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
        if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
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
