"""Which worker takes a flow run the moment it is scheduled: one of the pool's online
workers, the same one in every worker's eyes, rather than all of them racing for it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from uuid import uuid4

import pytest

import deployments.worker
from deployments.worker import WarmProcessWorker, first_to_take

RUNS = [str(uuid4()) for _ in range(2_000)]


def test_every_worker_names_the_same_first_taker_whatever_order_it_knows_them_in() -> None:
    workers = ["evalcore-worker-1", "evalcore-worker-2", "evalcore-worker-3"]
    for run in RUNS[:200]:
        first = first_to_take(run, workers)
        assert first in workers
        assert first_to_take(run, list(reversed(workers))) == first
        assert first_to_take(run, set(workers)) == first
    assert first_to_take(RUNS[0], []) is None


def test_flow_runs_spread_over_the_workers_and_one_leaving_moves_only_its_own() -> None:
    three = ["a", "b", "c"]
    shares = Counter(first_to_take(run, three) for run in RUNS)
    assert set(shares) == set(three)
    assert all(500 <= count <= 830 for count in shares.values()), shares
    for run in RUNS:
        before = first_to_take(run, three)
        if before != "c":
            assert first_to_take(run, ["a", "b"]) == before


def test_a_worker_takes_at_once_only_the_runs_it_is_first_for() -> None:
    peers = frozenset({"w1", "w2"})
    one = SimpleNamespace(name="w1", _peers=peers)
    two = SimpleNamespace(name="w2", _peers=peers)
    for run in RUNS[:200]:
        takers = [w.name for w in (one, two) if WarmProcessWorker.takes_at_once(w, run)]  # type: ignore[arg-type]
        assert takers == [first_to_take(run, peers)]


def test_a_worker_that_does_not_know_its_pool_yet_takes_every_run() -> None:
    """Before it has read the pool's workers, or before the server lists it as online, a
    worker takes what is scheduled at once, as every worker did before they agreed."""
    for peers in (frozenset(), frozenset({"w2", "w3"})):
        alone = SimpleNamespace(name="w1", _peers=peers)
        assert all(WarmProcessWorker.takes_at_once(alone, run) for run in RUNS[:50])  # type: ignore[arg-type]


class _Pool:
    """What `_take_scheduled` calls of Prefect's worker, recorded."""

    def __init__(self, scheduled: list[str], *, fails: bool = False) -> None:
        self._has_successfully_synced = True
        self._scheduled = scheduled
        self._fails = fails
        self.submitted: list[str] = []
        self._logger = logging.getLogger("test")

    async def _get_scheduled_flow_runs(self) -> list[SimpleNamespace]:
        if self._fails:
            raise RuntimeError("the API is away")
        return [SimpleNamespace(flow_run=SimpleNamespace(id=run)) for run in self._scheduled]

    async def _submit_scheduled_flow_runs(self, runs: list[SimpleNamespace]) -> None:
        self.submitted += [r.flow_run.id for r in runs]

    async def _take_scheduled(self, wanted: Callable[[str], bool]) -> None:
        await WarmProcessWorker._take_scheduled(self, wanted)  # type: ignore[arg-type]


async def test_a_run_its_first_taker_left_is_taken_by_another_worker_a_moment_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first taker may be at its limit of flow runs, or gone: a second later another
    worker takes the run if it is still scheduled, and only that one."""
    monkeypatch.setattr(deployments.worker, "SECOND_TAKE_S", 0.0)
    pool = _Pool(RUNS[:3])
    await WarmProcessWorker._take_if_left(pool, RUNS[1])  # type: ignore[arg-type]
    assert pool.submitted == [RUNS[1]]
    taken = _Pool(RUNS[:1])  # the first taker had it: nothing scheduled is left
    await WarmProcessWorker._take_if_left(taken, RUNS[1])  # type: ignore[arg-type]
    assert taken.submitted == []
    away = _Pool(RUNS[:3], fails=True)  # no exception reaches the worker's task group
    await WarmProcessWorker._take_if_left(away, RUNS[1])  # type: ignore[arg-type]
    assert away.submitted == []
