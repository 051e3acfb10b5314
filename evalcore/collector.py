"""Building a suite or a run's results without Python's cyclic garbage collector.

Loading 20,000 cases or reading 20,000 results allocates millions of small, acyclic,
long-lived objects. With the collector on, it rescans them every few hundred allocations
(half the time, three times at 100,000 cases); so it is paused meanwhile. What was
allocated while it was paused would then sit in the youngest generation, and the next two
young collections would walk all of it (0.1-0.3 s at 20,000 cases, on a shard's path to
its first call). It is moved straight to the oldest generation instead, without a walk.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off inside; what was built inside is then treated as old."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            settle_as_old()
            gc.enable()


def settle_as_old() -> None:
    """Every object the collector tracks joins the oldest generation, not walked now.

    `gc.freeze()` then `gc.unfreeze()` does that (the unfrozen go to the oldest one). A
    process that keeps its long-lived heap frozen (a worker's forked flow run) has frozen
    objects of its own, which an unfreeze would give back to the collector: there, what
    was built joins the frozen heap instead, out of every collection for the process's
    life; what it holds is freed as usual when its last reference goes.
    """
    if gc.get_freeze_count():
        gc.freeze()
        return
    gc.freeze()
    gc.unfreeze()
