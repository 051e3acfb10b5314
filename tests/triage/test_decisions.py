"""Recording owners' decisions: scope checks from owners.yaml, one decision per item, every
attempt audited. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from evalcore.run import RunRequest, prepare_run
from evalcore.store.engine import get_engine
from evalcore.store.tables import DecisionRow, DriftFindingRow
from evalcore.suite import EvalSet, Suite, load_suite
from evalcore.triage.decisions import (
    DecisionRequest,
    ItemKind,
    Outcome,
    attempts,
    decision_for,
    record_decision,
)
from tests.factories import add, backlog_item

ROOT = Path(__file__).resolve().parents[2]
MAYA, DANIEL, PRIYA, TOM = "U04QH7KM2AB", "U05B8RZT1QK", "U03LMX9PE2C", "U06KQ2VN8HD"


@pytest.fixture
def suite() -> Suite:
    return load_suite(ROOT / "evals")


def add_item(
    db_url: str, item_id: str = "BL-000001", tags: tuple[str, ...] = ("shipping",)
) -> None:
    add(get_engine(db_url), backlog_item(item_id, tags=tags))


def rows(db_url: str) -> list[DecisionRow]:
    with Session(get_engine(db_url)) as session:
        return list(session.exec(select(DecisionRow)))


def test_an_owner_decides_once_and_a_second_click_is_a_conflict(db_url: str, suite: Suite) -> None:
    engine = get_engine(db_url)
    add_item(db_url)
    first = record_decision(
        engine,
        suite,
        DecisionRequest(
            "BL-000001", "block", slack_user=DANIEL, slack_channel="C0EVALS01", slack_ts="1.2"
        ),
    )
    assert first.outcome is Outcome.accepted
    assert first.message == "recorded: block for ZD-48213, by Daniel Brandt"
    # By ticket, a reply for the same item after the button: one decision, a conflict.
    again = record_decision(
        engine, suite, DecisionRequest("ZD-48213", "monitor", slack_user=MAYA, source="reply")
    )
    assert again.outcome is Outcome.conflict
    assert again.message.startswith("ZD-48213 was already decided (block by daniel.brandt at ")
    assert [(r.item_ref, r.action, r.decided_by, r.slack_ts) for r in rows(db_url)] == [
        ("BL-000001", "block", "daniel.brandt", "1.2")
    ]
    assert [(a.outcome, a.source) for a in attempts(engine)] == [
        ("accepted", "button"),
        ("conflict", "reply"),
    ]


@pytest.mark.parametrize(
    ("request_", "outcome", "message"),
    [
        (
            DecisionRequest("BL-000001", "block", slack_user=TOM),
            Outcome.refused,
            "sorry Tom Lindqvist, owners.yaml does not give you the scope of ZD-48213 "
            "(set backlog, tag shipping, route support-assistant), so your block was not recorded",
        ),
        (
            DecisionRequest("BL-000001", "block", slack_user="U0STRANGER"),
            Outcome.refused,
            "sorry, U0STRANGER is not in owners.yaml, so this decision was not recorded",
        ),
        (
            DecisionRequest("BL-000999", "block", slack_user=MAYA),
            Outcome.unknown,
            "there is no item 'BL-000999' to decide on",
        ),
        (
            DecisionRequest("BL-000001", "demote", slack_user=MAYA),
            Outcome.refused,
            "'demote' is not a decision for a backlog item (choose block, monitor, keep, dismiss)",
        ),
        (
            DecisionRequest(
                "monitoring.min_pass_rate", "threshold", slack_user=PRIYA, value="0.92"
            ),
            Outcome.refused,
            "sorry Priya Raman, owners.yaml does not give you the scope of monitoring.min_pass_rate",
        ),
        (
            DecisionRequest(
                "monitoring.min_pass_rate", "threshold", slack_user=DANIEL, value="1.5"
            ),
            Outcome.refused,
            "a threshold needs a number between 0 and 1, not 1.5",
        ),
        (
            DecisionRequest("gating.min_pass_rate", "threshold", slack_user=DANIEL, value="0.5"),
            Outcome.unknown,
            "there is no item 'gating.min_pass_rate' to decide on",
        ),
    ],
)
def test_refusals_change_nothing_and_are_audited(
    db_url: str, suite: Suite, request_: DecisionRequest, outcome: Outcome, message: str
) -> None:
    engine = get_engine(db_url)
    add_item(db_url)
    result = record_decision(engine, suite, request_)
    assert result.outcome is outcome
    assert result.message.startswith(message)
    assert rows(db_url) == []
    (attempt,) = attempts(engine)
    assert (attempt.outcome, attempt.message) == (outcome.value, result.message)


def test_thresholds_flaky_and_drift_items_go_to_their_owners(db_url: str, suite: Suite) -> None:
    engine = get_engine(db_url)
    threshold = record_decision(
        engine,
        suite,
        DecisionRequest(
            "monitoring.min_pass_rate", "threshold", slack_user=DANIEL, value="0.92", source="reply"
        ),
    )
    assert threshold.outcome is Outcome.accepted, threshold.message
    refunds = record_decision(
        engine,
        suite,
        DecisionRequest("tag:refunds.min_pass_rate", "threshold", slack_user=MAYA, value="0.9"),
    )
    assert refunds.outcome is Outcome.refused  # Maya owns the tag, not its thresholds
    blocking_case = next(c for c in suite.cases if c.set.value == "blocking")
    flaky = record_decision(
        engine, suite, DecisionRequest(f"flaky:{blocking_case.id}", "demote", slack_user=DANIEL)
    )
    assert flaky.outcome is Outcome.accepted, flaky.message

    run = prepare_run(
        engine,
        suite,
        RunRequest(sets=(EvalSet.monitoring,), target_url="http://127.0.0.1:9/v1"),
    )
    with Session(engine) as session:
        session.add(
            DriftFindingRow(
                run_id=run.id,
                route="support-assistant",
                kind="drift",
                metric="pass_rate",
                scope="tag:refunds",
                severity="high",
            )
        )
        session.commit()
    drift = record_decision(
        engine,
        suite,
        DecisionRequest(
            "drift:support-assistant:tag:refunds:pass_rate", "investigate", slack_user=MAYA
        ),
    )
    assert drift.outcome is Outcome.accepted, drift.message
    assert decision_for(engine, ItemKind.drift, "drift:support-assistant:tag:refunds:pass_rate")
    assert len(rows(db_url)) == 3


def test_decisions_record_cli_applies_the_same_checks(tmp_path: Path) -> None:
    from tests.cli_helpers import evalcore

    ok = evalcore(
        *("decisions", "record", "monitoring.min_pass_rate", "threshold", "--by", "daniel.brandt"),
        *("--value", "0.92", "--reason", "noisier model", "--suite", str(ROOT / "evals")),
        cwd=ROOT,
        home=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "recorded: threshold 0.92 for monitoring.min_pass_rate, by Daniel Brandt" in ok.stdout
    refused = evalcore(
        *("decisions", "record", "monitoring.min_pass_rate", "threshold", "--by", "priya.raman"),
        *("--value", "0.5", "--suite", str(ROOT / "evals")),
        cwd=ROOT,
        home=tmp_path,
    )
    assert refused.returncode == 3
    assert "sorry Priya Raman, owners.yaml does not give you the scope" in refused.stderr
    listed = evalcore("decisions", "list", "--json", cwd=ROOT, home=tmp_path)
    (row,) = json.loads(listed.stdout)
    assert (row["item_ref"], row["value"], row["decided_by"]) == (
        "monitoring.min_pass_rate",
        "0.92",
        "daniel.brandt",
    )
