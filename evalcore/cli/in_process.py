"""Running a Prefect flow inside the command's own process, as `gate`, `monitor` and
`digest` do: the flow run is recorded (on PREFECT_API_URL's server, else a temporary one)
and the command prints what the flow returned."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from evalcore import aio
from evalcore.cli.common import fail
from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

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
