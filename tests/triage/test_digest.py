"""The weekly triage digest: gathered from seeded rows (every category, pending ages, the
over-a-week call-out), rendered to Markdown and Block Kit within Slack's limits, split
without cutting an item apart, posted once per (channel, week) against the local fake
Slack (updates, adoption after a crash, retries, Slack down), and written offline.
Store tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from evalcore.cli.digest import digest_command
from evalcore.local.fake_slack import FakeSlackServer
from evalcore.run.service import record_dataset
from evalcore.slack.blockkit import block_errors
from evalcore.store.engine import get_engine
from evalcore.store.repository import create_run, insert_results, new_run_id
from evalcore.store.tables import (
    BacklogItemRow,
    DecisionRow,
    DigestPostRow,
    DriftFindingRow,
    RunRow,
)
from evalcore.suite import Suite, load_suite
from evalcore.triage.decisions import ACTIONS, ItemKind
from evalcore.triage.digest import (
    Digest,
    DigestItem,
    DigestPostError,
    digest_client,
    gather_week,
    post_digest,
    render_markdown,
    render_slack,
    split_messages,
    write_digest_files,
)
from evalcore.triage.digest.gather import Decider
from evalcore.triage.digest.render import (
    BUTTON_TEXT_MAX,
    FALLBACK_TEXT_MAX,
    HEADER_TEXT_MAX,
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    digest_blocks,
    fit,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"
UTC = dt.UTC
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday in ISO week 2026-W48
ROUTE = "support-assistant"
EVALS = "C0EVALS01"
FAST = FixedValueRetryIntervalCalculator(0.01)


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(EXAMPLE)


# --------------------------------------------------------------------------- seeding


def add_run(
    engine: Engine,
    suite: Suite,
    *,
    at: dt.datetime,
    sets: tuple[str, ...],
    trigger: str,
    release: str | None = None,
    failing: tuple[str, ...] = (),
    latency_ms: float = 100.0,
    route: str = ROUTE,
    samples: int = 1,
) -> str:
    """A finished run of every case of `sets`, `samples` times each, started at `at`;
    `failing` cases fail their first sample and pass the others."""
    scorecard = suite.scorecard
    run = create_run(
        engine,
        RunRow(
            id=new_run_id(),
            route=route,
            target={"kind": "openai_chat"},
            target_config={},
            dataset_hash=suite.version.hash,
            scorecard_version=suite.scorecard_version,
            # Judged as a deterministic route: a seeded failure is a failure, with no
            # re-sampling to wait for (the gate's own tests cover that).
            scorecard=scorecard.model_dump(mode="json")
            | {"samples": {**scorecard.samples.model_dump(mode="json"), "nondeterministic": False}},
            sets=list(sets),
            suite_path=str(EXAMPLE),
            trigger=trigger,
            release=release,
            settings={},
            status="finished",
            planned=0,
            created_at=at,
            finished_at=at + dt.timedelta(minutes=5),
        ),
    )
    cases = suite.select(sets=sets)
    insert_results(
        engine,
        [
            {
                "run_id": run.id,
                "case_id": case.id,
                "sample": sample,
                "set": case.set.value,
                "passed": case.id not in failing or sample > 0,
                "error_class": None,
                "error_message": None,
                "output": None,
                "scores": {},
                "latency_ms": latency_ms,
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "cost_usd": 0.0001,
                "judge_cost_usd": 0.0,
                "attempts": 1,
                "created_at": None,
            }
            for case in cases
            for sample in range(samples)
        ],
    )
    return run.id


def finding(
    run_id: str,
    at: dt.datetime,
    kind: str,
    metric: str,
    scope: str,
    severity: str,
    *,
    route: str = ROUTE,
    baseline: float | None = None,
    current: float | None = None,
    effect: float | None = None,
    detail: str = "",
) -> DriftFindingRow:
    return DriftFindingRow(
        run_id=run_id,
        route=route,
        kind=kind,
        metric=metric,
        scope=scope,
        severity=severity,
        baseline_value=baseline,
        current_value=current,
        effect=effect,
        detail=detail,
        created_at=at,
    )


def backlog(
    item_id: str,
    at: dt.datetime,
    *,
    state: str = "open",
    route: str = ROUTE,
    tags: tuple[str, ...] = ("refunds",),
    ticket: str | None = None,
    asked: str = "Can I return my lamp?",
    wrong: str = "quoted the wrong return window",
) -> BacklogItemRow:
    return BacklogItemRow(
        id=item_id,
        ticket=ticket,
        reporter="agent.kim",
        route=route,
        messages=[{"role": "user", "content": asked}],
        observed_output="You have 30 days.",
        what_was_wrong=wrong,
        tags=list(tags),
        normalized_text=asked.lower(),
        fingerprint=item_id.lower(),
        state=state,
        duplicate_of="item:BL-000002" if state == "duplicate" else None,
        received_at=at,
    )


def seed_week(engine: Engine, suite: Suite) -> dict[str, str]:
    """A week of gates, nightlies, findings, backlog items and decisions around NOW."""
    record_dataset(engine, suite)
    days, hours = dt.timedelta(days=1), dt.timedelta(hours=1)
    runs = {
        "gate_pass": add_run(
            engine, suite, at=NOW - 3 * days, sets=("blocking",), trigger="prefect",
            release="2026.11.3",
        ),
        "gate_fail": add_run(
            engine, suite, at=NOW - 1 * days, sets=("blocking",), trigger="prefect",
            release="2026.11.3", failing=("refund-window-eu-001",),
        ),
        "gate_other": add_run(
            engine, suite, at=NOW - 5 * days, sets=("blocking",), trigger="prefect",
            release="2026.11.2",
        ),
        "gate_before": add_run(
            engine, suite, at=NOW - 20 * days, sets=("blocking",), trigger="prefect",
            release="2026.10.9", failing=("safety-weapon-001",),
        ),
        "night_old": add_run(
            engine, suite, at=NOW - 10 * days, sets=("monitoring",), trigger="nightly",
            latency_ms=1500,
        ),
        "night_mid": add_run(
            engine, suite, at=NOW - 2 * days, sets=("monitoring",), trigger="nightly",
            latency_ms=1500,
        ),
        "night_latest": add_run(
            engine, suite, at=NOW - 6 * hours, sets=("monitoring",), trigger="nightly",
            latency_ms=2500,
        ),
        # Not analysed by the monitor: never the "latest nightly", though trends count it.
        "cli": add_run(
            engine, suite, at=NOW - 1 * hours, sets=("monitoring",), trigger="cli",
            latency_ms=2600,
        ),
    }  # fmt: skip
    old, mid, latest = NOW - 10 * days, NOW - 2 * days, NOW - 6 * hours
    rows: list[Any] = [
        finding(runs["night_old"], old, "drift", "latency", "route", "medium", effect=0.4),
        finding(runs["night_old"], old, "drift", "pass_rate", "set:monitoring", "low"),
        finding(runs["night_old"], old, "flaky", "pass_fraction", "case:refund-window-uk-001",
                "low", current=0.5),
        finding(runs["night_mid"], mid, "flaky", "pass_fraction", "case:refund-window-uk-001",
                "low", current=0.67),
        finding(runs["night_latest"], latest, "drift", "latency", "route", "medium",
                baseline=1500, current=2500, effect=0.67, detail="p95 1500 -> 2500 ms"),
        finding(runs["night_latest"], latest, "drift", "pass_rate", "tag:refunds", "high",
                baseline=0.97, current=0.8, effect=-0.17),
        finding(runs["night_latest"], latest, "drift", "error_rate", "route", "info"),
        finding(runs["night_latest"], latest, "dataset_change", "case_added", "case:new-1",
                "info"),
        finding(runs["night_latest"], latest, "flaky", "pass_fraction",
                "case:refund-window-uk-001", "low", current=0.5, detail="1/2 passed"),
        finding(runs["night_latest"], latest, "flaky", "pass_fraction",
                "case:refund-window-us-001", "low", current=0.75),
        finding(runs["night_latest"], latest, "drift", "latency", "route", "high",
                route="other-route"),
        backlog("BL-000001", NOW - 12 * days),
        backlog("BL-000002", NOW - 2 * days, tags=("shipping",), ticket="ZD-1",
                asked="Where is my parcel? <b>now</b> & fast"),
        backlog("BL-000003", NOW - 1 * days),
        backlog("BL-000004", NOW - 1 * days, state="duplicate"),
        backlog("BL-000005", NOW - 3 * days, state="blocked"),
        backlog("BL-000006", NOW - 3 * days, route="other-route"),
        DecisionRow(item_kind="drift", item_ref=f"drift:{ROUTE}:tag:refunds:pass_rate",
                    action="accept_baseline", decided_by="maya.okafor", source="cli"),
        DecisionRow(item_kind="backlog", item_ref="BL-000003", action="keep",
                    decided_by="priya.raman", source="button"),
    ]  # fmt: skip
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()
    return runs


# --------------------------------------------------------------------------- gather


def test_gather_finds_every_category_and_ages_the_pending_decisions(
    db_url: str, suite: Suite
) -> None:
    engine = get_engine(db_url)
    runs = seed_week(engine, suite)
    digest = gather_week(engine, suite, now=NOW)

    assert (digest.week, digest.route, digest.timezone) == ("2026-W48", ROUTE, "UTC")
    assert digest.window_start == NOW - dt.timedelta(days=7)

    # Gate verdicts: the newest run per release of the week, with failed criteria.
    verdicts = {r.release: r for r in digest.releases}
    assert set(verdicts) == {"2026.11.3", "2026.11.2"}  # 2026.10.9 is older than the week
    failed = verdicts["2026.11.3"]
    assert (failed.verdict, failed.run_id, failed.runs) == ("fail", runs["gate_fail"], 2)
    assert set(failed.failed_criteria) == {
        "set blocking pass rate",
        "tag refunds pass rate",
        "critical case refund-window-eu-001",
    }
    assert (verdicts["2026.11.2"].verdict, verdicts["2026.11.2"].failed_criteria) == ("pass", [])

    # Regressions: the failed criteria and this week's drift alarms (not info, not
    # other routes, not last fortnight's), with new vs ongoing.
    gate = [g for g in digest.regressions if g.source == "gate"]
    assert {g.metric for g in gate} == set(failed.failed_criteria)
    drift = {g.ref: g for g in digest.regressions if g.source == "drift"}
    latency_ref = f"drift:{ROUTE}:route:latency"
    refunds_ref = f"drift:{ROUTE}:tag:refunds:pass_rate"
    assert set(drift) == {latency_ref, refunds_ref}
    assert drift[refunds_ref].new and drift[refunds_ref].severity == "high"
    assert drift[refunds_ref].effect == pytest.approx(-0.17)
    assert drift[refunds_ref].item_number is None  # decided already
    assert not drift[latency_ref].new
    assert drift[latency_ref].first_seen == NOW - dt.timedelta(days=10)

    # Flaky cases of the latest nightly, with their history.
    flaky = {f.case_id: f for f in digest.flaky}
    assert set(flaky) == {"refund-window-uk-001", "refund-window-us-001"}
    assert flaky["refund-window-uk-001"].history == pytest.approx([0.5, 0.67, 0.5])
    assert not flaky["refund-window-uk-001"].blocking and flaky["refund-window-us-001"].blocking
    assert digest.latest_nightly_run == runs["night_latest"]  # not the later cli run

    # New backlog items of the week; duplicates apart.
    assert [b.id for b in digest.new_backlog] == ["BL-000002", "BL-000003"]
    assert [d.id for d in digest.duplicates] == ["BL-000004"]

    # Cost and latency of the nights against the budgets (trend from nightly_trend).
    latency, cost = digest.budgets
    assert (latency.metric, latency.budget, latency.status) == ("latency_p95_ms", 2000, "over")
    assert latency.latest == pytest.approx(2600) and latency.trend == "rising"
    assert latency.over_nights == 1 and len(latency.nights) == 2
    assert (cost.metric, cost.budget, cost.status) == ("cost_per_run_usd", 0.5, "within")

    # Every decision still pending, oldest first, with ages and the call-out.
    pending = [(i.number, i.ref, i.age_days, i.overdue) for i in digest.pending]
    assert pending == [
        (1, "BL-000001", 12, True),
        (2, latency_ref, 10, True),
        (3, "flaky:refund-window-uk-001", 10, True),
        (4, "BL-000002", 2, False),
        (5, "flaky:refund-window-us-001", 0, False),
    ]
    assert [i.number for i in digest.overdue] == [1, 2, 3]
    by_ref = {i.ref: i for i in digest.pending}
    assert by_ref["BL-000001"].actions == ["block", "monitor", "keep", "dismiss"]
    assert by_ref[latency_ref].actions == ["accept_baseline", "investigate"]
    assert by_ref[latency_ref].severity == "medium"  # this route's, not other-route's
    assert by_ref[latency_ref].title == "latency of route: 1500 ms → 2500 ms (+67.0%), medium"
    assert by_ref["flaky:refund-window-us-001"].actions == ["demote", "keep"]  # blocking
    assert by_ref["flaky:refund-window-uk-001"].actions == ["keep"]  # monitoring
    assert flaky["refund-window-uk-001"].item_number == 3
    assert drift[latency_ref].item_number == 2
    assert {d.id for d in by_ref["BL-000002"].deciders} == {
        "maya.okafor",  # owns the route
        "daniel.brandt",  # owns the shipping tag
        "priya.raman",  # curates the backlog set
    }
    assert any("&" in d and "<b>" in d for d in by_ref["BL-000002"].details)  # raw here


def test_the_latest_nightly_shows_pass_hat_k_beside_its_pass_rate(
    db_url: str, suite: Suite
) -> None:
    engine = get_engine(db_url)
    record_dataset(engine, suite)
    monitoring = suite.select(sets=("monitoring",))
    flaky_case = sorted(c.id for c in monitoring)[0]
    # Older than the week's trend window: its stats are computed for the digest itself.
    run_id = add_run(
        engine, suite, at=NOW - dt.timedelta(days=9), sets=("monitoring",), trigger="nightly",
        samples=3, failing=(flaky_case,),
    )  # fmt: skip
    digest = gather_week(engine, suite, now=NOW)

    cases = len(monitoring)
    (nightly,) = digest.latest_nightly_sets
    assert digest.latest_nightly_run == run_id
    assert (nightly.set, nightly.k) == ("monitoring", 3)
    # Per case under "all": the flaky case failed; per sample: one sample of 3 x cases.
    assert nightly.pass_rate == pytest.approx((cases - 1) / cases)
    assert nightly.sample_pass_rate == pytest.approx((3 * cases - 1) / (3 * cases))
    assert nightly.pass_hat_k == pytest.approx((cases - 1) / cases)  # 2 of 3: pass^3 = 0
    assert nightly.pass_at_k == pytest.approx(1.0)

    shown = f"{nightly.pass_hat_k:.1%} (k=3)"
    markdown = render_markdown(digest)
    per_case, per_sample = f"{nightly.pass_rate:.1%}", f"{nightly.sample_pass_rate:.1%}"
    assert f"| monitoring | {per_case} | {per_sample} | {shown} | 100.0% (k=3) |" in markdown
    assert f"Run `{run_id[:12]}` of " in markdown
    blocks = digest_blocks(digest)
    (part,) = [b for b in blocks if b.get("block_id") == "part-nightly.text"]
    assert part["text"]["text"] == (
        f"*Latest nightly* `{run_id[:12]}` ({(NOW - dt.timedelta(days=9)):%Y-%m-%d})\n"
        f"• monitoring: {per_case} of cases passed (per sample {per_sample}); "
        f"pass^3 {nightly.pass_hat_k:.1%} "
        "(all 3 tries of a case pass), pass@3 100.0%"
    )
    assert block_errors(blocks) == []


def test_a_nightly_of_single_samples_shows_its_pass_rate_alone(db_url: str, suite: Suite) -> None:
    engine = get_engine(db_url)
    seed_week(engine, suite)
    digest = gather_week(engine, suite, now=NOW)
    (nightly,) = digest.latest_nightly_sets
    assert (nightly.set, nightly.pass_rate, nightly.k, nightly.pass_hat_k) == (
        "monitoring", 1.0, None, None,
    )  # fmt: skip
    markdown = render_markdown(digest)
    assert "| monitoring | 100.0% | 100.0% |\n" in markdown and "pass^" not in markdown
    (part,) = [b for b in digest_blocks(digest) if b.get("block_id") == "part-nightly.text"]
    assert part["text"]["text"].endswith("• monitoring: 100.0% of cases passed (per sample 100.0%)")


def test_gather_on_an_empty_database_says_so(tmp_path: Path, suite: Suite) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    digest = gather_week(engine, suite, now=NOW)
    assert (digest.pending, digest.releases, digest.regressions, digest.flaky) == ([], [], [], [])
    assert [b.status for b in digest.budgets] == ["no data", "no data"]
    assert "Nothing is waiting for a decision." in render_markdown(digest)
    with pytest.raises(ValueError, match="days"):
        gather_week(engine, suite, now=NOW, days=0)


# --------------------------------------------------------------------------- rendering


def make_digest(
    count: int,
    *,
    title: str = "quoted the wrong return window",
    detail: str = "asked: can I return my lamp?",
    ref_suffix: str = "",
    route: str = ROUTE,
) -> Digest:
    """A digest of `count` pending items cycling through the three kinds."""
    items = []
    for number in range(1, count + 1):
        kind = ("backlog", "drift", "flaky")[number % 3]
        ref = {
            "backlog": f"BL-{number:06d}",
            "drift": f"drift:{route}:tag:t{number}:pass_rate",
            "flaky": f"flaky:case-{number}",
        }[kind] + ref_suffix
        actions = list(ACTIONS[ItemKind(kind)])
        age = number % 10
        items.append(
            DigestItem(
                number=number,
                kind=kind,
                ref=ref,
                title=f"{title} {number}",
                details=[detail, "second line"],
                actions=actions,
                since=NOW - dt.timedelta(days=age),
                age_days=age,
                overdue=age > 7,
                deciders=[Decider(id="maya.okafor", name="Maya", slack_id="U04QH7KM2AB")],
            )
        )
    return Digest(
        route=route,
        week="2026-W48",
        timezone="UTC",
        window_start=NOW - dt.timedelta(days=7),
        window_end=NOW,
        generated_at=NOW,
        latest_nightly_run=None,
        latest_nightly_at=None,
        releases=[],
        regressions=[],
        flaky=[],
        new_backlog=[],
        duplicates=[],
        budgets=[],
        pending=items,
    )


def item_blocks(blocks: list[dict[str, Any]], number: int) -> tuple[dict[str, Any], ...]:
    found = tuple(b for b in blocks if str(b.get("block_id", "")).startswith(f"item-{number}."))
    return found


def test_markdown_and_blocks_carry_every_item_with_its_buttons(suite: Suite) -> None:
    digest = make_digest(9)
    markdown = render_markdown(digest)
    blocks = digest_blocks(digest)
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == f"Weekly triage digest · {ROUTE} · 2026-W48"
    for item in digest.pending:
        assert f"### #{item.number} · `{item.ref}`" in markdown
        assert f"- decisions: {', '.join(item.actions)}" in markdown
        section, actions = item_blocks(blocks, item.number)
        assert (section["type"], actions["type"]) == ("section", "actions")
        assert f"*#{item.number}* · `{item.ref}`" in section["text"]["text"]
        assert "<@U04QH7KM2AB>" in section["text"]["text"]
        buttons = actions["elements"]
        assert [b["action_id"] for b in buttons] == [f"decide:{a}" for a in item.actions]
        assert [json.loads(b["value"]) for b in buttons] == [
            {"ref": item.ref, "action": a} for a in item.actions
        ]
        assert all(b["type"] == "button" and b["text"]["type"] == "plain_text" for b in buttons)
    assert [i.number for i in digest.overdue] == [8, 9]
    assert "**Waiting over a week:** #8 (8 days), #9 (9 days)." in markdown
    callout = next(b for b in blocks if b.get("block_id") == "pending.lead")
    assert "Waiting over a week:* #8 (8 days), #9 (9 days)" in callout["text"]["text"]
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids))
    assert block_errors(blocks) == []


def test_sixty_items_split_into_messages_without_cutting_an_item() -> None:
    digest = make_digest(60)
    messages = render_slack(digest)
    assert len(messages) >= 2
    seen: dict[int, int] = {}
    for index, message in enumerate(messages):
        assert message.part == index
        assert len(message.blocks) <= MAX_BLOCKS
        assert block_errors(message.blocks) == []
        assert len(message.text) <= FALLBACK_TEXT_MAX
        header = message.blocks[0]
        assert header["type"] == "header"
        assert header["text"]["text"].endswith(f"({index + 1}/{len(messages)})")
        for number in message.item_numbers():
            assert number not in seen
            seen[number] = index
            assert [b["type"] for b in item_blocks(message.blocks, number)] == [
                "section",
                "actions",
            ]
            assert f"#{number} " in message.text
    assert sorted(seen) == list(range(1, 61))
    # The same split from split_messages itself, and a unit that can never fit refuses.
    again = split_messages(digest_blocks(digest))
    assert [len(m) for m in again] == [len(m.blocks) for m in messages]
    together = [{"type": "section", "block_id": f"big.{i}", "text": {}} for i in range(60)]
    with pytest.raises(ValueError, match="belong together"):
        split_messages(together)


def test_long_user_text_is_cut_within_limits_and_escaped() -> None:
    hostile = "<!channel> & <@U999> <https://evil.example|click> " * 400
    digest = make_digest(
        3, title=hostile, detail=hostile, ref_suffix="&<x>", route="r" * 300 + "&<>"
    )
    messages = render_slack(digest)
    for message in messages:
        assert block_errors(message.blocks) == []
        for block in message.blocks:
            text = block.get("text", {}).get("text", "")
            if block["type"] == "header":
                assert len(text) <= HEADER_TEXT_MAX
                continue
            assert len(text) <= SECTION_TEXT_MAX
            assert "<!channel>" not in text and "<@U999>" not in text and "<https" not in text
            # Every & starts an entity: nothing was cut in the middle of one.
            assert not re.search(r"&(?!amp;|lt;|gt;)", text)
            for element in block.get("elements", []):
                if element.get("type") == "button":
                    assert len(element["text"]["text"]) <= BUTTON_TEXT_MAX
                    assert json.loads(element["value"])["ref"].endswith("&<x>")  # raw in values
    section = item_blocks(messages[0].blocks, 1)[0]["text"]["text"]
    assert "&lt;!channel&gt; &amp; &lt;@U999&gt;" in section
    assert section.count("…") >= 1
    markdown = render_markdown(digest)
    assert "<!channel>" not in markdown and "&lt;!channel>" in markdown
    # `fit` itself: never inside an entity or a <...> token.
    assert fit("abc &amp; def", 7) == "abc …"
    assert fit("hi <@U123> there", 8) == "hi …"
    assert fit("short", 10) == "short"


# --------------------------------------------------------------------------- posting


@pytest.fixture
def client(slack: FakeSlackServer) -> WebClient:
    return digest_client(slack.token, base_url=slack.api_url, interval=FAST, timeout=10)


def post_rows(engine: Engine) -> list[DigestPostRow]:
    with Session(engine) as session:
        return list(session.exec(select(DigestPostRow).order_by(DigestPostRow.part)))  # type: ignore[arg-type]


def calls(slack: FakeSlackServer, method: str) -> list[dict[str, Any]]:
    return slack.requests(method)


def test_first_run_posts_every_part_and_a_rerun_updates_in_place(
    db_url: str, slack: FakeSlackServer, client: WebClient
) -> None:
    engine = get_engine(db_url)
    digest = make_digest(60)
    parts = len(render_slack(digest))
    first = post_digest(engine, client, EVALS, digest)
    assert [p.action for p in first.parts] == ["posted"] * parts
    assert (first.channel_id, first.week) == (EVALS, "2026-W48")
    rows = post_rows(engine)
    assert [(r.channel, r.week, r.part) for r in rows] == [
        (EVALS, "2026-W48", n) for n in range(parts)
    ]
    stored = [m for m in slack.messages(EVALS) if m["author"] == "bot"]
    assert [m["ts"] for m in stored] == [r.ts for r in rows]
    metadata = [m["message"]["metadata"] for m in stored]
    assert [
        (m["event_type"], m["event_payload"]["week"], m["event_payload"]["part"]) for m in metadata
    ] == [("evalcore_digest", "2026-W48", n) for n in range(parts)]
    # Each part maps the item numbers it shows to their refs, for replies in its thread.
    numbering = {k: v for m in metadata for k, v in m["event_payload"]["items"].items()}
    assert numbering == {str(item.number): item.ref for item in digest.pending}

    # The same week again with one item changed: chat.update of that part, nothing posted.
    changed = make_digest(60)
    changed.pending[0].title = "a corrected title"
    second = post_digest(engine, client, EVALS, changed)
    assert [p.action for p in second.parts] == ["updated"] + ["unchanged"] * (parts - 1)
    assert len(calls(slack, "chat.postMessage")) == parts
    assert [r["body"]["ts"] for r in calls(slack, "chat.update")] == [rows[0].ts]
    assert len(slack.messages(EVALS)) == parts
    assert post_rows(engine)[0].updated_at is not None

    # Unchanged: no Slack call at all.
    before = len(slack.requests())
    third = post_digest(engine, client, EVALS, changed)
    assert {p.action for p in third.parts} == {"unchanged"}
    assert len(slack.requests()) == before


def test_a_part_posted_but_never_recorded_is_adopted_not_posted_twice(
    db_url: str, slack: FakeSlackServer, client: WebClient
) -> None:
    engine = get_engine(db_url)
    digest = make_digest(60)
    first = post_digest(engine, client, EVALS, digest)
    parts = len(first.parts)
    # The crash: Slack has the messages, the database never heard of them.
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM digest_post"))
    again = post_digest(engine, client, EVALS, digest)
    assert [p.action for p in again.parts] == ["adopted"] * parts
    assert [p.ts for p in again.parts] == [p.ts for p in first.parts]
    assert len(calls(slack, "chat.postMessage")) == parts  # the first run's only
    assert len(slack.messages(EVALS)) == parts
    history = calls(slack, "conversations.history")
    assert history and history[0]["body"]["include_all_metadata"] in (True, "true", "1")
    assert [r.ts for r in post_rows(engine)] == [p.ts for p in first.parts]


def test_429_then_500_then_ok_posts_exactly_once(
    db_url: str, slack: FakeSlackServer, client: WebClient
) -> None:
    engine = get_engine(db_url)
    digest = make_digest(3)
    slack.add_fault("chat.postMessage", status=429, retry_after=0)
    slack.add_fault("chat.postMessage", status=500)
    report = post_digest(engine, client, EVALS, digest)
    assert [p.action for p in report.parts] == ["posted"]
    assert [(r["status"], r["error"]) for r in calls(slack, "chat.postMessage")] == [
        (429, "ratelimited"),
        (500, "internal_error"),
        (200, None),
    ]
    assert len(slack.messages(EVALS)) == 1
    assert [r.ts for r in post_rows(engine)] == [report.parts[0].ts]


def test_slack_down_for_the_whole_run_fails_clearly_and_the_next_run_posts(
    db_url: str, slack: FakeSlackServer, client: WebClient
) -> None:
    engine = get_engine(db_url)
    digest = make_digest(60)
    slack.add_fault(status=500, times=1000)
    with pytest.raises(DigestPostError) as caught:
        post_digest(engine, client, EVALS, digest)
    message = str(caught.value)
    assert "2026-W48" in message and "internal_error (HTTP 500)" in message
    assert "run it again" in message
    assert post_rows(engine) == []
    assert slack.messages(EVALS) == []
    statuses = {r["status"] for r in slack.requests()}
    assert statuses == {500}

    slack.reset()  # Slack is back
    report = post_digest(engine, client, EVALS, digest)
    assert {p.action for p in report.parts} == {"posted"}
    assert len(post_rows(engine)) == len(report.parts) == len(slack.messages(EVALS))


def test_a_channel_name_is_resolved_through_conversations_list_then_earlier_posts(
    db_url: str, slack: FakeSlackServer, client: WebClient
) -> None:
    engine = get_engine(db_url)
    digest = make_digest(3)
    first = post_digest(engine, client, "#support-assistant-evals", digest)
    assert first.channel_id == EVALS and first.parts[0].action == "posted"
    assert first.notes == []
    assert len(calls(slack, "conversations.list")) == 1
    second = post_digest(engine, client, "#support-assistant-evals", digest)
    assert [p.action for p in second.parts] == ["unchanged"]
    assert second.notes == []
    assert len(slack.messages(EVALS)) == 1


def test_deleted_messages_are_posted_again_and_extra_parts_emptied(
    db_url: str, slack: FakeSlackServer, client: WebClient
) -> None:
    engine = get_engine(db_url)
    first = post_digest(engine, client, EVALS, make_digest(60))
    assert len(first.parts) >= 2
    client.chat_delete(channel=EVALS, ts=first.parts[0].ts)
    smaller = post_digest(engine, client, EVALS, make_digest(2))
    actions = [p.action for p in smaller.parts]
    assert actions == ["posted"] + ["emptied"] * (len(first.parts) - 1)
    rows = post_rows(engine)
    assert rows[0].ts == smaller.parts[0].ts != first.parts[0].ts
    live = {m["ts"]: m for m in slack.messages(EVALS) if not m["deleted"]}
    assert sorted(live) == sorted(r.ts for r in rows)
    assert all("empty now" in live[r.ts]["text"] for r in rows[1:])
    assert "2 decision(s) pending" in live[rows[0].ts]["text"]


# --------------------------------------------------------------------------- offline, command


def test_offline_files_hold_the_markdown_and_the_blocks(tmp_path: Path) -> None:
    digest = make_digest(60)
    files = write_digest_files(digest, tmp_path)
    assert files.markdown == tmp_path / "digests" / "2026-W48.md"
    assert files.blocks == tmp_path / "digests" / "2026-W48.blocks.json"
    assert files.markdown.read_text() == render_markdown(digest)
    saved = json.loads(files.blocks.read_text())
    assert saved["week"] == "2026-W48"
    assert [m["blocks"] for m in saved["messages"]] == [m.blocks for m in render_slack(digest)]
    assert sorted(p.name for p in (tmp_path / "digests").iterdir()) == [  # no temporary left
        "2026-W48.blocks.json",
        "2026-W48.md",
    ]


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("digest")(digest_command)

    @app.callback()
    def main() -> None:
        """A stand-in for evalcore's app."""

    return app


@pytest.fixture
def prefect(prefect_api: str) -> Iterator[str]:
    """The command runs the weekly-digest flow in-process: on the shared test server."""
    from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_api, PREFECT_LOGGING_TO_API_ENABLED: False}):
        yield prefect_api


def digest_flow_runs(api: str) -> list[dict[str, Any]]:
    import httpx

    response = httpx.post(
        f"{api}/flow_runs/filter",
        json={"flows": {"name": {"any_": ["weekly-digest"]}}, "limit": 200},
        timeout=10,
    )
    response.raise_for_status()
    runs: list[dict[str, Any]] = response.json()
    return runs


def test_command_offline_prints_markdown_and_writes_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect: str
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    before = {run["id"] for run in digest_flow_runs(prefect)}
    result = CliRunner().invoke(cli(), ["digest", "--suite", str(EXAMPLE), "--days", "3"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# Weekly triage digest · {ROUTE} · ")
    home = Path(os.environ["EVALCORE_HOME"])
    (markdown,) = (home / "digests").glob("*.md")
    assert len(list((home / "digests").glob("*.blocks.json"))) == 1
    assert result.stdout == markdown.read_text()
    # The weekly-digest flow did the work, recorded as a flow run with the command's options.
    (run,) = [run for run in digest_flow_runs(prefect) if run["id"] not in before]
    assert run["state_type"] == "COMPLETED"
    assert (run["parameters"]["offline"], run["parameters"]["days"]) == (True, 3)

    refused = CliRunner().invoke(cli(), ["digest", "--post", "--suite", str(EXAMPLE)])
    assert refused.exit_code == 3 and "SLACK_BOT_TOKEN" in refused.output


def test_command_posts_with_a_token(
    slack: FakeSlackServer, monkeypatch: pytest.MonkeyPatch, prefect: str
) -> None:
    import evalcore.triage.digest.gather as gather
    from evalcore.store.tables import utcnow

    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
    monkeypatch.setenv("SLACK_BASE_URL", slack.api_url)
    # The digest shows its window's end and when it was made to the minute: two runs a
    # minute boundary apart would differ in those alone, and the second would update.
    started = utcnow()
    monkeypatch.setattr(gather, "utcnow", lambda: started)
    args = ["digest", "--suite", str(EXAMPLE), "--channel", EVALS, "--json"]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [p["action"] for p in out["post"]["parts"]] == ["posted"]
    again = json.loads(CliRunner().invoke(cli(), args).stdout)
    assert [p["action"] for p in again["post"]["parts"]] == ["unchanged"]
    assert len(slack.messages(EVALS)) == 1

    slack.add_fault("auth.test", error="invalid_auth")
    refused = CliRunner().invoke(cli(), ["digest", "--suite", str(EXAMPLE), "--channel", "C0NEW01"])
    assert refused.exit_code == 1 and "invalid_auth" in refused.output


# --------------------------------------------------------------------------- flow


def test_weekly_digest_flow_posts_to_the_owners_channel_and_writes_files(
    tmp_path: Path, prefect: str, slack: FakeSlackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.weekly_digest import WeeklyDigestResult, weekly_digest

    monkeypatch.setenv("EVALCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
    monkeypatch.setenv("SLACK_BASE_URL", slack.api_url)

    posted = weekly_digest(suite=str(EXAMPLE), offline=None)
    assert isinstance(posted, WeeklyDigestResult), posted  # not a Failed state
    result = posted.model_dump(mode="json")
    assert [p["action"] for p in result["post"]["parts"]] == ["posted"]
    assert Path(result["markdown_path"]).is_file() and Path(result["blocks_path"]).is_file()
    assert len(slack.messages(EVALS)) == 1  # owners.yaml: #support-assistant-evals

    offline = weekly_digest(suite=str(EXAMPLE), offline=True)
    assert isinstance(offline, WeeklyDigestResult), offline
    assert offline.post is None
    assert len(calls(slack, "chat.postMessage")) == 1
