"""Intake as a Prefect flow: one production failure validated, de-duplicated and stored.

Thin like the others: the work is `evalcore.triage.intake`, in one task. A bad payload fails
the flow run with the fields named (and nothing stored); a duplicate is stored, linked,
and the run completes. The stored item comes back as a dict.

Called as a function (`intake.fn(payload)`, e.g. from a test or another process), the
task runs inline: no Prefect server or flow-run context is needed.
"""

from __future__ import annotations

from typing import Any

import orjson
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from evalcore.settings import get_settings
from evalcore.store.engine import get_engine
from evalcore.suite import load_suite
from evalcore.triage.intake import IntakeError, parse_payload, take_in


@task(name="take in failure", cache_policy=NO_CACHE, persist_result=False)
def take_in_step(
    payload: dict[str, Any], source: str, suite_path: str, flow_run: dict[str, Any]
) -> dict[str, Any]:
    """Validate the payload (size, fields), load the suite, de-duplicate and store."""
    try:
        raw = orjson.dumps(payload)
    except TypeError as exc:
        raise IntakeError("not_json", f"not JSON: {exc}") from None
    failure = parse_payload(raw)
    result = take_in(
        get_engine(),
        load_suite(suite_path),
        failure,
        source=source,
        provenance={"via": "intake flow", **flow_run},
    )
    return result.as_json()


@flow(name="intake", persist_result=False, log_prints=False)
def intake(
    payload: dict[str, Any], source: str = "flow", suite: str | None = None
) -> dict[str, Any]:
    """Take one production failure into the backlog; returns the stored item.

    Raises `IntakeError` naming the fields when the payload is refused. `suite` defaults
    to EVALCORE_SUITE (then `evals`).
    """
    suite_path = str(suite or get_settings().suite)
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        item = take_in_step.fn(payload, source, suite_path, {"flow_run_id": None})
        return item
    flow_run = {"flow_run_id": str(context.flow_run.id), "flow_run_name": context.flow_run.name}
    item = take_in_step(payload, source, suite_path, flow_run)
    if item["duplicate_of"]:
        get_run_logger().info(
            "%s stored as a duplicate of %s (similarity %s)",
            item["id"],
            item["duplicate_of"],
            item["similarity"],
        )
    else:
        get_run_logger().info("%s stored, open", item["id"])
    return item
