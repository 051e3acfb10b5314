"""`make demo` end to end, as the process a user starts: the good release passes its gate,
the regressed one is stopped, and a production failure becomes a blocking case through
the fake Slack, with the runs under EVALCORE_HOME and the example suite untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import process_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_demo_gates_both_releases_and_closes_the_triage_loop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    example = snapshot(ROOT / "evals")

    done = subprocess.run(
        [sys.executable, "-m", "evalcore.local.demo"],
        cwd=ROOT,
        env=process_env(home),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    shown = " ".join(done.stdout.split())  # the terminal's line wrapping undone
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "gate 2026.11.3: exit 0 (pass)" in shown
    # the good release slipped once; the gate sampled that case again and cleared it
    good = shown.split("$ evalcore gate --release 2026.11.3", 1)[1].split("$ evalcore", 1)[0]
    assert "Re-sampled cases:" in good and "healthy" in good, good[-3000:]
    last = shown.split("$ evalcore gate --release 2026.12.0", 1)[1].split("$ evalcore", 1)[0]
    assert "Re-sampled cases" not in last  # nothing failed there: no empty table
    assert "gate 2026.11.4-rc1: exit 1 (fail)" in shown
    assert "the new blocking case zd-51001 ran and passed" in shown
    assert "needs_human" in shown and "3 written" in shown  # the generation step's table
    fixtures = home / "demo" / "evals" / "cases" / "fixtures-needs_human.yaml"
    assert fixtures.read_text().count("  source: {kind: fixture, family: needs_human") == 3
    assert "a production failure became a blocking case through Slack" in shown
    assert (home / "evalcore.db").is_file()
    assert snapshot(ROOT / "evals") == example  # the loop edits a working copy
