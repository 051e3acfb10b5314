"""The triage loop of `make demo`, against the local fake Slack.

Fixtures are generated from the suite's own cases (one family, three cases, into the
backlog), two production failures are taken in, the weekly digest is posted (proposing
the fixtures for the monitoring set), an owner clicks *block* on one failure (a request
signed exactly as Slack signs it, sent to the real `evalcore slack serve`), someone
without the scope clicks too and is refused, the decision is applied to a working copy
of the suite, and the next gate runs the new blocking case. The copy lives under EVALCORE_HOME/demo, so the repository's own
evals/ stay untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
from rich.console import Console

from evalcore.local.fake_slack.server import FakeSlackServer
from evalcore.local.reference import ReferenceServer, free_port
from evalcore.slack.signing import interactivity_body, sign_request
from evalcore.store.engine import get_engine
from evalcore.store.repository import list_runs, results_for_run
from evalcore.triage.intake import list_items

CHANNEL = "C0EVALS01"
OWNER, OUTSIDER = "U05B8RZT1QK", "U06KQ2VN8HD"  # daniel.brandt (blocking set), tom.lindqvist
SECRET = "demo-signing-secret"
RELEASE = "2026.12.0"

FAILURES = {
    "ZD-51001": {
        "messages": [{"role": "user", "content": "Hi, do you deliver to Norway? I'm in Oslo."}],
        "observed_output": "Yes, we ship to Norway within 5 business days.",
        "what_was_wrong": "We ship only to the US, the UK and the EU; it promised Norway.",
        "ticket": "ZD-51001",
        "reporter": "ana.silva@lumenhome.example",
        "tags": ["shipping"],
        "suggested_expect": {
            "contains": ["don't ship"],
            "not_contains": ["within 5 business days"],
        },
    },
    "ZD-51002": {
        "messages": [
            {"role": "user", "content": "My order 5512 arrived with a cracked shade. What now?"}
        ],
        "observed_output": "Please send it back at your own cost and we will look into it.",
        "what_was_wrong": "Damaged items get a free replacement or refund, no return needed.",
        "ticket": "ZD-51002",
        "reporter": "ana.silva@lumenhome.example",
        "tags": ["damaged-items"],
    },
}


def run_triage_loop(
    suite: Path, home: Path, evalcore: Callable[..., int], console: Console
) -> bool:
    """The loop; True when the new blocking case ran in the next gate and it passed."""
    work = home.resolve() / "demo"
    shutil.rmtree(work, ignore_errors=True)
    demo_suite = work / "evals"
    shutil.copytree(suite, demo_suite)
    console.print(f"\n[bold]Triage loop[/] on a working copy of the suite: {demo_suite}")
    # Recurring edge cases made from the suite's own inputs: they wait in the backlog, and
    # the digest below proposes them to an owner for the monitoring set.
    evalcore(
        *("fixtures", "generate", "--family", "needs_human", "--count", "3"),
        *("--suite", str(demo_suite)),
    )
    with FakeSlackServer() as slack:
        os.environ.update(
            SLACK_BOT_TOKEN=slack.token,
            SLACK_BASE_URL=slack.api_url,
            SLACK_SIGNING_SECRET=SECRET,
        )
        console.print(f"fake Slack Web API on {slack.api_url}")
        for ticket, failure in FAILURES.items():
            path = work / f"{ticket}.json"
            path.write_text(json.dumps(failure, indent=2))
            evalcore("intake", str(path), "--suite", str(demo_suite))
        evalcore("digest", "--post", "--suite", str(demo_suite))
        item = next(i for i in list_items(get_engine()) if i.ticket == "ZD-51001")
        with _receiver(demo_suite, home) as receiver_url:
            for user in (OWNER, OUTSIDER):
                _click(slack, receiver_url, user, item.id, console)
            _show_thread(slack, console)
    evalcore("decisions", "list")
    evalcore("decisions", "apply", "--suite", str(demo_suite))
    with ReferenceServer() as target:
        code = evalcore(
            *("gate", "--release", RELEASE, "--suite", str(demo_suite)),
            *("--target-url", target.base_url, "--judge-url", target.base_url),
        )
    engine = get_engine()
    (run,) = list_runs(engine, release=RELEASE, limit=1)
    new = [r for r in results_for_run(engine, run.id) if r.case_id == "zd-51001"]
    ran = bool(new) and all(r.passed for r in new)
    console.print(
        f"\ngate {RELEASE}: exit {code}; the new blocking case zd-51001 "
        + ("ran and passed" if ran else "[red]did not run or failed[/]")
    )
    return code == 0 and ran


@contextmanager
def _receiver(suite: Path, home: Path) -> Iterator[str]:
    """`evalcore slack serve` in a subprocess on a free port, until the block ends."""
    port = free_port()
    logs = (home / "logs").resolve()
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "slack-receiver.log").open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "evalcore", "slack", "serve"),
                *("--port", str(port), "--suite", str(suite)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while not _healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"evalcore slack serve did not start; see {logs / 'slack-receiver.log'}"
                    )
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _click(
    slack: FakeSlackServer, receiver_url: str, user: str, ref: str, console: Console
) -> None:
    """Press the item's *block* button as `user`, signed as Slack signs it."""
    digest = next(
        m for m in slack.messages(CHANNEL) if m["author"] == "bot" and m["thread_ts"] is None
    )
    button = next(
        element
        for block in digest["message"]["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "decide:block" and orjson.loads(element["value"])["ref"] == ref
    )
    body = interactivity_body(
        {
            "type": "block_actions",
            "user": {"id": user},
            "channel": {"id": CHANNEL},
            "container": {"type": "message", "message_ts": digest["ts"], "channel_id": CHANNEL},
            "message": {"ts": digest["ts"]},
            "actions": [button],
        }
    )
    response = httpx.post(
        f"{receiver_url}/slack/interactivity",
        content=body,
        headers={**sign_request(body, SECRET), "Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    console.print(f"\n{user} clicks [bold]block[/] on {ref}: HTTP {response.status_code}")


def _show_thread(slack: FakeSlackServer, console: Console) -> None:
    """Wait for the receiver's acknowledgements in the digest's thread and print them."""
    deadline = time.monotonic() + 15
    replies: list[str] = []
    while time.monotonic() < deadline and len(replies) < 2:
        replies = [
            str(m["text"])
            for m in slack.messages(CHANNEL)
            if m["thread_ts"] is not None and m["ts"] != m["thread_ts"]
        ]
        time.sleep(0.2)
    console.print("[bold]in the digest's thread:[/]")
    for text in replies:
        console.print(f"  {text}", highlight=False, markup=False)
