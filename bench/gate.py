"""Gate flow overhead: `evalcore gate` wall time minus the engine's own run phase.

The same generated blocking set is gated against the same stub, side by side with
`evalcore run` (no Prefect) on it. Overhead measured at 50 and at 500 cases shows whether
any of it grows with the cases (it must not: one task per step, never one per case).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.suites import write_suite
from evalcore.local.stack import start_prefect_server

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 10
LATENCY_MS = 200


def _evalcore(
    args: list[str], env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "evalcore", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return time.perf_counter() - started, done


def _gate(suite: Path, release: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, engine run-phase seconds) of one `evalcore gate`."""
    wall, done = _evalcore(["gate", "--release", release, "--suite", str(suite), "--json"], env)
    if done.returncode != 0:
        raise RuntimeError(f"gate exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    result = json.loads(done.stdout)
    return wall, float(result["run_seconds"])


def _plain_run(suite: Path, env: dict[str, str]) -> float:
    wall, done = _evalcore(["run", "--suite", str(suite), "--set", "blocking", "--json"], env)
    if done.returncode != 0:
        raise RuntimeError(f"run exited {done.returncode}:\n{done.stderr}")
    return wall


def gate_overhead(
    work: Path,
    stub_url: str,
    *,
    repeats: int,
    free_port: Callable[[], int],
    line: Callable[..., None],
) -> None:
    home = work / "gate-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALCORE_", "PREFECT_"))}
    env.update(
        EVALCORE_HOME=str(home),
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        CI="1",
    )
    suites = {
        n: write_suite(
            work / f"gate-{n}",
            cases=n,
            set_name="blocking",
            target_yaml=f"{{kind: openai_chat, base_url: '{stub_url}', model: stub}}",
            run_yaml=f"{{concurrency: {CONCURRENCY}, timeout_s: 30, retries: 2}}",
            expect={"outcome": "answer"},
        )
        for n in (50, 500)
    }
    port = free_port()
    server = start_prefect_server(env, home / "prefect-server.log", port=port)
    served = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    rows: dict[str, tuple[float, float]] = {}
    plain: dict[int, float] = {}
    try:
        _gate(suites[50], "warm-up", served)  # first flow of a fresh server registers it
        for n, suite in suites.items():
            walls, runs, plains = [], [], []
            for i in range(repeats if n == 50 else 1):
                wall, run = _gate(suite, f"bench-{n}-{i}", served)
                walls.append(wall)
                runs.append(run)
                plains.append(_plain_run(suite, served))
            rows[f"{n} cases, Prefect server running"] = (
                statistics.median(walls),
                statistics.median(runs),
            )
            plain[n] = statistics.median(plains)
    finally:
        server.stop()
    wall, run = _gate(suites[50], "bench-temporary", env)  # no PREFECT_API_URL
    rows["50 cases, temporary Prefect server (no PREFECT_API_URL)"] = (wall, run)

    print(
        f"\n[gate flow overhead: generated blocking set, stub at {LATENCY_MS} ms, "
        f"concurrency {CONCURRENCY}; median of {repeats} at 50 cases]"
    )
    for label, (wall, run) in rows.items():
        overhead = wall - run
        line(
            f"evalcore gate, {label}",
            f"{wall:.2f} s wall",
            f"run phase {run:.2f} s, overhead {overhead:.2f} s ({wall / run:.2f}x run phase)",
        )
    for n, wall in plain.items():
        gate_wall = rows[f"{n} cases, Prefect server running"][0]
        line(
            f"evalcore run --set blocking, {n} cases (no Prefect)",
            f"{wall:.2f} s wall",
            f"gate adds {gate_wall - wall:.2f} s ({gate_wall / wall:.2f}x)",
        )
    per_case = (
        (
            rows["500 cases, Prefect server running"][0]
            - rows["500 cases, Prefect server running"][1]
        )
        - (
            rows["50 cases, Prefect server running"][0]
            - rows["50 cases, Prefect server running"][1]
        )
    ) / 450
    line("overhead growth per extra case (500 vs 50)", f"{per_case * 1000:+.2f} ms", "goal ~0")
