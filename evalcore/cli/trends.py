"""`evalcore trends`: a route's nights as a table and an HTML page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from evalcore.cli.common import JsonOption, SuiteOption, fail, load, open_store


def trends(
    route: Annotated[
        str | None, typer.Option(help="Route to show.", show_default="the suite's route")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Nights to look back.")] = 30,
    set_name: Annotated[str, typer.Option("--set", help="Which set's runs.")] = "monitoring",
    html: Annotated[
        Path | None,
        typer.Option(help="Write the HTML page here.", show_default="under EVALCORE_HOME"),
    ] = None,
    suite: SuiteOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per-night pass rate, p95 latency, cost and error rate, as a table and an HTML page;
    pass^k and pass@k (with k) too when the set's cases have two or more samples.

    Example: [bold]evalcore trends --route support-assistant --days 30[/]
    """
    from evalcore.cli.console import console
    from evalcore.report.trends import trend_json, trends_table, write_trends_html
    from evalcore.results.trends import nightly_trend
    from evalcore.settings import get_settings

    loaded = load(suite)
    engine = open_store()
    scorecard = loaded.scorecard
    route = route or scorecard.route
    try:
        points = nightly_trend(
            engine,
            route=route,
            days=days,
            set_name=set_name,
            timezone=scorecard.drift.timezone,
        )
    except ValueError as exc:
        fail(str(exc))
    from evalcore.report.artifacts import slug

    path = html or get_settings().home.resolve() / "reports" / f"trends-{slug(route)}.html"
    write_trends_html(
        points,
        path,
        route=route,
        set_name=set_name,
        scorecard=scorecard if route == scorecard.route else None,
    )
    if as_json:
        print(json.dumps({"route": route, "html": str(path), "nights": trend_json(points)}))
        return
    console.print(trends_table(points, route=route))
    console.print(f"HTML: {path}", highlight=False, soft_wrap=True)
