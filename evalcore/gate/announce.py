"""`release.created`: the Prefect event that triggers the release-gate deployment.

A CI pipeline (or a person) announces a release; the server's automation starts the gate
with the release id (and, optionally, the target) taken from the event's payload. With
`wait`, the announcer follows the flow run that event started until it ends, so a CI job
can branch on the verdict without sharing evalcore's database.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from uuid import UUID

from evalcore.exitcodes import ExitCode
from evalcore.gate.steps import RELEASE_EVENT
from evalcore.report.artifacts import slug
from evalcore.targets.http import display_url

GATE_FLOW = "release-gate"
GATE_DEPLOYMENT = "release-gate"
DUPLICATE = "already handled"


class AnnounceError(Exception):
    """No Prefect server to announce to, or the gate run never came."""


@dataclass(frozen=True)
class GateRunOutcome:
    flow_run_id: str
    state: str
    message: str

    @property
    def exit_code(self) -> ExitCode:
        """The same codes as `evalcore gate`: the flow's Failed message starts with the verdict."""
        if self.state == "COMPLETED":
            return ExitCode.PASS
        if self.state == "FAILED" and self.message.startswith("fail:"):
            return ExitCode.FAIL
        return ExitCode.INCONCLUSIVE


def release_event_payload(
    release: str, *, target_url: str | None, model: str | None
) -> dict[str, str | None]:
    """Prefect stores the payload (and the gate's parameters made from it): the URL goes
    masked, and the serving process completes it from its own EVALCORE_TARGET_URL."""
    shown = display_url(target_url) if target_url is not None else None
    return {"release": release, "target_url": shown, "model": model}


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise AnnounceError(
            "PREFECT_API_URL is not set: events need a running Prefect server "
            "(start one with `evalcore up` or `prefect server start`)"
        )
    return str(url)


async def announce_release(
    release: str, *, target_url: str | None = None, model: str | None = None
) -> UUID:
    """Emit `release.created` for `release`; returns the event id."""
    from prefect.events import Event
    from prefect.events.clients import PrefectEventsClient

    if not release.strip():
        raise AnnounceError("the release id is empty")
    api_url = _api_url()
    event = Event(
        event=RELEASE_EVENT,
        resource={
            "prefect.resource.id": f"evalcore.release.{slug(release)}",
            "prefect.resource.name": release,
        },
        payload=release_event_payload(release, target_url=target_url, model=model),
    )
    try:
        async with PrefectEventsClient(api_url=api_url) as client:
            await client.emit(event)
    except (OSError, TimeoutError) as exc:
        raise AnnounceError(f"could not reach the Prefect server at {api_url}: {exc}") from exc
    return event.id


async def wait_for_gate(event_id: UUID, *, timeout_s: float, poll_s: float = 1.0) -> GateRunOutcome:
    """Follow the flow run the event started (found by its `event_id` parameter)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    _api_url()
    deadline = time.monotonic() + timeout_s
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(
                    name=DeploymentFilterName(any_=[GATE_DEPLOYMENT])
                ),
                limit=50,
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            )
            mine = [r for r in runs if r.parameters.get("event_id") == str(event_id)]
            for run in mine:
                state = run.state
                # A duplicate firing ends Completed with "already handled": not the gate.
                if (
                    state is not None
                    and state.is_final()
                    and DUPLICATE not in (state.message or "")
                ):
                    return GateRunOutcome(str(run.id), state.type.value, state.message or "")
            await asyncio.sleep(poll_s)
    raise AnnounceError(
        f"no finished release-gate run for event {event_id} within {timeout_s:g} s "
        "(is `evalcore up` or deployments/serve.py running?)"
    )
