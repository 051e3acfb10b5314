"""Files replaced atomically (the old bytes or the new ones, never a mix or a leftover),
and one apply at a time per suite."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from filelock import Timeout

from evalcore.files import write_atomic
from evalcore.triage.apply.files import suite_lock


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_its_bytes_and_the_umask_mode_and_nothing_else_is_left(
    tmp_path: Path,
) -> None:
    previous = os.umask(0o027)
    try:
        write_atomic(tmp_path / "report.html", b"<html>\xc3\xa9</html>")
    finally:
        os.umask(previous)
    assert (tmp_path / "report.html").read_bytes() == b"<html>\xc3\xa9</html>"
    assert mode(tmp_path / "report.html") == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "scorecard.yaml"
    path.write_bytes(b"old\n")
    path.chmod(0o600)
    write_atomic(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["scorecard.yaml"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "production.yaml"
    path.write_bytes(b"- id: a\n")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, b"- id: a\n- id: b\n")
    assert path.read_bytes() == b"- id: a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["production.yaml"]


def test_one_apply_at_a_time_per_suite_and_no_lock_file_in_the_suite(tmp_path: Path) -> None:
    suite = tmp_path / "evals"
    suite.mkdir()
    with suite_lock(suite):
        with pytest.raises(Timeout):
            suite_lock(suite).acquire(timeout=0.2)  # another apply of this suite waits
        with suite_lock(tmp_path):  # another suite does not
            pass
    with suite_lock(suite):
        pass
    assert list(suite.iterdir()) == []  # git status of the suite stays clean
