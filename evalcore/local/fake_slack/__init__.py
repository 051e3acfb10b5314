"""A local fake of the Slack Web API (`FakeSlackServer`, `create_app`) that the real
`slack_sdk` clients talk to through `base_url`, for the tests and the demo:
`python -m evalcore.local.fake_slack --port 8790`."""

from evalcore.local.fake_slack.config import (
    DEFAULT_TOKEN,
    FakeChannel,
    FakeSlackConfig,
    FakeUser,
    Fault,
)
from evalcore.local.fake_slack.server import (
    DEFAULT_PORT,
    FakeSlackError,
    FakeSlackServer,
    create_app,
    serve,
)

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
    "serve",
]
