"""`evalcore store status` and `evalcore store upgrade`, as an operator runs them before
rolling out a new version: what is pending, applied once, then up to date."""

from __future__ import annotations

import json
from pathlib import Path

from evalcore.store.engine import dispose_engines, head_revision
from tests.cli_helpers import evalcore


def store(tmp_path: Path, db_url: str, *args: str) -> tuple[int, str]:
    dispose_engines()
    done = evalcore(
        "store", *args, cwd=tmp_path, home=tmp_path / "home", env={"EVALCORE_DATABASE_URL": db_url}
    )
    return done.returncode, done.stdout + done.stderr


def test_status_lists_what_upgrade_applies_then_says_up_to_date(
    tmp_path: Path, db_url: str
) -> None:
    code, out = store(tmp_path, db_url, "status", "--json")
    before = json.loads(out)
    assert code == 1 and before["current"] is None and not before["up_to_date"]
    assert before["head"] == head_revision()
    assert before["pending"][0].startswith("0001: ") and before["pending"][-1].startswith(
        f"{head_revision()}: "
    )
    assert "password" not in before["database"]

    code, out = store(tmp_path, db_url, "upgrade")
    assert code == 0, out
    assert f"from empty to {head_revision()}" in out
    assert out.count("applied ") == len(before["pending"])

    code, out = store(tmp_path, db_url, "status")
    assert code == 0 and "up to date" in out
    code, out = store(tmp_path, db_url, "upgrade")
    assert code == 0 and "nothing to apply" in out


def test_a_database_that_cannot_be_opened_is_named_in_one_line(tmp_path: Path) -> None:
    code, out = store(tmp_path, "postgresql://evalcore:s3cret@127.0.0.1:9/evalcore", "status")
    assert code == 3
    assert "cannot open the database postgresql://evalcore:***@127.0.0.1:9/evalcore" in " ".join(
        out.split()
    )
    assert "s3cret" not in out and "Traceback" not in out
