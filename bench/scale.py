"""Past one process: a release gate of 20,000 case-samples on two workers with two shards,
against the same gate in one process, side by side on one stack.

`evalcore up --workers 2` (the stack's Python API) starts a Prefect server, applies
prefect.yaml to the `evalcore` process pool and starts two workers; the store and the
Prefect server are each on a fresh PostgreSQL database. Two copies of a 20,000-case
blocking suite answered by the bench stub at 100 ms differ only in `run.shards` (1 and 2),
each at `run.concurrency: 100`. Each copy is gated by a flow run of the `release-gate`
deployment, interleaved, `repeats` times; the wall time is from creating the flow run to
its final state, as a CI job waiting for the verdict sees it. The ideal for one process
is 20,000 / 100 x 0.1 s = 20 s; two shards at 100 each halve it.

For the last 2-shard gate it prints where the time went, from the flow runs' states and
the shards' logs: the gate's own start, until its shards exist, a shard's start, its
set-up before its calls, its calls, and from the last shard's end to the gate's.

The per-shard overhead of a flow run is measured on a tiny suite (4 shards of 2 cases at
0 ms): the time from a shard's flow run being created to its end, its work being nil.

`python -m bench --only scale`
"""

from __future__ import annotations

import os
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.suites import write_suite

ROOT = Path(__file__).resolve().parent.parent
PAIRS = 20_000
CONCURRENCY = 100
LATENCY_MS = 100
PG_ADMIN = os.environ.get("EVALCORE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def _databases() -> Iterator[tuple[str, str]]:
    """Fresh PostgreSQL databases for the store and the Prefect server: the scale-out path
    (the Prefect server on SQLite locks up under two workers' traffic)."""
    import psycopg

    names = [f"evalcore_bench_{role}_{uuid.uuid4().hex[:8]}" for role in ("store", "prefect")]
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield (
            f"{base}/{names[0]}",
            f"{base}/{names[1]}".replace("postgresql://", "postgresql+asyncpg://", 1),
        )
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _gate(
    api: str, suite: Path, target_url: str, release: str, timeout_s: float
) -> tuple[float, str]:
    """One gate through the release-gate deployment: seconds to its final state, and its
    flow run's id."""
    from evalcore.local.stack import final_state, start_flow_run

    started = time.perf_counter()
    flow_run_id = start_flow_run(
        api,
        "release-gate/release-gate",
        {"release": release, "suite": str(suite), "target_url": target_url},
    )
    state = final_state(api, flow_run_id, timeout_s=timeout_s, poll_s=0.2)
    elapsed = time.perf_counter() - started
    if state not in ("COMPLETED", "FAILED"):  # FAILED: a verdict other than pass
        raise RuntimeError(f"gate {release} ended {state}")
    return elapsed, flow_run_id


_WORK = re.compile(r"new results in ([\d.]+) s")


def _breakdown(api: str, gate_id: str) -> list[tuple[str, float]]:
    """Where a sharded gate's wall time went, from its flow runs' times and its shards'
    logs: its own start, until its shards exist, their start, their set-up before the first
    call, their calls, and from the last shard's end to the gate's."""
    from evalcore.local.stack import prefect_api

    with prefect_api(api) as client:
        gate = client.get(f"flow_runs/{gate_id}").json()
    created, ended = _epoch(gate["created"]), _epoch(gate["end_time"])
    shards = [r for r in _shard_runs(api, created) if _epoch(r["created"]) <= ended]
    if not shards:
        return []
    with prefect_api(api) as client:
        logs = client.post(
            "logs/filter",
            json={"logs": {"flow_run_id": {"any_": [r["id"] for r in shards]}}, "limit": 200},
        ).json()
    calls: dict[str, tuple[float, float]] = {}  # flow run -> (first call, seconds of calls)
    for log in logs:
        found = _WORK.search(log["message"])
        if found:
            seconds = float(found.group(1))
            calls[log["flow_run_id"]] = (_epoch(log["timestamp"]) - seconds, seconds)
    if len(calls) != len(shards):
        return []

    def median(values: list[float]) -> float:
        return statistics.median(values)

    return [
        ("the gate's flow run: created -> running", _epoch(gate["start_time"]) - created),
        (
            "  running -> its shards' flow runs created",
            min(_epoch(r["created"]) for r in shards) - _epoch(gate["start_time"]),
        ),
        (
            "  a shard's flow run: created -> running (median)",
            median([_epoch(r["start_time"]) - _epoch(r["created"]) for r in shards]),
        ),
        (
            "  running -> calls start (suite read, run checked)",
            median([calls[r["id"]][0] - _epoch(r["start_time"]) for r in shards]),
        ),
        ("  a shard's calls (median)", median([seconds for _, seconds in calls.values()])),
        (
            "  last shard ended -> the gate ended (verdict, report)",
            ended - max(_epoch(r["end_time"]) for r in shards),
        ),
    ]


def _shard_runs(api: str, since: float) -> list[dict[str, Any]]:
    from evalcore.local.stack import deployment_flow_runs

    runs = deployment_flow_runs(api, "run-shard/run-shard")
    return [r for r in runs if _epoch(r["created"]) >= since]


def _epoch(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp).timestamp()


def _suite(root: Path, *, cases: int, shards: int, url: str) -> Path:
    return write_suite(
        root,
        cases=cases,
        set_name="blocking",
        target_yaml=f"{{kind: openai_chat, base_url: '{url}', model: stub}}",
        run_yaml=f"{{concurrency: {CONCURRENCY}, timeout_s: 30, retries: 2, shards: {shards}}}",
        scorecard_extra="thresholds: {blocking: {min_pass_rate: 0.0}}\n",
    )


def scale_bench(
    workdir: Path,
    line: Callable[..., None],
    stub: Callable[[float], Any],
    free_port: Callable[[], int],
    repeats: int = 2,
) -> None:
    from evalcore.local.stack import start_stack

    print(
        f"scale: release gate of {PAIRS:,} case-samples at {LATENCY_MS} ms, concurrency "
        f"{CONCURRENCY} per process: 2 workers x 2 shards against 1 shard"
    )
    with stub(LATENCY_MS) as url, stub(0) as fast_url, _databases() as (store, prefect_db):
        one = _suite(workdir / "scale-1", cases=PAIRS, shards=1, url=url)
        two = _suite(workdir / "scale-2", cases=PAIRS, shards=2, url=url)
        tiny = _suite(workdir / "scale-tiny", cases=8, shards=4, url=fast_url)
        home = workdir / "scale-home"
        saved = dict(os.environ)
        os.environ.update(
            EVALCORE_DATABASE_URL=store,
            PREFECT_SERVER_DATABASE_CONNECTION_URL=prefect_db,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_HOME=str(home / "prefect"),
        )
        try:
            stack = start_stack(
                home=home,
                project=ROOT,
                suite=one,
                port=free_port(),
                reference_port=None,
                ui=False,
                workers=2,
            )
        finally:
            os.environ.clear()
            os.environ.update(saved)
        try:
            api = stack.api_url
            _gate(api, tiny, fast_url, "warm-up", 300)  # imports and connections warm
            times: dict[int, list[float]] = {1: [], 2: []}
            last_sharded = ""
            for attempt in range(repeats):
                for shards, suite in ((1, one), (2, two)):
                    release = f"scale-{shards}-{attempt}"
                    elapsed, flow_run_id = _gate(api, suite, url, release, 600)
                    times[shards].append(elapsed)
                    if shards == 2:
                        last_sharded = flow_run_id
            breakdown = _breakdown(api, last_sharded)
            since = time.time()
            _gate(api, tiny, fast_url, "overhead", 300)
            shard_runs = _shard_runs(api, since - 1)
        finally:
            stack.stop()
    single, sharded = statistics.median(times[1]), statistics.median(times[2])
    ideal = PAIRS / CONCURRENCY * LATENCY_MS / 1000
    line("1 process (1 shard), wall", f"{single:.2f} s", f"ideal {ideal:.0f} s")
    line("2 workers x 2 shards, wall", f"{sharded:.2f} s", f"ideal {ideal / 2:.0f} s")
    line("ratio 2 shards / 1", f"{sharded / single:.2f}", "goal <= 0.6")
    if breakdown:
        print("  where the last 2-shard gate's time went:")
        for label, seconds in breakdown:
            line(label, f"{seconds:.2f} s")
    spans = [_epoch(r["end_time"]) - _epoch(r["created"]) for r in shard_runs if r.get("end_time")]
    if spans:
        line(
            f"per-shard overhead of a flow run ({len(spans)} shards)",
            f"{statistics.median(spans):.2f} s",
            "created -> ended, no work",
        )
