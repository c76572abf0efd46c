"""Paid membership (issue 15 §2): products, terms, the merchant's policy, and the savings a sale recorded.

* ``membership_products`` — what a merchant sells: code, name, period (monthly / yearly), price in
  minor units, perks (a tier granted for the term, an extra discount percent, a points multiplier, a
  monthly coupon pack, free-text gifts), active or retired. A change applies to new purchases only:
  each term keeps a copy of the perks it was sold with (``membership_terms.perks``).
* ``membership_terms`` — one bought period of one member: [starts_at, ends_at) in calendar months of
  the merchant's zone, the price paid, where it came from (the till or an online provider), the
  auto-renew flag, its status (active / canceled = no renewal but perks to the end / refunded /
  expired), and the progress of its monthly work: months of revenue recognised, coupon packs issued,
  the months refunded. A renewal bought while a term runs is a new term starting at its end.
* ``membership_settings`` — one row per merchant: the refund policy and the reminder lead time.
* ``membership_savings`` — per sale of a paid member: what the membership's perks saved (the extra
  discount, the multiplier's extra points and their cash value, coupons from packs). The portal's
  value-back meter sums these; the POS writes them with the sale.

All four are tenant tables with RLS (``tenant_id`` first in the key).

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def _tenant_fk() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "membership_products",
        _tenant_fk(),
        sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("tier_code", sa.String(32), nullable=True),
        sa.Column("extra_discount_percent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("points_multiplier", sa.Numeric(6, 2), nullable=False, server_default="1"),
        sa.Column("coupon_pack", JSONB, nullable=False, server_default="[]"),
        sa.Column("gifts", JSONB, nullable=False, server_default="[]"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("period IN ('monthly', 'yearly')", name="period"),
        sa.CheckConstraint("price > 0", name="price"),
        sa.CheckConstraint("extra_discount_percent BETWEEN 0 AND 90", name="discount"),
        sa.CheckConstraint("points_multiplier >= 1 AND points_multiplier <= 10", name="multiplier"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_membership_products_code"),
    )
    op.create_table(
        "membership_terms",
        _tenant_fk(),
        sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("product_id", UUID(as_uuid=True), nullable=False),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("product_name", sa.String(100), nullable=False),
        sa.Column("perks", JSONB, nullable=False),
        sa.Column("months", sa.Integer, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("payment_ref", sa.String(255), nullable=False),
        sa.Column("payment_method", sa.String(32), nullable=False, server_default="cash"),
        sa.Column("branch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("auto_renew", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(12), nullable=False, server_default="active"),
        sa.Column("recognised_months", sa.Integer, nullable=False, server_default="0"),
        sa.Column("packs_issued", sa.Integer, nullable=False, server_default="0"),
        sa.Column("refunded_months", sa.Integer, nullable=False, server_default="0"),
        sa.Column("refunded_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('active', 'canceled', 'refunded', 'expired')", name="status"),
        sa.CheckConstraint("months > 0 AND price > 0 AND ends_at > starts_at", name="term"),
        sa.CheckConstraint(
            "recognised_months >= 0 AND refunded_months >= 0 AND recognised_months + refunded_months <= months",
            name="schedule",
        ),
        sa.CheckConstraint("refunded_amount >= 0 AND refunded_amount <= price", name="refund"),
        sa.UniqueConstraint("tenant_id", "source", "payment_ref", name="uq_membership_terms_payment"),
    )
    # the POS's perk lookup (one indexed probe in the sale's context statement) and the portal's card
    op.create_index("ix_membership_terms_member", "membership_terms", ["tenant_id", "member_id", "ends_at"])
    op.create_index(
        "ix_membership_terms_open",
        "membership_terms",
        ["tenant_id", "ends_at"],
        postgresql_where=sa.text("status IN ('active', 'canceled')"),
    )
    op.create_table(
        "membership_settings",
        _tenant_fk(),
        sa.Column("refund_policy", sa.String(24), nullable=False, server_default="unused_months"),
        sa.Column("reminder_days", sa.Integer, nullable=False, server_default="7"),
        sa.CheckConstraint("refund_policy IN ('none', 'unused_months')", name="refund_policy"),
        sa.CheckConstraint("reminder_days BETWEEN 0 AND 60", name="reminder_days"),
    )
    op.create_table(
        "membership_savings",
        _tenant_fk(),
        sa.Column("sale_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("term_id", UUID(as_uuid=True), nullable=False),
        sa.Column("business_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("extra_points", sa.BigInteger, nullable=False),
        sa.Column("points_value", sa.BigInteger, nullable=False),
        sa.Column("coupons", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "discount >= 0 AND extra_points >= 0 AND points_value >= 0 AND coupons >= 0", name="amounts"
        ),
    )
    op.create_index("ix_membership_savings_member", "membership_savings", ["tenant_id", "member_id", "business_time"])
    for table in ("membership_products", "membership_terms", "membership_settings"):
        for statement in rls.tenant_table(table):
            op.execute(statement)
    for statement in rls.tenant_table("membership_savings", append_only=True):
        op.execute(statement)


def downgrade() -> None:
    for table in ("membership_savings", "membership_settings", "membership_terms", "membership_products"):
        op.drop_table(table)
