"""Owners' decisions typed in digest threads, read every few minutes (Prefect flow).

Thin: one task reads the recent digest threads and records what owners decided; each
reply is handled once however often the flow runs.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from evalcore.settings import get_settings
from evalcore.slack.client import slack_client
from evalcore.store.engine import get_engine
from evalcore.suite import Suite
from evalcore.triage.replies import process_recent_digests
from flows.common import load_step, unwalked


@task(name="read replies", cache_policy=NO_CACHE, persist_result=False, retries=2)
def read_replies_step(suite: Suite, days: int) -> dict[str, int]:
    client = slack_client()
    if client is None:
        get_run_logger().warning("SLACK_BOT_TOKEN is not set: there are no threads to read")
        return {"replies": 0, "recorded": 0}
    results = process_recent_digests(get_engine(), suite, client, days=days)
    recorded = sum(1 for r in results if r.outcome and r.outcome.outcome.value == "accepted")
    return {"replies": len(results), "recorded": recorded}


@flow(name="triage-replies", persist_result=False, log_prints=False)
def triage_replies(suite: str | None = None, days: int = 14) -> dict[str, int]:
    """Record the decisions owners typed under the digests of the last `days` days."""
    loaded = load_step(str(suite or get_settings().suite))
    counts = read_replies_step(unwalked(loaded), days)
    get_run_logger().info("%(replies)s new replies, %(recorded)s decisions recorded", counts)
    return counts
