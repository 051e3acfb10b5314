"""The trends page, table and JSON: a self-contained page with four charts and a dashed
line wherever the scorecard sets a limit, a gap where a night has no value, and pass^k
(a fifth chart and two columns) only when some night's cases have several samples."""

from __future__ import annotations

import dataclasses
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
            sample_pass_rate=0.95 + day / 200,
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
    assert "2026-03-04 · run 04aaaaaaaaaa: 94.0% (per sample 97.0%) (2 runs that night" in html
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


def sampled_points() -> list[NightPoint]:
    """The same nights, of which the 2nd and 4th ran cases with three samples."""
    figures = {2: (3, 0.99, 0.81), 4: (3, 0.98, 0.72)}
    return [
        dataclasses.replace(
            p,
            reliability_k=figures[p.night.day][0] if p.night.day in figures else None,
            pass_at_k=figures[p.night.day][1] if p.night.day in figures else None,
            pass_hat_k=figures[p.night.day][2] if p.night.day in figures else None,
        )
        for p in points()
    ]


def test_nights_with_samples_add_a_pass_hat_k_chart_and_columns(tmp_path: Path) -> None:
    html = write_trends_html(
        sampled_points(), tmp_path / "k.html", route="r", set_name="monitoring", scorecard=None
    ).read_text()
    assert html.count("<svg") == 5
    chart = figure(html, "pass_hat_k")
    assert "pass^k: all k tries pass (monitoring)" in chart
    assert chart.count("<circle") == 2  # only the nights that have it
    assert "2026-03-02 · run 02aaaaaaaaaa: 81.0% (k=3)</title>" in chart
    assert "2026-03-04 · run 04aaaaaaaaaa: 72.0% (k=3) (2 runs that night" in chart
    assert '<th class="num">pass^k</th><th class="num">pass@k</th>' in html
    assert '<td class="num">81.0% (k=3)</td><td class="num">99.0%</td>' in html
    assert '<td class="num">—</td><td class="num">—</td>' in html  # the nights without

    console = Console(width=200, record=True)
    console.print(trends_table(sampled_points(), route="r"))
    text = console.export_text()
    assert "pass^k" in text and "pass@k" in text
    rows = {line.split()[1]: line for line in text.splitlines() if "2026-03-0" in line}
    assert "72.0% (k=3)" in rows["2026-03-04"] and "98.0%" in rows["2026-03-04"]
    assert rows["2026-03-01"].count("—") == 2

    dumped = trend_json(sampled_points())
    assert [(d["reliability_k"], d["pass_hat_k"]) for d in dumped] == [
        (None, None),
        (3, 0.81),
        (None, None),
        (3, 0.72),
        (None, None),
    ]


def test_single_sample_nights_show_no_pass_hat_k(tmp_path: Path) -> None:
    html = write_trends_html(
        points(), tmp_path / "s.html", route="r", set_name="monitoring", scorecard=None
    ).read_text()
    assert 'id="chart-pass_hat_k"' not in html and "pass^k" not in html
    console = Console(width=200, record=True)
    console.print(trends_table(points(), route="r"))
    assert "pass^k" not in console.export_text()
