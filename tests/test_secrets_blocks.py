"""Secrets from Prefect Secret blocks: the target's API key (`target.api_key_block`), the
Slack bot token, the signing secret and the intake token (`EVALCORE_*_BLOCK`) are read from
blocks on a real Prefect server, reach the reference target and the fake Slack, and are
found in no database row, report, digest, Prefect flow parameter, artifact or log, nor in
anything the commands printed. A block that is missing or unreachable stops a command
with one line naming it (exit 3) before anything is called.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from evalcore.local.fake_slack import FakeSlackConfig, FakeSlackServer
from evalcore.local.loopback import free_port
from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.local.reference.__main__ import build_parser
from evalcore.local.reference.server import create_app
from evalcore.local.stack import prefect_api
from evalcore.secrets import (
    SLACK_BOT_TOKEN,
    SecretBlockError,
    block_secret,
    forget_loaded_blocks,
    is_configured,
    setting_secret,
)
from evalcore.slack.signing import interactivity_body, sign_request
from evalcore.suite import load_suite
from tests.cli_helpers import evalcore, evalcore_process, process_env
from tests.run.test_secrets_redacted import StubEndpoint, answer, leaks

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "evals"
CHANNEL = "C0EVALS01"  # the fake workspace's #support-assistant-evals
NO_PREFECT = "http://127.0.0.1:9/api"  # the discard port: connection refused
KEY_LINE = "  # api_key_env: OPENAI_API_KEY\n"  # in the example scorecard's target
# Empty counts as unset: a value in the shell running the tests cannot stand in for a block.
NO_SECRET_VARIABLES = {
    "SLACK_BOT_TOKEN": "",
    "SLACK_SIGNING_SECRET": "",
    "SLACK_APP_TOKEN": "",
    "EVALCORE_INTAKE_TOKEN": "",
}


def fresh(prefix: str) -> str:
    """A value (or block name) no other test and no earlier run of this one uses."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


@contextlib.contextmanager
def on_server(api: str) -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    with temporary_settings({PREFECT_API_URL: api, PREFECT_LOGGING_TO_API_ENABLED: False}):
        yield


def save_blocks(api: str, blocks: dict[str, Any]) -> None:
    """Prefect Secret blocks `name: value`, as an operator creates them."""
    from prefect.blocks.system import Secret

    with on_server(api):
        for name, value in blocks.items():
            Secret(value=value).save(name, overwrite=True)


def suite_with_key_block(root: Path, block: str) -> Path:
    """The example suite, its target's key read from Secret block `block`."""
    shutil.copytree(EXAMPLE, root)
    scorecard = root / "scorecard.yaml"
    text = scorecard.read_text()
    assert KEY_LINE in text
    scorecard.write_text(text.replace(KEY_LINE, f"  api_key_block: {block}\n"))
    return root


def database_rows(home: Path) -> str:
    """Every row of every table of the store, as text."""
    with contextlib.closing(sqlite3.connect(home / "evalcore.db")) as conn:
        tables = [
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return "\n".join(
            f"{table}: {row!r}"
            for table in tables
            for row in conn.execute(f'SELECT * FROM "{table}"')
        )


def sqlite_rows(home: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(home / "evalcore.db")) as conn:
        return conn.execute(sql).fetchall()


def run_rows(home: Path) -> list[tuple[Any, ...]]:
    """The stored runs; none when the store was never created."""
    if not (home / "evalcore.db").exists():
        return []
    return sqlite_rows(home, "SELECT id FROM run")


def everything_from(api: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every record a Prefect `.../filter` endpoint gives for `body`, page by page."""
    found: list[dict[str, Any]] = []
    with prefect_api(api, timeout_s=30) as client:
        while True:
            page: list[dict[str, Any]] = client.post(
                path, json={**body, "limit": 200, "offset": len(found)}
            ).json()
            found += page
            if len(page) < 200:
                return found


def prefect_records(api: str, since: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """The flow runs created since `since` (this test's), and their artifacts and logs."""
    runs = [
        run
        for run in everything_from(api, "flow_runs/filter", {})
        if dt.datetime.fromisoformat(run["created"]) >= since
    ]
    ids = [run["id"] for run in runs]
    return {
        "flow runs": runs,
        "artifacts": everything_from(
            api, "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": ids}}}
        ),
        "logs": everything_from(api, "logs/filter", {"logs": {"flow_run_id": {"any_": ids}}}),
    }


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command's stderr, asserted to be one `error:` line and no traceback."""
    text = " ".join(done.stderr.split())
    assert done.returncode == 3, done.stdout + done.stderr
    assert text.startswith("error: ") and text.count("error:") == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return text


# --- where a secret comes from ---------------------------------------------------------------


def test_a_variable_wins_over_its_block_and_the_block_is_then_never_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    monkeypatch.setenv("EVALCORE_SLACK_BOT_TOKEN_BLOCK", "bot-token")
    with on_server(NO_PREFECT):  # reading the block would fail
        token = setting_secret(SLACK_BOT_TOKEN)
    assert isinstance(token, SecretStr)
    assert token.get_secret_value() == "xoxb-from-the-environment"


def test_a_block_name_alone_counts_as_configured_and_nothing_set_is_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("SLACK_BOT_TOKEN", "EVALCORE_SLACK_BOT_TOKEN_BLOCK"):
        monkeypatch.delenv(variable, raising=False)
    assert not is_configured(SLACK_BOT_TOKEN) and setting_secret(SLACK_BOT_TOKEN) is None
    monkeypatch.setenv("EVALCORE_SLACK_BOT_TOKEN_BLOCK", "")  # empty counts as unset
    assert not is_configured(SLACK_BOT_TOKEN)
    monkeypatch.setenv("EVALCORE_SLACK_BOT_TOKEN_BLOCK", "bot-token")
    assert is_configured(SLACK_BOT_TOKEN)


def test_an_unreachable_prefect_api_stops_a_run_with_one_line_naming_the_block(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    suite = suite_with_key_block(tmp_path / "suite", "target-key")
    done = evalcore(
        *("run", "--suite", str(suite), "--set", "blocking"),
        cwd=tmp_path,
        home=home,
        env={"PREFECT_API_URL": NO_PREFECT},
    )
    message = one_error_line(done)
    assert "Prefect Secret block 'target-key' (api_key_block) could not be read" in message
    assert f"on the Prefect API at {NO_PREFECT}: ConnectError" in message
    assert run_rows(home) == []


@pytest.mark.slow
def test_a_block_is_read_once_per_process(prefect_api: str) -> None:
    name, first, second = fresh("once"), fresh("first"), fresh("second")
    save_blocks(prefect_api, {name: first})
    with on_server(prefect_api):
        assert block_secret(name, used_for="test").get_secret_value() == first
        save_blocks(prefect_api, {name: second})
        assert block_secret(name, used_for="test").get_secret_value() == first
        forget_loaded_blocks()
        assert block_secret(name, used_for="test").get_secret_value() == second


@pytest.mark.slow
def test_a_block_holding_no_text_is_refused_naming_it(prefect_api: str) -> None:
    name = fresh("structured")
    save_blocks(prefect_api, {name: {"user": "svc", "password": "pw"}})
    with on_server(prefect_api), pytest.raises(SecretBlockError) as refused:
        block_secret(name, used_for="EVALCORE_INTAKE_TOKEN_BLOCK")
    assert str(refused.value) == (
        f"Prefect Secret block {name!r} (EVALCORE_INTAKE_TOKEN_BLOCK) on the Prefect API at "
        f"{prefect_api} holds dict, not text"
    )


@pytest.mark.slow
def test_a_missing_block_stops_every_command_before_it_calls_anything(
    tmp_path: Path, prefect_api: str
) -> None:
    home = tmp_path / "home"
    missing = fresh("missing")
    suite = suite_with_key_block(tmp_path / "suite", missing)
    env = {"PREFECT_API_URL": prefect_api, **NO_SECRET_VARIABLES}
    not_found = f"Prefect Secret block {missing!r} ({{}}) was not found on the Prefect API at"
    # Counts every call it gets (none has the URL credentials it waits for).
    with StubEndpoint(answer, locked=True) as target:
        commands: list[tuple[str, ...]] = [
            ("run", "--set", "blocking", "--target-url", target.base_url),
            ("gate", "--release", "2026.1.1", "--target-url", target.base_url),
        ]
        for command in commands:
            done = evalcore(*command, "--suite", str(suite), cwd=tmp_path, home=home, env=env)
            assert not_found.format("api_key_block") in one_error_line(done), command
        # The judge's block, for the monitoring set's judged cases (the target is keyless).
        judged = tmp_path / "judged"
        shutil.copytree(EXAMPLE, judged)
        scorecard = judged / "scorecard.yaml"
        scorecard.write_text(
            scorecard.read_text().replace(
                "  model: judge\n", f"  model: judge\n  api_key_block: {missing}\n"
            )
        )
        urls = ("--target-url", target.base_url, "--judge-url", target.base_url)
        for command in [("run", "--set", "monitoring", *urls), ("monitor", *urls)]:
            done = evalcore(*command, "--suite", str(judged), cwd=tmp_path, home=home, env=env)
            assert not_found.format("judge.api_key_block") in one_error_line(done), command
    assert target.unauthorized == 0
    slack_commands: list[tuple[tuple[str, ...], str]] = [
        (("digest", "--post", "--channel", CHANNEL), "EVALCORE_SLACK_BOT_TOKEN_BLOCK"),
        (("slack", "serve"), "EVALCORE_SLACK_SIGNING_SECRET_BLOCK"),
        (("slack", "serve", "--socket-mode"), "EVALCORE_SLACK_APP_TOKEN_BLOCK"),
    ]
    for command, variable in slack_commands:
        done = evalcore(
            *command,
            *("--suite", str(EXAMPLE)),
            cwd=tmp_path,
            home=home,
            env={**env, variable: missing},
        )
        assert not_found.format(variable) in one_error_line(done), command
    assert run_rows(home) == []


# --- the scorecard --------------------------------------------------------------------------


def test_the_scorecard_takes_a_key_variable_or_a_block_never_both(tmp_path: Path) -> None:
    both = suite_with_key_block(tmp_path / "both", "target-key")
    scorecard = both / "scorecard.yaml"
    text = scorecard.read_text()
    scorecard.write_text(
        text.replace("  api_key_block:", "  api_key_env: OPENAI_API_KEY\n  api_key_block:")
    )
    refused = evalcore("validate", "--suite", str(both), cwd=tmp_path, home=tmp_path / "home")
    assert refused.returncode == 3
    out = " ".join((refused.stdout + refused.stderr).split())
    assert f"{scorecard}:" in out
    assert "target.openai_chat: give api_key_env or api_key_block, not both" in out

    badly_named = suite_with_key_block(tmp_path / "badly-named", "Target_Key")
    refused = evalcore(
        "validate", "--suite", str(badly_named), cwd=tmp_path, home=tmp_path / "home"
    )
    assert refused.returncode == 3
    out = " ".join((refused.stdout + refused.stderr).split())
    line = EXAMPLE.joinpath("scorecard.yaml").read_text().splitlines().index(KEY_LINE[:-1]) + 1
    assert (
        f"{badly_named / 'scorecard.yaml'}:{line}: target.api_key_block: 'Target_Key' is not a "
        "Prefect block name (lowercase letters, digits and dashes)"
    ) in out


def test_a_scorecard_without_a_block_keeps_its_canonical_form_and_version(tmp_path: Path) -> None:
    """`api_key_block` is left out of the hashed dump when unset, so runs started before it
    existed can still be resumed; naming a block is a new version."""
    plain = load_suite(EXAMPLE)
    dumped = plain.scorecard.model_dump(mode="json")
    assert "api_key_block" not in dumped["target"] and "api_key_block" not in dumped["judge"]
    spelled = tmp_path / "spelled"
    shutil.copytree(EXAMPLE, spelled)
    scorecard = spelled / "scorecard.yaml"
    scorecard.write_text(
        scorecard.read_text()
        .replace(KEY_LINE, "  api_key_block: null\n")
        .replace("  model: judge\n", "  model: judge\n  api_key_block: null\n")
    )
    assert load_suite(spelled).scorecard_version == plain.scorecard_version
    named = load_suite(suite_with_key_block(tmp_path / "named", "target-key"))
    assert named.scorecard_version != plain.scorecard_version
    assert named.scorecard.model_dump(mode="json")["target"]["api_key_block"] == "target-key"


# --- the reference target's key -------------------------------------------------------------


def chat(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    body = {"model": "support-assistant", "messages": [{"role": "user", "content": "Hello"}]}
    response: httpx.Response = client.post("/v1/chat/completions", json=body, headers=headers)
    return response


def test_the_reference_target_with_an_api_key_refuses_calls_without_it() -> None:
    key = fresh("sk")
    with TestClient(create_app(Knobs(api_key=key))) as client:
        assert chat(client, {"Authorization": f"Bearer {key}"}).status_code == 200
        for headers in ({}, {"Authorization": f"Bearer {key}x"}, {"Authorization": key}):
            refused = chat(client, headers)
            assert refused.status_code == 401, headers
            assert refused.json()["error"]["code"] == "invalid_api_key"
            assert key not in refused.text
        assert client.get("/v1/models").status_code == 401
        assert client.get("/health").status_code == 200  # readiness checks need no key
    with TestClient(create_app(Knobs())) as client:
        assert chat(client, {}).status_code == 200  # no key knob: anyone may call
    assert key not in repr(Knobs(api_key=key))


def test_the_api_key_knob_round_trips_through_the_server_command_line(tmp_path: Path) -> None:
    key = fresh("sk")
    assert "--api-key" not in Knobs().cli_args()
    args = vars(build_parser().parse_args(Knobs(api_key=key).cli_args()))
    del args["host"], args["port"]
    assert Knobs(**args) == Knobs(api_key=key)
    shown = evalcore("reference-target", "--help", cwd=tmp_path, home=tmp_path / "home")
    assert "--api-key" in shown.stdout


# --- a key from a block is redacted like one from a variable --------------------------------


@pytest.mark.slow
def test_a_key_from_a_block_echoed_by_the_target_is_masked_in_every_stored_message(
    tmp_path: Path, prefect_api: str
) -> None:
    home = tmp_path / "home"
    key, block = fresh("sk"), fresh("echoed-key")
    save_blocks(prefect_api, {block: key})

    def echo(case_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 401, {"error": {"message": f"Incorrect API key provided: {key}."}}

    with StubEndpoint(echo) as stub:
        suite = suite_with_key_block(tmp_path / "suite", block)
        ran = evalcore(
            *("run", "--suite", str(suite), "--set", "blocking", "--target-url", stub.base_url),
            cwd=tmp_path,
            home=home,
            env={"PREFECT_API_URL": prefect_api},
        )
    assert ran.returncode == 0, ran.stderr
    messages = {
        message for (message,) in sqlite_rows(home, "SELECT error_message FROM case_result")
    }
    assert messages == {"HTTP 401 Unauthorized: Incorrect API key provided: ***."}
    assert leaks((key, key[:10]), home, ran.stdout + ran.stderr) == []


# --- the proof: real server, real target, fake Slack ----------------------------------------


@pytest.mark.slow
def test_a_target_key_from_a_block_reaches_the_target_and_is_stored_nowhere(
    tmp_path: Path, prefect_api: str
) -> None:
    since = dt.datetime.now(dt.UTC)
    home, junit = tmp_path / "home", tmp_path / "gate.xml"
    key, wrong = fresh("sk-right"), fresh("sk-wrong")
    key_block, wrong_block = fresh("target-key"), fresh("old-target-key")
    save_blocks(prefect_api, {key_block: key, wrong_block: wrong})
    suite = suite_with_key_block(tmp_path / "suite", key_block)
    stale = suite_with_key_block(tmp_path / "stale", wrong_block)
    env = {"PREFECT_API_URL": prefect_api, **NO_SECRET_VARIABLES}

    with ReferenceServer(Knobs(api_key=key)) as target, ReferenceServer() as judge:
        urls = ("--target-url", target.base_url, "--judge-url", judge.base_url)
        ran = evalcore_process(
            *("run", "--suite", str(suite), "--set", "blocking", *urls, "--json"),
            cwd=tmp_path,
            home=home,
            env=env,
        )
        gated = evalcore_process(
            *("gate", "--release", "2026.7.1", "--suite", str(suite), *urls),
            *("--junit", str(junit)),
            cwd=tmp_path,
            home=home,
            env=env,
        )
        refused = evalcore_process(
            *("run", "--suite", str(stale), "--set", "blocking", *urls, "--json"),
            cwd=tmp_path,
            home=home,
            env=env,
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert gated.returncode == 0 and "Verdict: pass" in gated.stdout, gated.stdout + gated.stderr
    assert refused.returncode == 0, refused.stdout + refused.stderr

    # The key reached the target: every call of both runs with it was answered, each call
    # with the stale block's key was refused.
    by_run = {
        run_id: (errors, calls)
        for run_id, errors, calls in sqlite_rows(
            home,
            "SELECT run_id, sum(error_class IS NOT NULL), count(*) FROM case_result GROUP BY run_id",
        )
    }
    good_run, stale_run = orjson.loads(ran.stdout)["run_id"], orjson.loads(refused.stdout)["run_id"]
    assert by_run[good_run][0] == 0 and by_run[good_run][1] > 0
    assert len(by_run) == 3 and sum(errors for errors, _ in by_run.values()) == by_run[stale_run][1]
    stale_errors = {
        (error_class, message[:21])
        for run_id, error_class, message in sqlite_rows(
            home, "SELECT run_id, error_class, error_message FROM case_result"
        )
        if run_id == stale_run
    }
    assert stale_errors == {("client_error", "HTTP 401 Unauthorized")}
    # The runs keep the block's name, never its value.
    blocks = {
        orjson.loads(config)["api_key_block"]
        for (config,) in sqlite_rows(home, "SELECT target_config FROM run")
    }
    assert blocks == {key_block, wrong_block}

    prefect = prefect_records(prefect_api, since)
    assert "2026.7.1" in [run["parameters"].get("release") for run in prefect["flow runs"]]
    assert prefect["artifacts"] and prefect["logs"]  # what is searched below is not empty
    needles = (key, wrong, key[:12], wrong[:12])
    assert leaks(needles, database_rows(home), orjson.dumps(prefect).decode()) == []
    assert leaks(needles, home, junit, ran.stdout + ran.stderr, gated.stdout + gated.stderr) == []
    assert leaks(needles, refused.stdout + refused.stderr) == []


@contextlib.contextmanager
def slack_serve(home: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """`evalcore slack serve` in a process of its own; its URL once it answers."""
    port = free_port()
    command = ["evalcore", "slack", "serve", "--port", str(port), "--suite", str(EXAMPLE)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT,
            env=process_env(home, env),
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.slow
def test_slack_and_intake_secrets_from_blocks_reach_slack_and_are_stored_nowhere(
    tmp_path: Path, prefect_api: str
) -> None:
    since = dt.datetime.now(dt.UTC)
    home, log = tmp_path / "home", tmp_path / "serve.log"
    bot_token, signing, intake = fresh("xoxb"), fresh("signing"), fresh("intake")
    names = {
        "bot": fresh("bot-token"),
        "signing": fresh("signing-secret"),
        "intake": fresh("intake"),
    }
    save_blocks(
        prefect_api, {names["bot"]: bot_token, names["signing"]: signing, names["intake"]: intake}
    )
    env = {
        "PREFECT_API_URL": prefect_api,
        **NO_SECRET_VARIABLES,
        "EVALCORE_SLACK_BOT_TOKEN_BLOCK": names["bot"],
        "EVALCORE_SLACK_SIGNING_SECRET_BLOCK": names["signing"],
        "EVALCORE_INTAKE_TOKEN_BLOCK": names["intake"],
    }
    # A workspace that knows only the block's token: any other is `invalid_auth`.
    with FakeSlackServer(FakeSlackConfig(tokens=[bot_token])) as slack:
        env["SLACK_BASE_URL"] = slack.api_url
        with slack_serve(home, env, log) as served:
            failure = {
                "messages": [{"role": "user", "content": "My lamp arrived broken, what now?"}],
                "observed_output": "Returns are only possible within 30 days.",
                "what_was_wrong": "A damaged delivery is replaced, not returned.",
                "reporter": "maya.okafor",
                "ticket": "ZD-71001",
            }
            taken = httpx.post(
                f"{served}/intake", json=failure, headers={"Authorization": f"Bearer {intake}"}
            )
            wrong = httpx.post(
                f"{served}/intake", json=failure, headers={"Authorization": f"Bearer {intake}x"}
            )
            body = interactivity_body({"type": "block_actions", "actions": []})
            signed = httpx.post(
                f"{served}/slack/interactivity", content=body, headers=sign_request(body, signing)
            )
            forged = httpx.post(
                f"{served}/slack/interactivity",
                content=body,
                headers=sign_request(body, signing + "x"),
            )
        digest = evalcore_process(
            *("digest", "--post", "--suite", str(EXAMPLE), "--channel", CHANNEL, "--json"),
            cwd=tmp_path,
            home=home,
            env=env,
        )
        posted = slack.messages(CHANNEL)
        calls = slack.requests("chat.postMessage")

    # The intake token and the signing secret from their blocks guard the server.
    assert (taken.status_code, wrong.status_code) == (201, 401), taken.text
    assert (signed.status_code, forged.status_code) == (200, 401), signed.text
    # The bot token from its block was accepted by a workspace that knows no other.
    assert digest.returncode == 0, digest.stdout + digest.stderr
    assert [part["action"] for part in orjson.loads(digest.stdout)["post"]["parts"]] == ["posted"]
    assert len(posted) == 1 and [call["ok"] for call in calls] == [True]
    assert sqlite_rows(home, "SELECT ticket FROM backlog_item") == [("ZD-71001",)]

    prefect = prefect_records(prefect_api, since)
    assert CHANNEL in [run["parameters"].get("channel") for run in prefect["flow runs"]]
    assert prefect["logs"]
    needles = (bot_token, signing, intake, bot_token[:12], signing[:12], intake[:12])
    assert leaks(needles, database_rows(home), orjson.dumps(prefect).decode()) == []
    assert leaks(needles, home, log, digest.stdout + digest.stderr) == []
    assert sorted(p.suffix for p in (home / "digests").iterdir()) == [".json", ".md"]


def test_without_a_block_named_prefect_is_never_imported() -> None:
    """Building a target and reading every secret setting, with no block named, must not
    pay for importing Prefect."""
    script = (
        "import sys\n"
        "from evalcore.secrets import SLACK_APP_TOKEN, SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET,"
        " INTAKE_TOKEN, setting_secret\n"
        "from evalcore.suite.scorecard import OpenAIChatTarget\n"
        "from evalcore.targets import build_target\n"
        "for secret in (SLACK_APP_TOKEN, SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, INTAKE_TOKEN):\n"
        "    setting_secret(secret)\n"
        "config = OpenAIChatTarget(base_url='http://127.0.0.1:9/v1', model='m')\n"
        "build_target(config, concurrency=1, timeout_s=1)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EVALCORE_", "SLACK_"))}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_a_judge_key_from_a_block_reaches_the_judge(tmp_path: Path, prefect_api: str) -> None:
    home = tmp_path / "home"
    key, block = fresh("jk"), fresh("judge-key")
    save_blocks(prefect_api, {block: key})
    suite = suite_with_key_block(tmp_path / "suite", fresh("unused"))
    scorecard = suite / "scorecard.yaml"
    text = (EXAMPLE / "scorecard.yaml").read_text()
    scorecard.write_text(
        text.replace("  model: judge\n", f"  model: judge\n  api_key_block: {block}\n")
    )
    with ReferenceServer() as target, ReferenceServer(Knobs(api_key=key)) as judge:
        ran = evalcore(
            *("run", "--suite", str(suite), "--set", "blocking", "--set", "monitoring"),
            *("--target-url", target.base_url, "--judge-url", judge.base_url),
            cwd=tmp_path,
            home=home,
            env={"PREFECT_API_URL": prefect_api},
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    judged = sqlite_rows(home, "SELECT count(*) FROM case_result WHERE scores LIKE '%judge%'")
    errors = sqlite_rows(
        home, "SELECT error_class, error_message FROM case_result WHERE error_class IS NOT NULL"
    )
    assert judged[0][0] > 0 and errors == [], errors
    assert leaks((key,), home, ran.stdout + ran.stderr) == []
