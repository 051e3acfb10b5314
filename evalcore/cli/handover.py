"""`evalcore handover`: the answers a team taking over the route needs, from live data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalcore.cli.common import SuiteOption, load, open_store


def handover(
    suite: SuiteOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the Markdown here.", show_default="EVALCORE_HOME/handover.md"),
    ] = None,
) -> None:
    """The five answers a team must have, from live data: what blocks, what is monitored,
    how a production failure becomes a case, who owns thresholds, the budgets.

    Example: [bold]evalcore handover --out HANDOVER.md[/]
    """
    from rich.markdown import Markdown

    from evalcore.cli.console import console
    from evalcore.settings import get_settings
    from evalcore.triage.handover import gather_handover, handover_markdown

    loaded = load(suite)
    text = handover_markdown(gather_handover(open_store(), loaded))
    path = out or get_settings().home / "handover.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.print(Markdown(text))
    console.print(f"written to {path}", highlight=False, soft_wrap=True)
