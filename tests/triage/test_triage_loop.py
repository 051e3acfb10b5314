"""The whole triage loop on real parts: a production failure in the backlog, the weekly
digest posted to the fake Slack, the owner's button click signed as Slack signs it and
received by `evalcore slack serve`'s app, the decision recorded, applied to the versioned
files, and the next gate running the new blocking case."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from sqlmodel import Session
from starlette.testclient import TestClient

from evalcore import aio
from evalcore.gate.steps import GateRequest, open_gate_run
from evalcore.local.fake_slack.server import FakeSlackServer
from evalcore.local.reference import ReferenceServer
from evalcore.run import execute_run
from evalcore.slack.client import slack_client
from evalcore.slack.receiver import create_receiver
from evalcore.slack.signing import interactivity_body, sign_request
from evalcore.store.engine import get_engine
from evalcore.store.repository import results_for_run
from evalcore.store.tables import BacklogItemRow
from evalcore.suite import EvalSet, load_suite
from evalcore.triage.apply import apply_plan, plan_apply
from evalcore.triage.clicks import record_clicks
from evalcore.triage.digest import gather_week, post_digest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "loop-signing-secret"
DANIEL = "U05B8RZT1QK"


def test_a_production_failure_becomes_a_blocking_case_through_slack(
    tmp_path: Path, db_url: str, slack: FakeSlackServer
) -> None:
    suite_root = tmp_path / "evals"
    shutil.copytree(ROOT / "evals", suite_root)
    engine = get_engine(db_url)
    with Session(engine) as session:
        session.add(
            BacklogItemRow(
                id="BL-000001",
                ticket="ZD-48213",
                reporter="support@lumenhome.example",
                route="support-assistant",
                messages=[
                    {
                        "role": "user",
                        "content": "I bought a lamp in Germany. Can I still return it?",
                    }
                ],
                observed_output="You can return it within 30 days of purchase.",
                what_was_wrong="EU customers have 14 days from delivery, not 30 from purchase.",
                suggested_expect={"contains": ["14 days"], "not_contains": ["30 days"]},
                tags=["refunds", "eu"],
                normalized_text="i bought a lamp in germany can i still return it",
                fingerprint="a" * 64,
            )
        )
        session.commit()

    client = slack_client(slack.token, base_url=slack.api_url)
    assert client is not None
    suite = load_suite(suite_root)
    digest = gather_week(engine, suite)
    (item,) = [i for i in digest.pending if i.ref == "BL-000001"]
    posted = post_digest(engine, client, "C0EVALS01", digest)
    message_ts = posted.parts[0].ts
    (message,) = [m for m in slack.messages("C0EVALS01") if m["ts"] == message_ts]
    buttons = [
        element
        for block in message["message"]["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if orjson.loads(element["value"])["ref"] == item.ref
    ]
    block_button = next(b for b in buttons if b["action_id"] == "decide:block")

    receiver = create_receiver(
        signing_secret=SECRET,
        engine=lambda: engine,
        on_clicks=record_clicks(lambda: engine, lambda: load_suite(suite_root), lambda: client),
    )
    body = interactivity_body(
        {
            "type": "block_actions",
            "user": {"id": DANIEL},
            "channel": {"id": "C0EVALS01"},
            "container": {"type": "message", "message_ts": message_ts},
            "message": {"ts": message_ts},
            "actions": [block_button],
        }
    )
    with TestClient(receiver) as http:
        response = http.post(
            "/slack/interactivity",
            content=body,
            headers={
                **sign_request(body, SECRET),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
    assert response.status_code == 200
    acks = [
        m["text"]
        for m in slack.messages("C0EVALS01")
        if m["thread_ts"] == message_ts and m["ts"] != message_ts
    ]
    assert acks == [f"<@{DANIEL}> recorded: block for ZD-48213, by Daniel Brandt"]

    before = load_suite(suite_root)
    report = apply_plan(engine, before, plan_apply(engine, before))
    after = load_suite(suite_root)
    assert after.version.hash != before.version.hash
    new_case = after.get("zd-48213")
    assert new_case is not None and new_case.set is EvalSet.blocking
    assert "zd-48213" in report.diff()
    assert [d.ref for d in report.applied] == ["BL-000001"]

    with ReferenceServer() as target:
        run, _ = open_gate_run(
            engine,
            after,
            GateRequest("2026.12.0", target_url=target.base_url, judge_url=target.base_url),
        )
        aio.run(execute_run(engine, after, run))
    assert "zd-48213" in {r.case_id for r in results_for_run(engine, run.id)}
