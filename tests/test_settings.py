"""Settings: every environment variable evalcore reads is listed in `evalcore.settings`,
read there and nowhere else, with its old name and default; tokens and secrets never show
when settings are printed; and what each one configures still gets it."""

from __future__ import annotations

import ast
import hashlib
import hmac
import re
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import SecretStr
from starlette.testclient import TestClient
from typer.testing import CliRunner

from evalcore import settings as settings_module
from evalcore.settings import SLACK_API_URL, Settings, get_settings
from evalcore.slack.client import slack_client, web_client

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "evals"

# Each variable, the setting it fills, and a value to set it to.
VARIABLES: dict[str, tuple[str, str]] = {
    "EVALCORE_HOME": ("home", "/srv/evalcore-home"),
    "EVALCORE_DATABASE_URL": ("database_url", "postgresql://postgres@127.0.0.1:5432/evals"),
    "EVALCORE_SUITE": ("suite", "/srv/suite"),
    "EVALCORE_TARGET_URL": ("target_url", "http://127.0.0.1:9001/v1"),
    "EVALCORE_JUDGE_URL": ("judge_url", "http://127.0.0.1:9002/v1"),
    "EVALCORE_INTAKE_TOKEN": ("intake_token", "intake-token-value"),
    "SLACK_BOT_TOKEN": ("slack_bot_token", "xoxb-bot-token-value"),
    "SLACK_BASE_URL": ("slack_base_url", "http://127.0.0.1:9003/api/"),
    "SLACK_SIGNING_SECRET": ("slack_signing_secret", "signing-secret-value"),
    "SLACK_APP_TOKEN": ("slack_app_token", "xapp-app-token-value"),
    "EVALCORE_INTAKE_TOKEN_BLOCK": ("intake_token_block", "intake-token"),
    "EVALCORE_GATE_LEASE_SECONDS": ("gate_lease_seconds", "90.0"),
    "EVALCORE_SLACK_BOT_TOKEN_BLOCK": ("slack_bot_token_block", "slack-bot-token"),
    "EVALCORE_SLACK_SIGNING_SECRET_BLOCK": ("slack_signing_secret_block", "slack-signing-secret"),
    "EVALCORE_SLACK_APP_TOKEN_BLOCK": ("slack_app_token_block", "slack-app-token"),
}
SECRETS = ("EVALCORE_INTAKE_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")


def env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"EVALCORE_{field.upper()}"


def plain(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_every_setting_has_its_variable_and_the_docstring_table_lists_them_all() -> None:
    assert {env_name(field): field for field in Settings.model_fields} == {
        variable: field for variable, (field, _) in VARIABLES.items()
    }
    doc = settings_module.__doc__ or ""
    rows = re.findall(r"^\| `([A-Z_]+)` +\| (\w+) +\|", doc, flags=re.MULTILINE)
    assert dict(rows) == {variable: field for variable, (field, _) in VARIABLES.items()}


def test_every_variable_is_read_into_its_setting(clean_env: pytest.MonkeyPatch) -> None:
    for variable, (_, value) in VARIABLES.items():
        clean_env.setenv(variable, value)
    settings = get_settings()
    assert {
        variable: plain(getattr(settings, field)) for variable, (field, _) in VARIABLES.items()
    } == {variable: value for variable, (_, value) in VARIABLES.items()}


def test_unset_or_empty_variables_keep_their_defaults(clean_env: pytest.MonkeyPatch) -> None:
    unset = get_settings()
    assert (unset.home, unset.suite, unset.database_url) == (Path(".evalcore"), Path("evals"), None)
    assert unset.resolved_database_url() == f"sqlite:///{Path('.evalcore/evalcore.db').resolve()}"
    for variable in ("EVALCORE_INTAKE_TOKEN", "SLACK_BOT_TOKEN", "SLACK_BASE_URL", *SECRETS):
        clean_env.setenv(variable, "")
    for settings in (unset, get_settings()):
        assert settings.slack_base_url == SLACK_API_URL == "https://slack.com/api/"
        assert settings.intake_token is None
        assert settings.slack_bot_token is None
        assert settings.slack_signing_secret is None
        assert settings.slack_app_token is None


def test_tokens_and_secrets_never_show_when_settings_are_printed(
    clean_env: pytest.MonkeyPatch,
) -> None:
    for variable, (_, value) in VARIABLES.items():
        clean_env.setenv(variable, value)
    settings = get_settings()
    shown = (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump()))
    for variable in SECRETS:
        assert all(VARIABLES[variable][1] not in text for text in shown), variable
    assert VARIABLES["SLACK_BASE_URL"][1] in repr(settings)  # not a secret


def variables_read(path: Path) -> list[tuple[int, str]]:
    """(line, name) of each `os.environ.get(NAME)`, `os.getenv(NAME)` or `os.environ[NAME]`
    in `path` whose NAME is a literal or a module-level constant."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    arguments: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            if ast.unparse(node.func) in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
                arguments.append(node.args[0])
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and ast.unparse(node.value) in ("os.environ", "environ")
        ):
            arguments.append(node.slice)
    found: list[tuple[int, str]] = []
    for argument in arguments:
        name = argument.value if isinstance(argument, ast.Constant) else None
        if isinstance(argument, ast.Name):
            name = constants.get(argument.id)
        if isinstance(name, str):
            found.append((argument.lineno, name))
    return found


def test_no_module_but_settings_reads_these_variables() -> None:
    sources = [
        path for top in ("evalcore", "flows", "deployments") for path in (ROOT / top).rglob("*.py")
    ]
    offenders = [
        f"{path.relative_to(ROOT)}:{line} reads {name}"
        for path in sorted(sources)
        if path != ROOT / "evalcore" / "settings.py"
        for line, name in variables_read(path)
        if name in VARIABLES
    ]
    assert offenders == []


def test_the_slack_client_takes_its_token_and_base_url_from_the_settings(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert slack_client() is None
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    clean_env.setenv("SLACK_BASE_URL", "http://127.0.0.1:9/api/")
    client = slack_client()
    assert client is not None
    assert (client.token, client.base_url) == ("xoxb-from-env", "http://127.0.0.1:9/api/")
    given = slack_client("xoxb-given", base_url="http://127.0.0.1:8/api/")
    assert given is not None and (given.token, given.base_url) == (
        "xoxb-given",
        "http://127.0.0.1:8/api/",
    )
    clean_env.setenv("SLACK_BASE_URL", "")
    assert web_client("xoxb-any").base_url == "https://slack.com/api/"


def _served_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    """What `evalcore slack serve` would hand uvicorn, without serving it."""
    import uvicorn

    from evalcore.cli.slack import slack_app

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    app = typer.Typer()
    app.add_typer(slack_app, name="slack")
    done = CliRunner().invoke(app, ["slack", "serve", "--suite", str(EXAMPLE)])
    assert done.exit_code == 0, done.output
    (receiver,) = served
    return receiver


def _signed(secret: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def test_slack_serve_verifies_with_the_signing_secret_and_takes_intake_with_its_token(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("SLACK_SIGNING_SECRET", "secret-from-env")
    clean_env.setenv("EVALCORE_INTAKE_TOKEN", "intake-from-env")
    body = b"payload=not-json"
    with TestClient(_served_app(clean_env)) as http:
        # Verified with the variable's secret: past the signature, refused for its payload.
        signed = http.post(
            "/slack/interactivity", content=body, headers=_signed("secret-from-env", body)
        )
        assert signed.status_code == 400
        forged = http.post("/slack/interactivity", content=body, headers=_signed("other", body))
        assert forged.status_code == 401
        bearer = {"Authorization": "Bearer intake-from-env"}
        assert http.post("/intake", content=b"{", headers=bearer).status_code == 400
        wrong = {"Authorization": "Bearer intake-other"}
        assert http.post("/intake", content=b"{", headers=wrong).status_code == 401

    clean_env.setenv("EVALCORE_INTAKE_TOKEN", "")
    with TestClient(_served_app(clean_env)) as http:
        assert http.post("/intake", content=b"{", headers=bearer).status_code == 404


def test_a_database_password_never_shows_when_settings_are_printed(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("EVALCORE_DATABASE_URL", "postgresql://evalcore:hunter2-pw@db:5432/evals")
    clean_env.setenv("EVALCORE_TARGET_URL", "http://user:t-pass-77@model/v1?api_key=k-123456")
    settings = get_settings()

    assert settings.resolved_database_url().endswith("hunter2-pw@db:5432/evals")
    for text in (repr(settings), str(settings)):
        assert "hunter2-pw" not in text and "t-pass-77" not in text and "k-123456" not in text
