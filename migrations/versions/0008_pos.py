"""POS: sales with their lines, stored-value top-ups, refunds.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False)


def _id() -> sa.Column[object]:
    return sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()"))


def _money(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "sales",
        _tenant(),
        _id(),
        sa.Column("member_id", UUID(as_uuid=True), nullable=True),
        sa.Column("branch_id", UUID(as_uuid=True), nullable=False),
        sa.Column("business_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _money("gross"),
        _money("member_discount"),
        _money("coupon_total"),
        _money("points_redeemed"),
        _money("points_cash"),
        _money("sv_principal"),
        _money("sv_bonus"),
        _money("due"),
        _money("qualifying_spend"),
        _money("points_earned"),
        _money("refunded"),
        sa.Column("payment_method", sa.String(32), nullable=False, server_default="cash"),
        sa.Column("programme_version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(24), nullable=False, server_default="completed"),
        sa.Column("offline", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("entries", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("coupons", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("promotions", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_sales"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"], name="fk_sales_branch"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"], ["memberships.tenant_id", "memberships.member_id"], name="fk_sales_membership"
        ),
        sa.CheckConstraint(
            "gross > 0 AND member_discount >= 0 AND coupon_total >= 0 AND points_redeemed >= 0 "
            "AND points_cash >= 0 AND sv_principal >= 0 AND sv_bonus >= 0 AND due >= 0 "
            "AND qualifying_spend >= 0 AND points_earned >= 0 AND refunded >= 0",
            name="ck_sales_amounts",
        ),
        sa.CheckConstraint(
            "gross = member_discount + coupon_total + points_cash + sv_principal + sv_bonus + due",
            name="ck_sales_conserved",
        ),
        sa.CheckConstraint("refunded <= gross - member_discount - coupon_total", name="ck_sales_refund_cap"),
        sa.CheckConstraint("status IN ('completed', 'partially_refunded', 'refunded')", name="ck_sales_status"),
    )
    op.create_index("ix_sales_member", "sales", ["tenant_id", "member_id", "business_time"])
    op.create_index("ix_sales_branch_time", "sales", ["tenant_id", "branch_id", "business_time"])
    op.create_table(
        "sale_lines",
        _tenant(),
        sa.Column("sale_id", UUID(as_uuid=True), nullable=False),
        sa.Column("line_no", sa.SmallInteger, nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False, server_default=""),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.BigInteger, nullable=False),
        sa.Column("refunded_qty", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("tenant_id", "sale_id", "line_no", name="pk_sale_lines"),
        sa.ForeignKeyConstraint(["tenant_id", "sale_id"], ["sales.tenant_id", "sales.id"], name="fk_sale_lines_sale"),
        sa.CheckConstraint("qty > 0 AND unit_price >= 0 AND refunded_qty BETWEEN 0 AND qty", name="ck_sale_lines_qty"),
    )
    op.create_table(
        "top_ups",
        _tenant(),
        _id(),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("branch_id", UUID(as_uuid=True), nullable=False),
        sa.Column("plan_code", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _money("principal"),
        _money("bonus"),
        sa.Column("payment_method", sa.String(32), nullable=False),
        sa.Column("business_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry_id", UUID(as_uuid=True), nullable=False),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_top_ups"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"], name="fk_top_ups_branch"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"], ["memberships.tenant_id", "memberships.member_id"], name="fk_top_ups_membership"
        ),
        sa.CheckConstraint("principal > 0 AND bonus >= 0", name="ck_top_ups_amounts"),
    )
    op.create_table(
        "refunds",
        _tenant(),
        _id(),
        sa.Column("sale_id", UUID(as_uuid=True), nullable=False),
        sa.Column("branch_id", UUID(as_uuid=True), nullable=False),
        _money("amount"),
        sa.Column("lines", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        _money("points_clawed_back"),
        _money("points_restored"),
        _money("sv_principal_restored"),
        _money("sv_bonus_restored"),
        sa.Column("points_debt", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("business_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_refunds"),
        sa.ForeignKeyConstraint(["tenant_id", "sale_id"], ["sales.tenant_id", "sales.id"], name="fk_refunds_sale"),
        sa.CheckConstraint("amount > 0", name="ck_refunds_amount"),
    )
    for table in ("sales", "sale_lines"):
        for s in rls.tenant_table(table):
            op.execute(s)
    for table in ("top_ups", "refunds"):
        for s in rls.tenant_table(table, append_only=True):
            op.execute(s)
    op.execute("REVOKE DELETE ON sales, sale_lines FROM lianka_app")


def downgrade() -> None:
    for table in ("refunds", "top_ups", "sale_lines", "sales"):
        op.drop_table(table)
