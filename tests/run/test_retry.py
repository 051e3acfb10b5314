"""RetryPolicy.delay: when the runner gives up, and how long it waits before trying again."""

from __future__ import annotations

import random

import pytest

from evalcore.run.retry import MAX_RETRY_AFTER_S, RetryPolicy


def rng() -> random.Random:
    return random.Random(20260301)


@pytest.mark.parametrize("retries", [0, 1, 3, 5])
def test_gives_up_after_the_configured_retries(retries: int) -> None:
    policy = RetryPolicy(retries=retries)
    r = rng()
    delays = [policy.delay(attempt, None, r) for attempt in range(1, retries + 1)]
    assert all(d is not None for d in delays)
    assert policy.delay(retries + 1, None, r) is None
    assert policy.delay(retries + 2, None, r) is None


def test_no_retries_means_the_first_failure_is_final() -> None:
    assert RetryPolicy(retries=0).delay(1, None, rng()) is None
    assert RetryPolicy(retries=0).delay(1, 0.5, rng()) is None


def test_default_policy_retries_three_times() -> None:
    policy = RetryPolicy()
    r = rng()
    assert [policy.delay(a, None, r) is not None for a in (1, 2, 3, 4)] == [
        True,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize("retry_after", [0.0, 0.2, 1.0, 7.5, 30.0, MAX_RETRY_AFTER_S])
def test_retry_after_is_a_floor(retry_after: float) -> None:
    policy = RetryPolicy(retries=4, base_s=0.5, max_s=20.0)
    r = rng()
    for attempt in range(1, 5):
        for _ in range(200):
            delay = policy.delay(attempt, retry_after, r)
            assert delay is not None
            assert delay >= retry_after
            assert delay <= max(retry_after, min(20.0, 0.5 * 2 ** (attempt - 1)))


def test_a_long_retry_after_is_waited_in_full() -> None:
    """The server asked for 45 s; back-off (at most 1 s here) never shortens that."""
    policy = RetryPolicy(retries=3, base_s=0.5, max_s=1.0)
    assert policy.delay(1, 45.0, rng()) == 45.0
    assert policy.delay(3, 45.0, rng()) == 45.0


def test_back_off_still_applies_when_retry_after_is_shorter() -> None:
    """A Retry-After of 0 does not make the runner hammer the target without jitter."""
    policy = RetryPolicy(retries=3, base_s=2.0, max_s=20.0)
    r = rng()
    delays = [policy.delay(3, 0.0, r) for _ in range(200)]
    assert all(d is not None and 0.0 <= d <= 8.0 for d in delays)
    assert max(d for d in delays if d is not None) > 4.0


@pytest.mark.parametrize("retry_after", [MAX_RETRY_AFTER_S + 0.001, 121.0, 3600.0, 86_400.0])
def test_gives_up_when_retry_after_exceeds_the_maximum(retry_after: float) -> None:
    policy = RetryPolicy(retries=10)
    assert policy.delay(1, retry_after, rng()) is None


def test_retry_after_at_the_maximum_is_still_waited() -> None:
    assert RetryPolicy(retries=3).delay(1, MAX_RETRY_AFTER_S, rng()) == MAX_RETRY_AFTER_S


@pytest.mark.parametrize(
    ("base_s", "max_s", "attempt", "cap"),
    [
        (0.5, 20.0, 1, 0.5),
        (0.5, 20.0, 2, 1.0),
        (0.5, 20.0, 3, 2.0),
        (0.5, 20.0, 5, 8.0),
        (0.5, 20.0, 6, 16.0),
        (0.5, 20.0, 7, 20.0),  # 32 s of back-off is capped at max_s
        (0.5, 20.0, 12, 20.0),
        (1.0, 3.0, 2, 2.0),
        (1.0, 3.0, 3, 3.0),
    ],
)
def test_back_off_is_full_jitter_up_to_the_cap(
    base_s: float, max_s: float, attempt: int, cap: float
) -> None:
    policy = RetryPolicy(retries=20, base_s=base_s, max_s=max_s)
    r = rng()
    delays = [policy.delay(attempt, None, r) for _ in range(2_000)]
    values = [d for d in delays if d is not None]
    assert len(values) == len(delays)
    assert all(0.0 <= d <= cap for d in values)
    # Full jitter: the draws spread over the whole interval, not a fixed or narrow value.
    assert min(values) < 0.05 * cap
    assert max(values) > 0.95 * cap
    assert 0.4 * cap < sum(values) / len(values) < 0.6 * cap
    assert len(set(values)) > 1_900


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    policy = RetryPolicy(retries=5)
    first = [policy.delay(a, None, random.Random(7)) for a in range(1, 6)]
    second = [policy.delay(a, None, random.Random(7)) for a in range(1, 6)]
    other = [policy.delay(a, None, random.Random(8)) for a in range(1, 6)]
    assert first == second
    assert first != other


def test_workers_hit_by_the_same_burst_do_not_retry_in_lock_step() -> None:
    """A hundred workers with their own generators spread their second attempt out."""
    policy = RetryPolicy(retries=3, base_s=0.5, max_s=20.0)
    delays = [policy.delay(2, None, random.Random(seed)) for seed in range(100)]
    assert len({round(d, 3) for d in delays if d is not None}) > 90


def test_zero_base_means_retry_at_once() -> None:
    policy = RetryPolicy(retries=2, base_s=0.0, max_s=20.0)
    assert policy.delay(1, None, rng()) == 0.0
    assert policy.delay(2, 3.0, rng()) == 3.0
