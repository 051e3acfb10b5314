"""Nightly trends on a terminal (a rich table), as JSON, and as a self-contained HTML page
with four inline SVG line charts: pass rate, p95 latency, cost per run and error rate, and
a fifth, pass^k, when some night's cases have two or more samples (the table then shows
pass^k with its k, and pass@k; a night without such cases shows "—").

The pass rate is per case, under the scorecard's samples rule (what the verdict judges);
the per-sample rate is shown beside it, labelled "per sample". A night whose run could
not price its calls shows its cost as "unknown", with why, and has no point on the cost
chart.

Like the run report, the page fetches nothing (no script, font or stylesheet), so it opens
from a CI artifact store or an e-mail with no network. Where the scorecard sets a threshold
or a budget for a chart, it is drawn as a dashed line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from evalcore.files import write_atomic
from evalcore.report.rendering import render
from evalcore.results.trends import NightPoint
from evalcore.suite.scorecard import Scorecard

# The SVG box of one chart and the plot area inside it (room left for the y labels,
# below for the dates and the axis title).
WIDTH, HEIGHT = 460, 190
LEFT, RIGHT, TOP, BOTTOM = 64, 14, 14, 46
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    tip: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Limit:
    y: float
    label: str


@dataclass(frozen=True)
class LineChart:
    key: str
    title: str
    axis: str  # the y axis title
    dots: list[Dot]
    path: str  # SVG path data; broken where a night has no value
    ticks: list[Tick]
    dates: list[tuple[float, str]]  # x position and label under the axis
    limit: Limit | None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def _cost(point: NightPoint) -> str:
    """The night's cost per run, "unknown" when its run could not price its calls."""
    return "unknown" if point.cost_unknown else _usd(point.cost_usd)


def _cost_per_case(point: NightPoint) -> str:
    if point.cost_unknown:
        return "unknown"
    return "—" if point.cost_per_case_usd is None else f"${point.cost_per_case_usd:.6f}"


def cost_notes(points: Sequence[NightPoint]) -> list[str]:
    """Why some nights' cost is unknown, each reason once, with how many nights it hit."""
    counts: dict[str, int] = {}
    for p in points:
        if p.cost_unknown:
            counts[p.cost_unknown] = counts.get(p.cost_unknown, 0) + 1
    return [f"cost unknown on {n} night(s): {why}" for why, n in counts.items()]


def _k_figure(value: float | None, k: int | None) -> str:
    """pass^k or pass@k with its k, "—" on a night without cases of two or more samples."""
    return "—" if value is None or k is None else f"{100 * value:.1f}% (k={k})"


def has_k_figures(points: Sequence[NightPoint]) -> bool:
    """Whether any night has pass@k and pass^k: only then are they shown."""
    return any(p.pass_hat_k is not None for p in points)


def _axis_usd(value: float) -> str:
    return f"${value:.3g}"


def _axis_pct(value: float) -> str:
    return f"{100 * value:.3g}%"


def _x_positions(points: Sequence[NightPoint]) -> list[float]:
    """Nights placed by date, so a night without a run shows as a wider step."""
    if len(points) <= 1:
        return [LEFT + PLOT_W / 2] * len(points)
    first = points[0].night
    span = (points[-1].night - first).days or 1
    return [LEFT + PLOT_W * (p.night - first).days / span for p in points]


def line_chart(
    points: Sequence[NightPoint],
    *,
    key: str,
    title: str,
    axis: str,
    value: Callable[[NightPoint], float | None],
    fmt: Callable[[float | None], str],
    axis_fmt: Callable[[float], str],
    limit: float | None = None,
    limit_label: str = "",
    rate: bool = False,
    note: Callable[[NightPoint], str] | None = None,
) -> LineChart:
    """One metric over the nights, laid out for the template to draw as SVG."""
    values = [value(p) for p in points]
    present = [v for v in values if v is not None]
    scale = [*present, *([limit] if limit is not None else [])]
    low, high = 0.0, max(scale, default=0.0) * 1.1
    if rate:
        high = min(high, 1.0)
        if key in ("pass_rate", "pass_hat_k") and scale:
            # Pass rates live near the top: start the axis a little under the lowest one.
            low = max(0.0, (int(min(scale) * 20) - 1) / 20)
            high = 1.0
    if high <= low:
        high = low + (0.05 if rate else 1.0)

    def y(v: float) -> float:
        return TOP + PLOT_H * (1 - (v - low) / (high - low))

    xs = _x_positions(points)
    dots: list[Dot] = []
    path: list[str] = []
    pen_down = False
    for x, point, v in zip(xs, points, values, strict=True):
        if v is None:
            pen_down = False
            continue
        path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y(v):.1f}")
        pen_down = True
        runs = f" ({point.runs} runs that night, the last shown)" if point.runs > 1 else ""
        extra = note(point) if note is not None else ""
        tip = f"{point.night.isoformat()} · run {point.run_id[:12]}: {fmt(v)}{extra}{runs}"
        dots.append(Dot(x, y(v), tip))
    ticks = [Tick(y(v), axis_fmt(v)) for v in (low, (low + high) / 2, high)]
    dates = [(xs[0], points[0].night.isoformat())] if points else []
    if len(points) > 1:
        dates.append((xs[-1], points[-1].night.isoformat()))
    return LineChart(
        key=key,
        title=title,
        axis=axis,
        dots=dots,
        path=" ".join(path),
        ticks=ticks,
        dates=dates,
        limit=Limit(y(limit), f"{limit_label} {fmt(limit)}") if limit is not None else None,
    )


def trend_charts(
    points: Sequence[NightPoint], *, set_name: str, scorecard: Scorecard | None
) -> list[LineChart]:
    """Pass rate, p95 latency, cost per run and error rate, with the scorecard's limits;
    then pass^k when some night has it."""
    threshold = scorecard.thresholds.get(set_name) if scorecard is not None else None
    budgets = scorecard.budgets if scorecard is not None else None
    charts = [
        line_chart(
            points,
            key="pass_rate",
            title=f"Pass rate per case ({set_name})",
            axis="pass rate",
            value=lambda p: p.pass_rate,
            fmt=_pct,
            axis_fmt=_axis_pct,
            limit=threshold.min_pass_rate if threshold is not None else None,
            limit_label="threshold",
            rate=True,
            note=lambda p: (
                f" (per sample {_pct(p.sample_pass_rate)})"
                if p.sample_pass_rate is not None
                else ""
            ),
        ),
        line_chart(
            points,
            key="latency_p95",
            title="Latency p95",
            axis="ms",
            value=lambda p: p.latency_p95_ms,
            fmt=_ms,
            axis_fmt=lambda v: f"{v:.0f}",
            limit=budgets.latency_p95_ms if budgets is not None else None,
            limit_label="budget",
        ),
        line_chart(
            points,
            key="cost",
            title="Cost per run (judge apart)",
            axis="USD",
            value=lambda p: p.cost_usd,
            fmt=_usd,
            axis_fmt=_axis_usd,
            limit=budgets.cost_per_run_usd if budgets is not None else None,
            limit_label="budget",
        ),
        line_chart(
            points,
            key="error_rate",
            title="Error rate",
            axis="error rate",
            value=lambda p: p.error_rate,
            fmt=_pct,
            axis_fmt=_axis_pct,
            limit=budgets.max_error_rate if budgets is not None else None,
            limit_label="budget",
            rate=True,
        ),
    ]
    if has_k_figures(points):
        charts.append(
            line_chart(
                points,
                key="pass_hat_k",
                title=f"pass^k: all k tries pass ({set_name})",
                axis="pass^k",
                value=lambda p: p.pass_hat_k,
                fmt=_pct,
                axis_fmt=_axis_pct,
                rate=True,
                note=lambda p: f" (k={p.reliability_k})",
            )
        )
    return charts


def trends_table(points: Sequence[NightPoint], *, route: str) -> Table:
    table = Table(title=f"{route}  ·  nightly trend, oldest first", title_justify="left")
    with_k = has_k_figures(points)
    columns = [
        "night",
        "run",
        "pass rate",
        "per sample",
        *(["pass^k", "pass@k"] if with_k else []),
    ]
    for column in (*columns, "p95", "cost", "error rate"):
        table.add_column(column, justify="left" if column in ("night", "run") else "right")
    for p in points:
        k_cells = [_k_figure(p.pass_hat_k, p.reliability_k), _pct(p.pass_at_k)] if with_k else []
        table.add_row(
            p.night.isoformat(),
            p.run_id[:12] + (f" (+{p.runs - 1})" if p.runs > 1 else ""),
            _pct(p.pass_rate),
            _pct(p.sample_pass_rate),
            *k_cells,
            _ms(p.latency_p95_ms),
            _cost(p),
            _pct(p.error_rate),
        )
    if not points:
        table.caption = "no finished runs in the window"
    else:
        table.caption = "; ".join(
            [
                "pass rate: cases passed / decided under the samples rule; "
                "per sample: samples passed / scored",
                *cost_notes(points),
            ]
        )
    table.caption_justify = "left"
    return table


def trend_json(points: Sequence[NightPoint]) -> list[dict[str, Any]]:
    """The points as JSON-ready dicts (the night as an ISO date)."""
    return [{**dataclasses.asdict(p), "night": p.night.isoformat()} for p in points]


def render_trends(
    points: Sequence[NightPoint], *, route: str, set_name: str, scorecard: Scorecard | None
) -> str:
    return render(
        "trends.html.j2",
        route=route,
        set_name=set_name,
        points=list(points),
        charts=trend_charts(points, set_name=set_name, scorecard=scorecard),
        has_scorecard=scorecard is not None,
        with_k=has_k_figures(points),
        k_figure=_k_figure,
        cost=_cost,
        cost_per_case=_cost_per_case,
        cost_notes=cost_notes(points),
        box={
            "width": WIDTH,
            "height": HEIGHT,
            "left": LEFT,
            "right": WIDTH - RIGHT,
            "top": TOP,
            "bottom": TOP + PLOT_H,
        },
        pct=_pct,
        ms=_ms,
        usd=_usd,
    )


def write_trends_html(
    points: Sequence[NightPoint],
    path: Path,
    *,
    route: str,
    set_name: str,
    scorecard: Scorecard | None,
) -> Path:
    """Write the trends page to `path` atomically."""
    html = render_trends(points, route=route, set_name=set_name, scorecard=scorecard)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, html.encode("utf-8"))
    return path
