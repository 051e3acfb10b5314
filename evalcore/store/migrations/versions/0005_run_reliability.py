"""pass@k and pass^k in the per-run stats: for the whole run and per set.

Rows already in `run_stats` are kept (the last nightly's latency and cost stay readable at
once) with `set_stats` NULL, which marks them as computed before these figures existed:
`ensure_run_stats` recomputes them, like a missing row, the first time a trend needs them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evalcore.store.types import JSONText

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_stats") as table:
        table.add_column(sa.Column("reliability_k", sa.Integer(), nullable=True))
        table.add_column(sa.Column("pass_at_k", sa.Float(), nullable=True))
        table.add_column(sa.Column("pass_hat_k", sa.Float(), nullable=True))
        table.add_column(sa.Column("set_stats", JSONText(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_stats") as table:
        table.drop_column("set_stats")
        table.drop_column("pass_hat_k")
        table.drop_column("pass_at_k")
        table.drop_column("reliability_k")
