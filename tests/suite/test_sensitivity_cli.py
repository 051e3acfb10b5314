"""`suite info` and `validate` show what each set and tag can detect, and warn at file:line
when a threshold asks for more; alpha and power outside (0, 1) are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from evalcore.suite import load_suite
from evalcore.suite.sensitivity import suite_sensitivity
from tests.cli_helpers import evalcore

EVALS = Path(__file__).resolve().parents[2] / "evals"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _case(case_id: str, set_: str, tags: list[str], samples: int) -> str:
    return (
        f"- id: {case_id}\n  set: {set_}\n  severity: medium\n  tags: {json.dumps(tags)}\n"
        f"  source: {{kind: handwritten}}\n"
        f"  input: {{messages: [{{role: user, content: 'question {case_id}'}}]}}\n"
        f"  expect: {{contains: ['answer']}}\n  samples: {samples}\n"
    )


def _suite(root: Path, *, monitoring: int, samples: int, refunds: int) -> Path:
    """The example scorecard (asking for more) and owners over synthetic cases: `monitoring` monitoring cases
    of `samples` samples, the first `refunds` of them tagged refunds, and two blocking ones."""
    suite = root / "evals"
    (suite / "cases").mkdir(parents=True)
    shutil.copy(EVALS / "owners.yaml", suite / "owners.yaml")
    # The example's own thresholds ask only for what its cases can show; these tests ask
    # for more (a refunds threshold of 0.95, drops of 5 points).
    scorecard = (EVALS / "scorecard.yaml").read_text()
    for old, new in (
        ("refunds: {min_pass_rate: 1.0,", "refunds: {min_pass_rate: 0.95,"),
        ("  min_effect: 0.2\n", "  min_effect: 0.05\n"),
    ):
        assert old in scorecard, old
        scorecard = scorecard.replace(old, new)
    (suite / "scorecard.yaml").write_text(scorecard)
    cases = [
        _case(f"m-{i:04d}", "monitoring", ["refunds"] if i < refunds else ["other"], samples)
        for i in range(monitoring)
    ]
    cases += [_case(f"b-{i}", "blocking", ["adversarial"], 1) for i in range(2)]
    (suite / "cases" / "all.yaml").write_text("".join(cases))
    return suite


def _set_scorecard(suite: Path, old: str, new: str) -> Path:
    card = suite / "scorecard.yaml"
    text = card.read_text()
    assert old in text, old
    card.write_text(text.replace(old, new, 1))
    return card


def test_a_small_monitoring_set_is_warned_about_at_the_scorecard_lines(tmp_path: Path) -> None:
    suite = _suite(tmp_path, monitoring=30, samples=1, refunds=10)
    card = suite / "scorecard.yaml"
    rows = {row.scope: row for row in suite_sensitivity(load_suite(suite))}
    monitoring, refunds = rows["set:monitoring"], rows["tag:refunds"]
    assert monitoring.drop is not None and refunds.drop is not None
    assert 0.05 < monitoring.drop < refunds.drop

    text = evalcore("validate", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")
    as_json = evalcore(
        "validate", "--suite", str(suite), "--json", cwd=tmp_path, home=tmp_path / "h"
    )

    assert text.returncode == 0, text.stderr
    warned = [
        line.removeprefix("warning: ")
        for line in text.stderr.splitlines()
        if line.startswith("warning: ")
    ]
    assert warned == [
        f"{card}:{_line_of(card, 'refunds: {min_pass_rate: 0.95')}: "
        f"tag_thresholds.refunds.min_pass_rate: 0.95 leaves room for a drop of 5.0 points, "
        f"but 10 cases x 1 sample can detect no drop smaller than {refunds.drop * 100:.1f} "
        "points (80% power, one-sided alpha 0.05): add cases or samples with this tag",
        f"{card}:{_line_of(card, 'min_effect: 0.05')}: drift.min_effect: 0.05 asks the "
        "nightly monitor for drops of 5.0 points, but the monitoring set's 30 cases x 1 "
        f"sample can detect no drop smaller than {monitoring.drop * 100:.1f} points (80% "
        "power, one-sided alpha 0.05): add cases or samples to it, or raise min_effect",
    ]
    out = _flat(text.stdout)
    assert f"30 cases x 1 sample can detect a drop of {monitoring.drop * 100:.1f} points" in out
    assert f"10 cases x 1 sample can detect a drop of {refunds.drop * 100:.1f} points" in out
    data = json.loads(as_json.stdout)
    assert data["warnings"] == warned
    scopes = {row["scope"]: row for row in data["sensitivity"]}
    assert list(scopes) == ["set:blocking", "set:monitoring", "tag:adversarial", "tag:other",
                            "tag:refunds"]  # fmt: skip
    assert scopes["set:monitoring"]["detectable_drop"] == pytest.approx(monitoring.drop)
    assert scopes["set:monitoring"]["reference_pass_rate"] == 0.9  # its threshold


def test_enough_cases_and_samples_silence_the_warnings(tmp_path: Path) -> None:
    suite = _suite(tmp_path, monitoring=900, samples=3, refunds=600)

    text = evalcore("validate", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")
    info = evalcore("suite", "info", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")

    assert text.returncode == 0, text.stderr
    assert "warning:" not in text.stderr
    assert info.returncode == 0, info.stderr
    assert "monitoring cannot detect" not in _flat(info.stdout)
    assert "900 cases x 3 samples can detect a drop of" in _flat(info.stdout)


def test_suite_info_says_when_a_set_cannot_detect_the_drift_min_effect(tmp_path: Path) -> None:
    suite = _suite(tmp_path, monitoring=30, samples=2, refunds=5)
    rows = {row.scope: row for row in suite_sensitivity(load_suite(suite))}
    drop = rows["set:monitoring"].drop
    assert drop is not None

    info = evalcore("suite", "info", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")
    as_json = evalcore(
        "suite", "info", "--suite", str(suite), "--json", cwd=tmp_path, home=tmp_path / "h"
    )

    assert info.returncode == 0, info.stderr
    assert (
        f"monitoring cannot detect a drop smaller than {drop * 100:.1f} points "
        "(drift.min_effect is 0.05)"
    ) in _flat(info.stdout)
    data = json.loads(as_json.stdout)
    assert data["min_effect"] == 0.05
    monitoring = next(r for r in data["sensitivity"] if r["scope"] == "set:monitoring")
    assert (
        monitoring["text"] == f"30 cases x 2 samples can detect a drop of {drop * 100:.1f} points"
    )
    assert (monitoring["cases"], monitoring["min_samples"], monitoring["max_samples"]) == (30, 2, 2)


def test_the_sensitivity_alpha_and_power_come_from_the_scorecard(tmp_path: Path) -> None:
    suite = _suite(tmp_path, monitoring=60, samples=1, refunds=5)
    before = {r.scope: r.drop for r in suite_sensitivity(load_suite(suite))}
    _set_scorecard(suite, "freshness:", "sensitivity: {power: 0.95, alpha: 0.01}\nfreshness:")
    after = {r.scope: r for r in suite_sensitivity(load_suite(suite))}
    drop = after["set:monitoring"].drop
    assert drop is not None and before["set:monitoring"] is not None
    assert (after["set:monitoring"].alpha, after["set:monitoring"].power) == (0.01, 0.95)
    assert drop > before["set:monitoring"]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("freshness:", "sensitivity: {power: 1.5}\nfreshness:", "sensitivity.power",
         "less than 1"),
        ("freshness:", "sensitivity:\n  power: 0.8\n  alpha: -0.1\nfreshness:", "sensitivity.alpha",
         "greater than 0"),
        ("  alpha: 0.05\n  fdr:", "  alpha: 1.0\n  fdr:", "drift.alpha", "less than 1"),
    ],
)  # fmt: skip
def test_alpha_or_power_outside_zero_to_one_exits_3_with_file_line(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    suite = _suite(tmp_path, monitoring=10, samples=1, refunds=5)
    card = _set_scorecard(suite, old, new)
    bad_value = new.split("\n")[-2] if "\n  " in new else new.split("\n")[0]
    line = _line_of(card, bad_value)

    process = evalcore("validate", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")

    assert process.returncode == 3
    assert process.stdout == ""
    assert f"{card}:{line}: {field}:" in _flat(process.stderr)
    assert message in _flat(process.stderr)
    assert "Traceback" not in process.stderr


def test_validate_lets_the_cases_go_before_the_sensitivity_is_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sensitivity needs SciPy (about 80 MB); validate computes it once no case is held
    any more, so a 100,000-case suite and SciPy are not in memory together. Same output."""
    import gc

    from evalcore.suite import Case
    from evalcore.suite import sensitivity as sensitivity_module

    suite = _suite(tmp_path, monitoring=30, samples=1, refunds=10)
    before = evalcore(
        "validate", "--suite", str(suite), "--json", cwd=tmp_path, home=tmp_path / "h"
    )
    held: list[int] = []
    computed = sensitivity_module.scopes_sensitivity

    def counting(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        held.append(
            sum(1 for o in gc.get_objects() if isinstance(o, Case) and o.id.startswith("m-0"))
        )
        return computed(*args, **kwargs)

    monkeypatch.setattr(sensitivity_module, "scopes_sensitivity", counting)
    after = evalcore("validate", "--suite", str(suite), "--json", cwd=tmp_path, home=tmp_path / "h")
    assert held == [0]
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert json.loads(after.stdout)["cases"] == 32
