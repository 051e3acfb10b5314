"""Nightly trends of a route's monitoring runs: one point per night, from `run_stats` rows.

A night is a calendar date in the scorecard's timezone (`drift.timezone`); a run belongs to
the night it started in there. When a night has several finished runs, its point is the
last one started (a re-run replaces the night's figure) and `runs` says how many there
were. Only run and run_stats rows are read, never case results, so 90 nights of runs with
thousands of results each cost two small queries; runs from before stats were recorded
get theirs computed once, on the first trend that needs them.

A night's pass rate is per case, under the scorecard's samples rule (what the verdict
judges), with the per-sample rate beside it; with one sample per case the two are equal.
Its cost is None when the run could not price its calls (`cost_unknown` says why). Its
pass@k and pass^k (`evalcore.results.reliability`) are over its run's cases with two or
more scored samples, with k the smallest such sample count; all three are None on a night
whose cases have one sample each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.engine import Engine

from evalcore.results.run_stats import RUN_TABLE, STATS_TABLE, as_utc, ensure_run_stats
from evalcore.store.tables import utcnow


@dataclass(frozen=True)
class NightPoint:
    night: dt.date
    run_id: str
    runs: int  # finished runs of the route and set that night; the point is the last one
    results: int
    pass_rate: float | None  # per case; None when no case was decided
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: float | None  # None: unknown (see `cost_unknown`)
    cost_per_case_usd: float | None
    error_rate: float | None
    sample_pass_rate: float | None = None  # per sample
    cost_unknown: str | None = None  # why the night's cost is unknown
    reliability_k: int | None = None  # the k of pass@k and pass^k; None: no k-sample cases
    pass_at_k: float | None = None
    pass_hat_k: float | None = None


def zone(name: str) -> ZoneInfo:
    """The IANA timezone `name`; a ValueError names it when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Europe' is a folder
        raise ValueError(
            f"unknown timezone {name!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None


def nightly_trend(
    engine: Engine,
    *,
    route: str,
    days: int,
    set_name: str = "monitoring",
    timezone: str = "UTC",
    now: dt.datetime | None = None,
) -> list[NightPoint]:
    """The last `days` nights (today in `timezone` included) of the route's finished runs
    over exactly `[set_name]`, one point per night that had one, oldest first."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a whole number of at least 1, got {days!r}")
    tz = zone(timezone)
    now_utc = as_utc(now) if now is not None else utcnow()
    first_night = now_utc.astimezone(tz).date() - dt.timedelta(days=days - 1)
    # A day early on purpose: the exact cut is made on local dates below, so an odd
    # midnight (a DST jump at 00:00) can never drop a run at the window's edge.
    since = dt.datetime.combine(first_night, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    since -= dt.timedelta(days=1)
    ensure_run_stats(engine, route=route, since=since)

    r, s = RUN_TABLE.c, STATS_TABLE.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                r.id,
                r.sets,
                r.created_at,
                s.results,
                s.pass_rate,
                s.sample_pass_rate,
                s.unpriced,
                s.latency_p50_ms,
                s.latency_p95_ms,
                s.cost_usd,
                s.cost_per_case_usd,
                s.error_rate,
                s.reliability_k,
                s.pass_at_k,
                s.pass_hat_k,
            )
            .select_from(RUN_TABLE.join(STATS_TABLE, s.run_id == r.id))
            .where(
                r.route == route,
                r.status == "finished",
                r.created_at >= since,
                r.created_at <= now_utc,
            )
            .order_by(r.created_at, r.id)
        ).all()

    nights: dict[dt.date, list[Any]] = {}
    for row in rows:
        if list(row.sets) != [set_name]:
            continue
        night = row.created_at.astimezone(tz).date()
        if night >= first_night:
            nights.setdefault(night, []).append(row)
    points = []
    for night in sorted(nights):
        runs = nights[night]
        last = runs[-1]  # ordered by start time
        cost_unknown = (last.unpriced or {}).get("target")
        points.append(
            NightPoint(
                night=night,
                run_id=last.id,
                runs=len(runs),
                results=int(last.results),
                pass_rate=last.pass_rate,
                sample_pass_rate=last.sample_pass_rate,
                latency_p50_ms=last.latency_p50_ms,
                latency_p95_ms=last.latency_p95_ms,
                cost_usd=None if cost_unknown else float(last.cost_usd),
                cost_per_case_usd=None if cost_unknown else last.cost_per_case_usd,
                cost_unknown=cost_unknown,
                error_rate=last.error_rate,
                reliability_k=last.reliability_k,
                pass_at_k=last.pass_at_k,
                pass_hat_k=last.pass_hat_k,
            )
        )
    return points
