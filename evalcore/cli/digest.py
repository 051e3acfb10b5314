"""`evalcore digest`: the weekly triage digest, posted to Slack or written to files.

With `SLACK_BOT_TOKEN` set the digest goes to the owners.yaml channel (or `--channel`);
`SLACK_BASE_URL` points slack_sdk elsewhere (the local fake). Without a token, or with
`--offline`, nothing leaves the machine. Either way the digest is written to
`EVALCORE_HOME/digests/<week>.md` and `<week>.blocks.json`.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from evalcore.cli.common import JsonOption, SuiteOption, fail, load, open_store
from evalcore.exitcodes import ExitCode
from evalcore.settings import get_settings

TOKEN_ENV = "SLACK_BOT_TOKEN"
BASE_URL_ENV = "SLACK_BASE_URL"


def digest_command(
    suite: SuiteOption = None,
    post: Annotated[
        bool | None,
        typer.Option(
            "--post/--offline",
            help="Post to Slack, or only write the files and print the Markdown.",
            show_default="post when SLACK_BOT_TOKEN is set",
        ),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            help="Channel id or #name to post to.",
            show_default="owners.yaml channel",
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days to look back.")] = 7,
    as_json: JsonOption = False,
) -> None:
    """The weekly triage digest: gate verdicts, regressions, flaky cases, new backlog,
    cost and latency, and every decision still pending, with buttons.

    Posted once per week per channel; a re-run updates the same messages.

    Example: [bold]evalcore digest --offline[/]
    """
    from evalcore.triage.digest import (
        DigestPostError,
        digest_client,
        gather_week,
        post_digest,
        render_markdown,
        render_slack,
        write_digest_files,
    )

    token = os.environ.get(TOKEN_ENV) or None
    posting = bool(token) if post is None else post
    if posting and not token:
        fail(f"--post needs a bot token in {TOKEN_ENV} (or use --offline)")
    loaded = load(suite)
    target = channel or loaded.owners.channel
    if posting and not target:
        fail(f"no channel to post to: set `channel:` in {loaded.root / 'owners.yaml'} or --channel")

    engine = open_store()
    digest = gather_week(engine, loaded, days=days)
    markdown = render_markdown(digest)
    messages = render_slack(digest)
    files = write_digest_files(digest, get_settings().home, markdown=markdown, messages=messages)

    report = None
    if posting:
        assert token is not None and target is not None
        client = digest_client(token, base_url=os.environ.get(BASE_URL_ENV) or None)
        try:
            report = post_digest(engine, client, target, digest, messages=messages)
        except DigestPostError as exc:
            fail(str(exc), ExitCode.FAIL)

    if as_json:
        print(
            json.dumps(
                {
                    "week": digest.week,
                    "route": digest.route,
                    "pending": len(digest.pending),
                    "overdue": len(digest.overdue),
                    "messages": len(messages),
                    "files": {"markdown": str(files.markdown), "blocks": str(files.blocks)},
                    "post": report.model_dump(mode="json") if report else None,
                    "digest": digest.model_dump(mode="json"),
                },
                indent=2,
            )
        )
        return
    from evalcore.cli.console import console, err_console

    if report is None:
        print(markdown, end="" if markdown.endswith("\n") else "\n")
        err_console.print(
            f"digest {digest.week} written to {files.markdown} and {files.blocks}",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(report.summary(), highlight=False, soft_wrap=True)
    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(
        f"{len(digest.pending)} decision(s) pending, {len(digest.overdue)} waiting over a week;"
        f" copies in {files.markdown.parent}",
        highlight=False,
        soft_wrap=True,
    )
