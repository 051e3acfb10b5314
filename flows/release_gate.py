"""The release gate as a Prefect flow: the blocking set for a release, judged, reported.

Thin on purpose: every step is a function of `evalcore.gate.steps` / `evalcore.run`, wrapped
in one task per step (never one per case). The flow ends Failed when the verdict is fail
or inconclusive, so a Prefect automation, a CI job waiting on the flow run, or
`evalcore gate` all see the same outcome.

Two gates for the same release, dataset, scorecard and target do the work once: the one
that claims the lease (`evalcore.gate.lease`) opens or resumes the run, renews the lease
while it runs, and releases it once its verdict is stored; the other attaches, waits for
that verdict and ends with it. A holder that stops renewing (killed) loses the lease at its
expiry to a waiting gate, which resumes the run from what is stored.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from evalcore.gate.lease import (
    Attached,
    Claim,
    LeaseKeeper,
    LeaseKey,
    attach,
    claim_lease,
    holder_name,
    record_lease_run,
)
from evalcore.gate.steps import (
    RELEASE_EVENT,
    GateRequest,
    GateResult,
    default_report_path,
    gate_artifacts,
    gate_lease_key,
    gate_result,
    gate_verdict_of,
    open_gate_run,
    resample_failing,
)
from evalcore.report.artifacts import Artifacts
from evalcore.results.verdict import Verdict
from evalcore.settings import get_settings
from evalcore.store.engine import get_engine
from evalcore.store.repository import attach_event_run, claim_event
from evalcore.suite import Suite
from flows.common import flow_urls, load_step, publish_step, run_step, unwalked


@task(name="claim release", cache_policy=NO_CACHE, persist_result=False)
def claim_step(key: LeaseKey, holder: str, ttl_s: float) -> Claim:
    """Claim the lease on this release, dataset, scorecard and target: won, this gate
    does the work; else another gate holds it and this one attaches."""
    claim = claim_lease(get_engine(), key, holder=holder, ttl_s=ttl_s)
    if not claim.won:
        get_run_logger().info(
            "release %s is being gated by %s: attaching to that gate",
            key.release,
            claim.lease.holder,
        )
    _tell_taken_over(key, claim)
    return claim


def _tell_taken_over(key: LeaseKey, claim: Claim) -> None:
    if claim.taken_from is not None:
        get_run_logger().warning(
            "the gate holding release %s (%s) stopped renewing its lease: taking over",
            key.release,
            claim.taken_from,
        )


@task(name="attach to running gate", cache_policy=NO_CACHE, persist_result=False)
async def attach_step(key: LeaseKey, holder: str, ttl_s: float, claim: Claim) -> Attached | Claim:
    """Wait for the holder's stored verdict; or, when the holder stops renewing its lease
    (killed), take the lease over and return the won claim."""
    logger = get_run_logger()

    def told(attached: Attached) -> None:
        logger.info(
            "attached to run %s of release %s, held by %s",
            attached.run_id[:12],
            key.release,
            attached.holder,
        )

    engine = get_engine()
    outcome = await attach(
        engine,
        key,
        claim,
        holder=holder,
        ttl_s=ttl_s,
        settled=lambda run_id: gate_verdict_of(engine, run_id) is not None,
        told=told,
    )
    if isinstance(outcome, Claim):
        _tell_taken_over(key, outcome)
    return outcome


@task(name="open run", cache_policy=NO_CACHE, persist_result=False)
def open_step(suite: Suite, request: GateRequest, previous_run_id: str | None) -> tuple[str, bool]:
    run, resumed = open_gate_run(get_engine(), suite, request, previous_run_id=previous_run_id)
    logger = get_run_logger()
    if resumed:
        logger.info(
            "resuming unfinished run %s of release %s (%s pairs planned)",
            run.id[:12],
            request.release,
            run.planned,
        )
    else:
        logger.info("new run %s for release %s", run.id[:12], request.release)
    return run.id, resumed


run_blocking_set = run_step.with_options(name="run blocking set")


@task(
    name="re-sample failing cases",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=5,
)
async def resample_step(suite: Suite, run_id: str) -> float:
    """On a nondeterministic route, sample the failing blocking cases again until the
    sequential test decides each (a retry goes on from the stored samples); returns the
    seconds it took. Nothing happens on any other route."""
    done = await resample_failing(get_engine(), suite, run_id)
    if done.rounds:
        get_run_logger().info(
            "run %s: %s extra samples of failing cases in %s rounds (%.2f s)",
            run_id[:12],
            done.extra_samples,
            done.rounds,
            done.seconds,
        )
    return done.seconds


@task(name="verdict", cache_policy=NO_CACHE, persist_result=False)
def verdict_step(
    run_id: str,
    resumed: bool,
    run_seconds: float,
    report_path: str | None,
    junit_path: str | None,
    held_by: str | None = None,
) -> tuple[GateResult, Artifacts]:
    """Judge the run against its scorecard; write the HTML report (and JUnit if asked).
    `held_by`: the gate this one attached to, whose stored verdict is not written over."""
    result = gate_result(
        get_engine(),
        run_id,
        resumed=resumed,
        run_seconds=run_seconds,
        report_path=Path(report_path) if report_path else None,
        junit_path=Path(junit_path) if junit_path else None,
        held_by=held_by,
    )
    return result, gate_artifacts(result)


@flow(name="release-gate", persist_result=False, log_prints=False)
async def release_gate(
    release: str,
    target_url: str | None = None,
    model: str | None = None,
    judge_url: str | None = None,
    suite: str | None = None,
    event_id: str | None = None,
    trigger: str = "prefect",
    report_path: str | None = None,
    junit_path: str | None = None,
) -> GateResult | State:
    """Gate `release` on the blocking set; Failed unless the verdict is pass.

    `target_url`/`judge_url` default to EVALCORE_TARGET_URL/EVALCORE_JUDGE_URL, then to
    the scorecard. Prefect stores parameters, so they come masked (`evalcore gate` keeps
    the full URL in its process; a served deployment finds it in those variables) and
    only the masked form is passed on. `event_id` (set by the `release.created` trigger)
    is claimed once, so a second automation firing for the same event starts nothing.
    """
    logger = get_run_logger()
    settings = get_settings()
    engine = get_engine()
    if event_id:
        first = claim_event(engine, event_id=event_id, event=RELEASE_EVENT, release=release)
        if first is not None:
            message = (
                f"event {event_id} for release {release} was already handled"
                + (f" by run {first[:12]}" if first else "")
                + "; nothing to do"
            )
            logger.warning(message)
            return Completed(message=message)
    target_url, judge_url = flow_urls(target_url, judge_url)
    request = GateRequest(
        release=release,
        target_url=target_url,
        model=model,
        judge_url=judge_url,
        trigger=trigger,
    )
    loaded = load_step(str(suite or settings.suite))
    key = gate_lease_key(loaded, request)
    holder = holder_name(flow_run.get_id())
    ttl_s = settings.gate_lease_seconds

    def report_for(run_id: str) -> str:
        return report_path or str(default_report_path(settings.home.resolve(), release, run_id))

    claim = claim_step(key, holder, ttl_s)
    while True:
        if not claim.won:
            waited = await attach_step(key, holder, ttl_s, claim)
            if isinstance(waited, Attached):
                if event_id:
                    attach_event_run(engine, event_id, waited.run_id)
                result, _ = verdict_step(
                    waited.run_id, False, 0.0, report_for(waited.run_id), junit_path, waited.holder
                )
                return _ended(result)
            claim = waited
        gated: tuple[GateResult, Artifacts] | None = None
        with LeaseKeeper(engine, key, holder=holder, ttl_s=ttl_s) as kept:
            run_id, resumed = open_step(unwalked(loaded), request, claim.previous_run_id)
            if event_id:
                attach_event_run(engine, event_id, run_id)
            if record_lease_run(engine, key, holder=holder, run_id=run_id):
                run_seconds = await run_blocking_set(unwalked(loaded), run_id, incomplete_ok=True)
                if not kept.lost:
                    run_seconds += await resample_step(unwalked(loaded), run_id)
                if not kept.lost:
                    gated = verdict_step(
                        run_id, resumed, run_seconds, report_for(run_id), junit_path
                    )
        if gated is not None:
            break
        # Another gate took the lease over (this one could not renew it in time): its
        # verdict is the one; this gate attaches to it, or holds the lease again.
        logger.warning(
            "run %s: another gate took over the lease on release %s", run_id[:12], release
        )
        claim = claim_step(key, holder, ttl_s)
    result, artifacts = gated
    await publish_step(artifacts)
    return _ended(result)


def _ended(result: GateResult) -> GateResult | State:
    """The flow's end: Completed with the result on pass, else Failed carrying it."""
    get_run_logger().info(
        "release %s: %s (%s)%s",
        result.release,
        result.verdict.value,
        result.reason,
        f", as run {result.short_id} concluded, held by {result.held_by}"
        if result.attached
        else "",
    )
    if result.verdict is not Verdict.passed:
        return Failed(message=f"{result.verdict.value}: {result.reason}", data=result)
    return result
