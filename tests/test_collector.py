"""What a suite load or a results read builds with the collector paused is left in the
oldest generation (or the frozen heap of a process that keeps one), so the next young
collections do not walk all of it again."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.suites import write_suite
from evalcore.collector import collector_paused, keep_heap_frozen
from evalcore.suite import Case, load_suite


class Built:
    """An object the collector tracks, easy to find among the others."""


def generation_of(found: object) -> int | None:
    """0, 1 or 2; None when the object is frozen (in no generation)."""
    for generation in range(3):
        if any(o is found for o in gc.get_objects(generation)):
            return generation
    return None


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The collector on and nothing frozen, and both as they were afterwards."""
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    assert frozen == 0
    gc.enable()
    try:
        yield
    finally:
        gc.unfreeze()
        if not enabled:
            gc.disable()


def test_what_was_built_paused_is_old_not_young(collector_on: None) -> None:
    with collector_paused():
        assert not gc.isenabled()
        built = [Built() for _ in range(1_000)]
    assert gc.isenabled()
    assert generation_of(built[0]) == 2 and generation_of(built) == 2
    assert gc.get_freeze_count() == 0  # nothing left frozen


def test_a_process_with_a_frozen_heap_keeps_it_frozen(
    collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evalcore.collector

    monkeypatch.setattr(evalcore.collector, "_heap_frozen", False)
    before = Built()
    gc.freeze()
    keep_heap_frozen()
    with collector_paused():
        built = Built()
    # Nothing that was frozen came back; what was built joined it.
    assert generation_of(before) is None and generation_of(built) is None
    assert gc.get_freeze_count() > 0


def test_the_collector_stays_off_when_it_was_off(collector_on: None) -> None:
    gc.disable()
    with collector_paused():
        built = Built()
    assert not gc.isenabled()
    assert generation_of(built) == 0  # nothing moved: whoever turned it off decides


def test_a_loaded_suite_is_in_the_oldest_generation(tmp_path: Path, collector_on: None) -> None:
    root = write_suite(
        tmp_path / "suite",
        cases=200,
        target_yaml="{kind: openai_chat, base_url: 'http://127.0.0.1:9/v1', model: stub}",
    )
    suite = load_suite(root)
    young = [o for g in (0, 1) for o in gc.get_objects(g) if isinstance(o, Case)]
    assert young == []
    assert len(suite.cases) == 200 and generation_of(suite.cases[0]) == 2
