"""Running a Prefect flow inside the command's own process, as `gate`, `monitor` and
`digest` do: the flow run is recorded (on PREFECT_API_URL's server, else a temporary one)
and the command prints what the flow returned."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from evalcore.cli.common import fail, open_store
from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

    from evalcore.suite import EvalSet, Suite

T = TypeVar("T")


def prefect_defaults() -> None:
    """Without PREFECT_API_URL, Prefect starts a temporary server: it must not try to phone
    home, and on a busy 2-core CI runner its first start (creating its database) can take
    longer than Prefect's 20 s default."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def run_flow(
    what: str,
    call: Callable[[], State[Any] | Awaitable[State[Any]]],
    expected: type[T],
) -> T:
    """Run a flow (sync, or async on an event loop) in-process and return its result, a
    Failed run's too when it carries one; a flow that could not run exits 2."""
    from evalcore import aio

    async def awaited(pending: Awaitable[State[Any]]) -> State[Any]:
        return await pending

    try:
        started = call()
        state = aio.run(awaited(started)) if isinstance(started, Awaitable) else started
    except Exception as exc:  # Prefect could not start or record the flow run
        fail(f"the {what} could not run: {exc}", ExitCode.INCONCLUSIVE)
    result = state.result(raise_on_failure=False)
    if not isinstance(result, expected):
        fail(f"the {what} could not run: {state.message or result!r}", ExitCode.INCONCLUSIVE)
    return result


def run_set_flow(
    what: str,
    expected: type[T],
    loaded: Suite,
    start: Callable[[str | None, str | None], State[Any] | Awaitable[State[Any]]],
    *,
    sets: Sequence[EvalSet],
    target_url: str | None,
    model: str | None,
    judge_url: str | None,
) -> T:
    """Run the gate's or the monitor's flow (over `sets`) in this process, as
    `start(target_url, judge_url)` starts it, and return what it concluded.

    A target that cannot be built, a judge without its key or a store that cannot be
    opened exits 3 first, before Prefect starts (so `start` imports the flow). Prefect
    stores flow parameters: `start` gets the URLs masked, and the flow finds the full ones
    in this process.
    """
    from evalcore.run import keep_full_url

    _check_target(loaded, sets, target_url=target_url, model=model)
    open_store()
    prefect_defaults()
    shown_target_url, shown_judge_url = keep_full_url(target_url), keep_full_url(judge_url)
    return run_flow(what, lambda: start(shown_target_url, shown_judge_url), expected)


def _check_target(
    loaded: Suite, sets: Sequence[EvalSet], *, target_url: str | None, model: str | None
) -> None:
    """A target that cannot be built (bad URL override, missing key), or a judge of `sets`'
    judged cases without its key, stops the command before Prefect or a run row exist."""
    from evalcore.run import RunSetupError, check_judge_key, override_target
    from evalcore.targets import ConfigError, build_target

    try:
        config = override_target(loaded.scorecard.target, url=target_url, model=model)
        build_target(config, concurrency=1, timeout_s=loaded.scorecard.run.timeout_s)
        check_judge_key(loaded, sets)
    except (RunSetupError, ConfigError) as exc:
        fail(str(exc))
