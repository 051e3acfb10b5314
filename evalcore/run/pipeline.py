"""Run a set, judge it, publish it: what the release gate and the nightly monitor both do
to their set. This is the first step, the same for both: the run a command, a trigger or
a schedule asks for. Both then judge the run from its results, read once
(`results.loader`), and publish `report.artifacts.Artifacts` (`flows.common`).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Engine

from evalcore.run.service import RunRequest, prepare_run
from evalcore.store.tables import RunRow
from evalcore.suite import EvalSet, Suite


class SetRequest(Protocol):
    """Where a gate or monitor run sends its calls and what started it. URLs are full, or
    masked by `keep_full_url` in this process (what a flow passes on)."""

    @property
    def target_url(self) -> str | None: ...

    @property
    def model(self) -> str | None: ...

    @property
    def judge_url(self) -> str | None: ...

    @property
    def trigger(self) -> str: ...


def open_set_run(
    engine: Engine,
    suite: Suite,
    sets: tuple[EvalSet, ...],
    request: SetRequest,
    *,
    release: str | None = None,
) -> RunRow:
    """A new run of `sets` as `request` asks; nothing is called yet."""
    return prepare_run(
        engine,
        suite,
        RunRequest(
            sets=sets,
            trigger=request.trigger,
            release=release,
            target_url=request.target_url,
            model=request.model,
            judge_url=request.judge_url,
        ),
    )
