"""`evalcore handover`: the five answers from the suite and the database, as Markdown."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from evalcore import aio
from evalcore.gate.steps import GateRequest, open_gate_run
from evalcore.local.reference import ReferenceServer
from evalcore.run import execute_run
from evalcore.run.service import RunRequest, prepare_run
from evalcore.store.engine import get_engine
from evalcore.store.tables import BacklogItemRow
from evalcore.suite import EvalSet, load_suite
from evalcore.triage.handover import gather_handover, handover_markdown
from tests.cli_helpers import evalcore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"


def item(item_id: str, state: str) -> BacklogItemRow:
    return BacklogItemRow(
        id=item_id,
        reporter="support@lumenhome.example",
        route="support-assistant",
        messages=[{"role": "user", "content": f"question {item_id}"}],
        observed_output="answer",
        what_was_wrong="wrong",
        normalized_text=f"question {item_id}",
        fingerprint=item_id.ljust(64, "0"),
        state=state,
    )


def test_the_five_answers_come_from_live_data(db_url: str) -> None:
    engine = get_engine(db_url)
    suite = load_suite(EXAMPLE)
    with ReferenceServer() as server:
        run, _ = open_gate_run(
            engine, suite, GateRequest("r1", target_url=server.base_url, judge_url=server.base_url)
        )
        aio.run(execute_run(engine, suite, run))
        # A plain run of the blocking set afterwards is no gate: it is not the last gate.
        plain = prepare_run(
            engine,
            suite,
            RunRequest(sets=(EvalSet.blocking,), target_url=server.base_url, trigger="cli"),
        )
        aio.run(execute_run(engine, suite, plain))
    with Session(engine) as session:
        for i, state in enumerate(["open", "open", "blocked", "dismissed"]):
            session.add(item(f"BL-00000{i}", state))
        session.commit()
    text = handover_markdown(gather_handover(engine, suite))
    blocking = [c.id for c in suite.cases if c.set.value == "blocking"]
    assert f"{len(blocking)} cases in the **blocking** set" in text
    assert all(f"| `{case}` |" in text for case in blocking)
    assert "34 cases in the **monitoring** set" in text and "no baseline yet" in text
    assert (
        "Backlog items now: open 2, duplicate 0, blocked 1, monitored 0, kept 0, dismissed 1."
        in text
    )
    assert "| blocking | 100% | daniel.brandt | daniel.brandt |" in text
    assert "| tag:refunds | 100% | maya.okafor | — |" in text
    assert "| latency p95 | 2000 ms |" in text
    assert f"Last gate run `{run.id[:12]}`." in text and plain.id[:12] not in text
    assert "Budget owner: tom.lindqvist (owners.yaml: tom.lindqvist)." in text


def test_handover_cli_prints_and_writes_markdown(tmp_path: Path) -> None:
    out = tmp_path / "HANDOVER.md"
    done = evalcore("handover", "--suite", str(EXAMPLE), "--out", str(out), cwd=ROOT, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Which cases block a release?" in done.stdout
    assert out.read_text().startswith("# Handover: `support-assistant`")


def test_handover_shows_what_each_set_and_tag_can_detect(tmp_path: Path) -> None:
    from evalcore.suite.sensitivity import suite_sensitivity

    rows = {row.scope: row for row in suite_sensitivity(load_suite(EXAMPLE))}
    out = tmp_path / "HANDOVER.md"
    done = evalcore("handover", "--suite", str(EXAMPLE), "--out", str(out), cwd=ROOT, home=tmp_path)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert (
        "(the smallest drop in pass rate detected with 80% power at one-sided alpha 0.05)" in text
    )
    assert f"- monitoring: {rows['set:monitoring'].describe()}" in text
    assert f"- tag refunds: {rows['tag:refunds'].describe()}" in text
    monitoring = rows["set:monitoring"]
    min_effect = load_suite(EXAMPLE).scorecard.drift.min_effect
    assert monitoring.drop is not None
    if monitoring.drop > min_effect:
        assert (
            f"**monitoring cannot detect a drop smaller than {monitoring.drop_points:.1f} points**"
            in text
        )
    else:  # the example's monitoring set is sized for the drops it must see
        assert "monitoring cannot detect" not in text


def test_a_gate_of_a_model_with_no_price_shows_its_cost_as_unknown(db_url: str) -> None:
    engine = get_engine(db_url)
    suite = load_suite(EXAMPLE)
    with ReferenceServer() as server:
        request = GateRequest(
            "r-unpriced",
            target_url=server.base_url,
            judge_url=server.base_url,
            model="support-assistant@v1",  # served, but not under the scorecard's prices
        )
        run, _ = open_gate_run(engine, suite, request)
        aio.run(execute_run(engine, suite, run))
    text = handover_markdown(gather_handover(engine, suite))
    cost_rows = [line for line in text.splitlines() if line.startswith("| cost per")]
    assert len(cost_rows) == 2
    # The last gate's column: unknown, not $0 (the budget column keeps the budget).
    assert all(row.split("|")[3].strip() == "unknown (no price)" for row in cost_rows)
