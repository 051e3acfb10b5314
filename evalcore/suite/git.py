"""Where the suite sits in git, so a dataset version can name the commit it came from."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_TIMEOUT_S = 5.0


def git_state(path: Path | str) -> tuple[str | None, bool]:
    """(HEAD commit, whether files under `path` have uncommitted changes).

    Untracked files count as changes: a case file not yet committed is not in HEAD.
    Returns (None, False) outside a git work tree or when git is missing; never raises,
    because provenance must not stop an evaluation.
    """
    target = Path(path)
    try:
        target = target.resolve()
        workdir = target if target.is_dir() else target.parent
        if not workdir.is_dir():
            return None, False
        inside = _git(workdir, "rev-parse", "--is-inside-work-tree")
        if inside is None or inside.strip() != "true":
            return None, False
        head = _git(workdir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        commit = (head.strip() or None) if head is not None else None
        status = _git(workdir, "status", "--porcelain", "--", str(target))
        dirty = bool(status and status.strip())
        return commit, dirty
    except (OSError, ValueError):
        return None, False


def _git(cwd: Path, *args: str) -> str | None:
    """Run git quietly; None on any failure (missing binary, not a repo, timeout)."""
    # Reading status must not take the index lock another git process may hold.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout
