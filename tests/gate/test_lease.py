"""The lease that lets one gate at a time work on a release: claimed by exactly one of
several gates at once, renewed by its holder, taken over by exactly one contender once
expired, released with its run kept; a waiting gate attaches or takes over, and a gate
taking over continues the run its holder left unjudged. Each test runs on SQLite and
PostgreSQL, contenders on threads of their own hitting the store at the same moment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from evalcore import aio
from evalcore.gate.lease import (
    LEASE_TABLE,
    Attached,
    Claim,
    LeaseKeeper,
    LeaseKey,
    attach,
    claim_lease,
    read_lease,
    record_lease_run,
    release_lease,
    renew_lease,
)
from evalcore.gate.steps import GateRequest, open_gate_run
from evalcore.results.history import GATE_VERDICT_KEY
from evalcore.store.engine import get_engine
from evalcore.store.repository import record_run_setting, set_run_status
from evalcore.suite import load_suite

T = TypeVar("T")
EXAMPLE = Path(__file__).resolve().parents[2] / "evals"
KEY = LeaseKey(
    release="2026.12.1",
    dataset_hash="d" * 64,
    scorecard_version="s" * 64,
    target_url="https://***@api.example.com/v1",
    model="gpt-x",
    judge_url=None,
)


def at_once(count: int, call: Callable[[int], T]) -> list[T]:
    """`call(i)` on `count` threads released together; what each returned."""
    barrier = threading.Barrier(count)
    outcomes: list[T | None] = [None] * count
    failures: list[BaseException] = []

    def contender(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = call(index)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def expire_now(engine: Engine, key: LeaseKey = KEY) -> None:
    """As a holder killed a TTL ago leaves its lease."""
    with engine.begin() as conn:
        conn.execute(
            update(LEASE_TABLE)
            .where(LEASE_TABLE.c.lease_key == key.digest)
            .values(expires_at=LEASE_TABLE.c.acquired_at)
        )


def test_of_gates_claiming_a_new_lease_at_once_exactly_one_wins(db_url: str) -> None:
    engine = get_engine(db_url)
    claims = at_once(6, lambda i: claim_lease(engine, KEY, holder=f"gate-{i}", ttl_s=60))
    winners = [f"gate-{i}" for i, claim in enumerate(claims) if claim.won]
    assert len(winners) == 1
    # Every loser is told who holds it, and the store says the same.
    assert {claim.lease.holder for claim in claims} == set(winners)
    stored = read_lease(engine, KEY)
    assert stored is not None and stored.holder == winners[0] and not stored.expired


def test_a_held_lease_is_not_taken_and_other_keys_are_their_own(db_url: str) -> None:
    engine = get_engine(db_url)
    assert claim_lease(engine, KEY, holder="first", ttl_s=60).won
    second = claim_lease(engine, KEY, holder="second", ttl_s=60)
    assert not second.won and second.lease.holder == "first"
    other_target = LeaseKey(**{**KEY.__dict__, "model": "gpt-y"})
    other_release = LeaseKey(**{**KEY.__dict__, "release": "2026.12.2"})
    assert claim_lease(engine, other_target, holder="second", ttl_s=60).won
    assert claim_lease(engine, other_release, holder="second", ttl_s=60).won


def test_renewing_pushes_the_expiry_and_only_the_holder_can(db_url: str) -> None:
    engine = get_engine(db_url)
    first = claim_lease(engine, KEY, holder="holder", ttl_s=1)
    assert first.won
    time.sleep(0.3)
    assert renew_lease(engine, KEY, holder="holder", ttl_s=30)
    renewed = read_lease(engine, KEY)
    assert renewed is not None
    assert (renewed.expires_at - first.lease.expires_at).total_seconds() > 29
    time.sleep(1.0)  # past the first expiry: renewed, so still held
    assert not claim_lease(engine, KEY, holder="other", ttl_s=30).won
    assert not renew_lease(engine, KEY, holder="other", ttl_s=30)
    assert not record_lease_run(engine, KEY, holder="other", run_id="r" * 32)


def test_an_expired_lease_is_taken_over_by_exactly_one_contender_with_its_run(
    db_url: str,
) -> None:
    engine = get_engine(db_url)
    assert claim_lease(engine, KEY, holder="killed", ttl_s=60).won
    assert record_lease_run(engine, KEY, holder="killed", run_id="a" * 32)
    assert not claim_lease(engine, KEY, holder="early", ttl_s=60).won
    expire_now(engine)

    claims = at_once(6, lambda i: claim_lease(engine, KEY, holder=f"waiter-{i}", ttl_s=60))
    won = [claim for claim in claims if claim.won]
    assert len(won) == 1
    assert won[0].previous_run_id == "a" * 32  # the run to resume
    assert won[0].taken_from == "killed"  # it never released the lease
    assert all(claim.previous_run_id is None for claim in claims if not claim.won)
    stored = read_lease(engine, KEY)
    assert stored is not None
    assert stored.holder == won[0].lease.holder and stored.run_id is None
    # The killed holder, were it to come back, holds nothing any more.
    assert not renew_lease(engine, KEY, holder="killed", ttl_s=60)
    assert not release_lease(engine, KEY, holder="killed")


def test_a_released_lease_keeps_its_run_and_the_next_gate_takes_it_at_once(db_url: str) -> None:
    engine = get_engine(db_url)
    assert claim_lease(engine, KEY, holder="done", ttl_s=60).won
    record_lease_run(engine, KEY, holder="done", run_id="b" * 32)
    assert release_lease(engine, KEY, holder="done")
    released = read_lease(engine, KEY)
    assert released is not None
    assert released.expired and released.released_at is not None
    assert released.run_id == "b" * 32  # what a gate attached to it reports
    assert not renew_lease(engine, KEY, holder="done", ttl_s=60)

    following = claim_lease(engine, KEY, holder="next", ttl_s=60)
    assert following.won and following.previous_run_id == "b" * 32
    assert following.taken_from is None  # released, not taken from anyone
    assert following.lease.released_at is None and not following.lease.expired


def test_the_keeper_renews_while_held_and_releases_after(db_url: str) -> None:
    engine = get_engine(db_url)
    assert claim_lease(engine, KEY, holder="holder", ttl_s=0.6).won
    with LeaseKeeper(engine, KEY, holder="holder", ttl_s=0.6) as kept:
        time.sleep(1.5)  # over two TTLs
        assert not claim_lease(engine, KEY, holder="other", ttl_s=0.6).won
        assert not kept.lost
    after = read_lease(engine, KEY)
    assert after is not None and after.released_at is not None
    assert claim_lease(engine, KEY, holder="other", ttl_s=60).won


def test_the_keeper_notices_a_takeover_and_does_not_release_the_new_holders_lease(
    db_url: str,
) -> None:
    engine = get_engine(db_url)
    assert claim_lease(engine, KEY, holder="stalled", ttl_s=0.6).won
    with LeaseKeeper(engine, KEY, holder="stalled", ttl_s=0.6) as kept:
        expire_now(engine)
        assert claim_lease(engine, KEY, holder="waiter", ttl_s=60).won
        deadline = time.monotonic() + 5
        while not kept.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kept.lost
    stored = read_lease(engine, KEY)
    assert stored is not None
    assert (stored.holder, stored.released_at, stored.expired) == ("waiter", None, False)


def wait_as(engine: Engine, claim: Claim, settled: set[str], told: list[Attached]) -> object:
    return aio.run(
        attach(
            engine,
            KEY,
            claim,
            holder="waiter",
            ttl_s=0.8,
            settled=lambda run_id: run_id in settled,
            told=told.append,
        )
    )


def test_a_waiting_gate_attaches_to_the_holders_run_and_returns_once_it_is_settled(
    db_url: str,
) -> None:
    engine = get_engine(db_url)
    settled: set[str] = set()
    told: list[Attached] = []
    assert claim_lease(engine, KEY, holder="holder", ttl_s=0.8).won
    lost = claim_lease(engine, KEY, holder="waiter", ttl_s=0.8)
    assert not lost.won

    def holder_works() -> None:
        with LeaseKeeper(engine, KEY, holder="holder", ttl_s=0.8):
            time.sleep(0.5)
            record_lease_run(engine, KEY, holder="holder", run_id="c" * 32)
            time.sleep(1.5)  # past the first TTL: the keeper holds it
            settled.add("c" * 32)  # the verdict is stored, then the lease released

    worker = threading.Thread(target=holder_works)
    worker.start()
    outcome = wait_as(engine, lost, settled, told)
    worker.join()
    assert outcome == Attached("c" * 32, "holder")
    assert told == [Attached("c" * 32, "holder")]


def test_a_waiting_gate_takes_the_lease_over_when_the_holder_stops_renewing(
    db_url: str,
) -> None:
    engine = get_engine(db_url)
    told: list[Attached] = []
    assert claim_lease(engine, KEY, holder="killed", ttl_s=0.8).won
    record_lease_run(engine, KEY, holder="killed", run_id="d" * 32)
    lost = claim_lease(engine, KEY, holder="waiter", ttl_s=0.8)
    started = time.monotonic()
    outcome = wait_as(engine, lost, set(), told)
    assert isinstance(outcome, Claim) and outcome.won
    assert (outcome.previous_run_id, outcome.taken_from) == ("d" * 32, "killed")
    assert time.monotonic() - started < 5
    assert told == [Attached("d" * 32, "killed")]
    stored = read_lease(engine, KEY)
    assert stored is not None and stored.holder == "waiter"


@pytest.mark.parametrize("ttl_s", [0.0, -1.0])
def test_a_lease_time_that_is_not_positive_is_refused(
    ttl_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from evalcore.settings import get_settings

    monkeypatch.setenv("EVALCORE_GATE_LEASE_SECONDS", str(ttl_s))
    with pytest.raises(ValidationError, match="gate_lease_seconds"):
        get_settings()


def test_a_gate_taking_over_continues_the_previous_run_unless_its_verdict_is_stored(
    db_url: str,
) -> None:
    engine = get_engine(db_url)
    suite = load_suite(EXAMPLE)
    request = GateRequest("r-lease", target_url="http://127.0.0.1:9/v1")
    first, _ = open_gate_run(engine, suite, request)
    # Every pair stored, killed before judging: finished, with no verdict.
    set_run_status(engine, first.id, "finished")
    assert open_gate_run(engine, suite, request)[0].id != first.id  # as it always was
    again, resumed = open_gate_run(engine, suite, request, previous_run_id=first.id)
    assert (again.id, resumed) == (first.id, True)
    other_target = GateRequest("r-lease", target_url="http://127.0.0.1:10/v1")
    assert open_gate_run(engine, suite, other_target, previous_run_id=first.id)[0].id != first.id

    record_run_setting(engine, first.id, GATE_VERDICT_KEY, "pass")
    judged_run, resumed = open_gate_run(engine, suite, request, previous_run_id=first.id)
    assert judged_run.id != first.id and not resumed  # a finished gate: a new run
