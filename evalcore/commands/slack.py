"""`evalcore slack serve`: the interactivity receiver on uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from evalcore.commands.common import SuiteOption, fail, load

slack_app = typer.Typer(help="Slack: the interactivity receiver.", no_args_is_help=True)


@slack_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    suite: SuiteOption = None,
) -> None:
    """Receive Slack's button clicks (Request URL: https://HOST/slack/interactivity).

    Needs SLACK_SIGNING_SECRET; SLACK_BOT_TOKEN (and SLACK_BASE_URL for a local fake) to
    acknowledge decisions in the digest's thread. With EVALCORE_INTAKE_TOKEN set, the same
    server takes production failures at POST /intake (Authorization: Bearer <token>).

    Example: [bold]SLACK_SIGNING_SECRET=... evalcore slack serve --port 3000[/]
    """
    import uvicorn

    from evalcore.commands.intake import intake_routes
    from evalcore.slack.client import slack_client
    from evalcore.slack.receiver import create_receiver
    from evalcore.store.engine import get_engine

    secret = os.environ.get("SLACK_SIGNING_SECRET", "")
    if not secret:
        fail("SLACK_SIGNING_SECRET is not set: without it no request can be verified")
    loaded = load(suite)
    intake_token = os.environ.get("EVALCORE_INTAKE_TOKEN", "")
    app = create_receiver(
        signing_secret=secret,
        engine=get_engine,
        suite=lambda: loaded,
        client=slack_client,
        extra_routes=intake_routes(get_engine, lambda: loaded, intake_token)
        if intake_token
        else None,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
