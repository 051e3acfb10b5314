"""`evalcore --help` builds every command without loading what the commands use."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "sqlmodel", "numpy", "aiohttp", "httpx", "jinja2", "evalcore.suite.models")


def test_assembling_the_cli_loads_no_store_engine_target_or_case_model() -> None:
    script = (
        "import sys\n"
        "import evalcore.cli.app\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""
