"""The weekly triage digest as a Prefect flow: gather, render, post, files.

Thin: one task per step. Posting is retried by the task (twice, unless `post_retries`
says otherwise) on top of slack_sdk's own retries; when Slack stays down the flow run is
Failed with `DigestPostError`'s message (its result still says what was written), and the
next run posts what is missing and updates what was recorded. The files under
`EVALCORE_HOME/digests/` are written whether or not posting worked. `evalcore digest` runs
this flow in-process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Failed
from pydantic import BaseModel

from evalcore.secrets import SLACK_BOT_TOKEN, is_configured
from evalcore.settings import get_settings
from evalcore.slack.client import slack_client
from evalcore.store.engine import get_engine
from evalcore.suite import Suite
from evalcore.triage.digest import (
    Digest,
    DigestPostError,
    PostReport,
    SlackMessage,
    gather_week,
    post_digest,
    render_markdown,
    render_slack,
    write_digest_files,
)
from flows.common import load_step, unwalked

# A scheduled run retries a failed post this often, 30 s apart; a person at a terminal
# (`evalcore digest`) asks for none and runs the command again.
POST_RETRIES = 2


class RenderedDigest(BaseModel):
    markdown: str
    messages: list[SlackMessage]


class WeeklyDigestResult(BaseModel):
    week: str
    route: str
    pending: int
    overdue: int
    proposals: int  # promotions proposed by the scorecard's graduation rules
    messages: int
    markdown_path: str
    blocks_path: str
    post: PostReport | None
    post_error: str | None  # why posting stopped; the flow run is then Failed
    markdown: str
    digest: Digest


@task(name="gather", cache_policy=NO_CACHE, persist_result=False)
def gather_step(suite: Suite, days: int) -> Digest:
    digest = gather_week(get_engine(), suite, days=days)
    get_run_logger().info(
        "week %s: %s decision(s) pending, %s over a week, %s promotion(s) proposed",
        digest.week,
        len(digest.pending),
        len(digest.overdue),
        len(digest.proposals),
    )
    return digest


@task(name="render", cache_policy=NO_CACHE, persist_result=False)
def render_step(digest: Digest) -> RenderedDigest:
    return RenderedDigest(markdown=render_markdown(digest), messages=render_slack(digest))


@task(name="post", cache_policy=NO_CACHE, persist_result=False, retry_delay_seconds=30)
def post_step(digest: Digest, rendered: RenderedDigest, channel: str) -> PostReport | State[Any]:
    """A post Slack did not take ends Failed with its message: retried like a raised
    error, but logged as that one line rather than a traceback."""
    client = slack_client()
    if client is None:
        return Failed(message="SLACK_BOT_TOKEN is not set: run offline or set the bot token")
    try:
        report = post_digest(get_engine(), client, channel, digest, messages=rendered.messages)
    except DigestPostError as exc:
        return Failed(message=str(exc))
    logger = get_run_logger()
    logger.info(report.summary())
    for note in report.notes:
        logger.warning(note)
    return report


@task(name="files", cache_policy=NO_CACHE, persist_result=False)
def files_step(digest: Digest, rendered: RenderedDigest) -> tuple[str, str]:
    files = write_digest_files(
        digest, get_settings().home, markdown=rendered.markdown, messages=rendered.messages
    )
    return str(files.markdown), str(files.blocks)


@flow(name="weekly-digest", persist_result=False, log_prints=False)
def weekly_digest(
    suite: str | None = None,
    offline: bool | None = None,
    channel: str | None = None,
    days: int = 7,
    post_retries: int = POST_RETRIES,
) -> WeeklyDigestResult | State[Any]:
    """Gather the last `days` days, render them, post them to `channel` (else the
    owners.yaml channel) unless offline (by default when SLACK_BOT_TOKEN is unset), and
    write the files; Failed, with the result as its data, when posting failed."""
    settings = get_settings()
    loaded = load_step(str(suite or settings.suite))
    digest = gather_step(unwalked(loaded), days)
    rendered = render_step(digest)
    if offline is None:
        offline = not is_configured(SLACK_BOT_TOKEN, settings)
    channel = channel or loaded.owners.channel
    report: PostReport | None = None
    post_error: str | None = None
    if not offline and channel:
        posted = post_step.with_options(retries=post_retries)(
            digest, rendered, channel, return_state=True
        )
        outcome = posted.result() if posted.is_completed() else None
        if isinstance(outcome, PostReport):
            report = outcome
        else:
            post_error = posted.message or f"posting ended {posted.name}"
    elif not offline:
        post_error = f"owners.yaml in {Path(loaded.root)} names no channel to post the digest to"
    markdown_path, blocks_path = files_step(digest, rendered)
    result = WeeklyDigestResult(
        week=digest.week,
        route=digest.route,
        pending=len(digest.pending),
        overdue=len(digest.overdue),
        proposals=len(digest.proposals),
        messages=len(rendered.messages),
        markdown_path=markdown_path,
        blocks_path=blocks_path,
        post=report,
        post_error=post_error,
        markdown=rendered.markdown,
        digest=digest,
    )
    return Failed(message=post_error, data=result) if post_error else result
