"""Every evalcore flow with its trigger or schedule, served from one local process:
release-gate on `release.created`, nightly-monitor on a cron in the scorecard's timezone,
and run-shard, which a sharded gate or monitor run starts once per shard.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.serve

(`evalcore up` starts this together with a Prefect server and the reference target.)
The triggers here are the ones in prefect.yaml; a test keeps the two identical.

One route per deployment: Prefect replaces the triggers a deployment owns when it is
applied again, but a trigger owned by another deployment of the same flow (an earlier
`serve` under another name, a deleted deployment) would start a second gate run for the
same event. Those are removed before serving; the flow also claims each event id once,
so even a trigger created behind our back cannot gate one event twice.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any
from uuid import UUID

from prefect import serve
from prefect.client.orchestration import PrefectClient, get_client
from prefect.deployments.runner import RunnerDeployment
from prefect.events.actions import RunDeployment
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron, Schedule

from evalcore.gate.steps import RELEASE_EVENT
from evalcore.settings import get_settings
from evalcore.suite import load_suite
from flows.nightly_monitor import nightly_monitor
from flows.release_gate import release_gate
from flows.run_shard import SHARD_DEPLOYMENT, run_shard
from flows.triage_replies import triage_replies
from flows.weekly_digest import weekly_digest

GATE_DEPLOYMENT = "release-gate"
MONITOR_DEPLOYMENT = "nightly-monitor"
NIGHTLY_CRON = "0 2 * * *"  # 02:00 in the scorecard's drift.timezone
DIGEST_DEPLOYMENT = "weekly-digest"
DIGEST_CRON = "0 9 * * 1"  # Mondays 09:00 in the scorecard's drift.timezone
REPLIES_DEPLOYMENT = "triage-replies"
REPLIES_INTERVAL_S = 300  # owners' thread replies are read every five minutes
RELEASE_RESOURCE = "evalcore.release.*"

# Rendered by the server from the triggering event. Single-expression templates keep
# their JSON type, so an event without a target gives None (the default), not "".
RELEASE_PARAMETERS: dict[str, Any] = {
    "release": "{{ event.payload.release }}",
    "target_url": "{{ event.payload.get('target_url') }}",
    "model": "{{ event.payload.get('model') }}",
    "event_id": "{{ event.id | string }}",
    "trigger": RELEASE_EVENT,
}

logger = logging.getLogger("evalcore.serve")


def release_trigger() -> DeploymentEventTrigger:
    return DeploymentEventTrigger(
        name=f"{RELEASE_EVENT} → {GATE_DEPLOYMENT}",
        enabled=True,
        match={"prefect.resource.id": RELEASE_RESOURCE},
        expect={RELEASE_EVENT},
        parameters=dict(RELEASE_PARAMETERS),
    )


def nightly_schedule(timezone: str, cron: str = NIGHTLY_CRON) -> Schedule:
    return Cron(cron, timezone=timezone)


def build_deployments(
    name: str = GATE_DEPLOYMENT, *, timezone: str = "UTC", cron: str = NIGHTLY_CRON
) -> list[RunnerDeployment]:
    # `to_deployment` is sync-compatible: called from sync code it returns the deployment.
    return [
        release_gate.to_deployment(  # type: ignore[list-item]
            name=name,
            triggers=[release_trigger()],
            description="Gate a release on the blocking set (triggered by release.created).",
            tags=["evalcore", "release-gate"],
        ),
        nightly_monitor.to_deployment(  # type: ignore[list-item]
            name=MONITOR_DEPLOYMENT,
            schedules=[nightly_schedule(timezone, cron)],
            description="The monitoring set against its baseline, every night.",
            tags=["evalcore", "nightly-monitor"],
        ),
        weekly_digest.to_deployment(  # type: ignore[list-item]
            name=DIGEST_DEPLOYMENT,
            schedules=[Cron(DIGEST_CRON, timezone=timezone)],
            description="The weekly triage digest, posted once per week to the owners' channel.",
            tags=["evalcore", "triage"],
        ),
        triage_replies.to_deployment(  # type: ignore[list-item]
            name=REPLIES_DEPLOYMENT,
            interval=REPLIES_INTERVAL_S,
            description="Decisions typed in the digest threads, read every five minutes.",
            tags=["evalcore", "triage"],
        ),
        shard_deployment(),
    ]


def shard_deployment() -> RunnerDeployment:
    """No trigger or schedule: a sharded run starts one flow run of it per shard."""
    return run_shard.to_deployment(  # type: ignore[return-value]
        name=SHARD_DEPLOYMENT,
        description="One shard of a sharded run's (case, sample) pairs.",
        tags=["evalcore", "run-shard"],
    )


async def stale_release_triggers(client: PrefectClient, *, keep_deployment: str) -> list[UUID]:
    """Automations that would start a release-gate run but belong to no served deployment."""
    stale: list[UUID] = []
    for automation in await client.read_automations():
        expect = getattr(automation.trigger, "expect", None) or set()
        if RELEASE_EVENT not in expect:
            continue
        for action in automation.actions:
            if not isinstance(action, RunDeployment) or action.deployment_id is None:
                continue
            try:
                deployment = await client.read_deployment(action.deployment_id)
            except ObjectNotFound:
                stale.append(automation.id)  # its deployment is gone
                break
            flow = await client.read_flow(deployment.flow_id)
            if flow.name == release_gate.name and deployment.name != keep_deployment:
                stale.append(automation.id)
                break
    return stale


async def purge_stale_triggers(*, keep_deployment: str = GATE_DEPLOYMENT) -> list[UUID]:
    async with get_client() as client:
        stale = await stale_release_triggers(client, keep_deployment=keep_deployment)
        for automation_id in stale:
            await client.delete_automation(automation_id)
    for automation_id in stale:
        logger.warning("removed a stale %s trigger (automation %s)", RELEASE_EVENT, automation_id)
    return stale


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--name", default=GATE_DEPLOYMENT, help="release-gate deployment name")
    parser.add_argument(
        "--nightly-cron", default=NIGHTLY_CRON, help="when the nightly monitor runs"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)s | %(message)s")
    # The nightly schedule follows the suite's scorecard (drift.timezone).
    timezone = load_suite(get_settings().suite).scorecard.drift.timezone
    asyncio.run(purge_stale_triggers(keep_deployment=args.name))
    serve(*build_deployments(args.name, timezone=timezone, cron=args.nightly_cron))


if __name__ == "__main__":
    main()
