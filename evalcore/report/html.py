"""The HTML report of a run: verdict, criteria, failed cases with input, expectation,
output and reasons, errored cases with their class, per-set pass rates per case and per
sample, and latency and cost histograms as inline SVG (a cost the run could not price is
shown as unknown, with why, and draws no histogram).

Self-contained on purpose: no script, font or stylesheet is fetched, so the file opens
from a CI artifact store or an e-mail with no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine

from evalcore.files import write_atomic
from evalcore.report.rendering import render
from evalcore.results.summary import RunSummary
from evalcore.results.verdict import RunVerdict
from evalcore.store.repository import CASE_TABLE, result_measures, results_passed
from evalcore.store.tables import RunRow

_FAILED_CASES_SHOWN = 200


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    height: float
    label: str
    count: int


@dataclass(frozen=True)
class Histogram:
    title: str
    unit: str
    bars: list[Bar]
    max_count: int


def histogram(values: list[float], *, title: str, unit: str, bins: int = 20) -> Histogram:
    """Bars laid out in a 400 x 120 box, for the template to draw as SVG rects."""
    if not values:
        return Histogram(title, unit, [], 0)
    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins)
    top = int(counts.max()) or 1
    width = 400 / len(counts)
    bars = [
        Bar(
            x=i * width,
            width=max(width - 1, 1),
            height=120 * int(count) / top,
            label=f"{edges[i]:.4g}–{edges[i + 1]:.4g} {unit}",
            count=int(count),
        )
        for i, count in enumerate(counts)
    ]
    return Histogram(title, unit, bars, top)


def render_report(engine: Engine, run: RunRow, summary: RunSummary, verdict: RunVerdict) -> str:
    """The page; reads the failed and errored results it lists (at most
    `_FAILED_CASES_SHOWN` each, with their cases) and the latency and cost of every result."""
    failed = results_passed(engine, run.id, False, limit=_FAILED_CASES_SHOWN)
    errors = results_passed(engine, run.id, None, limit=_FAILED_CASES_SHOWN)
    measures = result_measures(engine, run.id)
    bodies: dict[str, dict[str, Any]] = {}
    wanted = sorted({r.case_id for r in failed})
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = conn.execute(
                select(CASE_TABLE.c.case_id, CASE_TABLE.c.body).where(
                    CASE_TABLE.c.dataset_hash == run.dataset_hash,
                    CASE_TABLE.c.case_id.in_(wanted[start : start + 500]),
                )
            )
            bodies.update((case_id, body) for case_id, body in chunk)
    return render(
        "report.html.j2",
        run=run,
        summary=summary,
        verdict=verdict,
        failed=[
            {
                "row": r,
                "case": bodies.get(r.case_id, {}),
                "reasons": [
                    f"{name}: {score.get('reason', '')}"
                    for name, score in (r.scores or {}).items()
                    if not score.get("passed")
                ],
            }
            for r in failed
        ],
        errors=errors,
        latency=histogram(
            [latency for _, latency, _ in measures if latency is not None],
            title="Latency",
            unit="ms",
        ),
        # An unknown cost has no distribution: its zeros are no cost (`summary.cost_unknown`).
        cost=histogram(
            [cost for passed, _, cost in measures if passed is not None]
            if summary.cost_usd is not None
            else [],
            title="Cost per call",
            unit="USD",
        ),
    )


def write_report(
    engine: Engine, run: RunRow, summary: RunSummary, verdict: RunVerdict, path: Path
) -> Path:
    """Write the report to `path` atomically."""
    html = render_report(engine, run, summary, verdict)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, html.encode("utf-8"))
    return path
