"""What the fake Slack is told: the workspace it serves (tokens, scopes, bot identity,
channels, people) and the faults it injects into the next Web API calls."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_APP_TOKEN",
    "DEFAULT_SCOPES",
    "DEFAULT_TOKEN",
    "FakeChannel",
    "FakeSlackConfig",
    "FakeUser",
    "Fault",
]

DEFAULT_TOKEN = "xoxb-fake-evalcore"
DEFAULT_APP_TOKEN = "xapp-1-fake-evalcore"
DEFAULT_SCOPES: tuple[str, ...] = (
    "chat:write",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
    "users:read",
    "reactions:write",
)


class FakeChannel(BaseModel):
    """A conversation of the fake workspace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[CG][A-Z0-9]{2,}$")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,79}$")
    is_private: bool = False
    is_archived: bool = False
    is_general: bool = False
    bot_is_member: bool = True
    members: list[str] | None = None
    """User ids in the channel; None means every user of the directory."""
    topic: str = ""
    purpose: str = ""
    created: int = 1_700_000_000


class FakeUser(BaseModel):
    """A human of the fake workspace's directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[UW][A-Z0-9]{2,}$")
    name: str
    real_name: str
    display_name: str = ""
    email: str | None = None
    tz: str = "Europe/Berlin"
    tz_label: str = "Central European Time"
    tz_offset: int = 3600
    is_admin: bool = False
    deleted: bool = False


def _default_channels() -> list[FakeChannel]:
    return [
        FakeChannel(
            id="C0EVALS01",
            name="support-assistant-evals",
            topic="Eval results and the weekly triage digest",
            purpose="Where evalcore reports on the support assistant",
        ),
        FakeChannel(id="C0GENERAL1", name="general", is_general=True),
        FakeChannel(id="G0EVALPRIV", name="eval-owners-private", is_private=True),
    ]


def _default_users() -> list[FakeUser]:
    """The people of the example suite's owners.yaml, plus one who owns nothing."""
    people = [
        ("U04QH7KM2AB", "maya.okafor", "Maya Okafor", False),
        ("U05B8RZT1QK", "daniel.brandt", "Daniel Brandt", False),
        ("U03LMX9PE2C", "priya.raman", "Priya Raman", False),
        ("U06KQ2VN8HD", "tom.lindqvist", "Tom Lindqvist", False),
        ("U06LS3PQ8ZW", "lena.schmidt", "Lena Schmidt", True),
    ]
    return [
        FakeUser(
            id=user_id,
            name=name,
            real_name=real_name,
            display_name=name.split(".")[0],
            email=f"{name}@lumenhome.example",
            is_admin=admin,
        )
        for user_id, name, real_name, admin in people
    ]


class FakeSlackConfig(BaseModel):
    """The fake workspace: who may call, what the bot may do, channels and people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[str] = Field(default_factory=lambda: [DEFAULT_TOKEN], min_length=1)
    # App-level tokens, for Socket Mode's apps.connections.open only.
    app_tokens: list[str] = Field(default_factory=lambda: [DEFAULT_APP_TOKEN])
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    team_id: str = "T07EVALCORE"
    team_name: str = "Evalcore"
    team_domain: str = "evalcore"
    bot_user_id: str = "U07EVALBOT"
    bot_id: str = "B07EVALBOT"
    app_id: str = "A07EVALAPP"
    bot_name: str = "evalcore"
    signing_secret: str = "fake-signing-secret-evalcore"
    channels: list[FakeChannel] = Field(default_factory=_default_channels)
    users: list[FakeUser] = Field(default_factory=_default_users)

    @field_validator("tokens")
    @classmethod
    def _tokens_look_like_tokens(cls, value: list[str]) -> list[str]:
        for token in value:
            if not re.fullmatch(r"xox[abpe]-[A-Za-z0-9\-]+", token):
                raise ValueError(f"not a Slack token: {token[:8]!r}...")
        return value

    @model_validator(mode="after")
    def _unique(self) -> FakeSlackConfig:
        for what, values in (
            ("channel id", [c.id for c in self.channels]),
            ("channel name", [c.name for c in self.channels]),
            ("user id", [u.id for u in self.users]),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"duplicate {what} in the fake workspace")
        if self.bot_user_id in {u.id for u in self.users}:
            raise ValueError("the bot user id is also a human's id")
        known = {u.id for u in self.users}
        for channel in self.channels:
            unknown = set(channel.members or ()) - known
            if unknown:
                raise ValueError(f"#{channel.name} lists unknown members {sorted(unknown)}")
        return self

    @property
    def token(self) -> str:
        """The first configured token (the one `FakeSlackServer` hands to clients)."""
        return self.tokens[0]


class Fault(BaseModel):
    """A misbehaviour served to the next `times` matching Web API calls.

    `status=429` answers `ratelimited` with `Retry-After: retry_after` (default 1);
    `status>=500` answers that status with `{"ok": false, "error": "internal_error"}`;
    `error` alone (status 200) forces `{"ok": false, "error": error}`. `delay_s` waits
    before answering (then answers normally if nothing else is set). `method=None`
    matches every method.

    `takes_effect=True` carries the call out first (a posted message is stored) and only
    then delays or replaces the answer: Slack stored the message but the client saw a
    500, or its timeout passed before the answer came. Slack does not carry out a
    rate-limited call, so it does not go with 429.
    """

    model_config = ConfigDict(extra="forbid")

    method: str | None = None
    status: int = Field(default=200, ge=200, le=599)
    error: str | None = None
    retry_after: int | None = Field(default=None, ge=0)
    times: int = Field(default=1, ge=1)
    delay_s: float = Field(default=0.0, ge=0, le=60)
    takes_effect: bool = False

    @model_validator(mode="after")
    def _meaningful(self) -> Fault:
        if 200 < self.status < 400:
            raise ValueError("a fault status is 200 (with error), 4xx or 5xx")
        if self.status == 200 and self.error is None and self.delay_s == 0:
            raise ValueError("a fault needs a status other than 200, an error or a delay")
        if self.retry_after is not None and self.status != 429:
            raise ValueError("retry_after only goes with status 429")
        if self.takes_effect and self.status == 429:
            raise ValueError("a rate-limited call is not carried out: no takes_effect with 429")
        return self
