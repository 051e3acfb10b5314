"""`evalcore validate` says which signals are not configured and the defaults in force: a
route whose hand-off tool has another name would otherwise see every hand-off scored as an
ordinary tool call, with nothing said."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli_helpers import evalcore

EVALS = Path(__file__).resolve().parents[2] / "evals"


def _validate(tmp_path: Path, scorecard: str) -> tuple[str, dict[str, object]]:
    suite = tmp_path / "evals"
    shutil.copytree(EVALS, suite)
    (suite / "scorecard.yaml").write_text(scorecard)
    text = evalcore("validate", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")
    data = evalcore("validate", "--suite", str(suite), "--json", cwd=tmp_path, home=tmp_path / "h")
    assert text.returncode == 0 and data.returncode == 0, text.stderr + data.stderr
    return " ".join(text.stdout.split()), json.loads(data.stdout)


def test_signals_left_out_are_shown_with_the_defaults_in_force(tmp_path: Path) -> None:
    card = (EVALS / "scorecard.yaml").read_text()
    start = card.index("\nsignals:\n")
    end = card.index("\n\n", start + 1)
    without = card[:start] + card[end:]
    assert "signals:" not in without

    shown, data = _validate(tmp_path, without)
    assert (
        "signals.needs_human is not in scorecard.yaml; the default is in force: a hand-off is "
        "a call of the tool handoff_to_human"
    ) in shown
    assert "signals.refusal is not in scorecard.yaml; the default is in force" in shown
    signals = data["signals"]
    assert isinstance(signals, dict)
    assert signals["needs_human"]["default"] is True
    assert signals["needs_human"]["tool"] == "handoff_to_human"


def test_configured_signals_are_not_called_defaults(tmp_path: Path) -> None:
    shown, data = _validate(tmp_path, (EVALS / "scorecard.yaml").read_text())
    assert "signals.needs_human is not in scorecard.yaml" not in shown
    signals = data["signals"]
    assert isinstance(signals, dict)
    assert signals["needs_human"]["default"] is False
    assert signals["needs_human"]["marker"] == "[HANDOFF]"
