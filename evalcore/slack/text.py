"""Text the bot posts to Slack. Whatever a person or a model wrote is escaped for mrkdwn
before it is posted, so quoting it can neither ping a channel (`<!channel>`, `<!here>`),
mention someone (`<@U123>`) nor forge a link (`<http://evil|x>`); Slack shows the
entities as the characters typed."""

from __future__ import annotations

import re

__all__ = ["SLACK_USER_ID", "mention", "slack_escape"]

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def slack_escape(text: object) -> str:
    """Text safe inside Slack mrkdwn: `&`, `<` and `>` as entities."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user: str) -> str:
    """`<@user>` for a Slack user id; anything else shown as plain text, so a crafted id
    cannot become a channel ping or a link."""
    return f"<@{user}>" if SLACK_USER_ID.fullmatch(user) else slack_escape(user)
