"""`make demo`: the release gate for a good release and for a regressed one, then the
triage loop (see evalcore/local/demo_triage.py). The good release slips once (one answer
drops its fact); the route is marked nondeterministic, so the gate samples that case
again and clears it.

The bundled reference target answers as release 2026.11.3 (v1) and as a release that
broke the refund policy (regressed-refunds). Each is gated with `evalcore gate`, the same
Prefect flow a `release.created` event triggers, on the embedded SQLite default. Nothing
is downloaded and nothing leaves loopback; Prefect's state stays under EVALCORE_HOME.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from evalcore.exitcodes import ExitCode
from evalcore.local.demo_triage import run_triage_loop
from evalcore.local.reference import Knobs, ReferenceServer, free_port
from evalcore.local.stack import prefect_env, start_prefect_server
from evalcore.settings import get_settings

console = Console()

GOOD, REGRESSED = "2026.11.3", "2026.11.4-rc1"


def _evalcore(*args: str) -> int:
    console.print(f"\n[bold cyan]$ evalcore {' '.join(args)}[/]")
    return subprocess.call([sys.executable, "-m", "evalcore", *args])


def main() -> None:
    started = time.monotonic()
    suite = get_settings().suite
    if _evalcore("validate", "--suite", str(suite)) != 0:
        sys.exit(int(ExitCode.USAGE))
    _evalcore("suite", "info", "--suite", str(suite))
    home = get_settings().home
    port = free_port()
    console.print(f"\nstarting a Prefect server on 127.0.0.1:{port} (state in {home}/prefect)")
    server = start_prefect_server(
        prefect_env(home), home / "logs" / "prefect-server.log", port=port
    )
    os.environ.update(prefect_env(home), PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
    try:
        codes = _gate_both(suite)
        _evalcore("runs", "list", "--limit", "5")
        looped = run_triage_loop(suite, home, _evalcore, console)
    finally:
        server.stop()
    expected = {GOOD: ExitCode.PASS, REGRESSED: ExitCode.FAIL}
    as_expected = all(codes[r] == expected[r] for r in expected) and looped
    for release, code in codes.items():
        console.print(f"gate {release}: exit {code} ({ExitCode(code).name.lower()})")
    console.print(
        f"demo finished in {time.monotonic() - started:.0f} s: "
        + (
            "[green]the good release passed, the regressed one was stopped, and a production "
            "failure became a blocking case through Slack[/]"
            if as_expected
            else "[red]unexpected outcome (see above)[/]"
        )
    )
    sys.exit(0 if as_expected else 1)


def _gate_both(suite: Path) -> dict[str, int]:
    """`evalcore gate` for the good and the regressed release; their exit codes."""
    with (
        # The good release slips once: its first fact answer drops the fact, as a
        # nondeterministic route does now and then. The gate samples that case again and
        # clears it; the broken release fails every time it is asked.
        ReferenceServer(Knobs(slip_first=1)) as good,
        ReferenceServer(Knobs(version="regressed-refunds")) as regressed,
    ):
        console.print(
            f"\nreference target: release {GOOD} on {good.base_url} (one answer slips), "
            f"release {REGRESSED} (refund policy broken) on {regressed.base_url}"
        )
        codes = {
            release: _evalcore(
                *("gate", "--release", release, "--suite", str(suite)),
                *("--target-url", server.base_url, "--judge-url", server.base_url),
            )
            for release, server in ((GOOD, good), (REGRESSED, regressed))
        }
    return codes


if __name__ == "__main__":
    main()
