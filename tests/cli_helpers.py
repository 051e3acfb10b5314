"""Running the `evalcore` command as a user would, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def evalcore(
    *args: str, cwd: Path, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m evalcore ARGS` in `cwd`, with its own EVALCORE_HOME and nothing else set."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EVALCORE_")}
    environ["EVALCORE_HOME"] = str(home)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "evalcore", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
