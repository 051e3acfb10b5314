"""Baselines, per-run stats for trends, and drift findings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evalcore.store.types import JSONText

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "baseline",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("set", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("run.id"), nullable=False),
        sa.Column("accepted_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_baseline_route_set", "baseline", ["route", "set", "accepted_at"])
    op.create_table(
        "run_stats",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("run.id"), primary_key=True),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("sets", JSONText(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("pass_rate", sa.Float(), nullable=True),
        sa.Column("error_rate", sa.Float(), nullable=True),
        sa.Column("latency_p50_ms", sa.Float(), nullable=True),
        sa.Column("latency_p95_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("judge_cost_usd", sa.Float(), nullable=False),
        sa.Column("cost_per_case_usd", sa.Float(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_run_stats_route_created", "run_stats", ["route", "created_at"])
    op.create_table(
        "drift_finding",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("run.id"), nullable=False),
        sa.Column("baseline_run_id", sa.String(32), nullable=True),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("baseline_value", sa.Float(), nullable=True),
        sa.Column("current_value", sa.Float(), nullable=True),
        sa.Column("effect", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("proposal", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_drift_finding_run", "drift_finding", ["run_id"])
    op.create_index("ix_drift_finding_scope", "drift_finding", ["kind", "scope"])


def downgrade() -> None:
    op.drop_index("ix_drift_finding_scope", table_name="drift_finding")
    op.drop_index("ix_drift_finding_run", table_name="drift_finding")
    op.drop_table("drift_finding")
    op.drop_index("ix_run_stats_route_created", table_name="run_stats")
    op.drop_table("run_stats")
    op.drop_index("ix_baseline_route_set", table_name="baseline")
    op.drop_table("baseline")
