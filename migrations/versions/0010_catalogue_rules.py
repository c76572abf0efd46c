"""Earning-rule awards and their cap counters; cancelled reward redemptions.

``rule_awards`` is the append-only record of every award an earning rule made (points and/or a
coupon): its unique ``(rule_code, award_key)`` makes an award exactly-once, and per-member and
per-day caps are summed from it. ``rule_counters`` holds one row per rule with a total cap, so the
total is checked and raised under that row's lock (see docs/decisions/0009-earning-rule-caps.md).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "rule_awards",
        _tenant(),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("rule_code", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("award_key", sa.String(240), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("entry_id", UUID(as_uuid=True), nullable=True),
        sa.Column("coupon_id", UUID(as_uuid=True), nullable=True),
        sa.Column("refs", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_rule_awards"),
        sa.UniqueConstraint("tenant_id", "rule_code", "award_key", name="uq_rule_awards_key"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"],
            ["memberships.tenant_id", "memberships.member_id"],
            name="fk_rule_awards_membership",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "coupon_id"], ["coupons.tenant_id", "coupons.id"], name="fk_rule_awards_coupon"
        ),
        sa.CheckConstraint("points >= 0", name="ck_rule_awards_points"),
    )
    op.create_index("ix_rule_awards_member", "rule_awards", ["tenant_id", "rule_code", "member_id", "day"])
    op.create_table(
        "rule_counters",
        _tenant(),
        sa.Column("rule_code", sa.String(40), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("awards", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("tenant_id", "rule_code", name="pk_rule_counters"),
        sa.CheckConstraint("points >= 0 AND awards >= 0", name="ck_rule_counters_values"),
    )
    for s in rls.tenant_table("rule_awards", append_only=True):
        op.execute(s)
    for s in rls.tenant_table("rule_counters"):
        op.execute(s)
    op.execute("REVOKE DELETE ON rule_counters FROM lianka_app")

    op.add_column("reward_redemptions", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("reward_redemptions", sa.Column("cancel_entry_id", UUID(as_uuid=True), nullable=True))
    op.add_column("reward_redemptions", sa.Column("sv_amount", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_reward_redemptions_status", "reward_redemptions", ["tenant_id", "status", "created_at"])
    op.create_index("ix_coupons_template_member", "coupons", ["tenant_id", "template_id", "member_id"])


def downgrade() -> None:
    op.drop_index("ix_coupons_template_member", "coupons")
    op.drop_index("ix_reward_redemptions_status", "reward_redemptions")
    for column in ("sv_amount", "cancel_entry_id", "cancelled_at"):
        op.drop_column("reward_redemptions", column)
    op.drop_table("rule_counters")
    op.drop_table("rule_awards")
