"""The tables: dataset versions and their cases, runs, and one row per case x sample.

Each class is both the SQLModel table and the typed record the rest of evalcore reads.
The schema itself is owned by the Alembic migrations in `migrations/versions`; a test
checks that the two agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from evalcore.store.types import JSONText


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DatasetVersionRow(SQLModel, table=True):
    """One distinct content of the case files (hash of their canonical form)."""

    __tablename__ = "dataset_version"

    hash: str = Field(primary_key=True, max_length=64)
    git_commit: str | None = Field(default=None, max_length=64)
    git_dirty: bool = False
    case_count: int
    created_at: dt.datetime = Field(default_factory=utcnow)


class DatasetCaseRow(SQLModel, table=True):
    """A case as it was in one dataset version: what a result is judged against."""

    __tablename__ = "dataset_case"

    dataset_hash: str = Field(primary_key=True, foreign_key="dataset_version.hash", max_length=64)
    case_id: str = Field(primary_key=True, max_length=128)
    case_hash: str = Field(max_length=64)
    set: str = Field(max_length=16)
    severity: str = Field(max_length=16)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONText, nullable=False))
    samples: int = 1
    body: dict[str, Any] = Field(sa_column=Column(JSONText, nullable=False))


class RunRow(SQLModel, table=True):
    """A run = route + target + dataset version + scorecard version + trigger (+ release)."""

    __tablename__ = "run"
    __table_args__ = (Index("ix_run_route_created", "route", "created_at"),)

    id: str = Field(primary_key=True, max_length=32)
    route: str = Field(max_length=128)
    target: dict[str, Any] = Field(sa_column=Column(JSONText, nullable=False))
    target_config: dict[str, Any] = Field(sa_column=Column(JSONText, nullable=False))
    dataset_hash: str = Field(foreign_key="dataset_version.hash", max_length=64)
    scorecard_version: str = Field(max_length=64)
    scorecard: dict[str, Any] = Field(sa_column=Column(JSONText, nullable=False))
    sets: list[str] = Field(sa_column=Column(JSONText, nullable=False))
    suite_path: str
    trigger: str = Field(default="cli", max_length=32)
    release: str | None = Field(default=None, index=True, max_length=128)
    git_commit: str | None = Field(default=None, max_length=64)
    settings: dict[str, Any] = Field(sa_column=Column(JSONText, nullable=False))
    status: str = Field(default="running", max_length=16)
    planned: int = 0
    created_at: dt.datetime = Field(default_factory=utcnow)
    finished_at: dt.datetime | None = None


class CaseResultRow(SQLModel, table=True):
    """One (case, sample) of a run: scored, or an error with its class, never both."""

    __tablename__ = "case_result"
    __table_args__ = (UniqueConstraint("run_id", "case_id", "sample", name="uq_result_pair"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", max_length=32)
    case_id: str = Field(max_length=128)
    sample: int
    set: str = Field(max_length=16)
    passed: bool | None = None
    error_class: str | None = Field(default=None, max_length=32)
    error_message: str | None = None
    output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONText))
    scores: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONText, nullable=False))
    latency_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    attempts: int = 1
    created_at: dt.datetime = Field(default_factory=utcnow)


class TriggerEventRow(SQLModel, table=True):
    """An event that started a gate run, claimed once: a duplicate firing finds it here.

    Two automations for the same event (say, a trigger left behind by an earlier `serve`)
    would each start a flow run; the second one finds the claim and does nothing.
    """

    __tablename__ = "trigger_event"

    event_id: str = Field(primary_key=True, max_length=64)
    event: str = Field(max_length=128)
    release: str | None = Field(default=None, max_length=128)
    run_id: str | None = Field(default=None, max_length=32)
    received_at: dt.datetime = Field(default_factory=utcnow)


class BaselineRow(SQLModel, table=True):
    """The run a route's set is compared with; accepting a new one supersedes, never deletes."""

    __tablename__ = "baseline"
    __table_args__ = (Index("ix_baseline_route_set", "route", "set", "accepted_at"),)

    id: int | None = Field(default=None, primary_key=True)
    route: str = Field(max_length=128)
    set: str = Field(max_length=16)
    run_id: str = Field(foreign_key="run.id", max_length=32)
    accepted_by: str = Field(max_length=64)  # owner id from owners.yaml
    reason: str
    accepted_at: dt.datetime = Field(default_factory=utcnow)
    superseded_at: dt.datetime | None = None


class RunStatsRow(SQLModel, table=True):
    """A finished run in a few numbers, computed once, so trends read one row per run.

    `passed`, `failed` and `errors` count samples; `pass_rate` is per case (the cases that
    passed under the scorecard's samples rule over those it decided, as the verdict
    judges), `sample_pass_rate` per sample. A cost named in `unpriced` is unknown: its
    `cost_usd` / `judge_cost_usd` hold only what was priced (nothing) and are no cost.
    """

    __tablename__ = "run_stats"
    __table_args__ = (Index("ix_run_stats_route_created", "route", "created_at"),)

    run_id: str = Field(primary_key=True, foreign_key="run.id", max_length=32)
    route: str = Field(max_length=128)
    sets: list[str] = Field(sa_column=Column(JSONText, nullable=False))
    created_at: dt.datetime  # the run's start, copied for range scans
    results: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    # Cases passed and failed under the samples rule; None on a row computed before they
    # were recorded (`ensure_run_stats` recomputes it from the run's results).
    cases_passed: int | None = None
    cases_failed: int | None = None
    pass_rate: float | None = None  # per case; None when no case was decided
    sample_pass_rate: float | None = None  # per sample; None when nothing was scored
    error_rate: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    cost_per_case_usd: float | None = None  # None also when the cost is unknown
    # {"target": why, "judge": why} for each cost the run could not price ({} when none);
    # see `evalcore.results.pricing`.
    unpriced: dict[str, str] | None = Field(default=None, sa_column=Column(JSONText))
    # pass@k and pass^k of the whole run over its cases with two or more scored samples
    # (`evalcore.results.reliability`); None when no case has.
    reliability_k: int | None = None
    pass_at_k: float | None = None
    pass_hat_k: float | None = None
    # Per set: {"pass_rate" (per case), "sample_pass_rate", "k", "pass_at_k", "pass_hat_k"};
    # None on a row computed before these figures were recorded (`ensure_run_stats`
    # recomputes it).
    set_stats: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONText))
    computed_at: dt.datetime = Field(default_factory=utcnow)


class DriftFindingRow(SQLModel, table=True):
    """One finding of a monitoring run against its baseline: drift, a dataset change, or a
    flaky case, with the numbers behind it."""

    __tablename__ = "drift_finding"
    __table_args__ = (
        Index("ix_drift_finding_run", "run_id"),
        Index("ix_drift_finding_scope", "kind", "scope"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", max_length=32)
    baseline_run_id: str | None = Field(default=None, max_length=32)
    route: str = Field(max_length=128)
    kind: str = Field(max_length=16)  # drift | dataset_change | flaky | evidence
    metric: str = Field(max_length=32)
    scope: str = Field(max_length=200)  # set:monitoring, tag:refunds, case:<id>, route
    baseline_value: float | None = None
    current_value: float | None = None
    effect: float | None = None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    severity: str = Field(max_length=16)
    detail: str = ""
    proposal: str | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)


class BacklogItemRow(SQLModel, table=True):
    """A production failure taken in, with its provenance, until an owner decides on it."""

    __tablename__ = "backlog_item"
    __table_args__ = (
        Index("ix_backlog_item_state", "state", "received_at"),
        Index("ix_backlog_item_fingerprint", "fingerprint"),
    )

    id: str = Field(primary_key=True, max_length=32)  # BL-000123
    ticket: str | None = Field(default=None, index=True, max_length=64)
    reporter: str = Field(max_length=128)
    route: str = Field(max_length=128)
    messages: list[dict[str, Any]] = Field(sa_column=Column(JSONText, nullable=False))
    observed_output: str
    what_was_wrong: str
    suggested_expect: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONText))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONText, nullable=False))
    normalized_text: str
    fingerprint: str = Field(max_length=64)
    # open | blocked | monitored | kept | dismissed | duplicate
    state: str = Field(default="open", max_length=16)
    duplicate_of: str | None = Field(default=None, max_length=160)  # case:<id> | item:<id>
    similarity: float | None = None
    case_id: str | None = Field(default=None, max_length=128)  # the eval case it became
    source: str = Field(default="cli", max_length=16)  # cli | http | flow
    provenance: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONText, nullable=False)
    )
    received_at: dt.datetime = Field(default_factory=utcnow)


class DecisionRow(SQLModel, table=True):
    """An owner's decision on one item: one per item, applied to the files later."""

    __tablename__ = "decision"
    __table_args__ = (UniqueConstraint("item_kind", "item_ref", name="uq_decision_item"),)

    id: int | None = Field(default=None, primary_key=True)
    item_kind: str = Field(max_length=16)  # backlog | drift | flaky | threshold
    item_ref: str = Field(max_length=200)
    action: str = Field(max_length=32)
    value: str | None = Field(default=None, max_length=200)
    decided_by: str = Field(max_length=64)  # owner id
    slack_user: str | None = Field(default=None, max_length=32)
    source: str = Field(max_length=16)  # button | reply | cli
    slack_channel: str | None = Field(default=None, max_length=32)
    slack_ts: str | None = Field(default=None, max_length=32)
    reason: str = ""
    decided_at: dt.datetime = Field(default_factory=utcnow)
    applied_at: dt.datetime | None = None
    applied_detail: str | None = None


class DecisionAttemptRow(SQLModel, table=True):
    """Every attempt to decide, including refused ones and conflicts: the audit log."""

    __tablename__ = "decision_attempt"

    id: int | None = Field(default=None, primary_key=True)
    item_kind: str | None = Field(default=None, max_length=16)
    item_ref: str | None = Field(default=None, max_length=200)
    action: str | None = Field(default=None, max_length=32)
    slack_user: str | None = Field(default=None, max_length=32)
    source: str = Field(max_length=16)
    outcome: str = Field(max_length=16)  # accepted | refused | conflict | unknown
    message: str = ""
    at: dt.datetime = Field(default_factory=utcnow)


class DigestPostRow(SQLModel, table=True):
    """Where a week's digest went, so a re-run updates the same messages."""

    __tablename__ = "digest_post"
    __table_args__ = (UniqueConstraint("channel", "week", "part", name="uq_digest_part"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    week: str = Field(max_length=16)  # ISO week, e.g. 2026-W48
    part: int = 0
    ts: str = Field(max_length=32)
    content_hash: str = Field(max_length=64)
    posted_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime | None = None


class SlackRequestRow(SQLModel, table=True):
    """Signatures of interactivity requests already handled: a replay is refused."""

    __tablename__ = "slack_request"

    signature: str = Field(primary_key=True, max_length=80)
    timestamp: int
    received_at: dt.datetime = Field(default_factory=utcnow)


class RunLeaseRow(SQLModel, table=True):
    """Which gate is working on one release, dataset, scorecard and target, and until when.

    A second gate for the same key finds it held and waits for the holder's verdict. The
    holder renews `expires_at` while it works; one killed stops renewing, and the first
    gate to claim the expired lease takes it over. A released lease keeps its row (its
    `expires_at` set to the release), so the next gate takes it over like an expired one.
    """

    __tablename__ = "run_lease"

    lease_key: str = Field(primary_key=True, max_length=64)  # SHA-256 of the fields below
    release: str = Field(max_length=128)
    dataset_hash: str = Field(max_length=64)
    scorecard_version: str = Field(max_length=64)
    # The target as runs store it: masked URL, model, masked judge URL.
    target: dict[str, Any] = Field(sa_column=Column(JSONText, nullable=False))
    holder: str = Field(max_length=200)
    run_id: str | None = Field(default=None, max_length=32)  # once the holder opened it
    acquired_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
    released_at: dt.datetime | None = None
