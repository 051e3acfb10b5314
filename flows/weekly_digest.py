"""The weekly triage digest as a Prefect flow: gather, render, post, files.

Thin: one task per step. Posting is retried by the task (twice) on top of slack_sdk's
own retries; when Slack stays down the flow fails with `DigestPostError`'s message, and
the next run posts what is missing and updates what was recorded. The files under
`EVALCORE_HOME/digests/` are written whether or not posting worked.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from evalcore.settings import get_settings
from evalcore.store.engine import get_engine
from evalcore.suite import Suite
from evalcore.triage.digest import (
    Digest,
    DigestPostError,
    PostReport,
    SlackMessage,
    digest_client,
    gather_week,
    post_digest,
    render_markdown,
    render_slack,
    write_digest_files,
)
from flows.common import load_step, unwalked

TOKEN_ENV = "SLACK_BOT_TOKEN"
BASE_URL_ENV = "SLACK_BASE_URL"


class RenderedDigest(BaseModel):
    markdown: str
    messages: list[SlackMessage]


class WeeklyDigestResult(BaseModel):
    week: str
    route: str
    pending: int
    overdue: int
    messages: int
    markdown_path: str
    blocks_path: str
    post: PostReport | None


@task(name="gather", cache_policy=NO_CACHE, persist_result=False)
def gather_step(suite: Suite) -> Digest:
    digest = gather_week(get_engine(), suite)
    get_run_logger().info(
        "week %s: %s decision(s) pending, %s over a week",
        digest.week,
        len(digest.pending),
        len(digest.overdue),
    )
    return digest


@task(name="render", cache_policy=NO_CACHE, persist_result=False)
def render_step(digest: Digest) -> RenderedDigest:
    return RenderedDigest(markdown=render_markdown(digest), messages=render_slack(digest))


@task(
    name="post",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=30,
)
def post_step(digest: Digest, rendered: RenderedDigest, channel: str) -> PostReport:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise DigestPostError(f"{TOKEN_ENV} is not set: run offline or set the bot token")
    client = digest_client(token, base_url=os.environ.get(BASE_URL_ENV) or None)
    report = post_digest(get_engine(), client, channel, digest, messages=rendered.messages)
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
def weekly_digest(suite: str | None = None, offline: bool | None = None) -> WeeklyDigestResult:
    """Gather the week, render it, post it to the owners.yaml channel (unless offline:
    by default when SLACK_BOT_TOKEN is unset) and write the files."""
    settings = get_settings()
    loaded = load_step(str(suite or settings.suite))
    digest = gather_step(unwalked(loaded))
    rendered = render_step(digest)
    if offline is None:
        offline = not os.environ.get(TOKEN_ENV)
    channel = loaded.owners.channel
    report = None
    try:
        if not offline:
            if not channel:
                raise DigestPostError(
                    f"owners.yaml in {Path(loaded.root)} names no channel to post the digest to"
                )
            report = post_step(digest, rendered, channel)
    finally:
        markdown_path, blocks_path = files_step(digest, rendered)
    return WeeklyDigestResult(
        week=digest.week,
        route=digest.route,
        pending=len(digest.pending),
        overdue=len(digest.overdue),
        messages=len(rendered.messages),
        markdown_path=markdown_path,
        blocks_path=blocks_path,
        post=report,
    )
