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
            _settle_as_old()
            gc.enable()


_heap_frozen = False


def keep_heap_frozen() -> None:
    """This process keeps its long-lived heap frozen (`gc.freeze()`, as a worker's forked
    flow run does): what is built with the collector paused joins it from now on.

    Said rather than asked: `gc.get_freeze_count()` walks the whole frozen heap (80 ms
    in a flow run forked from a fork server that imported Prefect)."""
    global _heap_frozen
    _heap_frozen = True


def _settle_as_old() -> None:
    """Every object the collector tracks joins the oldest generation, not walked now.

    `gc.freeze()` then `gc.unfreeze()` does that (the unfrozen go to the oldest one). In
    a process that keeps its heap frozen (`keep_heap_frozen`), an unfreeze would give that
    heap back to the collector: there what was built joins the frozen heap instead, out
    of every collection; what it holds is freed as usual when its last reference goes.
    """
    gc.freeze()
    if not _heap_frozen:
        gc.unfreeze()
