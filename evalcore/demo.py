"""`make demo`: the example suite's monitoring set against the bundled reference target.

Everything runs on loopback and on the embedded SQLite default; nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from evalcore.reference import ReferenceServer

console = Console()


def _evalcore(*args: str) -> int:
    console.print(f"\n[bold cyan]$ evalcore {' '.join(args)}[/]")
    return subprocess.call([sys.executable, "-m", "evalcore", *args])


def main() -> None:
    suite = Path(os.environ.get("EVALCORE_SUITE", "evals"))
    if _evalcore("validate", "--suite", str(suite)) != 0:
        sys.exit(3)
    _evalcore("suite", "info", "--suite", str(suite))
    with ReferenceServer() as server:
        console.print(f"\nreference target (v1) listening on {server.base_url}")
        code = _evalcore(
            "run",
            "--suite",
            str(suite),
            "--set",
            "monitoring",
            "--target-url",
            server.base_url,
            "--judge-url",
            server.base_url,
        )
    sys.exit(code)


if __name__ == "__main__":
    main()
