"""Runs of the periodic jobs (issue 11): what ran, when, as of which time, started by whom, and how
much it did — so ``lianka jobs list`` can show each job's last run.

A row is inserted when a run starts and completed when it ends; a run that died stays ``running``.
Dry runs write nothing, so they are not recorded. Platform data: system scope reads and writes every
row; a merchant sees only the runs limited to it. No DELETE: this is the operators' history.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merchant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="running"),
        sa.Column("targets", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total", sa.BigInteger, nullable=True),
        sa.Column("counts", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("error", sa.Text, nullable=True),
        sa.CheckConstraint("trigger IN ('scheduler', 'cli')", name="ck_job_runs_trigger"),
        sa.CheckConstraint("status IN ('running', 'done', 'failed')", name="ck_job_runs_status"),
    )
    op.create_index("ix_job_runs_job_started_at", "job_runs", ["job", sa.text("started_at DESC")])
    for statement in rls.tenant_or_system_table("job_runs", column="merchant_id", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("job_runs")
