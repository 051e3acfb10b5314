"""`evalcore slack serve`: the interactivity receiver on uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from evalcore.cli.common import SuiteOption, fail, load, open_store

if TYPE_CHECKING:
    from pydantic import SecretStr
    from slack_sdk import WebClient

    from evalcore.secrets import SettingSecret
    from evalcore.suite import Suite

slack_app = typer.Typer(help="Slack: the interactivity receiver.", no_args_is_help=True)

# On SIGTERM uvicorn waits for requests and background recording, which a busy database
# can hold for a minute; after this long it cancels them and exits. A click cut off
# before it was recorded gets no answer in the thread, so its owner can click again.
SHUTDOWN_GRACE_S = 2


@slack_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    socket_mode: Annotated[
        bool,
        typer.Option(
            "--socket-mode", help="Receive clicks over Socket Mode (SLACK_APP_TOKEN) instead."
        ),
    ] = False,
    suite: SuiteOption = None,
) -> None:
    """Receive Slack's button clicks (Request URL: https://HOST/slack/interactivity).

    Needs SLACK_SIGNING_SECRET; SLACK_BOT_TOKEN (and SLACK_BASE_URL for a local fake) to
    acknowledge decisions in the digest's thread. With EVALCORE_INTAKE_TOKEN set, the same
    server takes production failures at POST /intake (Authorization: Bearer <token>).
    Each secret may instead be in a Prefect Secret block named in its EVALCORE_*_BLOCK
    variable (e.g. EVALCORE_SLACK_SIGNING_SECRET_BLOCK).

    With --socket-mode, clicks arrive over a WebSocket the app opens with SLACK_APP_TOKEN
    (no public URL needed).

    Example: [bold]SLACK_SIGNING_SECRET=... evalcore slack serve --port 3000[/]
    """
    import uvicorn

    from evalcore.cli.intake import intake_routes
    from evalcore.secrets import INTAKE_TOKEN, SLACK_SIGNING_SECRET
    from evalcore.slack.client import slack_client
    from evalcore.slack.receiver import create_receiver
    from evalcore.store.engine import get_engine
    from evalcore.triage.clicks import record_clicks

    open_store()  # before a server answers requests it could not store
    if socket_mode:
        _serve_socket_mode(load(suite))
        return
    signing_secret = _secret(SLACK_SIGNING_SECRET)
    if signing_secret is None:
        fail(
            "SLACK_SIGNING_SECRET is not set (nor a Secret block named in "
            f"{SLACK_SIGNING_SECRET.block_variable}): without it no request can be verified"
        )
    intake_token = _secret(INTAKE_TOKEN)
    _bot_client()  # a bot token block that cannot be read stops the server before it starts
    loaded = load(suite)
    app = create_receiver(
        signing_secret=signing_secret.get_secret_value(),
        engine=get_engine,
        on_clicks=record_clicks(get_engine, lambda: loaded, slack_client),
        extra_routes=intake_routes(get_engine, lambda: loaded, intake_token.get_secret_value())
        if intake_token
        else None,
    )
    uvicorn.run(
        app, host=host, port=port, log_level="info", timeout_graceful_shutdown=SHUTDOWN_GRACE_S
    )


def _serve_socket_mode(loaded: Suite) -> None:
    """Connect over Socket Mode and record clicks until interrupted."""
    import time

    from evalcore.cli.console import console
    from evalcore.secrets import SLACK_APP_TOKEN, SLACK_BOT_TOKEN
    from evalcore.slack.socket_mode import socket_mode_client
    from evalcore.store.engine import get_engine
    from evalcore.triage.clicks import record_clicks

    app_token = _secret(SLACK_APP_TOKEN)
    if app_token is None:
        fail(
            "SLACK_APP_TOKEN (an app-level xapp- token) is needed for --socket-mode, or a "
            f"Secret block named in {SLACK_APP_TOKEN.block_variable}"
        )
    web = _bot_client()
    if web is None:
        fail(
            f"a bot token in {SLACK_BOT_TOKEN.sources} is needed for --socket-mode "
            "(to answer in the digest's thread)"
        )
    client = socket_mode_client(
        app_token=app_token.get_secret_value(),
        web_client=web,
        on_clicks=record_clicks(get_engine, lambda: loaded, lambda: web),
    )
    client.connect()
    console.print("connected over Socket Mode; Ctrl-C stops", highlight=False)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()


def _secret(secret: SettingSecret) -> SecretStr | None:
    """The secret from its variable or its block; a block that cannot be read exits 3."""
    from evalcore.secrets import SecretBlockError, setting_secret

    try:
        return setting_secret(secret)
    except SecretBlockError as exc:
        fail(str(exc))


def _bot_client() -> WebClient | None:
    """The bot's client, its token read now (a block once per process), or None."""
    from evalcore.secrets import SecretBlockError
    from evalcore.slack.client import slack_client

    try:
        return slack_client()
    except SecretBlockError as exc:
        fail(str(exc))
