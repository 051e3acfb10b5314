"""Per-run stats say pass rate per case and per sample, and which costs are unknown.

`run_stats.pass_rate` held the per-sample rate (passed / (passed + failed) samples). A
pass rate is now per case, under the scorecard's samples rule, as the verdict judges it:
the old column is renamed `sample_pass_rate` (its values are exactly that) and
`pass_rate` is added for the per-case rate, with the case counts it comes from
(`cases_passed`, `cases_failed`). `unpriced` names the costs the run could not price
(a model with no entry under `prices`); its `cost_usd` is then not a cost.

Rows already there keep their per-sample figures, latency and cost, with `cases_passed`
NULL: the per-case rate cannot be told from them, so `ensure_run_stats` recomputes them
from the run's stored results (never deleted) the first time a trend or the digest needs
them, as it does for a missing row. Nothing is read back here, so upgrading a store with
years of runs takes no longer than altering the table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evalcore.store.types import JSONText

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_stats") as table:
        table.alter_column(
            "pass_rate",
            new_column_name="sample_pass_rate",
            existing_type=sa.Float(),
            existing_nullable=True,
        )
    with op.batch_alter_table("run_stats") as table:
        table.add_column(sa.Column("pass_rate", sa.Float(), nullable=True))
        table.add_column(sa.Column("cases_passed", sa.Integer(), nullable=True))
        table.add_column(sa.Column("cases_failed", sa.Integer(), nullable=True))
        table.add_column(sa.Column("unpriced", JSONText(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_stats") as table:
        table.drop_column("unpriced")
        table.drop_column("cases_failed")
        table.drop_column("cases_passed")
        table.drop_column("pass_rate")
    with op.batch_alter_table("run_stats") as table:
        table.alter_column(
            "sample_pass_rate",
            new_column_name="pass_rate",
            existing_type=sa.Float(),
            existing_nullable=True,
        )
