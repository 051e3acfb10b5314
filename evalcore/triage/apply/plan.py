"""What applying the pending decisions would do to the files, worked out without writing.

A backlog item decided `block` / `monitor` becomes a new case appended to
`cases/production.yaml`; a flaky case decided `demote` moves from the blocking set to
monitoring, and a case decided `promote` one step up (backlog to monitoring, monitoring
to blocking), each by its `set:` edited in place in the file where it lives; a threshold
decision edits `scorecard.yaml`, leaving a short end-of-line comment that says who
changed it. Other decisions (keep, dismiss, drift) change only database state.

Conflicts. A decision is judged against what its decider saw: the newest run of the
route started at or before the decision (its `dataset_case` rows and scorecard
snapshot). When the files were edited by hand since then in a way that touches a
decided case or key (the flaky or promoted case is gone, moved or changed; the target
case id of a backlog item turned up with other content; the threshold differs from the
value the decider saw), the decision is a conflict, and with any conflict nothing is
written. Without such a run only what the files alone show is checked. Nothing new is
recorded for this.

Recovery. An apply killed after writing the files but before marking the decisions
leaves them pending; the next plan recognises what is already written and marks it
without writing again: a new case with the content decided, a demoted or promoted case
whose set alone differs from the decider's run, a threshold at the decided value with its own audit
comment (which keeps naming the value before it).

Refusals. A decision that cannot be applied by itself (no suggested expectation, a value
out of range, an unknown key, a file written in a form these edits do not touch) is
refused and left pending; the others still apply.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from evalcore.store.tables import BacklogItemRow, DatasetCaseRow, DecisionRow, RunRow
from evalcore.suite import Case, EvalSet, Severity, Suite, case_hash
from evalcore.triage.apply.edits import (
    CannotEdit,
    CaseFileEdit,
    check_rendered,
    dump,
    eol_comment,
    load_for_edit,
    render_case,
    set_eol_comment,
)
from evalcore.triage.apply.files import FileChange, decode, encode, read_bytes
from evalcore.triage.graduation import GRADUATION_KIND, parse_graduation_ref, previous_set

PRODUCTION_FILE = "production.yaml"
PRODUCTION_HEADER = """\
# Production failures promoted from the backlog by an owner's decision (`evalcore decisions
# apply`). Each case names its ticket in `source.ref` and its backlog item in `notes`.
# Edit them like any other case; new ones are appended at the end.
"""

Status = Literal["apply", "refused", "conflict"]

BACKLOG_ACTIONS = {"block", "monitor", "keep", "dismiss"}
FLAKY_ACTIONS = {"demote", "keep"}
DRIFT_ACTIONS = {"accept_baseline", "investigate"}
GRADUATION_ACTIONS = {"promote", "keep"}
THRESHOLD_SET_ACTIONS = {"threshold", "set", "change", "raise", "lower"}
THRESHOLD_ACTIONS = THRESHOLD_SET_ACTIONS | {"keep"}

_REASON_CHARS = 60
_CASE_ID = re.compile(r"[^a-z0-9_.:\-]+")


@dataclass(frozen=True)
class PlannedDecision:
    """One pending decision and what applying it does (or why it cannot be applied)."""

    id: int
    kind: str
    ref: str
    action: str
    value: str | None
    decided_by: str
    decided_at: dt.datetime
    status: Status
    detail: str
    file: Path | None = None
    item_state: str | None = None  # backlog items: the state they move to
    case_id: str | None = None  # backlog items: the case they became
    # What the re-loaded suite must show once applied: (case id, set) or (key, value).
    expect_case: tuple[str, EvalSet] | None = field(default=None, repr=False)
    expect_threshold: tuple[str, str, float] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.ref} ({self.action})"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "ref": self.ref,
            "action": self.action,
            "value": self.value,
            "decided_by": self.decided_by,
            "status": self.status,
            "detail": self.detail,
            "file": None if self.file is None else str(self.file),
            "case_id": self.case_id,
        }


@dataclass(frozen=True)
class ApplyPlan:
    """Every pending decision's outcome, and each file's bytes before and after."""

    root: Path
    dataset_before: str
    scorecard_before: str
    decisions: list[PlannedDecision]
    changes: list[FileChange]

    @property
    def to_apply(self) -> list[PlannedDecision]:
        return [d for d in self.decisions if d.status == "apply"]

    @property
    def refused(self) -> list[PlannedDecision]:
        return [d for d in self.decisions if d.status == "refused"]

    @property
    def conflicts(self) -> list[PlannedDecision]:
        return [d for d in self.decisions if d.status == "conflict"]

    def diff(self) -> str:
        base = self.root.parent
        return "".join(change.diff(base) for change in self.changes)


def pending_decisions(engine: Engine) -> list[DecisionRow]:
    """Decisions not applied yet, oldest first."""
    with Session(engine) as session:
        stmt = (
            select(DecisionRow)
            .where(col(DecisionRow.applied_at).is_(None))
            .order_by(col(DecisionRow.decided_at), col(DecisionRow.id))
        )
        return list(session.exec(stmt).all())


def list_decisions(engine: Engine, *, pending: bool = False) -> list[DecisionRow]:
    """Every decision (or only the pending ones), newest first."""
    with Session(engine) as session:
        stmt = select(DecisionRow).order_by(
            col(DecisionRow.decided_at).desc(), col(DecisionRow.id).desc()
        )
        if pending:
            stmt = stmt.where(col(DecisionRow.applied_at).is_(None))
        return list(session.exec(stmt).all())


def plan_apply(engine: Engine, suite: Suite, *, skip: Sequence[str] = ()) -> ApplyPlan:
    """What applying every pending decision would do; writes nothing.

    `skip` leaves decisions out (as `kind:ref`, `ref` or the decision id): they stay pending.
    """
    skipped = set(skip)
    decisions = [
        d
        for d in pending_decisions(engine)
        if not skipped & {d.item_ref, f"{d.item_kind}:{d.item_ref}", str(d.id)}
    ]
    return _Planner(engine, suite).plan(decisions)


# -- planning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    """The newest run of the route at or before a decision: what its decider saw."""

    run_id: str
    created_at: dt.datetime
    dataset_hash: str
    scorecard: dict[str, Any]
    cases: dict[str, tuple[str, str]]  # case id -> (case hash, set)

    def describe(self) -> str:
        return f"run {self.run_id[:12]} of {_utc(self.created_at):%Y-%m-%d %H:%M} UTC"


class _Refuse(Exception):
    """This decision cannot be applied; the others may be."""


class _Conflict(Exception):
    """The files changed by hand since this decision, touching what it decided."""


class _Planner:
    def __init__(self, engine: Engine, suite: Suite) -> None:
        self.engine = engine
        self.suite = suite
        self.root = suite.root
        self.files: dict[Path, CaseFileEdit] = {}
        self.touched_cases: set[str] = set()
        self.touched_keys: set[tuple[str, str]] = set()
        self.new_ids: set[str] = set()
        self.dataset_cases: dict[str, dict[str, tuple[str, str]]] = {}
        self.scorecard_doc: Any = None
        self.scorecard_raw: bytes | None = None
        self.scorecard_bom = False
        self.scorecard_edited = False
        self.other_items_cases = self._cases_of_items()

    def plan(self, decisions: list[DecisionRow]) -> ApplyPlan:
        planned = [self._plan_one(d) for d in decisions]
        changes: list[FileChange] = []
        if not any(p.status == "conflict" for p in planned):
            for case_file in self.files.values():
                if case_file.spans or case_file.appended:
                    after = encode(case_file.result(), case_file.bom)
                    if after != case_file.raw:
                        changes.append(FileChange(case_file.path, case_file.raw, after))
            if self.scorecard_edited:
                after = encode(dump(self.scorecard_doc), self.scorecard_bom)
                changes.append(FileChange(self._scorecard_path, self.scorecard_raw, after))
        return ApplyPlan(
            root=self.root,
            dataset_before=self.suite.version.hash,
            scorecard_before=self.suite.scorecard_version,
            decisions=planned,
            changes=changes,
        )

    def _plan_one(self, decision: DecisionRow) -> PlannedDecision:
        assert decision.id is not None

        def planned(status: Status, detail: str, **extra: Any) -> PlannedDecision:
            return PlannedDecision(
                id=decision.id or 0,
                kind=decision.item_kind,
                ref=decision.item_ref,
                action=decision.action,
                value=decision.value,
                decided_by=decision.decided_by,
                decided_at=decision.decided_at,
                status=status,
                detail=detail,
                **extra,
            )

        handlers = {
            "backlog": self._backlog,
            "flaky": self._flaky,
            "threshold": self._threshold,
            "drift": self._drift,
            GRADUATION_KIND: self._graduation,
        }
        handler = handlers.get(decision.item_kind)
        try:
            if handler is None:
                raise _Refuse(
                    f"unknown item kind {decision.item_kind!r} (known: {', '.join(handlers)})"
                )
            detail, extra = handler(decision)
        except _Refuse as exc:
            return planned("refused", str(exc))
        except _Conflict as exc:
            return planned("conflict", str(exc))
        return planned("apply", detail, **extra)

    # -- backlog items -----------------------------------------------------------------

    def _backlog(self, decision: DecisionRow) -> tuple[str, dict[str, Any]]:
        action = decision.action
        if action not in BACKLOG_ACTIONS:
            raise _Refuse(_unknown_action(action, BACKLOG_ACTIONS))
        with Session(self.engine) as session:
            item = session.get(BacklogItemRow, decision.item_ref)
        if item is None:
            raise _Refuse(f"no backlog item {decision.item_ref!r} in the database")
        if action in ("keep", "dismiss"):
            state = "kept" if action == "keep" else "dismissed"
            return f"{item.id} is {state}; no file changes", {"item_state": state}
        target = EvalSet.blocking if action == "block" else EvalSet.monitoring
        if not item.suggested_expect:
            raise _Refuse(
                f"{item.id} has no suggested expectation: add one to the item's "
                '`suggested_expect` (e.g. {"outcome": "answer", "contains": ["..."]}) '
                f"before it can {action}"
            )
        if item.route != self.suite.scorecard.route:
            raise _Refuse(
                f"{item.id} is a failure of route {item.route!r}, but this suite evaluates "
                f"{self.suite.scorecard.route!r}"
            )
        severity = _severity(decision.value)
        snapshot = self._snapshot(decision)
        case_id, existing = self._target_id(item, snapshot, decision)
        body = self._case_body(item, case_id, target, severity, decision)
        try:
            case = Case.model_validate(body)
        except ValidationError as exc:
            raise _Refuse(f"{item.id} does not make a valid case: {_first_error(exc)}") from None
        state = "blocked" if target is EvalSet.blocking else "monitored"
        extra: dict[str, Any] = {
            "item_state": state,
            "case_id": case_id,
            "expect_case": (case_id, target),
        }
        if existing is not None:
            if case_hash(existing) != case_hash(case):
                file = self.suite.case_files[case_id]
                raise _Conflict(
                    f"{_rel(file, self.root)}: case {case_id!r}, the case {item.id} becomes, "
                    "already exists there with different content (written by hand since the "
                    "decision?); remove or rename it, or decide again"
                )
            extra["file"] = self.suite.case_files[case_id]
            return f"{case_id} is already in {_rel(extra['file'], self.root)}", extra
        path = self.root / "cases" / PRODUCTION_FILE
        entry = render_case(body)
        try:
            check_rendered(entry, case, path)
            self._case_file(path).append(
                entry, header=PRODUCTION_HEADER, where=_rel(path, self.root)
            )
        except CannotEdit as exc:
            raise _Refuse(str(exc)) from None
        self.new_ids.add(case_id)
        extra["file"] = path
        return (
            f"new {target.value} case {case_id} ({severity.value}) in {_rel(path, self.root)}",
            extra,
        )

    def _target_id(
        self, item: BacklogItemRow, snapshot: _Snapshot | None, decision: DecisionRow
    ) -> tuple[str, Case | None]:
        """The case id the item becomes, and the case already holding it in the files.

        An id the item names (`case_id`) is kept. Otherwise one is derived from the ticket
        and made unique against cases that existed when the decision was made (the
        snapshot), cases other backlog items became, and cases added in this batch. A case
        with the id that appeared any other way was written by hand since: the caller
        compares it with what would be written.
        """
        if item.case_id:
            return item.case_id, self.suite.get(item.case_id)
        base = _CASE_ID.sub("-", (item.ticket or item.id).lower()).strip("-._:")[:120]
        if not base or not base[0].isalnum():
            base = f"case-{base}".strip("-")
        for n in range(1, 1000):
            candidate = base if n == 1 else f"{base}-{n}"
            if candidate in self.new_ids or self.other_items_cases.get(candidate, item.id) != (
                item.id
            ):
                continue
            existing = self.suite.get(candidate)
            if existing is None:
                return candidate, None
            if snapshot is not None and candidate in snapshot.cases:
                continue  # there when the decision was made: another case, not this one
            return candidate, existing
        raise _Refuse(f"no free case id for {item.id} from {base!r}")  # pragma: no cover

    def _case_body(
        self,
        item: BacklogItemRow,
        case_id: str,
        target: EvalSet,
        severity: Severity,
        decision: DecisionRow,
    ) -> dict[str, Any]:
        source: dict[str, Any] = {
            "kind": "production",
            "ref": item.ticket or item.id,
            "captured": _utc(item.received_at).date(),
        }
        if item.reporter:
            source["reporter"] = item.reporter
        body: dict[str, Any] = {"id": case_id, "set": target.value, "severity": severity.value}
        if item.tags:
            body["tags"] = sorted(set(item.tags))
        if self.suite.owners.get(decision.decided_by) is not None:
            body["owner"] = decision.decided_by
        body["source"] = source
        body["input"] = {"messages": item.messages}
        body["expect"] = item.suggested_expect
        wrong = " ".join(item.what_was_wrong.split())
        decided = f"{decision.action} by {decision.decided_by} on {_day(decision.decided_at)}"
        body["notes"] = f"{item.id}: {wrong} ({decided})" if wrong else f"{item.id} ({decided})"
        return body

    # -- flaky cases -------------------------------------------------------------------

    def _flaky(self, decision: DecisionRow) -> tuple[str, dict[str, Any]]:
        action = decision.action
        if action not in FLAKY_ACTIONS:
            raise _Refuse(_unknown_action(action, FLAKY_ACTIONS))
        case_id = decision.item_ref.removeprefix("flaky:").removeprefix("case:")
        if action == "keep":
            return f"{case_id} stays where it is; no file changes", {}
        target = EvalSet.monitoring
        if decision.value and decision.value.strip():
            try:
                target = EvalSet(decision.value.strip())
            except ValueError:
                raise _Refuse(f"cannot demote to {decision.value!r}") from None
            if target is EvalSet.blocking:
                raise _Refuse("cannot demote to the blocking set")
        snapshot = self._snapshot(decision)
        seen = snapshot.cases.get(case_id) if snapshot is not None else None
        seen_in = snapshot.describe() if snapshot is not None else ""
        if seen is not None and seen[1] != EvalSet.blocking.value:
            raise _Refuse(
                f"{case_id} was in the {seen[1]} set when demoted ({seen_in}); "
                "only a blocking case is demoted"
            )
        return self._move(case_id, EvalSet.blocking, target, seen, seen_in, "flaky case", "demote")

    # -- promotions --------------------------------------------------------------------

    def _graduation(self, decision: DecisionRow) -> tuple[str, dict[str, Any]]:
        action = decision.action
        if action not in GRADUATION_ACTIONS:
            raise _Refuse(_unknown_action(action, GRADUATION_ACTIONS))
        parsed = parse_graduation_ref(decision.item_ref)
        if parsed is None:
            raise _Refuse(
                f"unknown promotion {decision.item_ref!r}: write `graduate:monitoring:<case>` "
                "or `graduate:blocking:<case>`"
            )
        target, case_id = parsed
        source = previous_set(target)
        if action == "keep":
            return f"{case_id} is kept in the {source.value} set; no file changes", {}
        snapshot = self._snapshot(decision)
        seen = snapshot.cases.get(case_id) if snapshot is not None else None
        seen_in = snapshot.describe() if snapshot is not None else ""
        if seen is not None and seen[1] != source.value:
            raise _Refuse(
                f"{case_id} was in the {seen[1]} set when promoted ({seen_in}); "
                f"only a {source.value} case is promoted to {target.value}"
            )
        return self._move(case_id, source, target, seen, seen_in, "case", "promote")

    def _move(
        self,
        case_id: str,
        source: EvalSet,
        target: EvalSet,
        seen: tuple[str, str] | None,
        seen_in: str,
        what: str,
        verb: str,
    ) -> tuple[str, dict[str, Any]]:
        """Move `case_id` from `source` to `target` by its own `set:` line, or recognise
        that an interrupted apply already did, or say how the files changed by hand."""
        case = self.suite.get(case_id)
        if case is None:
            raise _Conflict(
                f"the {what} {case_id} to {verb} is no longer in the suite (removed or "
                "renamed by hand since the decision)"
            )
        file = self.suite.case_files[case_id]
        where = _rel(file, self.root)
        as_seen = case.model_copy(update={"set": source})
        if case.set is target and seen is not None and seen[0] == case_hash(as_seen):
            # Written by an apply interrupted before it marked the decision: only the set
            # differs from what the decider saw. (Without a run to compare with, a case
            # out of the source set cannot be told from a hand edit: a conflict below.)
            if case_id in self.touched_cases:
                raise _Refuse(f"another decision in this batch already moves {case_id}")
            self.touched_cases.add(case_id)
            return (
                f"{case_id} is already in the {target.value} set in {where}",
                {"file": file, "expect_case": (case_id, target)},
            )
        if case.set is not source:
            raise _Conflict(
                f"{where}: the {what} {case_id} to {verb} is in the {case.set.value} set, "
                f"not {source.value}: its set was changed by hand since the decision"
            )
        if seen is not None and seen[0] != case_hash(case):
            raise _Conflict(
                f"{where}: {case_id} was edited by hand since the decision (it differs from "
                f"{seen_in}); decide again on the case as it is now"
            )
        if case_id in self.touched_cases:
            raise _Refuse(f"another decision in this batch already moves {case_id}")
        try:
            self._case_file(file).move_to_set(case_id, target, where, source=source)
        except CannotEdit as exc:
            raise _Refuse(str(exc)) from None
        self.touched_cases.add(case_id)
        return (
            f"{case_id} moves from {source.value} to {target.value} in {where}",
            {"file": file, "expect_case": (case_id, target)},
        )

    # -- thresholds --------------------------------------------------------------------

    def _threshold(self, decision: DecisionRow) -> tuple[str, dict[str, Any]]:
        action = decision.action
        if action not in THRESHOLD_ACTIONS:
            raise _Refuse(_unknown_action(action, THRESHOLD_ACTIONS))
        section, name, key = _threshold_key(decision.item_ref)
        label = f"{section}.{name}.{key}"
        rules = getattr(self.suite.scorecard, section)
        if name not in rules:
            what = "set" if section == "thresholds" else "tag"
            raise _Refuse(f"scorecard.yaml has no {label}: no threshold for {what} {name!r}")
        current = float(rules[name].min_pass_rate)
        if action == "keep":
            return f"{label} stays {rate_text(current)}; no file changes", {}
        shown, value = _threshold_value(decision.value)
        note = _audit_note(decision, value)
        # The value before this decision: its own audit comment names it when an apply
        # interrupted before marking the decision already wrote it.
        written_over = (
            self._written_over(section, name, key, note)
            if math.isclose(current, value, abs_tol=1e-12)
            else None
        )
        before = current if written_over is None else written_over
        snapshot = self._snapshot(decision)
        if shown is None and snapshot is not None:
            seen = snapshot.scorecard.get(section, {}).get(name)
            shown = float(seen[key]) if isinstance(seen, dict) and key in seen else math.nan
            what_shown = f"in {snapshot.describe()}"
        else:
            what_shown = "in the decision"
        if shown is not None and not math.isclose(shown, before, abs_tol=1e-12):
            was = "did not exist" if math.isnan(shown) else f"was {rate_text(shown)}"
            raise _Conflict(
                f"scorecard.yaml: {label} is {rate_text(current)} but {was} when "
                f"{decision.decided_by} decided ({what_shown}): it was edited by hand since"
            )
        if (section, name) in self.touched_keys:
            raise _Refuse(f"another decision in this batch already changes {label}")
        if written_over is None:
            rule, holder, holder_key = self._threshold_rule(section, name, key)
            rule[key] = value
            set_eol_comment(holder, holder_key, f"{rate_text(current)}{note}")
            self.scorecard_edited = True
            detail = f"{label}: {rate_text(current)} -> {rate_text(value)} in scorecard.yaml"
        else:
            detail = (
                f"{label}: already {rate_text(value)} in scorecard.yaml "
                f"({rate_text(written_over)} -> {rate_text(value)}, written by an earlier apply)"
            )
        self.touched_keys.add((section, name))
        return detail, {"file": self._scorecard_path, "expect_threshold": (section, name, value)}

    def _threshold_rule(self, section: str, name: str, key: str) -> tuple[CommentedMap, Any, Any]:
        """The rule's mapping in the scorecard, and the mapping and key whose line ends
        with its audit comment (the enclosing one when the rule is written `{...}`)."""
        doc = self._scorecard()
        rule = doc[section][name]
        if not isinstance(rule, CommentedMap) or key not in rule:  # pragma: no cover
            raise _Refuse(
                f"scorecard.yaml: {section}.{name}.{key} is not written where this command edits"
            )
        holder, holder_key = (doc[section], name) if rule.fa.flow_style() else (rule, key)
        if doc[section].fa.flow_style():
            holder, holder_key = doc, section
        return rule, holder, holder_key

    def _written_over(self, section: str, name: str, key: str, note: str) -> float | None:
        """The old value named by this decision's audit comment on the rule's line, when
        the comment is there: the decision is then already written."""
        try:
            _, holder, holder_key = self._threshold_rule(section, name, key)
        except _Refuse:  # a scorecard this command cannot edit holds no comment it wrote
            return None
        found = re.search(rf"(?:^|; )(\S+){re.escape(note)}$", eol_comment(holder, holder_key))
        try:
            return None if found is None else float(found.group(1))
        except ValueError:  # not a number: a comment of someone else's that looks alike
            return None

    @property
    def _scorecard_path(self) -> Path:
        return self.root / "scorecard.yaml"

    def _scorecard(self) -> Any:
        if self.scorecard_doc is None:
            raw = read_bytes(self._scorecard_path)
            if raw is None:  # pragma: no cover - the suite loaded
                raise _Refuse("scorecard.yaml is missing")
            self.scorecard_bom, text = decode(raw)
            try:
                doc = load_for_edit(text)
            except CannotEdit:
                raise _Refuse(
                    "scorecard.yaml does not survive a YAML round trip unchanged, so editing "
                    "it here would rewrite other lines; change the threshold by hand"
                ) from None
            self.scorecard_raw = raw
            self.scorecard_doc = doc
        return self.scorecard_doc

    # -- drift -------------------------------------------------------------------------

    def _drift(self, decision: DecisionRow) -> tuple[str, dict[str, Any]]:
        if decision.action not in DRIFT_ACTIONS:
            raise _Refuse(_unknown_action(decision.action, DRIFT_ACTIONS))
        if decision.action == "accept_baseline":
            return "nothing to write to the files: the baseline is recorded in the database", {}
        return "nothing to write to the files: under investigation", {}

    # -- shared ------------------------------------------------------------------------

    def _case_file(self, path: Path) -> CaseFileEdit:
        case_file = self.files.get(path)
        if case_file is None:
            raw = read_bytes(path)
            bom, text = decode(raw) if raw is not None else (False, "")
            case_file = CaseFileEdit(path, raw, bom, text)
            self.files[path] = case_file
        return case_file

    def _snapshot(self, decision: DecisionRow) -> _Snapshot | None:
        """The newest run of the suite's route started at or before the decision."""
        with Session(self.engine) as session:
            run = session.exec(
                select(RunRow)
                .where(col(RunRow.route) == self.suite.scorecard.route)
                .where(col(RunRow.created_at) <= decision.decided_at)
                .order_by(col(RunRow.created_at).desc())
                .limit(1)
            ).first()
            if run is None:
                return None
            cases = self.dataset_cases.get(run.dataset_hash)
            if cases is None:
                rows = session.exec(
                    select(
                        DatasetCaseRow.case_id, DatasetCaseRow.case_hash, DatasetCaseRow.set
                    ).where(col(DatasetCaseRow.dataset_hash) == run.dataset_hash)
                ).all()
                cases = {case_id: (digest, set_) for case_id, digest, set_ in rows}
                self.dataset_cases[run.dataset_hash] = cases
        return _Snapshot(run.id, run.created_at, run.dataset_hash, dict(run.scorecard), cases)

    def _cases_of_items(self) -> dict[str, str]:
        """Case id -> backlog item, for the items that already became cases."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(BacklogItemRow.case_id, BacklogItemRow.id).where(
                    col(BacklogItemRow.case_id).is_not(None)
                )
            ).all()
        return {case_id: item_id for case_id, item_id in rows if case_id}


# -- small parsers ----------------------------------------------------------------------


def _unknown_action(action: str, known: set[str]) -> str:
    return f"unknown action {action!r} (known: {', '.join(sorted(known))})"


def _severity(value: str | None) -> Severity:
    """`high`, `severity=high` or `severity: high`; medium when not given."""
    if value is None or not value.strip():
        return Severity.medium
    text = re.sub(r"^\s*severity\s*[=:]\s*", "", value).strip().lower()
    try:
        return Severity(text)
    except ValueError:
        known = ", ".join(s.value for s in Severity)
        raise _Refuse(f"unknown severity {value!r} (known: {known})") from None


def _threshold_key(ref: str) -> tuple[str, str, str]:
    """`monitoring.min_pass_rate`, `tag:refunds.min_pass_rate` (or with the section spelled
    out, or without the field) -> (section, name, field)."""
    text = ref.strip()
    key = "min_pass_rate"
    if text.endswith(f".{key}"):
        text = text[: -len(key) - 1]
    for prefix, section in (
        ("tag_thresholds.", "tag_thresholds"),
        ("tag:", "tag_thresholds"),
        ("thresholds.", "thresholds"),
        ("set:", "thresholds"),
    ):
        if text.startswith(prefix):
            text, found = text[len(prefix) :], section
            break
    else:
        found = "thresholds"
    if not text or ("." in text and found == "thresholds"):
        raise _Refuse(
            f"unknown threshold {ref!r}: write `monitoring.min_pass_rate` or "
            "`tag:refunds.min_pass_rate`"
        )
    return found, text, key


def _threshold_value(value: str | None) -> tuple[float | None, float]:
    """`0.92`, or `0.9->0.92` naming the value the decider saw; the new one in 0..1."""
    if value is None or not value.strip():
        raise _Refuse("a threshold decision needs the new value (e.g. 0.92)")
    shown_text, arrow, new_text = value.partition("->")
    if not arrow:
        shown_text, new_text = "", value
    try:
        new = float(new_text.strip())
        shown = float(shown_text.strip()) if shown_text.strip() else None
    except ValueError:
        raise _Refuse(f"threshold value {value!r} is not a number") from None
    if not 0.0 <= new <= 1.0 or math.isnan(new):
        raise _Refuse(f"threshold value {new_text.strip()} is not a pass rate between 0 and 1")
    return shown, new


def _audit_note(decision: DecisionRow, value: float) -> str:
    """What follows the old value in the comment a threshold change leaves on its line:
    ` -> NEW by OWNER on DAY: REASON`, the reason cut short."""
    reason = " ".join(decision.reason.split())
    if len(reason) > _REASON_CHARS:
        cut = reason[:_REASON_CHARS].rsplit(" ", 1)[0] or reason[:_REASON_CHARS]
        reason = cut.rstrip(" ,;:.") + "…"
    return f" -> {rate_text(value)} by {decision.decided_by} on {_day(decision.decided_at)}" + (
        f": {reason}" if reason else ""
    )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def rate_text(value: float) -> str:
    """A pass rate as the audit comments and messages write it: 0.9 -> `0.9`, 1 -> `1.0`."""
    return format(value, "g") if value != int(value) else f"{value:.1f}"


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _day(moment: dt.datetime) -> str:
    return _utc(moment).date().isoformat()


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
