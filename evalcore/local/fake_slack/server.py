"""The fake Slack's app wiring and `FakeSlackServer`, the fake in a subprocess on
loopback that the real `slack_sdk` clients talk to through `base_url`:

    with FakeSlackServer() as slack:
        client = WebClient(token=slack.token, base_url=slack.api_url)
        client.chat_postMessage(channel="#support-assistant-evals", text="hello")
        slack.messages("C0EVALS01")  # what was posted, with edit history

The app serves the Web API (`web_api`: the methods of `chat` and `conversations`),
Socket Mode (`socket_mode`) and the control API (`control`: faults, recorded requests,
stored messages, a human's post, reset) over one in-memory workspace (`store`). A fault
(`POST /_fake/faults`, see `Fault`) answers the next matching calls with a 429, a 5xx, an
`ok: false` error or a delay; with `takes_effect` the call is carried out first, so a
message is stored although the client sees a 500 or times out waiting, as when Slack
fails after storing it. State is not shared between workers; run one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from evalcore.local.fake_slack.calls import JSON
from evalcore.local.fake_slack.config import FakeSlackConfig, Fault
from evalcore.local.fake_slack.control import ControlRoutes
from evalcore.local.fake_slack.socket_mode import SocketModeRoutes
from evalcore.local.fake_slack.store import FakeSlack
from evalcore.local.fake_slack.web_api import WebApiRoutes
from evalcore.local.loopback import LoopbackServer

__all__ = ["DEFAULT_PORT", "FakeSlackError", "FakeSlackServer", "create_app", "serve"]

DEFAULT_PORT = 8790


def create_app(config: FakeSlackConfig | None = None) -> Starlette:
    """The ASGI app of a fresh fake workspace (`app.state.slack` is its `FakeSlack`)."""
    slack = FakeSlack(config or FakeSlackConfig())
    web = WebApiRoutes(slack)
    control = ControlRoutes(slack)
    sockets = SocketModeRoutes(slack)
    app = Starlette(
        routes=[
            Route("/health", control.health, methods=["GET"]),
            Route("/api/{method}", web.api, methods=["GET", "POST"]),
            Route("/_fake/faults", control.add_fault, methods=["POST"]),
            Route("/_fake/faults", control.list_faults, methods=["GET"]),
            Route("/_fake/requests", control.list_requests, methods=["GET"]),
            Route("/_fake/messages", control.list_messages, methods=["GET"]),
            Route("/_fake/user_message", control.user_message, methods=["POST"]),
            Route("/_fake/reset", control.reset, methods=["POST"]),
            Route("/_fake/socket/interactive", sockets.send_interactive, methods=["POST"]),
            Route("/_fake/socket/acks", sockets.list_socket_acks, methods=["GET"]),
            WebSocketRoute("/_fake/socket", sockets.socket),
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
