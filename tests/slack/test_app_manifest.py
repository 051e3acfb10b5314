"""The Slack app manifest shipped in deployments/ asks for exactly the scopes the code's
Slack calls need (checked against the scopes the fake Slack enforces per method, the same
table Slack documents), and points interactivity at the receiver's own path."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import yaml
from sqlalchemy.engine import Engine

from evalcore.local.fake_slack.web_api import METHODS

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deployments" / "slack-app-manifest.yaml"
# A WebClient call in the code: `client.chat_postMessage(`, `self.client.conversations_list,`
_CALL = re.compile(r"\.(chat|conversations|users|reactions|apps|auth)_([A-Za-z]+)\b")


def web_api_methods_called() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "evalcore").rglob("*.py"):
        if "fake_slack" in path.parts:
            continue
        for family, name in _CALL.findall(path.read_text()):
            found.add(f"{family}.{name}")
    return found


def test_the_manifest_asks_for_exactly_the_scopes_the_calls_need() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    called = web_api_methods_called()
    assert {"chat.postMessage", "chat.update", "conversations.replies"} <= called
    unknown = called - METHODS.keys()
    assert not unknown, f"calls the fake Slack does not serve: {sorted(unknown)}"
    needed = set().union(*(METHODS[name].scopes for name in called))
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed


def test_interactivity_points_at_the_receiver() -> None:
    from evalcore.slack.receiver import create_receiver

    manifest = yaml.safe_load(MANIFEST.read_text())
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    path = urlparse(interactivity["request_url"]).path
    app = create_receiver(signing_secret="s", engine=_no_engine, on_clicks=lambda *_: None)
    assert path in {getattr(route, "path", None) for route in app.routes}
    assert manifest["settings"]["socket_mode_enabled"] is False  # HTTP by default; see the file


def _no_engine() -> Engine:
    raise AssertionError("the routes are only listed, never called")
