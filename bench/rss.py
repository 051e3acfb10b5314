"""Peak memory and wall time of one child process, for the memory benchmarks and tests."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ChildRun:
    """How a child process ended, its peak resident memory, how long it took, what it said."""

    exit_code: int
    peak_mb: float
    seconds: float
    output: str


def measure_child(argv: list[str], env: Mapping[str, str]) -> ChildRun:
    """Run `argv` (an absolute program path first) to its end and measure it alone.

    `getrusage(RUSAGE_CHILDREN)` reports the largest child waited for so far, whichever
    it was; `wait4` reports this child's own peak, so probes can run in any order.
    """
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        pid = os.posix_spawn(
            argv[0],
            argv,
            dict(env),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, output.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, output.fileno(), 2),
            ],
        )
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - started
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    # Linux reports ru_maxrss in KiB.
    return ChildRun(os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, seconds, text)
