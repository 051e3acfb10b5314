"""Dataset versions and cases, runs, case results.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evalcore.store.types import JSONText

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_version",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=False),
        sa.Column("case_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dataset_case",
        sa.Column(
            "dataset_hash", sa.String(64), sa.ForeignKey("dataset_version.hash"), primary_key=True
        ),
        sa.Column("case_id", sa.String(128), primary_key=True),
        sa.Column("case_hash", sa.String(64), nullable=False),
        sa.Column("set", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("tags", JSONText(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("body", JSONText(), nullable=False),
    )
    op.create_table(
        "run",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("target", JSONText(), nullable=False),
        sa.Column("target_config", JSONText(), nullable=False),
        sa.Column(
            "dataset_hash", sa.String(64), sa.ForeignKey("dataset_version.hash"), nullable=False
        ),
        sa.Column("scorecard_version", sa.String(64), nullable=False),
        sa.Column("scorecard", JSONText(), nullable=False),
        sa.Column("sets", JSONText(), nullable=False),
        sa.Column("suite_path", sa.String(), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("release", sa.String(128), nullable=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("settings", JSONText(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_run_release", "run", ["release"])
    op.create_index("ix_run_route_created", "run", ["route", "created_at"])
    op.create_table(
        "case_result",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("run.id"), nullable=False),
        sa.Column("case_id", sa.String(128), nullable=False),
        sa.Column("sample", sa.Integer(), nullable=False),
        sa.Column("set", sa.String(16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("error_class", sa.String(32), nullable=True),
        sa.Column("error_message", sa.String(), nullable=True),
        sa.Column("output", JSONText(), nullable=True),
        sa.Column("scores", JSONText(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("judge_cost_usd", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "case_id", "sample", name="uq_result_pair"),
    )


def downgrade() -> None:
    op.drop_table("case_result")
    op.drop_index("ix_run_route_created", table_name="run")
    op.drop_index("ix_run_release", table_name="run")
    op.drop_table("run")
    op.drop_table("dataset_case")
    op.drop_table("dataset_version")
