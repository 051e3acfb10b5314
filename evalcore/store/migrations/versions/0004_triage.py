"""Backlog items, decisions and their audit log, digest posts, handled Slack requests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evalcore.store.types import JSONText

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backlog_item",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("ticket", sa.String(64), nullable=True),
        sa.Column("reporter", sa.String(128), nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("messages", JSONText(), nullable=False),
        sa.Column("observed_output", sa.String(), nullable=False),
        sa.Column("what_was_wrong", sa.String(), nullable=False),
        sa.Column("suggested_expect", JSONText(), nullable=True),
        sa.Column("tags", JSONText(), nullable=False),
        sa.Column("normalized_text", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("duplicate_of", sa.String(160), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("case_id", sa.String(128), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("provenance", JSONText(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_backlog_item_ticket", "backlog_item", ["ticket"])
    op.create_index("ix_backlog_item_state", "backlog_item", ["state", "received_at"])
    op.create_index("ix_backlog_item_fingerprint", "backlog_item", ["fingerprint"])
    op.create_table(
        "decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_kind", sa.String(16), nullable=False),
        sa.Column("item_ref", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("value", sa.String(200), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("slack_user", sa.String(32), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("slack_channel", sa.String(32), nullable=True),
        sa.Column("slack_ts", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_detail", sa.String(), nullable=True),
        sa.UniqueConstraint("item_kind", "item_ref", name="uq_decision_item"),
    )
    op.create_table(
        "decision_attempt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_kind", sa.String(16), nullable=True),
        sa.Column("item_ref", sa.String(200), nullable=True),
        sa.Column("action", sa.String(32), nullable=True),
        sa.Column("slack_user", sa.String(32), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "digest_post",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("week", sa.String(16), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("channel", "week", "part", name="uq_digest_part"),
    )
    op.create_table(
        "slack_request",
        sa.Column("signature", sa.String(80), primary_key=True),
        sa.Column("timestamp", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_request")
    op.drop_table("digest_post")
    op.drop_table("decision_attempt")
    op.drop_table("decision")
    op.drop_index("ix_backlog_item_fingerprint", table_name="backlog_item")
    op.drop_index("ix_backlog_item_state", table_name="backlog_item")
    op.drop_index("ix_backlog_item_ticket", table_name="backlog_item")
    op.drop_table("backlog_item")
