"""`evalcore digest`: the weekly triage digest, posted to Slack or written to files.

With `SLACK_BOT_TOKEN` set, or a Prefect Secret block named in
`EVALCORE_SLACK_BOT_TOKEN_BLOCK`, the digest goes to the owners.yaml channel (or
`--channel`); `SLACK_BASE_URL` points slack_sdk elsewhere (the local fake). Without a
token, or with `--offline`, nothing leaves the machine. Either way the digest is written to
`EVALCORE_HOME/digests/<week>.md` and `<week>.blocks.json`. The work is the weekly-digest
flow's, run in-process like `gate` and `monitor` run theirs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from evalcore.cli.common import JsonOption, SuiteOption, fail, load, open_store
from evalcore.cli.in_process import prefect_defaults, run_flow
from evalcore.exitcodes import ExitCode


def digest_command(
    suite: SuiteOption = None,
    post: Annotated[
        bool | None,
        typer.Option(
            "--post/--offline",
            help="Post to Slack, or only write the files and print the Markdown.",
            show_default="post when SLACK_BOT_TOKEN or its block is set",
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
    cost and latency, every decision still pending and the proposed promotions, with
    buttons.

    Posted once per week per channel; a re-run updates the same messages.

    Example: [bold]evalcore digest --offline[/]
    """
    from evalcore.secrets import SLACK_BOT_TOKEN, SecretBlockError, is_configured, setting_secret

    has_token = is_configured(SLACK_BOT_TOKEN)
    posting = has_token if post is None else post
    if posting and not has_token:
        fail(f"--post needs a bot token in {SLACK_BOT_TOKEN.sources} (or use --offline)")
    if posting:
        try:  # a block that cannot be read stops the command before anything runs
            setting_secret(SLACK_BOT_TOKEN)
        except SecretBlockError as exc:
            fail(str(exc))
    loaded = load(suite)
    target = channel or loaded.owners.channel
    if posting and not target:
        fail(f"no channel to post to: set `channel:` in {loaded.root / 'owners.yaml'} or --channel")
    open_store()
    prefect_defaults()
    from flows.weekly_digest import WeeklyDigestResult, weekly_digest

    result = run_flow(
        "digest",
        lambda: weekly_digest(
            suite=str(loaded.root),
            offline=not posting,
            channel=target,
            days=days,
            post_retries=0,
            return_state=True,
        ),
        WeeklyDigestResult,
    )
    if result.post_error:
        fail(result.post_error, ExitCode.FAIL)
    report = result.post
    if as_json:
        print(
            json.dumps(
                {
                    "week": result.week,
                    "route": result.route,
                    "pending": result.pending,
                    "overdue": result.overdue,
                    "proposals": result.proposals,
                    "messages": result.messages,
                    "files": {"markdown": result.markdown_path, "blocks": result.blocks_path},
                    "post": report.model_dump(mode="json") if report else None,
                    "digest": result.digest.model_dump(mode="json"),
                },
                indent=2,
            )
        )
        return
    from evalcore.cli.console import console, err_console

    if report is None:
        markdown = result.markdown
        print(markdown, end="" if markdown.endswith("\n") else "\n")
        err_console.print(
            f"digest {result.week} written to {result.markdown_path} and {result.blocks_path}",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(report.summary(), highlight=False, soft_wrap=True)
    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(
        f"{result.pending} decision(s) pending, {result.overdue} waiting over a week,"
        f" {result.proposals} promotion(s) proposed;"
        f" copies in {Path(result.markdown_path).parent}",
        highlight=False,
        soft_wrap=True,
    )
