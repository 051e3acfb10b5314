"""Slack for evalcore: a local fake of the Slack Web API (`FakeSlackServer`, `create_app`)
that the real `slack_sdk` clients talk to through `base_url`, and helpers that sign
requests the way Slack signs the ones it sends to an app."""

from evalcore.slack.fake import (
    DEFAULT_PORT,
    DEFAULT_TOKEN,
    FakeChannel,
    FakeSlackConfig,
    FakeSlackError,
    FakeSlackServer,
    FakeUser,
    Fault,
    create_app,
    serve,
)
from evalcore.slack.signing import interactivity_body, sign_request

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TOKEN",
    "FakeChannel",
    "FakeSlackConfig",
    "FakeSlackError",
    "FakeSlackServer",
    "FakeUser",
    "Fault",
    "create_app",
    "interactivity_body",
    "serve",
    "sign_request",
]
