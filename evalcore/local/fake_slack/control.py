"""The control API (not Slack's), for tests and the demo: `GET /health`,
`POST /_fake/faults`, `GET /_fake/faults`, `GET /_fake/requests`, `GET /_fake/messages`,
`POST /_fake/user_message` and `POST /_fake/reset`."""

from __future__ import annotations

import os

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from evalcore.local.fake_slack.calls import JSON, SlackError, flag
from evalcore.local.fake_slack.config import Fault
from evalcore.local.fake_slack.rendering import record, render
from evalcore.local.fake_slack.responses import json_response
from evalcore.local.fake_slack.store import FakeSlack, ts_key

__all__ = ["ControlRoutes"]


class ControlRoutes:
    """The control API's routes over one `FakeSlack`."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self._pid = os.getpid()

    async def health(self, request: Request) -> Response:
        """Answers with this process's pid, so a starter knows it reached its own child."""
        return json_response({"ok": True, "pid": self._pid, "service": "evalcore-fake-slack"})

    async def add_fault(self, request: Request) -> Response:
        try:
            fault = Fault.model_validate_json(await request.body())
        except ValidationError as exc:
            return json_response({"ok": False, "error": "invalid_fault", "detail": str(exc)}, 400)
        self.slack.faults.append(fault)
        return json_response({"ok": True, "fault": fault.model_dump(), "pending": self._faults()})

    def _faults(self) -> list[JSON]:
        return [f.model_dump() for f in self.slack.faults]

    async def list_faults(self, request: Request) -> Response:
        return json_response({"ok": True, "faults": self._faults()})

    async def list_requests(self, request: Request) -> Response:
        method = request.query_params.get("method")
        found = [r for r in self.slack.requests if method is None or r["method"] == method]
        return json_response({"ok": True, "requests": found})

    async def list_messages(self, request: Request) -> Response:
        slack = self.slack
        wanted = request.query_params.get("channel")
        channel_ids = list(slack.channels)
        if wanted:
            channel = slack.channels.get(wanted) or slack.channels_by_name.get(
                wanted.removeprefix("#")
            )
            if channel is None:
                return json_response({"ok": False, "error": "channel_not_found"}, 404)
            channel_ids = [channel.id]
        messages = sorted(
            (record(slack, m) for c in channel_ids for m in slack.messages[c]),
            key=lambda r: ts_key(r["ts"]),
        )
        ephemeral = [e for e in slack.ephemeral if e["channel"] in channel_ids]
        return json_response({"ok": True, "messages": messages, "ephemeral": ephemeral})

    async def user_message(self, request: Request) -> Response:
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return json_response({"ok": False, "error": "invalid_json"}, 400)
        if not isinstance(data, dict):
            return json_response({"ok": False, "error": "json_not_object"}, 400)
        channel, text = data.get("channel"), data.get("text")
        user, thread_ts, blocks = data.get("user"), data.get("thread_ts"), data.get("blocks")
        if not isinstance(channel, str) or not isinstance(text, str):
            return json_response(
                {"ok": False, "error": "invalid_arguments", "detail": "channel and text"}, 400
            )
        if (
            (user is not None and not isinstance(user, str))
            or (thread_ts is not None and not isinstance(thread_ts, str))
            or (blocks is not None and not isinstance(blocks, list))
        ):
            return json_response({"ok": False, "error": "invalid_arguments"}, 400)
        try:
            message = self.slack.inject_user_message(
                channel,
                text,
                user=user,
                thread_ts=thread_ts,
                blocks=blocks,
                reply_broadcast=flag(data.get("reply_broadcast")),
            )
        except SlackError as exc:
            status = 404 if exc.error.endswith("_not_found") else 400
            return json_response({"ok": False, "error": exc.error}, status)
        posted = {
            "channel": message.channel,
            "ts": message.ts,
            "message": render(self.slack, message),
        }
        return json_response({"ok": True, **posted})

    async def reset(self, request: Request) -> Response:
        self.slack.reset()
        return json_response({"ok": True})
