"""The Slack-facing side under hostile or heavy input: what people typed or sent is posted
back as plain text on every path (thread replies, click acknowledgements and refusals,
Socket Mode); the interactivity endpoint refuses unsigned and oversized bodies without
reading them; a database held by another writer does not freeze the receiver; a payload
with thousands of actions records a handful; and SIGTERM stops `evalcore slack serve`
within five seconds while a click is still being recorded."""

from __future__ import annotations

import http.client
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from slack_sdk import WebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session
from sqlmodel import select as select_rows
from starlette.testclient import TestClient

from evalcore.local.fake_slack.server import FakeSlackServer
from evalcore.local.loopback import free_port
from evalcore.slack.client import slack_client
from evalcore.slack.receiver import create_receiver
from evalcore.slack.signing import interactivity_body, sign_request
from evalcore.slack.socket_mode import socket_mode_client
from evalcore.store.engine import get_engine
from evalcore.store.tables import DecisionRow, SlackRequestRow
from evalcore.suite import Suite, load_suite
from evalcore.triage.clicks import record_clicks
from evalcore.triage.decisions import attempts
from evalcore.triage.replies import process_thread
from tests.factories import add, backlog_item

ROOT = Path(__file__).resolve().parents[2]
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0EVALS01"
DANIEL = "U05B8RZT1QK"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
INJECTIONS = ["<!channel>", "<!here>", "<@U123>", "<http://evil|x>"]
# What Slack turns into a mention, a channel ping or a link.
CONTROL = re.compile(r"<[^>]*>")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(ROOT / "evals")


@pytest.fixture
def engine() -> Engine:
    """The default SQLite store (the one `evalcore slack serve` opens), with one open
    backlog item."""
    store = get_engine()
    add(store, backlog_item())
    return store


@pytest.fixture
def web(slack: FakeSlackServer) -> WebClient:
    client = slack_client(slack.token, base_url=slack.api_url)
    assert client is not None
    return client


@pytest.fixture
def receiver(engine: Engine, suite: Suite, web: WebClient) -> Iterator[TestClient]:
    app = create_receiver(
        signing_secret=SECRET,
        engine=lambda: engine,
        on_clicks=record_clicks(lambda: engine, lambda: suite, lambda: web),
    )
    with TestClient(app) as client:
        yield client


# --------------------------------------------------------------------------- helpers


def digest_message(web: WebClient) -> str:
    return str(web.chat_postMessage(channel=CHANNEL, text="Weekly triage digest")["ts"])


def click_payload(
    user: str, message_ts: str, *, action: str = "block", ref: str = "BL-000001", count: int = 1
) -> dict[str, Any]:
    """A `block_actions` payload as Slack sends it for a digest button (one action),
    or with `count` copies of the action."""
    button = {
        "action_id": f"decide:{action}",
        "value": orjson.dumps({"ref": ref, "action": action}).decode(),
        "type": "button",
    }
    return {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": CHANNEL},
        "actions": [button] * count,
    }


def bot_posts(slack: FakeSlackServer, thread_ts: str) -> list[str]:
    return [
        str(m["text"])
        for m in slack.messages(CHANNEL)
        if m["thread_ts"] == thread_ts and m["author"] == "bot"
    ]


def as_shown(text: str) -> str:
    """The message as Slack shows it: its three entities back as characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def decisions(engine: Engine) -> list[DecisionRow]:
    with Session(engine) as session:
        return list(session.exec(select_rows(DecisionRow)))


def remembered_requests(engine: Engine) -> list[SlackRequestRow]:
    with Session(engine) as session:
        return list(session.exec(select_rows(SlackRequestRow)))


def wait_for(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --------------------------------------------------------------------------- escaping


@pytest.mark.parametrize("injected", INJECTIONS)
def test_thread_replies_are_answered_without_pinging_or_linking(
    engine: Engine, suite: Suite, slack: FakeSlackServer, web: WebClient, injected: str
) -> None:
    parent = digest_message(web)
    for text in (injected, f"block {injected}", f"threshold monitoring.min_pass_rate {injected}"):
        slack.post_as_user(CHANNEL, text, user=DANIEL, thread_ts=parent)

    results = process_thread(engine, suite, web, channel=CHANNEL, thread_ts=parent)

    answers = [r.answer for r in results]
    assert answers[0].startswith("I did not understand")
    assert answers[1].startswith("there is no item")
    assert answers[2].startswith("a threshold needs a number between 0 and 1, not")
    posted = bot_posts(slack, parent)
    assert [CONTROL.findall(text) for text in posted] == [[f"<@{DANIEL}>"]] * 3
    assert [as_shown(text) for text in posted] == [f"<@{DANIEL}> {a}" for a in answers]
    assert decisions(engine) == []


@pytest.mark.parametrize("injected", INJECTIONS)
def test_click_acknowledgements_and_refusals_show_what_was_sent_as_plain_text(
    receiver: TestClient, engine: Engine, slack: FakeSlackServer, web: WebClient, injected: str
) -> None:
    ts = digest_message(web)
    for payload in (
        click_payload(DANIEL, ts, ref=injected),  # no such item
        click_payload(DANIEL, ts, action=injected),  # no such decision
        click_payload(injected, ts),  # a user id that is no Slack id: not a mention
    ):
        body = interactivity_body(payload)
        response = receiver.post(
            "/slack/interactivity", content=body, headers={**sign_request(body, SECRET), **FORM}
        )
        assert response.status_code == 200

    unknown_item, unknown_action, stranger = bot_posts(slack, ts)
    assert CONTROL.findall(unknown_item) == [f"<@{DANIEL}>"]
    assert as_shown(unknown_item) == f"<@{DANIEL}> there is no item {injected!r} to decide on"
    assert CONTROL.findall(unknown_action) == [f"<@{DANIEL}>"]
    assert as_shown(unknown_action).startswith(
        f"<@{DANIEL}> {injected!r} is not a decision for a backlog item"
    )
    assert CONTROL.findall(stranger) == []
    assert as_shown(stranger) == (
        f"{injected} sorry, {injected} is not in owners.yaml, so this decision was not recorded"
    )
    assert decisions(engine) == []


@pytest.mark.parametrize("injected", INJECTIONS)
def test_socket_mode_acknowledgements_show_what_was_sent_as_plain_text(
    engine: Engine, suite: Suite, slack: FakeSlackServer, web: WebClient, injected: str
) -> None:
    ts = digest_message(web)
    client = socket_mode_client(
        app_token=slack.app_token,
        web_client=web,
        on_clicks=record_clicks(lambda: engine, lambda: suite, lambda: web),
    )
    client.connect()
    try:
        wait_for(client.is_connected)
        slack.send_interactive(click_payload(DANIEL, ts, ref=injected))
        wait_for(lambda: bool(bot_posts(slack, ts)))
    finally:
        client.close()

    (posted,) = bot_posts(slack, ts)
    assert CONTROL.findall(posted) == [f"<@{DANIEL}>"]
    assert as_shown(posted) == f"<@{DANIEL}> there is no item {injected!r} to decide on"


# --------------------------------------------------------------------------- body size


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
def test_a_signed_body_over_one_mib_is_refused_and_nothing_is_recorded(
    receiver: TestClient, engine: Engine, slack: FakeSlackServer, web: WebClient, streamed: bool
) -> None:
    ts = digest_message(web)
    body = interactivity_body({**click_payload(DANIEL, ts), "padding": "x" * 2**20})
    headers = {**sign_request(body, SECRET), **FORM}
    # Without a Content-Length (chunked), the size is only known while the body streams in.
    content = iter([body[: 2**19], body[2**19 :]]) if streamed else body

    response = receiver.post("/slack/interactivity", content=content, headers=headers)

    assert response.status_code == 413
    assert response.json() == {"ok": False, "error": "request body over 1 MiB"}
    assert decisions(engine) == []
    assert remembered_requests(engine) == []
    assert attempts(engine) == []
    assert bot_posts(slack, ts) == []


# --------------------------------------------------------------------------- the real server


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def peak_memory_kib(self) -> int:
        """The server process's peak resident memory (VmHWM) so far."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        (peak,) = re.findall(r"^VmHWM:\s+(\d+) kB", status, re.M)
        return int(peak)


@contextmanager
def serving(slack: FakeSlackServer, log: Path) -> Iterator[Served]:
    """`evalcore slack serve` in its own process on the test's store, answering in the
    fake Slack; killed on the way out if it is still running."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALCORE_", "SLACK_"))}
    env |= {
        "EVALCORE_HOME": os.environ["EVALCORE_HOME"],
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_BASE_URL": slack.api_url,
    }
    command = ["evalcore", "slack", "serve", "--port", str(port), "--suite", str(ROOT / "evals")]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *command], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    served = Served(process, f"http://127.0.0.1:{port}", port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, served.output()
            try:
                if httpx.get(f"{served.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def write_lock(engine: Engine) -> Iterator[None]:
    """Another writer holding the SQLite database (BEGIN IMMEDIATE) until the block ends."""
    path = engine.url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def timed_request(method: str, url: str, **kwargs: Any) -> tuple[int | None, float]:
    """The answer's status (None when none came within five seconds) and how long it took."""
    started = time.monotonic()
    try:
        status: int | None = httpx.request(method, url, timeout=5, **kwargs).status_code
    except httpx.TimeoutException:
        status = None
    return status, time.monotonic() - started


def signed_click(served: Served, payload: dict[str, Any]) -> tuple[int | None, float]:
    body = interactivity_body(payload)
    headers = {**sign_request(body, SECRET), **FORM}
    return timed_request("POST", f"{served.url}/slack/interactivity", content=body, headers=headers)


@pytest.mark.slow
def test_an_unsigned_300_mb_body_is_refused_at_once_without_being_read(
    engine: Engine, slack: FakeSlackServer, tmp_path: Path
) -> None:
    size, chunk = 300 * 2**20, bytes(2**20)
    head = (
        "POST /slack/interactivity HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    with serving(slack, tmp_path / "receiver.log") as served:
        peak_before = served.peak_memory_kib()
        with socket.create_connection(("127.0.0.1", served.port), timeout=60) as sock:
            sock.sendall(head)
            started, sent = time.monotonic(), 0
            # Stream the body as a client would, until the server answers.
            while sent < size:
                readable, writable, _ = select.select([sock], [sock], [], 60)
                if readable:
                    break
                if writable:
                    try:
                        sent += sock.send(chunk[: size - sent])
                    except OSError:
                        break  # the server closed the connection after answering
            response = http.client.HTTPResponse(sock)
            response.begin()
            elapsed = time.monotonic() - started
            answer = orjson.loads(response.read())
        peak_growth_mib = (served.peak_memory_kib() - peak_before) / 1024

    assert response.status == 401
    assert answer == {"ok": False, "error": "missing Slack signature headers"}
    assert elapsed < 1.0, f"answered after {elapsed:.1f} s, {sent / 2**20:.0f} MiB read"
    assert peak_growth_mib < 50, f"the server's peak memory grew by {peak_growth_mib:.0f} MiB"
    assert remembered_requests(engine) == []


# --------------------------------------------------------------------------- a busy database


@pytest.mark.slow
def test_a_database_locked_for_ten_seconds_does_not_freeze_the_receiver(
    engine: Engine, slack: FakeSlackServer, web: WebClient, tmp_path: Path
) -> None:
    ts = digest_message(web)
    with serving(slack, tmp_path / "receiver.log") as served:
        locked_at = time.monotonic()
        with write_lock(engine):
            click_status, click_s = signed_click(served, click_payload(DANIEL, ts))
            health_status, health_s = timed_request("GET", f"{served.url}/health")
            time.sleep(max(0.0, 10.0 - (time.monotonic() - locked_at)))
        # Slack gives up on an interactivity request after three seconds.
        assert (click_status, health_status) == (200, 200)
        assert click_s < 2.0, f"the click took {click_s:.1f} s while the database was locked"
        assert health_s < 2.0, f"/health took {health_s:.1f} s while the database was locked"

        wait_for(lambda: len(decisions(engine)) == 1)
        wait_for(lambda: len(bot_posts(slack, ts)) == 1)
    (row,) = decisions(engine)
    assert (row.item_ref, row.action, row.decided_by, row.slack_ts) == (
        "BL-000001",
        "block",
        "daniel.brandt",
        ts,
    )
    assert bot_posts(slack, ts) == [f"<@{DANIEL}> recorded: block for ZD-48213, by Daniel Brandt"]


# --------------------------------------------------------------------------- actions, shutdown


@pytest.mark.slow
def test_a_payload_with_thousands_of_actions_records_five_and_says_so(
    engine: Engine, slack: FakeSlackServer, web: WebClient, tmp_path: Path
) -> None:
    ts = digest_message(web)
    with serving(slack, tmp_path / "receiver.log") as served:
        status, _ = signed_click(served, click_payload(DANIEL, ts, count=5000))
        assert status == 200
        # Settled: no new attempt for two seconds (recording them all takes minutes).
        seen, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + 30
        while time.monotonic() - quiet_since < 2 and time.monotonic() < deadline:
            count = len(attempts(engine))
            if count != seen:
                seen, quiet_since = count, time.monotonic()
            time.sleep(0.1)
        log = served.output()

    outcomes = [attempt.outcome for attempt in attempts(engine)]
    assert outcomes == ["accepted"] + ["conflict"] * 4
    assert len(bot_posts(slack, ts)) == 5
    assert len(decisions(engine)) == 1
    assert f"from '{DANIEL}' carried 5000 actions; only the first 5 are read" in log


@pytest.mark.slow
def test_sigterm_stops_the_receiver_within_five_seconds_while_a_click_is_being_recorded(
    engine: Engine, slack: FakeSlackServer, web: WebClient, tmp_path: Path
) -> None:
    ts = digest_message(web)
    with serving(slack, tmp_path / "receiver.log") as served, write_lock(engine):
        # Answered or not (a receiver frozen on the lock does not answer), the click is
        # then being recorded, waiting for the lock.
        signed_click(served, click_payload(DANIEL, ts))
        served.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            code = served.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        elapsed = time.monotonic() - started
        log = served.output()

    assert code is not None and elapsed < 5.0, f"still running {elapsed:.1f} s after SIGTERM"
    assert code == -signal.SIGTERM, log
    assert decisions(engine) == []  # cut off before it was recorded: nothing half-written
