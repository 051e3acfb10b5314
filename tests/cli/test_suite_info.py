"""`evalcore suite info` on a suite outside any git work tree says so in words."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.cli_helpers import evalcore

EVALS = Path(__file__).resolve().parents[2] / "evals"


def test_a_suite_outside_git_is_said_to_be_outside_a_git_work_tree(tmp_path: Path) -> None:
    shutil.copytree(EVALS, tmp_path / "evals")
    info = evalcore("suite", "info", "--suite", "evals", cwd=tmp_path, home=tmp_path / "h")
    assert info.returncode == 0, info.stderr
    where = info.stdout.splitlines()[0].split("  ·  ")[1]
    assert where == "not in a git work tree", info.stdout

    inside = evalcore("suite", "info", cwd=EVALS.parent, home=tmp_path / "h")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.splitlines()[0].split("  ·  ")[1].startswith("git "), inside.stdout
