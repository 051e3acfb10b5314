"""Graduation: which cases to *propose* for promotion, from the suite and stored history.

Two steps up, each only ever a proposal that an owner decides in the weekly digest:

- **to monitoring**: a backlog case whose `source.kind` is one of the scorecard's
  `graduation.to_monitoring.sources` (generated fixtures, by default);
- **to blocking**: a monitoring case that passed every sample of every nightly monitoring
  run of the route on each of the last `graduation.to_blocking.nights` nights that had
  one, as the case is written now. A failed or errored sample, a flip between samples, a
  night the case did not run, or fewer nights of history than asked for, and it is not
  proposed (yet). A night is a date in the scorecard's `drift.timezone`; every run of a
  night that ran the case counts, so a failing night is never made good by a re-run.
  Nights with no run do not break the streak: the nights counted are the ones that ran.

"Nightly" runs are the ones the digest reads too: finished runs of exactly the
monitoring set, started by the nightly flow or `evalcore monitor`, or analysed by the
monitor (findings stored). A night counts only when the case's content then was what it
is now (its hash in the run's stored dataset): a case whose expectation was edited two
nights ago has two nights of evidence.

A promotion is an item like any other (`graduate:<set>:<case_id>`): one decision per
item, `promote` or `keep`. A decided case is not proposed again for the same step, as a
decided backlog item or flaky case is not shown again: `keep` is final for that step.
Each direction is capped at its `max_per_digest`, in a fixed order (severity, then id);
those held back are counted, and come up as the ones shown are decided.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import case as when
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from evalcore.results.nightly import is_nightly
from evalcore.results.run_stats import as_utc
from evalcore.results.trends import zone
from evalcore.store.tables import (
    CaseResultRow,
    DatasetCaseRow,
    DatasetVersionRow,
    DecisionRow,
    RunRow,
    utcnow,
)
from evalcore.suite import Case, EvalSet, Severity, Suite, case_hash
from evalcore.suite.scorecard import Scorecard

__all__ = [
    "DATING_NIGHTS",
    "GRADUATION_KIND",
    "Proposal",
    "Proposals",
    "graduation_ref",
    "next_set",
    "parse_graduation_ref",
    "previous_set",
    "promotion_owners",
    "promotion_ref",
    "propose",
]

GRADUATION_KIND = "graduation"
REF_PREFIX = "graduate:"
DATING_NIGHTS = 7  # nights looked at beyond the streak, to date a proposal up to a week back
_NEXT = {EvalSet.backlog: EvalSet.monitoring, EvalSet.monitoring: EvalSet.blocking}
_PREVIOUS = {target: source for source, target in _NEXT.items()}
_SEVERITY_ORDER = {s: n for n, s in enumerate(Severity)}  # critical first

_RUN = RunRow.__table__  # type: ignore[attr-defined]
_RESULT = CaseResultRow.__table__  # type: ignore[attr-defined]
_DATASET_CASE = DatasetCaseRow.__table__  # type: ignore[attr-defined]
_DATASET = DatasetVersionRow.__table__  # type: ignore[attr-defined]
_DECISION = DecisionRow.__table__  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- refs


def graduation_ref(case_id: str, to_set: EvalSet) -> str:
    """`graduate:blocking:<case_id>`: the item an owner decides on."""
    return f"{REF_PREFIX}{to_set.value}:{case_id}"


def parse_graduation_ref(ref: str) -> tuple[EvalSet, str] | None:
    """(target set, case id) of a graduation ref; None when `ref` is not one."""
    if not ref.startswith(REF_PREFIX):
        return None
    target, _, case_id = ref.removeprefix(REF_PREFIX).partition(":")
    if target not in (EvalSet.monitoring.value, EvalSet.blocking.value) or not case_id:
        return None
    return EvalSet(target), case_id


def next_set(current: EvalSet) -> EvalSet | None:
    """The set a case of `current` is promoted to; None for a blocking case."""
    return _NEXT.get(current)


def previous_set(target: EvalSet) -> EvalSet:
    """The set a case is promoted *from* to reach `target` (monitoring or blocking)."""
    return _PREVIOUS[target]


def promotion_ref(case: Case) -> str | None:
    """The ref for promoting `case` one step up from where it is; None when blocking."""
    target = next_set(case.set)
    return None if target is None else graduation_ref(case.id, target)


def promotion_owners(scorecard: Scorecard, case: Case, to_set: EvalSet) -> tuple[str, ...]:
    """Owner ids the files name for this promotion: the case's own owner, the
    scorecard's `graduation.owner`, and the owner of the target set's threshold."""
    rule = scorecard.thresholds.get(to_set.value)
    named = (case.owner, scorecard.graduation.owner, rule.owner if rule else None)
    return tuple(dict.fromkeys(n for n in named if n))


# --------------------------------------------------------------------------- proposals


@dataclass(frozen=True)
class Proposal:
    """One case proposed one step up, with when it became proposable and why."""

    ref: str
    case: Case
    from_set: EvalSet
    to_set: EvalSet
    since: dt.datetime
    evidence: str
    nights: tuple[dt.date, ...] = ()  # to blocking: the passing nights, newest first


@dataclass(frozen=True)
class Proposals:
    """What the digest proposes, capped per direction; `held_back` counts the eligible
    cases left out by the cap."""

    to_monitoring: list[Proposal] = field(default_factory=list)
    to_blocking: list[Proposal] = field(default_factory=list)
    held_back: dict[EvalSet, int] = field(default_factory=dict)

    @property
    def shown(self) -> list[Proposal]:
        return [*self.to_monitoring, *self.to_blocking]

    def eligible(self, to_set: EvalSet) -> int:
        """Every eligible case for `to_set`, those held back by the cap included."""
        listed = self.to_monitoring if to_set is EvalSet.monitoring else self.to_blocking
        return len(listed) + self.held_back.get(to_set, 0)


def propose(engine: Engine, suite: Suite, *, now: dt.datetime | None = None) -> Proposals:
    """The promotions to propose as of `now`, for the suite's route."""
    end = as_utc(now) if now is not None else utcnow()
    rules = suite.scorecard.graduation
    decided = _decided_refs(engine)
    to_monitoring, held_monitoring = _capped(
        _to_monitoring(engine, suite, end, decided), rules.to_monitoring.max_per_digest
    )
    to_blocking, held_blocking = _capped(
        _to_blocking(engine, suite, end, decided), rules.to_blocking.max_per_digest
    )
    held = {EvalSet.monitoring: held_monitoring, EvalSet.blocking: held_blocking}
    return Proposals(to_monitoring, to_blocking, {k: v for k, v in held.items() if v})


def _capped(proposals: Iterable[Proposal], cap: int) -> tuple[list[Proposal], int]:
    ordered = sorted(proposals, key=lambda p: (_SEVERITY_ORDER[p.case.severity], p.case.id))
    return ordered[:cap], max(len(ordered) - cap, 0)


def _decided_refs(engine: Engine) -> set[str]:
    d = _DECISION.c
    with engine.connect() as conn:
        rows = conn.execute(select(d.item_ref).where(d.item_kind == GRADUATION_KIND))
        return {row.item_ref for row in rows}


# --------------------------------------------------------------------------- to monitoring


def _to_monitoring(
    engine: Engine, suite: Suite, end: dt.datetime, decided: set[str]
) -> list[Proposal]:
    sources = set(suite.scorecard.graduation.to_monitoring.sources)
    candidates = [
        case
        for case in suite.select(sets=[EvalSet.backlog])
        if case.source.kind in sources
        and graduation_ref(case.id, EvalSet.monitoring) not in decided
    ]
    if not candidates:
        return []
    first_stored = _first_stored(engine, EvalSet.backlog, end)
    proposals = []
    for case in candidates:
        since = first_stored.get((case.id, case_hash(case)), end)
        proposals.append(
            Proposal(
                ref=graduation_ref(case.id, EvalSet.monitoring),
                case=case,
                from_set=EvalSet.backlog,
                to_set=EvalSet.monitoring,
                since=since,
                evidence=f"a backlog case of source kind {case.source.kind.value}",
            )
        )
    return proposals


def _first_stored(
    engine: Engine, set_name: EvalSet, end: dt.datetime
) -> dict[tuple[str, str], dt.datetime]:
    """(case id, case hash) -> when a dataset version holding it in `set_name` was first
    stored: how long the case has waited, as it is written now."""
    c, v = _DATASET_CASE.c, _DATASET.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.case_id, c.case_hash, func.min(v.created_at))
            .select_from(_DATASET_CASE.join(_DATASET, v.hash == c.dataset_hash))
            .where(c.set == set_name.value, v.created_at <= end)
            .group_by(c.case_id, c.case_hash)
        ).all()
    return {(case_id, digest): as_utc(at) for case_id, digest, at in rows}


# --------------------------------------------------------------------------- to blocking


@dataclass(frozen=True)
class _NightRun:
    run_id: str
    dataset_hash: str
    created_at: dt.datetime


def _to_blocking(
    engine: Engine, suite: Suite, end: dt.datetime, decided: set[str]
) -> list[Proposal]:
    needed = suite.scorecard.graduation.to_blocking.nights
    candidates = {
        case.id: case
        for case in suite.select(sets=[EvalSet.monitoring])
        if graduation_ref(case.id, EvalSet.blocking) not in decided
    }
    if not candidates:
        return []
    nights = _nightly_runs(engine, suite, end, needed + DATING_NIGHTS)
    if len(nights) < needed:
        return []  # too little history for any case
    runs = [run for _, night_runs in nights for run in night_runs]
    samples = _sample_counts(engine, [run.run_id for run in runs])
    hashes = _stored_hashes(engine, {run.dataset_hash for run in runs})
    proposals = []
    for case_id, case in candidates.items():
        current = case_hash(case)
        streak = 0
        for _, night_runs in nights:
            if not _passed_night(night_runs, case, current, samples, hashes):
                break
            streak += 1
        if streak < needed:
            continue
        # Proposable since the last run of the night that made the streak long enough.
        since = max(run.created_at for run in nights[streak - needed][1])
        counted = tuple(night for night, _ in nights[:needed])
        proposals.append(
            Proposal(
                ref=graduation_ref(case_id, EvalSet.blocking),
                case=case,
                from_set=EvalSet.monitoring,
                to_set=EvalSet.blocking,
                since=since,
                evidence=(
                    f"passed every sample of every nightly run on the last {needed} night(s) "
                    f"({counted[-1]:%Y-%m-%d} to {counted[0]:%Y-%m-%d})"
                    + (f", {streak} night(s) in a row" if streak > needed else "")
                ),
                nights=counted,
            )
        )
    return proposals


def _passed_night(
    night_runs: list[_NightRun],
    case: Case,
    current_hash: str,
    samples: dict[tuple[str, str], tuple[int, int]],
    hashes: dict[tuple[str, str], str],
) -> bool:
    """Whether the night's runs ran `case` as it is written now, and every sample of it
    passed in each run that ran it."""
    ran = [run for run in night_runs if (run.run_id, case.id) in samples]
    return bool(ran) and all(
        samples[(run.run_id, case.id)][1] == samples[(run.run_id, case.id)][0] >= case.samples
        and hashes.get((run.dataset_hash, case.id)) == current_hash
        for run in ran
    )


def _nightly_runs(
    engine: Engine, suite: Suite, end: dt.datetime, nights: int
) -> list[tuple[dt.date, list[_NightRun]]]:
    """The route's nightly monitoring runs of the last `nights` nights that had one,
    grouped by night (the scorecard's timezone), newest night first."""
    tz = zone(suite.scorecard.drift.timezone)
    r = _RUN.c
    stmt = (
        select(r.id, r.dataset_hash, r.created_at, r.sets)
        .where(r.route == suite.scorecard.route, r.status == "finished", r.created_at <= end)
        .where(is_nightly())
        .order_by(r.created_at.desc(), r.id.desc())
    )
    grouped: list[tuple[dt.date, list[_NightRun]]] = []
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            if list(row.sets) != [EvalSet.monitoring.value]:
                continue
            at = as_utc(row.created_at)
            night = at.astimezone(tz).date()
            if not grouped or grouped[-1][0] != night:
                if len(grouped) == nights:
                    break
                grouped.append((night, []))
            grouped[-1][1].append(_NightRun(row.id, row.dataset_hash, at))
    return grouped


def _sample_counts(engine: Engine, run_ids: list[str]) -> dict[tuple[str, str], tuple[int, int]]:
    """(run id, case id) -> (samples, samples passed) of every case each run ran (an
    error is not a pass)."""
    c = _RESULT.c
    passed = func.sum(when((c.passed.is_(True), 1), else_=0))
    found: dict[tuple[str, str], tuple[int, int]] = {}
    with engine.connect() as conn:
        for start in range(0, len(run_ids), 500):
            rows = conn.execute(
                select(c.run_id, c.case_id, func.count(), passed)
                .where(c.run_id.in_(run_ids[start : start + 500]))
                .group_by(c.run_id, c.case_id)
            )
            for run_id, case_id, samples, ok in rows:
                found[(run_id, case_id)] = (int(samples), int(ok or 0))
    return found


def _stored_hashes(engine: Engine, dataset_hashes: set[str]) -> dict[tuple[str, str], str]:
    """(dataset hash, case id) -> case hash, for the monitoring cases of those datasets."""
    c = _DATASET_CASE.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.dataset_hash, c.case_id, c.case_hash).where(
                c.dataset_hash.in_(sorted(dataset_hashes)), c.set == EvalSet.monitoring.value
            )
        )
        return {(dataset, case_id): digest for dataset, case_id, digest in rows}
