"""The example suite's gate against the reference target with 5% of its answers varying:
the route is marked nondeterministic, so a flaky failure is sampled again and cleared,
and the gate of the unchanged `v1` is red at most once in twenty; the release that broke
the refund policy (`regressed-refunds`) is red every time. The gate's steps run
in-process (open, run the blocking set, re-sample, judge), as the flow runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalcore import aio
from evalcore.gate.steps import (
    GateRequest,
    GateResult,
    gate_result,
    open_gate_run,
    resample_failing,
)
from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.run import execute_run
from evalcore.store.engine import get_engine
from evalcore.suite import load_suite

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "evals"
VARYING = 0.05


def gates(tmp_path: Path, version: str, count: int) -> list[GateResult]:
    engine = get_engine(f"sqlite:///{tmp_path / f'{version}.db'}")
    suite = load_suite(EXAMPLE)
    assert suite.scorecard.samples.nondeterministic
    results = []
    for i in range(count):
        knobs = Knobs(version=version, nondeterminism=VARYING, seed=1000 + i)
        with ReferenceServer(knobs) as ref:
            request = GateRequest(f"{version}-{i}", target_url=ref.base_url, judge_url=ref.base_url)
            run, resumed = open_gate_run(engine, suite, request)
            aio.run(execute_run(engine, suite, run))
            aio.run(resample_failing(engine, suite, run.id))
            results.append(gate_result(engine, run.id, resumed=resumed))
    return results


def test_twenty_gates_of_the_unchanged_route_are_red_at_most_once(tmp_path: Path) -> None:
    results = gates(tmp_path, "v1", 20)
    red = [(r.release, r.verdict, r.undecided) for r in results if r.verdict != "pass"]
    assert len(red) <= 1, red
    assert all(r.extra_samples == sum(line.extra for line in r.resampled) for r in results)


def test_the_broken_refund_policy_is_red_every_time(tmp_path: Path) -> None:
    results = gates(tmp_path, "regressed-refunds", 3)
    assert [r.verdict for r in results] == ["fail"] * 3
    for result in results:
        broken = {line.case_id for line in result.resampled}
        assert {"refund-window-eu-001", "refund-window-us-001"} <= broken, result.resampled
