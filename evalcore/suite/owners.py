"""`evals/owners.yaml`: who may decide what. One person per entry, with a Slack id and scopes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scopes(_Strict):
    """What a person owns. `thresholds` names sets (or `*`) whose thresholds they may change."""

    release: bool = False
    routes: list[str] = Field(default_factory=list)
    sets: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    thresholds: list[str] = Field(default_factory=list)
    budgets: bool = False


class Owner(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
    name: str
    slack_id: str = Field(pattern=r"^[UW][A-Z0-9]{2,}$")
    email: str | None = None
    owns: Scopes = Field(default_factory=Scopes)


class Owners(_Strict):
    channel: str | None = None
    owners: list[Owner] = Field(default_factory=list)

    def get(self, owner_id: str) -> Owner | None:
        return next((o for o in self.owners if o.id == owner_id), None)

    def by_slack_id(self, slack_id: str) -> Owner | None:
        return next((o for o in self.owners if o.slack_id == slack_id), None)
