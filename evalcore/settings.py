"""Every environment variable evalcore reads, in one place, read through `get_settings()`.

| Variable                | Setting              | Unset means                                     |
| ----------------------- | -------------------- | ----------------------------------------------- |
| `EVALCORE_HOME`         | home                 | `.evalcore`: the database, digests, reports     |
| `EVALCORE_DATABASE_URL` | database_url         | the SQLite file `evalcore.db` in the home       |
| `EVALCORE_SUITE`        | suite                | `evals`, for commands and flows given no suite  |
| `EVALCORE_TARGET_URL`   | target_url           | gate and monitor runs call the scorecard's URL  |
| `EVALCORE_JUDGE_URL`    | judge_url            | the LLM judge is the scorecard's                |
| `EVALCORE_GATE_LEASE_SECONDS` | gate_lease_seconds | 60: a killed gate holds its release 60 s |
| `EVALCORE_INTAKE_TOKEN` | intake_token         | `slack serve` takes no `POST /intake`           |
| `SLACK_BOT_TOKEN`       | slack_bot_token      | nothing is posted: the digest stays offline     |
| `SLACK_BASE_URL`        | slack_base_url       | Slack's own Web API, `https://slack.com/api/`   |
| `SLACK_SIGNING_SECRET`  | slack_signing_secret | `slack serve` refuses to start                  |
| `SLACK_APP_TOKEN`       | slack_app_token      | `slack serve --socket-mode` refuses to start    |
| `EVALCORE_SLACK_BOT_TOKEN_BLOCK`      | slack_bot_token_block      | only `SLACK_BOT_TOKEN` is read |
| `EVALCORE_SLACK_SIGNING_SECRET_BLOCK` | slack_signing_secret_block | only `SLACK_SIGNING_SECRET` is read |
| `EVALCORE_SLACK_APP_TOKEN_BLOCK`      | slack_app_token_block      | only `SLACK_APP_TOKEN` is read |
| `EVALCORE_INTAKE_TOKEN_BLOCK`         | intake_token_block         | only `EVALCORE_INTAKE_TOKEN` is read |

`EVALCORE_TARGET_URL` / `EVALCORE_JUDGE_URL` point gate runs that name no target (a
`release.created` event without one) at an endpoint other than the scorecard's. A Slack
or intake variable set to the empty string counts as unset. Tokens and secrets are
`SecretStr`, so a printed or logged `Settings` never shows them.

A `*_BLOCK` variable names a Prefect Secret block holding that token or secret, read
through `evalcore.secrets` when needed; the token's own variable wins when both are set.

Not here: a target's or judge's API key, read under the name its scorecard gives
(`api_key_env`) or from the Secret block it names (`api_key_block`), and Prefect's own
`PREFECT_*` settings.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API_URL = "https://slack.com/api/"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVALCORE_", extra="ignore")

    home: Path = Path(".evalcore")
    # May carry a password: kept out of the settings' repr (and so out of logs).
    database_url: str | None = Field(None, repr=False)
    # URLs may carry credentials too (they are masked wherever they are stored).
    suite: Path = Path("evals")
    target_url: str | None = Field(None, repr=False)
    judge_url: str | None = Field(None, repr=False)
    # EVALCORE_GATE_LEASE_SECONDS: how long a gate's claim on its release outlives its
    # last renewal (renewed every third of it), so a killed gate blocks the next this long.
    gate_lease_seconds: float = Field(60.0, gt=0)
    intake_token: SecretStr | None = None
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_base_url: str = Field(SLACK_API_URL, validation_alias="SLACK_BASE_URL")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    # Names of Prefect Secret blocks holding the secrets above (see evalcore.secrets).
    intake_token_block: str | None = None
    slack_bot_token_block: str | None = None
    slack_signing_secret_block: str | None = None
    slack_app_token_block: str | None = None

    @field_validator(
        "intake_token",
        "slack_bot_token",
        "slack_base_url",
        "slack_signing_secret",
        "slack_app_token",
        "intake_token_block",
        "slack_bot_token_block",
        "slack_signing_secret_block",
        "slack_app_token_block",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`SLACK_BOT_TOKEN=` in a shell or a CI file means no token, not an empty one."""
        if value == "":
            raise PydanticUseDefault
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'evalcore.db').resolve()}"


def get_settings() -> Settings:
    """The environment as it is now (tests and `evalcore up` change it between calls)."""
    return Settings()
