"""Programme catalogue and CRM operations: rewards, redemptions, check-ins, member imports.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from lianka.platform import rls

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False)


def _id() -> sa.Column[object]:
    return sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()"))


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _membership_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "member_id"], ["memberships.tenant_id", "memberships.member_id"], name=f"fk_{table}_membership"
    )


def upgrade() -> None:
    op.create_table(
        "rewards",
        _tenant(),
        _id(),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("points_cost", sa.BigInteger, nullable=False),
        sa.Column("stock_total", sa.Integer, nullable=True),
        sa.Column("redeemed_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pickup_branch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("coupon_template_id", UUID(as_uuid=True), nullable=True),
        sa.Column("sv_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("tier_codes", ARRAY(sa.String(32)), nullable=False, server_default="{}"),
        sa.Column("per_member_limit", sa.Integer, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_rewards"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_rewards_tenant_id_code"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "pickup_branch_id"], ["branches.tenant_id", "branches.id"], name="fk_rewards_pickup_branch"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "coupon_template_id"],
            ["coupon_templates.tenant_id", "coupon_templates.id"],
            name="fk_rewards_template",
        ),
        sa.CheckConstraint("kind IN ('gift', 'coupon', 'stored_value')", name="ck_rewards_kind"),
        sa.CheckConstraint("points_cost > 0 AND sv_amount >= 0", name="ck_rewards_amounts"),
        sa.CheckConstraint("stock_total IS NULL OR redeemed_count <= stock_total", name="ck_rewards_stock"),
        sa.CheckConstraint("per_member_limit IS NULL OR per_member_limit > 0", name="ck_rewards_limit"),
        sa.CheckConstraint("kind <> 'coupon' OR coupon_template_id IS NOT NULL", name="ck_rewards_coupon"),
        sa.CheckConstraint("kind <> 'stored_value' OR sv_amount > 0", name="ck_rewards_sv"),
    )
    op.create_table(
        "reward_redemptions",
        _tenant(),
        _id(),
        sa.Column("reward_id", UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("entry_id", UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("coupon_id", UUID(as_uuid=True), nullable=True),
        sa.Column("sv_entry_id", UUID(as_uuid=True), nullable=True),
        sa.Column("pickup_branch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False, server_default=""),
        _now("created_at"),
        sa.Column("picked_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_reward_redemptions"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "reward_id"], ["rewards.tenant_id", "rewards.id"], name="fk_reward_redemptions_reward"
        ),
        _membership_fk("reward_redemptions"),
        sa.CheckConstraint(
            "status IN ('awaiting_pickup', 'delivered', 'cancelled')", name="ck_reward_redemptions_status"
        ),
        sa.CheckConstraint("points > 0", name="ck_reward_redemptions_points"),
    )
    op.create_index("ix_reward_redemptions_member", "reward_redemptions", ["tenant_id", "member_id", "reward_id"])
    op.create_table(
        "member_checkins",
        _tenant(),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("streak", sa.Integer, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("entry_id", UUID(as_uuid=True), nullable=True),
        _now("at"),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", "day", name="pk_member_checkins"),
        _membership_fk("member_checkins"),
        sa.CheckConstraint("streak > 0 AND points >= 0", name="ck_member_checkins_values"),
    )
    op.create_table(
        "member_imports",
        _tenant(),
        _id(),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_members", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("actor", sa.String(200), nullable=False),
        _now("created_at"),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_member_imports"),
        sa.CheckConstraint("mode IN ('all_or_nothing', 'skip_invalid')", name="ck_member_imports_mode"),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="ck_member_imports_status"),
        sa.CheckConstraint("processed BETWEEN 0 AND total", name="ck_member_imports_progress"),
    )
    for table in ("rewards", "member_imports", "reward_redemptions"):
        for s in rls.tenant_table(table):
            op.execute(s)
    for s in rls.tenant_table("member_checkins", append_only=True):
        op.execute(s)


def downgrade() -> None:
    for table in ("member_imports", "member_checkins", "reward_redemptions", "rewards"):
        op.drop_table(table)
