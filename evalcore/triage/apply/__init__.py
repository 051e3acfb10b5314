"""Owners' decisions, recorded in the database, written into the versioned eval files.

`plan_apply` works out what every pending decision does to the files without writing
(`plan`: what each decision does, conflicts, refusals; `edits`: the byte-keeping edits of
case files and the scorecard); `apply_plan` writes them, re-loads the suite and only then
marks the decisions applied (`write`, over `files`: reading, locking, atomic writes, the
diff).
"""

from evalcore.triage.apply.plan import (
    ApplyPlan,
    PlannedDecision,
    list_decisions,
    pending_decisions,
    plan_apply,
)
from evalcore.triage.apply.write import ApplyConflict, ApplyError, ApplyReport, apply_plan

__all__ = [
    "ApplyConflict",
    "ApplyError",
    "ApplyPlan",
    "ApplyReport",
    "PlannedDecision",
    "apply_plan",
    "list_decisions",
    "pending_decisions",
    "plan_apply",
]
