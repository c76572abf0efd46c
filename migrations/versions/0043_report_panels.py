"""The dashboard's member panels (issue 17): a nightly snapshot of each merchant's members by lifecycle
stage and of the RFM grid, and indexes for the period-bound panels (tier movements, rewards redeemed).

* ``report_member_snapshots`` — one row per merchant, rewritten by the nightly RFM job: members in
  total and per lifecycle stage, and the RFM grid (members per recency × frequency score) as JSON;
  the dashboard reads this row instead of counting a million members per view (decision 0058).
* ``ix_tier_changes_at`` / ``ix_reward_redemptions_at`` — the period's tier movements and rewards
  redeemed are read by time.

Revision ID: 0043
Revises: 0042
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_member_snapshots",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("lifecycle", JSONB, nullable=False),
        sa.Column("rfm", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_report_member_snapshots"),
    )
    for statement in rls.tenant_table("report_member_snapshots"):
        op.execute(statement)
    op.create_index("ix_tier_changes_at", "tier_changes", ["tenant_id", "at"])
    op.create_index("ix_reward_redemptions_at", "reward_redemptions", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_reward_redemptions_at", "reward_redemptions")
    op.drop_index("ix_tier_changes_at", "tier_changes")
    op.drop_table("report_member_snapshots")
