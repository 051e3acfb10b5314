"""The trends page, table and JSON: a self-contained page with four charts and a dashed
line wherever the scorecard sets a limit, a gap where a night has no value."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from evalcore.report.trends import trend_json, trends_table, write_trends_html
from evalcore.results.trends import NightPoint
from evalcore.suite.scorecard import Scorecard


def points() -> list[NightPoint]:
    return [
        NightPoint(
            night=dt.date(2026, 3, day),
            run_id=f"{day:02d}" + "a" * 30,
            runs=2 if day == 4 else 1,
            results=1000,
            pass_rate=0.9 + day / 100,
            latency_p50_ms=400.0,
            latency_p95_ms=900.0 + 10 * day,
            cost_usd=0.5 + day / 10,
            cost_per_case_usd=0.0005,
            error_rate=None if day == 3 else day / 1000,
        )
        for day in (1, 2, 3, 4, 6)
    ]


def scorecard(**extra: Any) -> Scorecard:
    return Scorecard.model_validate(
        {
            "route": "support-assistant",
            "target": {"kind": "python", "callable": "bench.callables:answer"},
            **extra,
        }
    )


def figure(html: str, key: str) -> str:
    found = re.search(rf'<figure id="chart-{key}">(.*?)</figure>', html, re.S)
    assert found is not None, key
    return found[1]


def test_the_page_has_four_charts_with_a_dashed_line_per_limit(tmp_path: Path) -> None:
    card = scorecard(
        thresholds={"monitoring": {"min_pass_rate": 0.9}},
        budgets={"latency_p95_ms": 950, "cost_per_run_usd": 2.0, "max_error_rate": 0.02},
    )
    path = write_trends_html(
        points(), tmp_path / "out" / "trends.html", route="r", set_name="monitoring", scorecard=card
    )
    html = path.read_text()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["trends.html"]  # no temporary left
    assert html.count("<svg") == 4 and html.count('class="budget"') == 4
    for key, label in (
        ("pass_rate", "threshold 90.0%"),
        ("latency_p95", "budget 950 ms"),
        ("cost", "budget $2.0000"),
        ("error_rate", "budget 2.0%"),
    ):
        chart = figure(html, key)
        assert chart.count("<svg") == 1 and 'class="budget"' in chart and label in chart
        assert "night" in chart  # the x axis title
    # Every night with a value is a point with a tooltip; the error-less night is a gap.
    assert figure(html, "pass_rate").count("<circle") == 5
    assert figure(html, "error_rate").count("<circle") == 4
    line = re.search(r'<path d="([^"]*)"', figure(html, "error_rate"))
    assert line is not None and line[1].count("M") == 2  # the line breaks at the gap
    assert "2026-03-04 · run 04aaaaaaaaaa: 94.0% (2 runs that night" in html
    assert "<td>2026-03-06</td><td>06aaaaaaaaaa</td>" in html  # the table under the charts
    assert "<script" not in html and "<link" not in html and 'src="http' not in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_no_limit_no_line(tmp_path: Path) -> None:
    card = scorecard(budgets={"latency_p95_ms": 950})  # no threshold, no cost budget
    html = write_trends_html(
        points(), tmp_path / "t.html", route="r", set_name="monitoring", scorecard=card
    ).read_text()
    assert 'class="budget"' in figure(html, "latency_p95")
    assert 'class="budget"' not in figure(html, "pass_rate")
    assert 'class="budget"' not in figure(html, "cost")
    assert 'class="budget"' in figure(html, "error_rate")  # max_error_rate has a default
    bare = write_trends_html(
        points(), tmp_path / "b.html", route="r", set_name="monitoring", scorecard=None
    ).read_text()
    assert bare.count("<svg") == 4 and 'class="budget"' not in bare


def test_an_empty_window_renders_without_charts(tmp_path: Path) -> None:
    html = write_trends_html(
        [], tmp_path / "e.html", route="r", set_name="monitoring", scorecard=None
    ).read_text()
    assert "<svg" not in html and "no finished monitoring runs in the window" in html


def test_table_and_json_carry_every_night() -> None:
    console = Console(width=160, record=True)
    console.print(trends_table(points(), route="support-assistant"))
    text = console.export_text()
    assert "support-assistant" in text and "04aaaaaaaaaa (+1)" in text
    assert "2026-03-06" in text and "96.0%" in text and "960 ms" in text
    dumped = trend_json(points())
    assert [d["night"] for d in dumped] == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-06",
    ]
    assert dumped[2]["error_rate"] is None and dumped[0]["run_id"] == "01" + "a" * 30
