"""Every environment setting evalcore reads, in one place.

`EVALCORE_DATABASE_URL` switches the store from the embedded SQLite file to PostgreSQL;
`EVALCORE_HOME` moves the local state folder (database, digests, reports).
`EVALCORE_TARGET_URL` / `EVALCORE_JUDGE_URL` point gate runs that name no target (a
`release.created` event without one) at an endpoint other than the scorecard's.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVALCORE_", extra="ignore")

    home: Path = Path(".evalcore")
    database_url: str | None = None
    suite: Path = Path("evals")
    target_url: str | None = None
    judge_url: str | None = None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'evalcore.db').resolve()}"


def get_settings() -> Settings:
    return Settings()
