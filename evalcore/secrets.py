"""Secrets from where operators keep them: an environment variable, or a Prefect Secret block.

The Slack bot token, signing secret and app token, the intake token (each named by a
`*_BLOCK` setting) and a target's API key (`target.api_key_block` in the scorecard) may
live in a Prefect `Secret` block instead of the environment. When both a variable and a
block are set, the variable wins: an operator can override a shared block for one process
without touching it.

A block is read from the Prefect API in use (`PREFECT_API_URL`, else Prefect's temporary
server on `PREFECT_HOME`) the first time it is needed, then kept in this process's memory
only: a value is never written anywhere, and a failure is one line naming the block.
Prefect is imported only when a block is named, so a process without blocks never loads
it.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from pydantic import SecretStr

from evalcore.settings import Settings, get_settings

__all__ = [
    "INTAKE_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SecretBlockError",
    "SettingSecret",
    "block_secret",
    "forget_loaded_blocks",
    "is_configured",
    "setting_secret",
]


class SecretBlockError(Exception):
    """A named Secret block could not be read; the message names the block and its use."""


@dataclass(frozen=True)
class SettingSecret:
    """A secret setting: the `Settings` field read from `variable`, and the field naming
    its Secret block, read from `block_variable`."""

    field: str
    variable: str
    block_field: str
    block_variable: str

    @property
    def sources(self) -> str:
        """Where the secret may come from, as an operator sets it."""
        return f"{self.variable} or a Secret block named in {self.block_variable}"


SLACK_BOT_TOKEN = SettingSecret(
    "slack_bot_token", "SLACK_BOT_TOKEN", "slack_bot_token_block", "EVALCORE_SLACK_BOT_TOKEN_BLOCK"
)
SLACK_SIGNING_SECRET = SettingSecret(
    "slack_signing_secret",
    "SLACK_SIGNING_SECRET",
    "slack_signing_secret_block",
    "EVALCORE_SLACK_SIGNING_SECRET_BLOCK",
)
SLACK_APP_TOKEN = SettingSecret(
    "slack_app_token", "SLACK_APP_TOKEN", "slack_app_token_block", "EVALCORE_SLACK_APP_TOKEN_BLOCK"
)
INTAKE_TOKEN = SettingSecret(
    "intake_token", "EVALCORE_INTAKE_TOKEN", "intake_token_block", "EVALCORE_INTAKE_TOKEN_BLOCK"
)

# Characters of Prefect's own error kept in the one line a failure prints.
_MAX_DETAIL = 300
# (Prefect API URL, block name) -> value: each block is read once per process and API.
_loaded: dict[tuple[str | None, str], SecretStr] = {}
_loading = threading.Lock()


def is_configured(secret: SettingSecret, settings: Settings | None = None) -> bool:
    """True when the variable or a block name is set; nothing is loaded."""
    settings = settings or get_settings()
    return (
        getattr(settings, secret.field) is not None
        or getattr(settings, secret.block_field) is not None
    )


def setting_secret(secret: SettingSecret, settings: Settings | None = None) -> SecretStr | None:
    """The secret from its variable, else from its block, else None (`SecretBlockError`
    when a block is named but cannot be read)."""
    settings = settings or get_settings()
    value: SecretStr | None = getattr(settings, secret.field)
    if value is not None:
        return value
    block: str | None = getattr(settings, secret.block_field)
    if block is None:
        return None
    return block_secret(block, used_for=secret.block_variable)


def block_secret(name: str, *, used_for: str) -> SecretStr:
    """The text in Prefect Secret block `name`, read once per process; `used_for` (the
    setting or scorecard field naming it) goes into the error a failure raises."""
    from prefect.settings import get_current_settings

    api_url = get_current_settings().api.url
    key = (api_url, name)
    with _loading:
        if key not in _loaded:
            _loaded[key] = _read_block(name, used_for=used_for, api_url=api_url)
        return _loaded[key]


def forget_loaded_blocks() -> None:
    """Read every block afresh on next use (a test that saved new values)."""
    with _loading:
        _loaded.clear()


def _read_block(name: str, *, used_for: str, api_url: str | None) -> SecretStr:
    from prefect.blocks.system import Secret
    from prefect.exceptions import ObjectNotFound

    where = f"on {_shown_api(api_url)}"
    what = f"Prefect Secret block {name!r} ({used_for})"
    try:
        # Sync even inside an event loop (Prefect would hand back a coroutine there):
        # read once, before the calls that need it.
        load_now = cast("Callable[..., Secret[Any]]", Secret.load)
        block = load_now(name, _sync=True)
    except Exception as exc:
        if isinstance(exc.__cause__, ObjectNotFound):
            raise SecretBlockError(
                f"{what} was not found {where}: create it (`prefect block create secret`, "
                f"or Secret(value=...).save({name!r})) or point PREFECT_API_URL at the "
                "server holding it"
            ) from None
        detail = " ".join(str(exc).split())[:_MAX_DETAIL] or "no detail"
        raise SecretBlockError(
            f"{what} could not be read {where}: {type(exc).__name__}: {detail}"
        ) from None
    value = block.value.get_secret_value()
    if not isinstance(value, str):
        raise SecretBlockError(f"{what} {where} holds {type(value).__name__}, not text")
    if not value.strip():
        raise SecretBlockError(f"{what} {where} is empty")
    return SecretStr(value.strip())


def _shown_api(api_url: str | None) -> str:
    """The Prefect API as a message may show it: without user info."""
    if not api_url:
        return "Prefect's temporary server (PREFECT_API_URL is not set)"
    parts = urllib.parse.urlsplit(api_url)
    host = parts.netloc.rpartition("@")[2]
    return f"the Prefect API at {urllib.parse.urlunsplit(parts._replace(netloc=host))}"
