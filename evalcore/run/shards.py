"""Sharded runs: a run's (case, sample) pairs split into N shards by a stable hash.

Each shard can run in a process of its own (a `run-shard` flow run on whichever worker is
free) and writes into the same run; the (run, case, sample) unique key keeps exactly one
result per pair even when two attempts of one shard overlap. The hash is BLAKE2b of the
pair, not Python's `hash`, so every process, machine and Python version puts a pair in the
same shard, and a shard run again finds the pairs it already stored.

Shards are numbered from 1 (`shard 2 of 4`), as they are shown. Progress per shard is
computed from the stored results, so it is the same whoever asks and however many
attempts a shard took.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Engine

from evalcore.results.run_stats import record_run_stats
from evalcore.results.verdict import FAILED_SHARDS_KEY, ShardFailure, shard_failures
from evalcore.store.repository import (
    case_samples,
    done_pairs,
    record_run_setting,
    set_run_status,
)
from evalcore.store.tables import RunRow
from evalcore.suite import Suite

# In a run's settings: how many shards it is split into (absent for an unsharded run).
SHARDS_KEY = "shards"


def shard_of(case_id: str, sample: int, shards: int) -> int:
    """The shard (1..`shards`) the pair belongs to, the same in every process."""
    digest = hashlib.blake2b(f"{case_id}\0{sample}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards + 1


@dataclass(frozen=True, order=True)
class Shard:
    """Shard `index` (1-based) of a run split into `of`."""

    index: int
    of: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.of:
            raise ValueError(f"shard {self.index} of {self.of}: shards are numbered 1..{self.of}")

    def __str__(self) -> str:
        return f"shard {self.index} of {self.of}"

    def contains(self, case_id: str, sample: int) -> bool:
        return shard_of(case_id, sample, self.of) == self.index

    def wants(self, case_id: str, samples: int) -> bool:
        """Whether any of the case's samples is this shard's (a suite's `only`)."""
        if samples == 1:  # most cases: one hash, no generator
            return shard_of(case_id, 0, self.of) == self.index
        return any(self.contains(case_id, sample) for sample in range(samples))


def shard_count(settings: Mapping[str, Any]) -> int:
    """How many shards a run is split into (1: not sharded)."""
    return max(1, int(settings.get(SHARDS_KEY) or 1))


def shards_of(run: RunRow) -> list[Shard]:
    count = shard_count(run.settings)
    return [Shard(index, count) for index in range(1, count + 1)]


def planned_pairs(case_samples: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int]]:
    """Every (case id, sample) a run of cases with these sample counts plans."""
    for case_id, samples in case_samples:
        for sample in range(samples):
            yield case_id, sample


def case_samples_of(suite: Suite, run: RunRow) -> list[tuple[str, int]]:
    """(case id, samples) of the cases `run` plans, from a suite that has its dataset."""
    return [(case.id, case.samples) for case in suite.select(sets=run.sets)]


@dataclass(frozen=True)
class ShardProgress:
    """A shard's pairs and how many of them have a result; why it failed, if it did."""

    shard: Shard
    planned: int
    done: int
    failed: str | None = None

    @property
    def complete(self) -> bool:
        return self.done >= self.planned

    @property
    def state(self) -> str:
        if self.failed is not None:
            return "failed"
        return "complete" if self.complete else "incomplete"

    def as_json(self) -> dict[str, Any]:
        return {
            "shard": self.shard.index,
            "shards": self.shard.of,
            "planned": self.planned,
            "done": self.done,
            "state": self.state,
            "error": self.failed,
        }


def shard_progress(
    engine: Engine, run: RunRow, cases: Iterable[tuple[str, int]] | None = None
) -> list[ShardProgress]:
    """Planned and stored pairs per shard of `run`, from the database (extra samples drawn
    by re-sampling are not any shard's); empty for an unsharded run. `cases`: the (case
    id, samples) of the run's cases when the caller holds its suite, rather than read
    from the dataset's record."""
    count = shard_count(run.settings)
    if count == 1:
        return []
    planned = [0] * (count + 1)
    done = [0] * (count + 1)
    stored = done_pairs(engine, run.id)
    if cases is None:
        cases = case_samples(engine, run.dataset_hash, run.sets)
    for case_id, sample in planned_pairs(cases):
        index = shard_of(case_id, sample, count)
        planned[index] += 1
        if (case_id, sample) in stored:
            done[index] += 1
    failed = {f.shard: f.error for f in shard_failures(run.settings)}
    return [
        ShardProgress(Shard(index, count), planned[index], done[index], failed.get(index))
        for index in range(1, count + 1)
    ]


@dataclass(frozen=True)
class ClosedShards:
    """What closing a sharded run found: the shards that failed (recorded on the run) and
    every shard's progress, as shown."""

    failures: list[ShardFailure]
    progress: list[ShardProgress]


def close_sharded_run(
    engine: Engine,
    run: RunRow,
    failures: Sequence[ShardFailure],
    cases: Iterable[tuple[str, int]] | None = None,
) -> ClosedShards:
    """After every shard of `run` ended: a shard that reported success but left pairs
    without a result counts as failed too. Records the failed shards in the run's settings
    (none: the record of an earlier attempt is cleared) and closes the run: `finished` with
    its stats, or `failed` so the next gate for the release resumes it. `cases` as for
    `shard_progress`."""
    failed = {f.shard: f for f in failures}
    progress = shard_progress(engine, run, cases)
    for shard in progress:
        index = shard.shard.index
        if index not in failed and not shard.complete:
            missing = shard.planned - shard.done
            failed[index] = ShardFailure(
                index,
                shard.shard.of,
                f"ended with {missing} of its {shard.planned} pairs without a result",
            )
    recorded = [failed[index] for index in sorted(failed)]
    record_run_setting(engine, run.id, FAILED_SHARDS_KEY, [f.as_json() for f in recorded])
    if recorded:
        set_run_status(engine, run.id, "failed")
    else:
        set_run_status(engine, run.id, "finished")
        record_run_stats(engine, run.id)
    return ClosedShards(
        recorded,
        [
            replace(p, failed=failed[p.shard.index].error if p.shard.index in failed else None)
            for p in progress
        ],
    )


class ShardsFailed(Exception):
    """Shards of a run kept failing: the run is incomplete and its verdict inconclusive."""

    def __init__(self, run_id: str, failures: Sequence[ShardFailure]) -> None:
        self.run_id = run_id
        self.failures = list(failures)
        super().__init__(
            f"run {run_id[:12]}: "
            + "; ".join(f"{f.label} failed: {f.error}" for f in self.failures)
            + " (the run is inconclusive; run it again to resume the missing pairs)"
        )
