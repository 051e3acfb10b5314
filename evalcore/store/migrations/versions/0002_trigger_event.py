"""Events that triggered gate runs, each claimed once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trigger_event",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event", sa.String(128), nullable=False),
        sa.Column("release", sa.String(128), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trigger_event")
