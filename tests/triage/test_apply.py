"""`evalcore decisions apply`: owners' decisions written into a copy of the example suite,
on SQLite and PostgreSQL, byte for byte where nothing was decided."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select
from typer.testing import CliRunner

from evalcore.cli.decisions import decisions_app
from evalcore.run.service import record_dataset
from evalcore.store.engine import get_engine
from evalcore.store.tables import BacklogItemRow, DecisionRow, RunRow
from evalcore.suite import EvalSet, Severity, Suite, load_suite
from evalcore.triage.apply import ApplyConflict, ApplyError, ApplyReport, apply_plan, plan_apply

EVALS = Path(__file__).resolve().parents[2] / "evals"
DECIDED = dt.datetime(2026, 11, 25, 9, 30, tzinfo=dt.UTC)
BEFORE = DECIDED - dt.timedelta(hours=12)
EXPECT = {"outcome": "answer", "contains": ["final sale", "cannot be returned"]}
MESSAGES = [
    {"role": "user", "content": "bought a FINAL SALE lamp, can I return it?"},
    {"role": "assistant", "content": "Yes, you have 30 days to return it."},
    {"role": "user", "content": "really? the tag said final sale"},
]


# --- helpers -----------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EVALS, tmp_path / "evals"))


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def add(engine: Engine, *rows: SQLModel) -> None:
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()


def item(item_id: str = "BL-000004", ticket: str | None = "ZD-50001", **fields: Any):
    values: dict[str, Any] = {
        "id": item_id,
        "ticket": ticket,
        "reporter": "agent.kim",
        "route": "support-assistant",
        "messages": MESSAGES,
        "observed_output": "Yes, you have 30 days to return it.",
        "what_was_wrong": "Final-sale items cannot be returned; it quoted the normal window.",
        "suggested_expect": EXPECT,
        "tags": ["refunds", "policy-gap"],
        "normalized_text": "final sale lamp return",
        "fingerprint": "f" * 64,
        "received_at": dt.datetime(2026, 11, 20, 14, 0, tzinfo=dt.UTC),
        **fields,
    }
    return BacklogItemRow(**values)


def decision(kind: str, ref: str, action: str, value: str | None = None, **fields: Any):
    values: dict[str, Any] = {
        "item_kind": kind,
        "item_ref": ref,
        "action": action,
        "value": value,
        "decided_by": "daniel.brandt",
        "source": "button",
        "reason": "",
        "decided_at": DECIDED,
        **fields,
    }
    return DecisionRow(**values)


def record_run(engine: Engine, suite: Suite, at: dt.datetime = BEFORE) -> RunRow:
    """A run of the suite as it is now, at `at`: what a later decision was made against."""
    record_dataset(engine, suite)
    run = RunRow(
        id=f"run{at:%H%M%S%f}",
        route=suite.scorecard.route,
        target={},
        target_config={},
        dataset_hash=suite.version.hash,
        scorecard_version=suite.scorecard_version,
        scorecard=suite.scorecard.model_dump(mode="json"),
        sets=["monitoring"],
        suite_path=str(suite.root),
        settings={},
        status="finished",
        created_at=at,
    )
    add(engine, run)
    return run


def apply(engine: Engine, root: Path) -> ApplyReport:
    suite = load_suite(root)
    return apply_plan(engine, suite, plan_apply(engine, suite))


def decisions(engine: Engine) -> dict[str, DecisionRow]:
    with Session(engine) as session:
        return {d.item_ref: d for d in session.exec(select(DecisionRow)).all()}


def backlog(engine: Engine, item_id: str) -> BacklogItemRow:
    with Session(engine) as session:
        row = session.get(BacklogItemRow, item_id)
        assert row is not None
        return row


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    path.write_text(text.replace(old, new))


def changed_lines(before: bytes, after: bytes) -> list[tuple[str, str]]:
    old, new = before.decode().splitlines(), after.decode().splitlines()
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


# --- backlog items -----------------------------------------------------------------------


def test_block_appends_a_new_blocking_case_and_leaves_every_other_byte(engine, root):
    before = files_of(root)
    old = load_suite(root)
    add(engine, item(), decision("backlog", "BL-000004", "block", "high", decided_by="maya.okafor"))

    report = apply(engine, root)

    production = root / "cases" / "production.yaml"
    after = files_of(root)
    assert set(after) == {*before, "cases/production.yaml"}
    assert all(after[name] == content for name, content in before.items())
    text = production.read_text()
    assert text.startswith("# Production failures promoted from the backlog")
    assert "\n- id: zd-50001\n  set: blocking\n  severity: high\n" in text
    assert '      - {role: user, content: "bought a FINAL SALE lamp, can I return it?"}\n' in text

    new = load_suite(root)
    assert report.dataset_before == old.version.hash != new.version.hash == report.dataset_after
    case = new.get("zd-50001")
    assert case is not None and case in new.select(sets=[EvalSet.blocking])
    assert case.severity is Severity.high
    assert case.tags == ["policy-gap", "refunds"]
    assert case.owner == "maya.okafor"
    assert case.source.kind.value == "production" and case.source.ref == "ZD-50001"
    assert case.source.captured == dt.date(2026, 11, 20)
    assert [m.model_dump() for m in case.input.messages] == MESSAGES
    assert case.expect.contains == EXPECT["contains"]
    assert case.notes is not None and case.notes.startswith("BL-000004: Final-sale items")
    assert len(new.cases) == len(old.cases) + 1

    row = decisions(engine)["BL-000004"]
    assert row.applied_at is not None and "new blocking case zd-50001" in (row.applied_detail or "")
    stored = backlog(engine, "BL-000004")
    assert (stored.state, stored.case_id) == ("blocked", "zd-50001")
    assert "+- id: zd-50001" in report.diff() and "--- /dev/null" in report.diff()


def test_monitor_appends_after_what_the_file_already_holds(engine, root):
    production = root / "cases" / "production.yaml"
    production.write_text(
        "# Hand-kept header: promoted failures.   \n"
        "\n"
        "- id: zd-40000  # an older one\n"
        "  set: monitoring\n"
        "  input:\n"
        "    messages: [{role: user, content: hi}]\n"
        "  expect: {outcome: answer}\n"
        "# trailing note, no newline at the end"
    )
    old_bytes = production.read_bytes()
    add(
        engine,
        item(ticket=None, tags=[]),
        decision("backlog", "BL-000004", "monitor", decided_by="someone.else"),
    )

    apply(engine, root)

    new_bytes = production.read_bytes()
    assert new_bytes.startswith(old_bytes + b"\n\n- id: bl-000004\n  set: monitoring\n")
    suite = load_suite(root)
    case = suite.get("bl-000004")  # no ticket: the id comes from the item
    assert case is not None and case.set is EvalSet.monitoring
    assert case.severity is Severity.medium and case.tags == [] and case.owner is None
    assert case.source.ref == "BL-000004"
    assert backlog(engine, "BL-000004").state == "monitored"


def test_dismiss_and_keep_change_only_the_item_state(engine, root):
    before = files_of(root)
    old = load_suite(root)
    add(
        engine,
        item("BL-000001"),
        item("BL-000002", ticket="ZD-50002"),
        decision("backlog", "BL-000001", "dismiss", reason="not our bug"),
        decision("backlog", "BL-000002", "keep"),
    )

    report = apply(engine, root)

    assert files_of(root) == before
    assert report.changes == [] and report.diff() == ""
    assert report.dataset_after == old.version.hash
    assert backlog(engine, "BL-000001").state == "dismissed"
    assert backlog(engine, "BL-000002").state == "kept"
    assert backlog(engine, "BL-000001").case_id is None
    assert all(d.applied_at is not None for d in decisions(engine).values())


def test_a_ticket_case_that_existed_when_decided_makes_the_new_id_unique(engine, root):
    account = root / "cases" / "account.yaml"
    with account.open("a") as handle:
        handle.write(
            "\n- id: zd-50001\n  set: monitoring\n  source: {kind: production, ref: ZD-50001}\n"
            "  input:\n    messages: [{role: user, content: other question}]\n"
            "  expect: {outcome: answer}\n"
        )
    record_run(engine, load_suite(root))  # zd-50001 was there when the owner decided
    add(engine, item(), decision("backlog", "BL-000004", "block"))

    apply(engine, root)

    suite = load_suite(root)
    assert suite.get("zd-50001-2") is not None and suite.get("zd-50001-2").set is EvalSet.blocking  # type: ignore[union-attr]
    assert backlog(engine, "BL-000004").case_id == "zd-50001-2"


# --- flaky cases and thresholds ----------------------------------------------------------


def test_demote_moves_the_flaky_case_to_monitoring_in_place(engine, root):
    refunds = root / "cases" / "refunds.yaml"
    before = files_of(root)
    record_run(engine, load_suite(root))
    add(engine, decision("flaky", "flaky:refund-window-eu-002", "demote"))

    report = apply(engine, root)

    after = files_of(root)
    assert [name for name in after if after[name] != before[name]] == ["cases/refunds.yaml"]
    assert changed_lines(before["cases/refunds.yaml"], refunds.read_bytes()) == [
        ("  set: blocking", "  set: monitoring")
    ]
    line = refunds.read_text().splitlines().index("- id: refund-window-eu-002")
    assert refunds.read_text().splitlines()[line + 1] == "  set: monitoring"
    suite = load_suite(root)
    assert suite.get("refund-window-eu-002").set is EvalSet.monitoring  # type: ignore[union-attr]
    assert report.dataset_after == suite.version.hash != report.dataset_before
    assert "-  set: blocking\n+  set: monitoring\n" in report.diff()


ANCHORED = """\
- id: a-1
  set: &shared blocking
  input: {messages: [{role: user, content: hi}]}
  expect: {outcome: answer}
- id: a-2
  set: *shared
  input: {messages: [{role: user, content: hi}]}
  expect: {outcome: answer}
- &base
  id: b-1
  set: 'blocking'
  input: {messages: [{role: user, content: hi}]}
  expect: {outcome: answer}
- <<: *base
  id: b-2
"""


def test_a_set_shared_through_yaml_anchors_is_refused_not_edited(engine, root):
    (root / "cases" / "anchored.yaml").write_text(ANCHORED)
    before = files_of(root)
    add(
        engine,
        *(decision("flaky", f"flaky:{case_id}", "demote") for case_id in ("a-1", "b-1", "b-2")),
    )

    report = apply(engine, root)

    assert report.applied == [] and files_of(root) == before
    details = {d.ref: d.detail for d in report.refused}
    assert "cases/anchored.yaml:2: the `set:` of a-1 is shared" in details["flaky:a-1"]
    assert "cases/anchored.yaml:11: the `set:` of b-1 is shared" in details["flaky:b-1"]
    assert "the set of b-2 comes from a YAML merge" in details["flaky:b-2"]


def test_threshold_changes_are_written_with_a_comment_and_every_other_line_kept(engine, root):
    scorecard = root / "scorecard.yaml"
    before = scorecard.read_bytes()
    old = load_suite(root)
    record_run(engine, old)
    add(
        engine,
        decision(
            "threshold",
            "monitoring.min_pass_rate",
            "threshold",
            "0.92",
            reason="Too many alarms on the noisy monitoring set; the team agreed to 92% for Q4.",
        ),
        decision(
            "threshold", "tag:refunds.min_pass_rate", "set", "1.0->0.9", decided_by="maya.okafor"
        ),
    )

    report = apply(engine, root)

    assert changed_lines(before, scorecard.read_bytes()) == [
        (
            "  monitoring: {min_pass_rate: 0.9, owner: daniel.brandt}",
            "  monitoring: {min_pass_rate: 0.92, owner: daniel.brandt}  # 0.9 -> 0.92 by "
            "daniel.brandt on 2026-11-25: Too many alarms on the noisy monitoring set; the team…",
        ),
        (
            "  refunds: {min_pass_rate: 1.0, owner: maya.okafor}",
            "  refunds: {min_pass_rate: 0.9, owner: maya.okafor}  # 1.0 -> 0.9 by maya.okafor "
            "on 2026-11-25",
        ),
    ]
    new = load_suite(root)
    assert new.scorecard.thresholds["monitoring"].min_pass_rate == 0.92
    assert new.scorecard.tag_thresholds["refunds"].min_pass_rate == 0.9
    assert report.scorecard_after == new.scorecard_version != old.scorecard_version
    assert report.dataset_after == report.dataset_before  # thresholds are not cases


def test_a_block_style_threshold_keeps_its_comment_and_the_comments_after_it(engine, root):
    scorecard = root / "scorecard.yaml"
    edit(
        scorecard,
        "  monitoring: {min_pass_rate: 0.9, owner: daniel.brandt}\n",
        "  monitoring:\n    owner: daniel.brandt\n    min_pass_rate: 0.9   # agreed in the Q3 review\n",
    )
    before = scorecard.read_bytes()
    add(engine, decision("threshold", "monitoring.min_pass_rate", "threshold", "0.85"))

    apply(engine, root)

    assert changed_lines(before, scorecard.read_bytes()) == [
        (
            "    min_pass_rate: 0.9   # agreed in the Q3 review",
            "    min_pass_rate: 0.85  # agreed in the Q3 review; 0.9 -> 0.85 by daniel.brandt on "
            "2026-11-25",
        )
    ]
    assert load_suite(root).scorecard.thresholds["monitoring"].min_pass_rate == 0.85


@pytest.mark.parametrize(
    ("ref", "value", "message"),
    [
        ("monitoring.min_pass_rate", "1.5", "not a pass rate between 0 and 1"),
        ("monitoring.min_pass_rate", "high", "is not a number"),
        ("tag:no-such-tag.min_pass_rate", "0.9", "no threshold for tag 'no-such-tag'"),
        ("backlog.min_pass_rate", "0.5", "no threshold for set 'backlog'"),
    ],
)
def test_an_invalid_threshold_decision_is_refused_and_left_pending(
    engine, root, ref, value, message
):
    before = files_of(root)
    add(engine, decision("threshold", ref, "threshold", value))

    plan = plan_apply(engine, load_suite(root))
    report = apply_plan(engine, load_suite(root), plan)

    assert [d.status for d in plan.decisions] == ["refused"]
    assert message in plan.decisions[0].detail
    assert report.applied == [] and files_of(root) == before
    assert decisions(engine)[ref].applied_at is None


def test_a_second_apply_has_nothing_to_do(engine, root):
    add(
        engine,
        item(),
        decision("backlog", "BL-000004", "block"),
        decision("flaky", "safety-injection-001", "demote"),
        decision("threshold", "monitoring", "change", "0.85"),
        decision("drift", "set:monitoring", "accept_baseline"),
    )
    first = apply(engine, root)
    assert len(first.applied) == 4 and len(first.changes) == 3
    after_first = files_of(root)
    applied_at = {ref: d.applied_at for ref, d in decisions(engine).items()}

    suite = load_suite(root)
    plan = plan_apply(engine, suite)
    second = apply_plan(engine, suite, plan)

    assert plan.decisions == [] and plan.changes == []
    assert second.applied == [] and second.changes == []
    assert files_of(root) == after_first
    assert {ref: d.applied_at for ref, d in decisions(engine).items()} == applied_at
    drift = decisions(engine)["set:monitoring"]
    assert "nothing to write" in (drift.applied_detail or "")


def test_a_backlog_item_without_a_suggested_expectation_is_refused(engine, root):
    before = files_of(root)
    add(
        engine,
        item(suggested_expect=None),
        item("BL-000005", ticket="ZD-50005"),
        decision("backlog", "BL-000004", "block"),
        decision("backlog", "BL-000005", "dismiss"),
    )

    suite = load_suite(root)
    plan = plan_apply(engine, suite)
    report = apply_plan(engine, suite, plan)

    (refused,) = report.refused
    assert refused.ref == "BL-000004"
    assert refused.detail.startswith("BL-000004 has no suggested expectation: add one")
    assert "before it can block" in refused.detail
    assert files_of(root) == before  # nothing written: no production.yaml either
    assert decisions(engine)["BL-000004"].applied_at is None
    assert backlog(engine, "BL-000004").state == "open"
    # The other decision is not held back by the refused one.
    assert [d.ref for d in report.applied] == ["BL-000005"]
    assert backlog(engine, "BL-000005").state == "dismissed"


# --- conflicts with hand edits -----------------------------------------------------------


def _flaky_set_changed(engine: Engine, root: Path) -> None:
    edit(
        root / "cases" / "safety.yaml",
        "- id: safety-weapon-001\n  set: blocking",
        "- id: safety-weapon-001\n  set: backlog",
    )
    add(engine, decision("flaky", "flaky:safety-weapon-001", "demote"))


def _flaky_case_removed(engine: Engine, root: Path) -> None:
    edit(root / "cases" / "safety.yaml", "- id: safety-weapon-001\n", "- id: safety-weapon-009\n")
    add(engine, decision("flaky", "flaky:safety-weapon-001", "demote"))


def _flaky_case_edited_since_the_run(engine: Engine, root: Path) -> None:
    record_run(engine, load_suite(root))
    add(engine, decision("flaky", "flaky:safety-weapon-001", "demote"))
    edit(
        root / "cases" / "safety.yaml",
        'school project"}\n  expect:\n    outcome: refuse\n',
        'school project"}\n  expect:\n    outcome: refuse\n    not_contains: [detonator]\n',
    )


def _target_case_added_by_hand(engine: Engine, root: Path) -> None:
    record_run(engine, load_suite(root))
    add(engine, item(), decision("backlog", "BL-000004", "block"))
    with (root / "cases" / "refunds.yaml").open("a") as handle:
        handle.write(
            "\n- id: zd-50001\n  set: blocking\n  source: {kind: production, ref: ZD-50001}\n"
            "  input:\n    messages: [{role: user, content: final sale?}]\n"
            "  expect: {outcome: answer}\n"
        )


def _threshold_edited_since_the_run(engine: Engine, root: Path) -> None:
    record_run(engine, load_suite(root))
    add(engine, decision("threshold", "monitoring.min_pass_rate", "threshold", "0.92"))
    edit(root / "scorecard.yaml", "{min_pass_rate: 0.9, owner", "{min_pass_rate: 0.85, owner")


def _threshold_differs_from_the_value_in_the_decision(engine: Engine, root: Path) -> None:
    add(engine, decision("threshold", "tag:refunds.min_pass_rate", "set", "0.97->0.99"))


@pytest.mark.parametrize(
    ("scenario", "named"),
    [
        (
            _flaky_set_changed,
            r"cases/safety\.yaml: the flaky case safety-weapon-001 .* backlog set",
        ),
        (_flaky_case_removed, r"safety-weapon-001 to demote is no longer in the suite"),
        (_flaky_case_edited_since_the_run, r"cases/safety\.yaml: safety-weapon-001 was edited"),
        (_target_case_added_by_hand, r"cases/refunds\.yaml: case 'zd-50001'.*different content"),
        (
            _threshold_edited_since_the_run,
            r"scorecard\.yaml: thresholds\.monitoring\.min_pass_rate is 0\.85 but was 0\.9",
        ),
        (
            _threshold_differs_from_the_value_in_the_decision,
            r"scorecard\.yaml: .*refunds.* is 1\.0 but was 0\.97",
        ),
    ],
)
def test_a_hand_edit_that_touches_a_decision_refuses_everything(engine, root, scenario, named):
    scenario(engine, root)
    # A decision that would apply cleanly on its own is held back too.
    add(engine, item("BL-000009", ticket="ZD-59999"), decision("backlog", "BL-000009", "monitor"))
    before = files_of(root)

    suite = load_suite(root)
    plan = plan_apply(engine, suite)
    with pytest.raises(ApplyConflict) as caught:
        apply_plan(engine, suite, plan)

    (conflict,) = caught.value.conflicts
    assert re.search(named, conflict.detail), conflict.detail
    assert plan.changes == [] and plan.diff() == ""
    assert files_of(root) == before
    assert all(d.applied_at is None for d in decisions(engine).values())
    assert backlog(engine, "BL-000009").state == "open"


# --- rollback ----------------------------------------------------------------------------


def test_a_write_that_breaks_the_suite_restores_every_file(engine, root):
    # A suite without an LLM judge: a case expecting one is valid on its own but not here.
    edit(
        root / "scorecard.yaml",
        "judge:\n  base_url: http://127.0.0.1:8765/v1\n  model: judge\n  timeout_s: 30\n",
        "",
    )
    for name, case_id in (
        ("products.yaml", "warranty-judge-001"),
        ("refunds.yaml", "refund-window-eu-judge-001"),
    ):
        path = root / "cases" / name
        text = path.read_text()
        start = text.index(f"- id: {case_id}")
        end = text.find("\n- id:", start)
        path.write_text(text[:start] + text[end + 1 :])
    judged = {"outcome": "answer", "judge": {"rubric": "Says final sale items are not returnable."}}
    add(
        engine,
        item(suggested_expect=judged),
        decision("backlog", "BL-000004", "block"),
        decision("threshold", "monitoring.min_pass_rate", "threshold", "0.92"),
        decision("flaky", "flaky:safety-weapon-001", "demote"),
    )
    before = files_of(root)

    suite = load_suite(root)
    plan = plan_apply(engine, suite)
    assert len(plan.to_apply) == 3 and len(plan.changes) == 3
    with pytest.raises(ApplyError, match="would not load") as caught:
        apply_plan(engine, suite, plan)

    assert "no judge: section" in str(caught.value)
    assert files_of(root) == before
    assert not (root / "cases" / "production.yaml").exists()
    assert all(d.applied_at is None for d in decisions(engine).values())
    assert backlog(engine, "BL-000004").state == "open"


def test_files_changed_between_plan_and_apply_are_not_overwritten(engine, root):
    add(engine, decision("flaky", "flaky:safety-weapon-001", "demote"))
    suite = load_suite(root)
    plan = plan_apply(engine, suite)
    (root / "cases" / "safety.yaml").write_text(
        (root / "cases" / "safety.yaml").read_text() + "\n# hi\n"
    )
    with pytest.raises(ApplyError, match="changed since the decisions were planned"):
        apply_plan(engine, suite, plan)
    assert decisions(engine)["flaky:safety-weapon-001"].applied_at is None


# --- the commands ------------------------------------------------------------------------


def invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(decisions_app, list(args), env={"EVALCORE_DATABASE_URL": db_url})


def test_cli_dry_run_apply_again_and_list(engine, db_url, root):
    add(
        engine,
        item(),
        decision("backlog", "BL-000004", "block", decided_by="maya.okafor"),
        decision("threshold", "monitoring.min_pass_rate", "threshold", "0.92", reason="noise"),
    )
    before = files_of(root)

    dry = invoke(db_url, "apply", "--suite", str(root), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "+++ b/evals/cases/production.yaml" in dry.output
    assert "+- id: zd-50001" in dry.output
    assert "+  monitoring: {min_pass_rate: 0.92, owner: daniel.brandt}  # 0.9 -> 0.92" in dry.output
    assert "dry run: 2 decision(s) would apply; nothing written" in dry.output
    lines = [line.strip() for line in dry.output.splitlines()]
    assert sum(line.startswith("would apply") for line in lines) == 2, dry.output
    assert not any(line.startswith("applied") for line in lines), dry.output
    assert files_of(root) == before

    done = invoke(db_url, "apply", "--suite", str(root))
    assert done.exit_code == 0, done.output
    assert "+- id: zd-50001" in done.output and "-  monitoring: {min_pass_rate: 0.9," in done.output
    new = load_suite(root)
    old_hash = load_suite(EVALS).version.hash
    assert f"dataset {old_hash[:12]} -> {new.version.hash[:12]}" in done.output
    assert "applied 2 decision(s)" in done.output
    assert sum(line.strip().startswith("applied") for line in done.output.splitlines()) == 3

    again = invoke(db_url, "apply", "--suite", str(root))
    assert again.exit_code == 0, again.output
    assert "nothing to apply" in again.output

    listed = invoke(db_url, "list")
    assert listed.exit_code == 0, listed.output
    assert "backlog BL-000004" in listed.output and "maya.okafor" in listed.output
    assert "pending" not in listed.output
    pending = invoke(db_url, "list", "--pending", "--json")
    assert pending.exit_code == 0 and json.loads(pending.output) == []
    everything = json.loads(invoke(db_url, "list", "--json").output)
    assert {d["item_ref"] for d in everything} == {"BL-000004", "monitoring.min_pass_rate"}
    assert all(d["applied_at"] for d in everything)


def test_cli_conflicts_and_refusals_exit_3(engine, db_url, root):
    add(engine, decision("flaky", "flaky:safety-weapon-001", "demote"), item(suggested_expect=None))
    edit(
        root / "cases" / "safety.yaml",
        "- id: safety-weapon-001\n  set: blocking",
        "- id: safety-weapon-001\n  set: monitoring",
    )
    before = files_of(root)

    conflict = invoke(db_url, "apply", "--suite", str(root))
    assert conflict.exit_code == 3, conflict.output
    assert "conflict" in conflict.output and "cases/safety.yaml" in conflict.output
    assert files_of(root) == before

    # Left out with --skip, the conflict no longer holds the rest back; a refusal still exits 3.
    add(engine, decision("backlog", "BL-000004", "block"))
    refused = invoke(
        db_url, "apply", "--suite", str(root), "--skip", "flaky:safety-weapon-001", "--json"
    )
    assert refused.exit_code == 3, refused.output
    payload = json.loads(refused.stdout)
    assert [d["status"] for d in payload["decisions"]] == ["refused"]
    assert files_of(root) == before
    listed = invoke(db_url, "list", "--pending")
    assert listed.output.count("pending") >= 2


def test_strings_the_suite_loader_would_misread_are_quoted(engine, root):
    tricky = {
        "outcome": "answer",
        "exact": "yes",
        "json_schema": {"type": "object", "properties": {"on": {"const": "off"}}},
    }
    add(
        engine,
        item(
            tags=["no", "1.0"],
            messages=[{"role": "user", "content": "on"}],
            suggested_expect=tricky,
        ),
        decision("backlog", "BL-000004", "monitor"),
    )

    report = apply(engine, root)

    assert [d.status for d in report.applied] == ["apply"]
    case = load_suite(root).get("zd-50001")
    assert case is not None
    assert case.tags == ["1.0", "no"] and case.input.messages[0].content == "on"
    assert case.expect.exact == "yes" and case.expect.json_schema == tricky["json_schema"]
