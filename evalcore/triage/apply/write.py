"""Applying a plan: its files written atomically, the suite re-loaded, and only then the
decisions marked applied.

A suite that no longer loads, a decision whose effect does not show in it, or a database
update that fails puts every file back as it was and marks nothing. One apply at a time
per suite folder; a file changed since the plan was made stops the apply before anything
is written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from evalcore.files import write_atomic
from evalcore.store.tables import BacklogItemRow, DecisionRow, utcnow
from evalcore.suite import Suite, SuiteError, load_suite
from evalcore.triage.apply.files import FileChange, read_bytes, restore, suite_lock
from evalcore.triage.apply.plan import ApplyPlan, PlannedDecision, rate_text


class ApplyError(Exception):
    """The decisions could not be applied; no file was left changed, nothing was marked."""


class ApplyConflict(ApplyError):
    """Files were edited by hand since a decision, touching what it decided: nothing written."""

    def __init__(self, conflicts: Sequence[PlannedDecision]) -> None:
        self.conflicts = list(conflicts)
        lines = [f"{len(self.conflicts)} conflict(s); nothing was written:"]
        lines.extend(f"  {c.label}: {c.detail}" for c in self.conflicts)
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ApplyReport:
    """What an apply did: the decisions applied and refused, the files changed, and the
    dataset and scorecard versions before and after."""

    applied: list[PlannedDecision]
    refused: list[PlannedDecision]
    changes: list[FileChange]
    root: Path
    dataset_before: str
    dataset_after: str
    scorecard_before: str
    scorecard_after: str

    def diff(self) -> str:
        base = self.root.parent
        return "".join(change.diff(base) for change in self.changes)


def apply_plan(engine: Engine, suite: Suite, plan: ApplyPlan) -> ApplyReport:
    """Write the plan's files, check the suite still loads, mark the decisions applied.

    Raises `ApplyConflict` when the plan has conflicts and `ApplyError` when the files
    changed since the plan, the written suite does not load, or the database update
    fails; in every case the files are as they were and nothing is marked applied.
    """
    if suite.root.resolve() != plan.root.resolve():
        raise ValueError(f"the plan is for {plan.root}, not for the suite at {suite.root}")
    if plan.conflicts:
        raise ApplyConflict(plan.conflicts)
    todo = plan.to_apply
    if not todo:
        return ApplyReport(
            [],
            plan.refused,
            [],
            plan.root,
            plan.dataset_before,
            plan.dataset_before,
            plan.scorecard_before,
            plan.scorecard_before,
        )
    with suite_lock(plan.root):
        for change in plan.changes:
            if read_bytes(change.path) != change.before:
                raise ApplyError(
                    f"{change.path} changed since the decisions were planned; run apply again"
                )
        written: list[FileChange] = []
        try:
            for change in plan.changes:
                write_atomic(change.path, change.after)
                written.append(change)
            try:
                reloaded = load_suite(plan.root)
            except SuiteError as exc:
                raise ApplyError(
                    "the suite would not load after applying the decisions, so every file "
                    f"was restored and nothing is marked applied.\n{exc}"
                ) from exc
            _check_applied(reloaded, todo)
            try:
                _mark_applied(engine, todo)
            except SQLAlchemyError as exc:
                raise ApplyError(
                    f"the database update failed, so every file was restored: {exc}"
                ) from exc
        except BaseException:
            for change in reversed(written):
                restore(change)
            raise
    return ApplyReport(
        todo,
        plan.refused,
        plan.changes,
        plan.root,
        plan.dataset_before,
        reloaded.version.hash,
        plan.scorecard_before,
        reloaded.scorecard_version,
    )


def _check_applied(suite: Suite, applied: list[PlannedDecision]) -> None:
    """The re-loaded suite shows every decision's effect, or nothing is kept."""
    for decision in applied:
        if decision.expect_case is not None:
            case_id, wanted = decision.expect_case
            case = suite.get(case_id)
            if case is None or case.set is not wanted:
                raise ApplyError(
                    f"{decision.label}: after writing, {case_id} is not in the {wanted.value} "
                    "set; every file was restored"
                )
        if decision.expect_threshold is not None:
            section, name, value = decision.expect_threshold
            rule = getattr(suite.scorecard, section).get(name)
            if rule is None or not math.isclose(rule.min_pass_rate, value, abs_tol=1e-12):
                raise ApplyError(
                    f"{decision.label}: after writing, {section}.{name} is not {rate_text(value)}; "
                    "every file was restored"
                )


def _mark_applied(engine: Engine, applied: list[PlannedDecision]) -> None:
    """One transaction: decisions applied (only if still pending), backlog items moved."""
    now = utcnow()
    decision_table = DecisionRow.__table__  # type: ignore[attr-defined]
    item_table = BacklogItemRow.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        for decision in applied:
            marked = conn.execute(
                update(decision_table)
                .where(decision_table.c.id == decision.id)
                .where(decision_table.c.applied_at.is_(None))
                .values(applied_at=now, applied_detail=decision.detail)
            ).rowcount
            if marked != 1:
                raise ApplyError(
                    f"{decision.label} was applied or withdrawn by someone else meanwhile; "
                    "every file was restored, run apply again"
                )
            if decision.kind == "backlog" and decision.item_state is not None:
                values: dict[str, Any] = {"state": decision.item_state}
                if decision.case_id is not None:
                    values["case_id"] = decision.case_id
                conn.execute(
                    update(item_table).where(item_table.c.id == decision.ref).values(**values)
                )
