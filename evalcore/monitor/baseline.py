"""Baselines: the finished run a route's set is compared with, accepted by an owner.

Accepting a new baseline supersedes the current one but never deletes it, so the history
of who accepted what, when and why stays readable (`evalcore baseline list`). Only a person
whom owners.yaml lets own the route or the set may accept; anyone else is refused and
nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from evalcore.store.repository import get_run
from evalcore.store.tables import BaselineRow, RunRow, utcnow
from evalcore.suite.owners import Owner, Owners


class BaselineError(Exception):
    """The baseline cannot be accepted as asked; the message says why."""


def may_own(owner: Owner, *, route: str, set_name: str) -> bool:
    scopes = owner.owns
    return (
        route in scopes.routes
        or "*" in scopes.routes
        or set_name in scopes.sets
        or "*" in scopes.sets
    )


def find_owner(owners: Owners, who: str) -> Owner:
    """An owner by id (or Slack id); unknown names are an error listing the known ones."""
    owner = owners.get(who) or owners.by_slack_id(who)
    if owner is None:
        known = ", ".join(o.id for o in owners.owners) or "none"
        raise BaselineError(f"unknown owner {who!r} (owners.yaml lists: {known})")
    return owner


def accept_baseline(
    engine: Engine, owners: Owners, *, run_id: str, by: str, reason: str
) -> list[BaselineRow]:
    """Make a finished run the baseline of its route for each of its sets."""
    if not reason.strip():
        raise BaselineError("a reason is required: say why this run is the new normal")
    run = get_run(engine, run_id)
    if run is None:
        raise BaselineError(f"no run with id {run_id!r} (see `evalcore runs list`)")
    if run.status != "finished":
        raise BaselineError(
            f"run {run.id[:12]} is {run.status}, not finished: only a complete run can be a "
            "baseline"
        )
    owner = find_owner(owners, by)
    refused = [s for s in run.sets if not may_own(owner, route=run.route, set_name=s)]
    if refused:
        raise BaselineError(
            f"{owner.id} ({owner.name}) may not accept baselines for route {run.route!r}, "
            f"set {', '.join(refused)}: owners.yaml gives them routes "
            f"{owner.owns.routes or '[]'} and sets {owner.owns.sets or '[]'}"
        )
    now = utcnow()
    rows = [
        BaselineRow(
            route=run.route,
            set=set_name,
            run_id=run.id,
            accepted_by=owner.id,
            reason=reason.strip(),
            accepted_at=now,
        )
        for set_name in run.sets
    ]
    table = BaselineRow.__table__  # type: ignore[attr-defined]
    with Session(engine) as session:
        for row in rows:
            session.execute(
                update(table)
                .where(table.c.route == row.route)
                .where(table.c.set == row.set)
                .where(table.c.superseded_at.is_(None))
                .values(superseded_at=now)
            )
            session.add(row)
        session.commit()
        for row in rows:
            session.refresh(row)
    return rows


def current_baseline(engine: Engine, *, route: str, set_name: str) -> BaselineRow | None:
    with Session(engine) as session:
        stmt = (
            select(BaselineRow)
            .where(col(BaselineRow.route) == route)
            .where(col(BaselineRow.set) == set_name)
            .where(col(BaselineRow.superseded_at).is_(None))
            .order_by(col(BaselineRow.accepted_at).desc(), col(BaselineRow.id).desc())
        )
        return session.exec(stmt.limit(1)).first()


def list_baselines(engine: Engine, *, route: str | None = None) -> list[BaselineRow]:
    """Every baseline ever accepted, newest first (current ones have no superseded_at)."""
    with Session(engine) as session:
        stmt = select(BaselineRow).order_by(
            col(BaselineRow.accepted_at).desc(), col(BaselineRow.id).desc()
        )
        if route is not None:
            stmt = stmt.where(col(BaselineRow.route) == route)
        return list(session.exec(stmt).all())


def baseline_runs(engine: Engine, rows: Sequence[BaselineRow]) -> dict[str, RunRow]:
    runs = {}
    for row in rows:
        run = get_run(engine, row.run_id)
        if run is not None:
            runs[row.run_id] = run
    return runs
