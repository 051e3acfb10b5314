"""Owners' decisions, recorded in the database, written into the versioned eval files.

`plan_apply` reads every decision not applied yet and works out, without writing, what it
does to the files: a backlog item decided `block` / `monitor` becomes a new case appended
to `cases/production.yaml`; a flaky case decided `demote` moves from the blocking set to
monitoring (its `set:` edited in place); a threshold decision edits `scorecard.yaml` with
a ruamel round trip, leaving a short end-of-line comment that says who changed it. Other
decisions (keep, dismiss, drift) change only database state.

`apply_plan` writes the files atomically, re-loads the suite, and only then marks the
decisions applied. A suite that no longer loads, or a database update that fails, puts
every file back as it was and marks nothing.

Conflicts. A decision is judged against what its decider saw: the newest run of the
route started at or before the decision (its `dataset_case` rows and scorecard
snapshot). When the files were edited by hand since then in a way that touches a
decided case or key (the flaky case is gone, no longer blocking or changed; the target
case id of a backlog item turned up with other content; the threshold differs from the
value the decider saw), the whole apply is refused and nothing is written. Without such
a run only what the files alone show is checked. Nothing new is recorded for this.

Recovery. An apply killed after writing the files but before marking the decisions
leaves them pending; the next apply recognises what is already written and marks it
without writing again: a new case with the content decided, a flaky case whose set alone
differs from the decider's run, a threshold at the decided value with its own audit
comment (which keeps naming the value before it).

Refusals. A decision that cannot be applied by itself (no suggested expectation, a value
out of range, an unknown key) is refused and left pending; the others still apply.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import fcntl
import io
import math
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from evalcore.store.tables import BacklogItemRow, DatasetCaseRow, DecisionRow, RunRow, utcnow
from evalcore.suite import Case, EvalSet, Severity, Suite, SuiteError, case_hash, load_suite

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
THRESHOLD_SET_ACTIONS = {"threshold", "set", "change", "raise", "lower"}
THRESHOLD_ACTIONS = THRESHOLD_SET_ACTIONS | {"keep"}

_REASON_CHARS = 60
_QUOTED_SCORERS = {"contains", "not_contains", "regex"}
_STR_TAG = "tag:yaml.org,2002:str"
_OUR_COMMENT = re.compile(r"^#?\s*[0-9.]+ -> [0-9.]+ by ")
_CASE_ID = re.compile(r"[^a-z0-9_.:\-]+")


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
class FileChange:
    """A file's bytes before (None: the file is new) and after."""

    path: Path
    before: bytes | None
    after: bytes

    def diff(self, base: Path | None = None) -> str:
        name = str(self.path)
        if base is not None:
            with contextlib.suppress(ValueError):
                name = str(self.path.relative_to(base))
        old = [] if self.before is None else _decode(self.before)[1].splitlines(keepends=True)
        new = _decode(self.after)[1].splitlines(keepends=True)
        lines = difflib.unified_diff(
            old, new, "/dev/null" if self.before is None else f"a/{name}", f"b/{name}"
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass(frozen=True)
class ApplyPlan:
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


@dataclass(frozen=True)
class ApplyReport:
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
    with _suite_lock(plan.root):
        for change in plan.changes:
            if _read_bytes(change.path) != change.before:
                raise ApplyError(
                    f"{change.path} changed since the decisions were planned; run apply again"
                )
        written: list[FileChange] = []
        try:
            for change in plan.changes:
                _write_atomic(change.path, change.after)
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
                _restore(change)
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


@dataclass
class _CaseFile:
    """A case file being edited: its text as read, spans to replace, entries to append."""

    path: Path
    raw: bytes | None
    bom: bool
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    appended: list[str] = field(default_factory=list)

    def result(self) -> str:
        text = self.text
        for start, end, replacement in sorted(self.spans, reverse=True):
            text = text[:start] + replacement + text[end:]
        newline = "\r\n" if "\r\n" in self.text else "\n"
        for entry in self.appended:
            if text and not text.endswith("\n"):
                text += newline
            if text.strip() and not text.endswith(newline * 2):
                text += newline
            text += entry.replace("\n", newline)
        return text


class _Refuse(Exception):
    """This decision cannot be applied; the others may be."""


class _Conflict(Exception):
    """The files changed by hand since this decision, touching what it decided."""


class _Planner:
    def __init__(self, engine: Engine, suite: Suite) -> None:
        self.engine = engine
        self.suite = suite
        self.root = suite.root
        self.files: dict[Path, _CaseFile] = {}
        self.composed: dict[Path, tuple[yaml.Node | None, dict[str, yaml.MappingNode]]] = {}
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
                    after = _encode(case_file.result(), case_file.bom)
                    if after != case_file.raw:
                        changes.append(FileChange(case_file.path, case_file.raw, after))
            if self.scorecard_edited:
                out = io.StringIO()
                _yaml().dump(self.scorecard_doc, out)
                after = _encode(out.getvalue(), self.scorecard_bom)
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
        entry = _render_case(body)
        _check_rendered(entry, case)
        path = self.root / "cases" / PRODUCTION_FILE
        case_file = self._case_file(path)
        self._prepare_append(case_file)
        case_file.appended.append(entry)
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

    def _prepare_append(self, case_file: _CaseFile) -> None:
        """An empty file gets the header; `[]` is dropped; a flow list cannot take entries."""
        if not case_file.text.strip() and not case_file.appended:
            case_file.text = PRODUCTION_HEADER + case_file.text.lstrip("\n")
            return
        try:
            root = yaml.compose(case_file.text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:  # pragma: no cover - the suite loaded
            raise _Refuse(f"cannot read {case_file.path}: {exc}") from None
        if root is None:
            return
        if isinstance(root, yaml.SequenceNode):
            if not root.flow_style:
                return
            if not root.value:
                span = (root.start_mark.index, root.end_mark.index, "")
                if span not in case_file.spans:
                    case_file.spans.append(span)
                return
        raise _Refuse(
            f"{_rel(case_file.path, self.root)} is not a block list of cases; "
            "new cases cannot be appended to it"
        )

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
        case = self.suite.get(case_id)
        if case is None:
            raise _Conflict(
                f"the flaky case {case_id} to demote is no longer in the suite (removed or "
                "renamed by hand since the decision)"
            )
        file = self.suite.case_files[case_id]
        where = _rel(file, self.root)
        as_seen = case.model_copy(update={"set": EvalSet.blocking})
        if case.set is target and seen is not None and seen[0] == case_hash(as_seen):
            # Written by an apply interrupted before it marked the decision: only the set
            # differs from what the decider saw. (Without a run to compare with, a case
            # out of the blocking set cannot be told from a hand edit: a conflict below.)
            if case_id in self.touched_cases:
                raise _Refuse(f"another decision in this batch already moves {case_id}")
            self.touched_cases.add(case_id)
            return (
                f"{case_id} is already in the {target.value} set in {where}",
                {"file": file, "expect_case": (case_id, target)},
            )
        if case.set is not EvalSet.blocking:
            raise _Conflict(
                f"{where}: the flaky case {case_id} to demote is in the {case.set.value} set, "
                "not blocking: its set was changed by hand since the decision"
            )
        if seen is not None and seen[0] != case_hash(case):
            raise _Conflict(
                f"{where}: {case_id} was edited by hand since the decision (it differs from "
                f"{seen_in}); decide again on the case as it is now"
            )
        if case_id in self.touched_cases:
            raise _Refuse(f"another decision in this batch already moves {case_id}")
        case_file = self._case_file(file)
        if file.suffix == ".jsonl":
            case_file.spans.append(_jsonl_set_span(case_file.text, case_id, target, where))
        else:
            case_file.spans.append(self._yaml_set_span(case_file, case_id, target, where))
        self.touched_cases.add(case_id)
        return (
            f"{case_id} moves from blocking to {target.value} in {where}",
            {"file": file, "expect_case": (case_id, target)},
        )

    def _yaml_set_span(
        self, case_file: _CaseFile, case_id: str, target: EvalSet, where: str
    ) -> tuple[int, int, str]:
        """Where `set: blocking` of the case is written, and its replacement."""
        root, cases = self._composed(case_file)
        mapping = cases.get(case_id)
        if mapping is None:  # pragma: no cover - the suite loaded it from this file
            raise _Refuse(f"{where}: cannot find case {case_id}")
        node = next(
            (v for k, v in mapping.value if isinstance(k, yaml.ScalarNode) and k.value == "set"),
            None,
        )
        if node is None or not isinstance(node, yaml.ScalarNode):
            raise _Refuse(
                f"{where}: the set of {case_id} comes from a YAML merge (<<), not its own "
                "`set:` line; change it by hand"
            )
        start, end = node.start_mark.index, node.end_mark.index
        written = case_file.text[start:end]
        if written.strip("'\"") != EvalSet.blocking.value or _shared(root, mapping, node):
            raise _Refuse(
                f"{where}:{node.start_mark.line + 1}: the `set:` of {case_id} is shared or "
                "written in a form this command does not edit; change it by hand"
            )
        return start, end, written.replace(EvalSet.blocking.value, target.value)

    def _composed(
        self, case_file: _CaseFile
    ) -> tuple[yaml.Node | None, dict[str, yaml.MappingNode]]:
        """The file's node tree (composed once, so node identity holds) and its cases by id."""
        composed = self.composed.get(case_file.path)
        if composed is None:
            found: dict[str, yaml.MappingNode] = {}
            root = yaml.compose(case_file.text, Loader=yaml.SafeLoader)
            for entry in root.value if isinstance(root, yaml.SequenceNode) else []:
                if not isinstance(entry, yaml.MappingNode):
                    continue
                for key, value in entry.value:
                    if key.value == "id" and isinstance(value, yaml.ScalarNode):
                        found.setdefault(value.value, entry)
            composed = self.composed[case_file.path] = (root, found)
        return composed

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
            return f"{label} stays {_num(current)}; no file changes", {}
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
            was = "did not exist" if math.isnan(shown) else f"was {_num(shown)}"
            raise _Conflict(
                f"scorecard.yaml: {label} is {_num(current)} but {was} when "
                f"{decision.decided_by} decided ({what_shown}): it was edited by hand since"
            )
        if (section, name) in self.touched_keys:
            raise _Refuse(f"another decision in this batch already changes {label}")
        if written_over is None:
            rule, holder, holder_key = self._threshold_rule(section, name, key)
            rule[key] = value
            _set_eol_comment(holder, holder_key, f"{_num(current)}{note}")
            self.scorecard_edited = True
            detail = f"{label}: {_num(current)} -> {_num(value)} in scorecard.yaml"
        else:
            detail = (
                f"{label}: already {_num(value)} in scorecard.yaml "
                f"({_num(written_over)} -> {_num(value)}, written by an earlier apply)"
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
        found = re.search(rf"(?:^|; )(\S+){re.escape(note)}$", _eol_comment(holder, holder_key))
        try:
            return None if found is None else float(found.group(1))
        except ValueError:  # not a number: a comment of someone else's that looks alike
            return None

    @property
    def _scorecard_path(self) -> Path:
        return self.root / "scorecard.yaml"

    def _scorecard(self) -> Any:
        if self.scorecard_doc is None:
            raw = _read_bytes(self._scorecard_path)
            if raw is None:  # pragma: no cover - the suite loaded
                raise _Refuse("scorecard.yaml is missing")
            self.scorecard_bom, text = _decode(raw)
            doc = _yaml().load(text)
            out = io.StringIO()
            _yaml().dump(doc, out)
            if out.getvalue() != text:
                raise _Refuse(
                    "scorecard.yaml does not survive a YAML round trip unchanged, so editing "
                    "it here would rewrite other lines; change the threshold by hand"
                )
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

    def _case_file(self, path: Path) -> _CaseFile:
        case_file = self.files.get(path)
        if case_file is None:
            raw = _read_bytes(path)
            bom, text = _decode(raw) if raw is not None else (False, "")
            case_file = _CaseFile(path, raw, bom, text)
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


# -- checks after writing, and the database update --------------------------------------


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
                    f"{decision.label}: after writing, {section}.{name} is not {_num(value)}; "
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


# -- files ------------------------------------------------------------------------------


@contextlib.contextmanager
def _suite_lock(root: Path) -> Iterator[None]:
    """One apply at a time per suite folder (an advisory lock on the folder itself)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then replace it: never a half-written file."""
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _restore(change: FileChange) -> None:
    if change.before is None:
        with contextlib.suppress(FileNotFoundError):
            change.path.unlink()
    else:
        _write_atomic(change.path, change.before)


_BOM = b"\xef\xbb\xbf"


def _decode(raw: bytes) -> tuple[bool, str]:
    if raw.startswith(_BOM):
        return True, raw[len(_BOM) :].decode("utf-8")
    return False, raw.decode("utf-8")


def _encode(text: str, bom: bool) -> bytes:
    return (_BOM if bom else b"") + text.encode("utf-8")


def _shared(root: yaml.Node | None, *nodes: yaml.Node) -> bool:
    """Whether any of `nodes` is used more than once under `root` (an anchor and an alias,
    or a merge `<<: *anchor`): editing it would change another case too."""
    wanted = {id(node) for node in nodes}
    seen: set[int] = set()
    uses: dict[int, int] = {}
    stack: list[yaml.Node] = [root] if root is not None else []
    while stack:
        current = stack.pop()
        if id(current) in wanted:
            uses[id(current)] = uses.get(id(current), 0) + 1
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.extend((key, value))
    return any(count > 1 for count in uses.values())


def _jsonl_set_span(text: str, case_id: str, target: EvalSet, where: str) -> tuple[int, int, str]:
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        try:
            entry = orjson.loads(line) if line.strip() else None
        except orjson.JSONDecodeError:
            entry = None
        if isinstance(entry, dict) and entry.get("id") == case_id:
            hits = list(re.finditer(r'("set"\s*:\s*)"blocking"', line))
            if len(hits) != 1:
                raise _Refuse(f"{where}:{number}: cannot find the set of {case_id} to change")
            start, end = hits[0].span()
            replacement = f'{hits[0].group(1)}"{target.value}"'
            return offset + start, offset + end, replacement
        offset += len(line)
    raise _Refuse(f"{where}: cannot find case {case_id}")  # pragma: no cover


# -- the YAML written -------------------------------------------------------------------


def _yaml() -> YAML:
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def _set_eol_comment(holder: Any, key: Any, comment: str) -> None:
    """Put `# comment` at the end of `key`'s line, keeping comments on the lines after it.

    A comment already there is kept (ours from an earlier change is replaced).
    """
    token = _eol_token(holder, key)
    rest = ""
    if token is not None:
        first, _, rest = token.value.partition("\n")
        first = first.strip()
        if first and not _OUR_COMMENT.match(first.lstrip("# ")):
            comment = f"{first.lstrip('# ')}; {comment}"
    holder.yaml_add_eol_comment(f"# {comment}", key)
    if token is not None:
        new = holder.ca.items[key][2]
        new.value = new.value.rstrip("\n") + "\n" + rest


def _eol_token(holder: Any, key: Any) -> Any:
    """ruamel's comment token after `key`'s value: its end-of-line comment, then the
    comment lines that follow it (None when there are none)."""
    entry = holder.ca.items.get(key)
    return entry[2] if entry is not None and len(entry) > 2 else None


def _eol_comment(holder: Any, key: Any) -> str:
    """The comment at the end of `key`'s line, without its `#` (empty when there is none)."""
    token = _eol_token(holder, key)
    return "" if token is None else str(token.value).partition("\n")[0].strip().lstrip("# ")


def _audit_note(decision: DecisionRow, value: float) -> str:
    """What follows the old value in the comment a threshold change leaves on its line:
    ` -> NEW by OWNER on DAY: REASON`, the reason cut short."""
    reason = " ".join(decision.reason.split())
    if len(reason) > _REASON_CHARS:
        cut = reason[:_REASON_CHARS].rsplit(" ", 1)[0] or reason[:_REASON_CHARS]
        reason = cut.rstrip(" ,;:.") + "…"
    return f" -> {_num(value)} by {decision.decided_by} on {_day(decision.decided_at)}" + (
        f": {reason}" if reason else ""
    )


def _render_case(body: dict[str, Any]) -> str:
    """One case as a YAML list entry in the style of the example suite's files."""

    def flow_seq(items: list[Any], quote: bool = False) -> CommentedSeq:
        seq = CommentedSeq([_quoted(i) if quote else _scalar(i) for i in items])
        seq.fa.set_flow_style()
        return seq

    def convert(value: Any, depth: int) -> Any:
        if isinstance(value, dict):
            mapping = CommentedMap((_scalar(k), convert(v, depth + 1)) for k, v in value.items())
            flat = all(not isinstance(v, dict | list) for v in value.values())
            if flat and depth >= 2 and len(orjson.dumps(value, default=str)) <= 90:
                mapping.fa.set_flow_style()
            return mapping
        if isinstance(value, list):
            if all(not isinstance(v, dict | list) for v in value):
                return flow_seq(value)
            return CommentedSeq(convert(v, depth + 1) for v in value)
        return _scalar(value)

    case = CommentedMap()
    for key, value in body.items():
        if key == "tags":
            case[key] = flow_seq(value)
        elif key == "source":
            case[key] = CommentedMap((k, _scalar(v)) for k, v in value.items())
            case[key].fa.set_flow_style()
        elif key == "input":
            messages = CommentedSeq()
            for message in value["messages"]:
                converted = CommentedMap(
                    (k, _quoted(v) if k == "content" else _scalar(v)) for k, v in message.items()
                )
                content = message.get("content")
                if isinstance(content, str) and len(content) <= 80 and "\n" not in content:
                    converted.fa.set_flow_style()
                messages.append(converted)
            case[key] = CommentedMap({"messages": messages})
        elif key == "expect":
            # The texts a reply is checked for are quoted, as in the example suite.
            case[key] = CommentedMap(
                (
                    (name, flow_seq(v, quote=True))
                    if isinstance(v, list) and name in _QUOTED_SCORERS
                    else (name, _quoted(v) if name == "exact" else convert(v, 2))
                )
                for name, v in value.items()
            )
        else:
            case[key] = _scalar(value)
    out = io.StringIO()
    _yaml().dump(case, out)
    lines = out.getvalue().splitlines()
    return "".join(("- " if n == 0 else "  ") + line + "\n" for n, line in enumerate(lines))


def _quoted(value: Any) -> Any:
    return DoubleQuotedScalarString(value) if isinstance(value, str) else value


_RESOLVER = yaml.resolver.Resolver()


def _scalar(value: Any) -> Any:
    """A string the suite's loader (YAML 1.1) would read as something else is quoted.

    ruamel writes YAML 1.2, where `yes`, `on` or `1_000` are plain strings; PyYAML, which
    reads the suite, would turn them into a bool or a number.
    """
    if (
        isinstance(value, str)
        and not isinstance(value, DoubleQuotedScalarString)
        and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) != _STR_TAG  # type: ignore[no-untyped-call]
    ):
        return DoubleQuotedScalarString(value)
    return value


def _check_rendered(entry: str, case: Case) -> None:
    """The text appended must read back as exactly the case that was validated."""
    try:
        data = yaml.safe_load(entry)
        again = Case.model_validate(data[0])
    except (yaml.YAMLError, ValidationError, IndexError, TypeError, KeyError) as exc:
        raise _Refuse(f"internal error: case {case.id} did not render as YAML: {exc}") from None
    if case_hash(again) != case_hash(case):  # pragma: no cover - a renderer bug
        raise _Refuse(f"internal error: case {case.id} reads back differently from YAML")


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


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _num(value: float) -> str:
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
