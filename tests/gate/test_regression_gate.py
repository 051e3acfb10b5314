"""The gate's regression check against the last passing gate run of the route (or a run
named in the scorecard), through the gate's steps: newly failing and newly fixed cases
listed, `max_new_failures` failing a gate whose thresholds all held."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.suites import write_suite
from evalcore.gate.steps import gate_markdown
from evalcore.results.history import run_overviews
from evalcore.results.verdict import Verdict
from evalcore.store.engine import get_engine
from tests.gate.test_resampling import SCRIPTS, TARGET, gate


@pytest.fixture(autouse=True)
def fresh_script() -> None:
    """What a test left scripted (a gate that stopped before its calls) is not the next's."""
    SCRIPTS.clear()


def suite(tmp_path: Path, regression: str) -> Path:
    return write_suite(
        tmp_path / "suite",
        cases=6,
        set_name="blocking",
        target_yaml=TARGET,
        run_yaml="{concurrency: 1, timeout_s: 10, retries: 0}",
        scorecard_extra=(
            f"thresholds:\n  blocking: {{min_pass_rate: 0.5}}\nregression: {regression}\n"
        ),
    )


def test_a_newly_failing_case_fails_the_gate_against_the_last_passing_run(
    db_url: str, tmp_path: Path
) -> None:
    root = suite(tmp_path, "{against: last_pass, max_new_failures: 0}")
    first_id, first = gate(db_url, root, release="r1")
    assert first.verdict is Verdict.passed
    (line,) = [c for c in first.criteria if c.name.startswith("regression")]
    assert (line.measured, line.held) == ("no earlier passing run", True)
    assert first.regression is not None and first.regression.against_run_id is None

    SCRIPTS["4"] = ["bad"]  # fails now: the set's 83% still clears its 50% threshold
    second_id, second = gate(db_url, root, release="r2")
    assert second.verdict is Verdict.failed
    assert second.reason == f"failed: regression against {first_id[:12]}"
    assert second.regression is not None
    assert second.regression.newly_failing == ["gen-000004"]
    assert (second.regression.paired, second.regression.test) == (6, "exact McNemar")
    assert "- newly failing: `gen-000004`" in gate_markdown(second)

    # The failed run is not a pass: the next gate compares with the first run still.
    SCRIPTS["2"] = ["bad"]
    _, third = gate(db_url, root, release="r3")
    assert third.regression is not None and third.regression.against_run_id == first_id
    assert third.regression.newly_failing == ["gen-000002"]
    assert third.verdict is Verdict.failed
    assert second_id != first_id

    # `runs list` shows the verdict each gate concluded, regression included: judged from
    # its results alone the second run would pass (83% against a 50% threshold).
    listed = {o.run.id: o.verdict_value for o in run_overviews(get_engine(db_url))}
    assert (listed[first_id], listed[second_id]) == ("pass", "fail")


def test_newly_fixed_cases_are_listed_against_a_named_run(db_url: str, tmp_path: Path) -> None:
    root = suite(tmp_path, "{max_new_failures: 1}")
    SCRIPTS["1"] = ["bad"]
    SCRIPTS["3"] = ["bad"]
    before_id, _ = gate(db_url, root, release="r1")
    named = root / "scorecard.yaml"
    named.write_text(
        named.read_text().replace(
            "regression: {max_new_failures: 1}",
            f"regression: {{against: {before_id[:12]}, max_new_failures: 1}}",
        )
    )
    SCRIPTS["5"] = ["bad"]
    _, after = gate(db_url, root, release="r2")
    assert after.regression is not None and after.regression.against_run_id == before_id
    assert after.regression.newly_fixed == ["gen-000001", "gen-000003"]
    assert after.regression.newly_failing == ["gen-000005"]
    assert after.verdict is Verdict.passed  # one new failure is allowed


def test_a_run_named_by_an_id_of_digits_only_is_found(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run id YAML reads as a number when written unquoted (ids made before they were
    drawn to start with a letter) still names the run."""
    import uuid

    import evalcore.run.service

    digits = "353281032638" + uuid.uuid4().hex[12:]
    monkeypatch.setattr(evalcore.run.service, "new_run_id", lambda: digits)
    root = suite(tmp_path, "{max_new_failures: 1}")
    before_id, _ = gate(db_url, root, release="r1")
    assert before_id == digits
    monkeypatch.undo()
    named = root / "scorecard.yaml"
    named.write_text(
        named.read_text().replace(
            "regression: {max_new_failures: 1}",
            "regression: {against: 353281032638, max_new_failures: 1}",
        )
    )
    _, after = gate(db_url, root, release="r2")
    assert after.regression is not None and after.regression.against_run_id == digits


def test_new_run_ids_start_with_a_letter() -> None:
    from evalcore.store.repository import new_run_id

    ids = [new_run_id() for _ in range(1_000)]
    assert all(run_id[0] in "abcdef" and len(run_id) == 32 for run_id in ids)
    assert len(set(ids)) == 1_000
