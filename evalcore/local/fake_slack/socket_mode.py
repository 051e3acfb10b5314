"""Socket Mode: `apps.connections.open` hands out the WebSocket URL, the connection
says hello and then carries envelopes out and acknowledgements in. The control routes
deliver an interactive payload (a button click) to the connected apps and list what they
acknowledged."""

from __future__ import annotations

import uuid

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from evalcore.local.fake_slack.calls import JSON, Call
from evalcore.local.fake_slack.responses import json_response
from evalcore.local.fake_slack.store import FakeSlack

__all__ = ["SocketModeRoutes", "apps_connections_open"]


def apps_connections_open(slack: FakeSlack, call: Call) -> JSON:
    """The WebSocket URL an app connects to with its app-level token."""
    return {"url": f"{slack.ws_base}/_fake/socket?ticket={uuid.uuid4()}"}


class SocketModeRoutes:
    """The WebSocket endpoint and its control routes over one `FakeSlack`."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack

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
            return json_response({"ok": False, "error": "no_socket_connection"}, 409)
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
        return json_response({"ok": True, "envelope_id": envelope_id})

    async def list_socket_acks(self, request: Request) -> Response:
        return json_response({"ok": True, "acks": self.slack.socket_acks})
