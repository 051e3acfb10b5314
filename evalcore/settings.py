"""Every environment setting evalcore reads, in one place.

`EVALCORE_DATABASE_URL` switches the store from the embedded SQLite file to PostgreSQL;
`EVALCORE_HOME` moves the local state folder (database, digests, reports).
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVALCORE_", extra="ignore")

    home: Path = Path(".evalcore")
    database_url: str | None = None
    suite: Path = Path("evals")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'evalcore.db').resolve()}"


def get_settings() -> Settings:
    return Settings()
