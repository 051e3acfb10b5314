"""`evalcore decisions apply` killed after writing the files but before marking the decisions
applied: the next run recognises what was written and leaves every file exactly as an
uninterrupted run would, audit comments included."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, SQLModel, select

from evalcore.store.engine import get_engine
from evalcore.store.tables import BacklogItemRow, DecisionRow
from evalcore.suite import load_suite
from tests.cli_helpers import evalcore, process_env
from tests.factories import add
from tests.triage.test_apply import EVALS, decision, files_of, item, record_run

# The real command, except that at the moment it would mark the decisions applied (the
# files are written by then) the process is killed, as a power cut or the OOM killer would.
KILLED_WHILE_MARKING = """
import os, signal
import evalcore.triage.apply.write
from evalcore.cli.app import main

evalcore.triage.apply.write._mark_applied = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
main()
"""

MONITORING = "  monitoring: {min_pass_rate: 0.9, owner: daniel.brandt}\n"
REASON = "Too many alarms on the noisy monitoring set; the team agreed to 85% for Q4."

Rows = Callable[[], list[SQLModel]]


def apply_command(
    suite: Path, db_url: str, home: Path, *, killed_while_marking: bool = False
) -> subprocess.CompletedProcess[str]:
    """`evalcore decisions apply --suite SUITE`; the one killed is a process of its own."""
    if not killed_while_marking:
        return evalcore(
            *("decisions", "apply", "--suite", str(suite)),
            cwd=suite.parent,
            home=home,
            env={"EVALCORE_DATABASE_URL": db_url},
        )
    return subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_MARKING, "decisions", "apply", "--suite", str(suite)],
        cwd=suite.parent,
        env=process_env(home, {"EVALCORE_DATABASE_URL": db_url}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def applied(db_url: str) -> dict[str, bool]:
    with Session(get_engine(db_url)) as session:
        return {d.item_ref: d.applied_at is not None for d in session.exec(select(DecisionRow))}


def items(db_url: str) -> dict[str, tuple[str, str | None]]:
    with Session(get_engine(db_url)) as session:
        return {i.id: (i.state, i.case_id) for i in session.exec(select(BacklogItemRow))}


def crash_then_recover(
    tmp_path: Path, source: Path, db_url: str, rows: Rows, *, run_before: bool = False
) -> tuple[Path, Path, str]:
    """`rows` applied to two copies of `source`: one apply killed while marking, then run
    again; the other uninterrupted, on a database of its own. Returns both copies and the
    output of the run after the crash."""
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    crashed = Path(shutil.copytree(source, tmp_path / "crashed" / "evals"))
    reference = Path(shutil.copytree(source, tmp_path / "reference" / "evals"))
    for url, suite in ((db_url, crashed), (reference_url, reference)):
        if run_before:
            record_run(get_engine(url), load_suite(suite))
        add(get_engine(url), *rows())
    untouched = files_of(crashed)

    done = apply_command(reference, reference_url, tmp_path / "home-reference")
    assert done.returncode == 0, done.stdout + done.stderr

    killed = apply_command(crashed, db_url, tmp_path / "home", killed_while_marking=True)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    # Killed at the intended point: every file written, no decision marked applied.
    assert files_of(crashed) == files_of(reference) != untouched
    assert not any(applied(db_url).values())

    again = apply_command(crashed, db_url, tmp_path / "home")
    assert again.returncode == 0, again.stdout + again.stderr
    return crashed, reference, again.stdout


@pytest.mark.parametrize(
    ("layout", "value", "written"),
    [
        (
            MONITORING,
            "0.85",
            "  monitoring: {min_pass_rate: 0.85, owner: daniel.brandt}  # 0.9 -> 0.85 by "
            "daniel.brandt on 2026-11-25: Too many alarms on the noisy monitoring set; the "
            "team…\n",
        ),
        (
            "  monitoring:\n    owner: daniel.brandt\n    min_pass_rate: 0.9   # Q3 review\n",
            "0.9->0.85",
            "    min_pass_rate: 0.85  # Q3 review; 0.9 -> 0.85 by daniel.brandt on 2026-11-25: "
            "Too many alarms on the noisy monitoring set; the team…\n",
        ),
    ],
    ids=["flow-style", "block-style-with-a-comment"],
)
def test_a_threshold_written_before_a_crash_keeps_its_audit_comment(
    tmp_path: Path, db_url: str, layout: str, value: str, written: str
) -> None:
    source = Path(shutil.copytree(EVALS, tmp_path / "source"))
    scorecard = source / "scorecard.yaml"
    assert scorecard.read_text().count(MONITORING) == 1
    scorecard.write_text(scorecard.read_text().replace(MONITORING, layout))

    def rows() -> list[SQLModel]:
        return [
            decision("threshold", "monitoring.min_pass_rate", "threshold", value, reason=REASON)
        ]

    crashed, reference, output = crash_then_recover(tmp_path, source, db_url, rows)

    text = (crashed / "scorecard.yaml").read_text()
    assert written in text and "0.85 -> 0.85" not in text
    assert files_of(crashed) == files_of(reference)
    assert applied(db_url) == {"monitoring.min_pass_rate": True}
    assert "applied 1 decision(s)" in output
    assert "already 0.85 in scorecard.yaml" in output
    assert load_suite(crashed).scorecard.thresholds["monitoring"].min_pass_rate == 0.85


def test_every_kind_of_decision_recovers_from_a_crash_byte_for_byte(
    tmp_path: Path, db_url: str
) -> None:
    def rows() -> list[SQLModel]:
        return [
            item("BL-000004", ticket="ZD-50001"),
            item("BL-000005", ticket="ZD-50005"),
            item("BL-000006", ticket="ZD-50006"),
            decision("backlog", "BL-000004", "block", "high", decided_by="maya.okafor"),
            decision("backlog", "BL-000005", "monitor"),
            decision("backlog", "BL-000006", "dismiss"),
            decision("flaky", "flaky:safety-weapon-001", "demote"),
            decision("threshold", "monitoring.min_pass_rate", "threshold", "0.85", reason=REASON),
            decision("drift", "set:monitoring", "accept_baseline"),
        ]

    # The decisions were made on a recorded run: what each decider saw is known.
    crashed, reference, output = crash_then_recover(tmp_path, EVALS, db_url, rows, run_before=True)

    assert files_of(crashed) == files_of(reference)
    assert "# 0.9 -> 0.85 by daniel.brandt on 2026-11-25: Too many alarms" in (
        (crashed / "scorecard.yaml").read_text()
    )
    assert "applied 6 decision(s)" in output
    assert "safety-weapon-001 is already in the monitoring set" in output
    assert all(applied(db_url).values()) and len(applied(db_url)) == 6
    assert (
        items(db_url)
        == items(f"sqlite:///{tmp_path / 'reference.db'}")
        == {
            "BL-000004": ("blocked", "zd-50001"),
            "BL-000005": ("monitored", "zd-50005"),
            "BL-000006": ("dismissed", None),
        }
    )
    last = apply_command(crashed, db_url, tmp_path / "home")
    assert last.returncode == 0 and "nothing to apply" in last.stdout
