"""Socket Mode: button clicks over a WebSocket the app opens, for when no public URL can
reach `evalcore slack serve`.

Slack authenticates the connection by the app-level token (SLACK_APP_TOKEN), so there is
no request signature to check; each envelope is acknowledged at once (Slack's three
seconds), then the clicks are recorded and answered in the thread exactly as the HTTP
receiver does.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from evalcore.slack.receiver import OnClicks, clicks


def socket_mode_client(
    *,
    app_token: str,
    web_client: WebClient,
    on_clicks: OnClicks,
) -> SocketModeClient:
    """A connected-on-demand Socket Mode client that hands each envelope's decision
    buttons to `on_clicks` once it is acknowledged; call `.connect()`."""
    client = SocketModeClient(app_token=app_token, web_client=web_client)

    def on_request(socket: BaseSocketModeClient, request: SocketModeRequest) -> None:
        socket.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type == "interactive" and isinstance(request.payload, dict):
            found = clicks(request.payload)
            if found:
                on_clicks(found)

    client.socket_mode_request_listeners.append(on_request)
    return client
