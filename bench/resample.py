"""The flake-aware gate's cost: re-sampling adds the extra calls it makes, and nothing more.

A blocking set of 200 cases on a route marked nondeterministic, answered by an in-process
target that waits 100 ms per call; 20 of the cases fail their first sample and pass
every later one (one slip each). The gate's steps run in-process (open, run the set,
re-sample, judge). The sequential test clears each slipped case after nine passes, asked
for in rounds (every undecided case gets the fewest samples that could reach a boundary,
all of a round in one pass of the engine, in parallel), so the least the re-sampling step
can take is its number of rounds x 100 ms. Printed: its wall time beside that bound, and
the run phase beside its own ideal (cases / concurrency x 100 ms).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.suites import write_suite

CASES = 200
SLIPPED = 20
LATENCY_S = 0.1
CONCURRENCY = 50
CALLS: Counter[str] = Counter()


async def slips_once(case_input: dict[str, Any]) -> dict[str, Any]:
    """The first answer to each of the first SLIPPED questions drops the fact."""
    question = case_input["messages"][0]["content"]
    CALLS[question] += 1
    await asyncio.sleep(LATENCY_S)
    number = int(question.split(":")[0].removeprefix("Order "))
    slipped = number < SLIPPED and CALLS[question] == 1
    return {"text": "Sorry, 30 days." if slipped else "You can return it within 14 days."}


def _rounds(test: Any) -> int:
    """The rounds that clear a case with one failure and passes after it."""
    passes, rounds = 0, 0
    while batch := test.next_batch(passes, 1, passes):
        passes += batch
        rounds += 1
    return rounds


def resample_bench(work: Path, line: Callable[[str, str, str], None]) -> None:
    from evalcore import aio
    from evalcore.gate.steps import GateRequest, gate_result, open_gate_run, resample_failing
    from evalcore.results.sequential import SequentialTest
    from evalcore.run import execute_run
    from evalcore.store.engine import get_engine
    from evalcore.suite import load_suite

    CALLS.clear()
    root = write_suite(
        work / "resample-suite",
        cases=CASES,
        set_name="blocking",
        target_yaml="{kind: python, callable: 'bench.resample:slips_once', model: stub}",
        run_yaml=f"{{concurrency: {CONCURRENCY}, timeout_s: 10, retries: 0}}",
        scorecard_extra=(
            "thresholds:\n  blocking: {min_pass_rate: 1.0}\n"
            "samples: {mode: all, nondeterministic: true, required: 0.95, broken: 0.5, "
            "max_extra: 20}\n"
        ),
    )
    engine = get_engine(f"sqlite:///{work / 'resample.db'}")
    suite = load_suite(root)
    run, resumed = open_gate_run(engine, suite, GateRequest("bench"))
    started = time.perf_counter()
    aio.run(execute_run(engine, suite, run))
    run_s = time.perf_counter() - started
    started = time.perf_counter()
    aio.run(resample_failing(engine, suite, run.id))
    resample_s = time.perf_counter() - started
    result = gate_result(engine, run.id, resumed=resumed)
    rounds = _rounds(SequentialTest.of(suite.scorecard.samples))
    bound = rounds * LATENCY_S
    ideal_run = CASES / CONCURRENCY * LATENCY_S
    print(
        f"\n[flake-aware gate: {CASES} blocking cases at 100 ms, {SLIPPED} slip once; "
        f"verdict {result.verdict}, {result.extra_samples} extra samples, {rounds} rounds]"
    )
    line("run phase", f"{run_s:.2f} s", f"{run_s / ideal_run:.2f}x its ideal ({ideal_run:.1f} s)")
    line(
        "re-sampling step",
        f"{resample_s:.2f} s",
        f"{resample_s / bound:.2f}x the {rounds} rounds of 100 ms calls ({bound:.1f} s)",
    )


if __name__ == "__main__":
    import tempfile

    from bench.__main__ import line as print_line

    with tempfile.TemporaryDirectory(prefix="evalcore-bench-") as folder:
        resample_bench(Path(folder), print_line)
