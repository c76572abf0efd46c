"""Programmes (versioned documents), coupon templates and coupons.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from lianka.platform import rls

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _tenant_fk() -> sa.ForeignKey:
    return sa.ForeignKey("merchants.id")


def upgrade() -> None:
    op.create_table(
        "programme_versions",
        sa.Column("tenant_id", UUID(as_uuid=True), _tenant_fk(), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("note", sa.String(400), nullable=False, server_default=""),
        sa.Column("created_by", UUID(as_uuid=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "version", name="pk_programme_versions"),
        sa.CheckConstraint("version > 0", name="ck_programme_versions_version_positive"),
    )
    op.create_index("ix_programme_versions_effective", "programme_versions", ["tenant_id", "effective_from"])

    op.create_table(
        "coupon_templates",
        sa.Column("tenant_id", UUID(as_uuid=True), _tenant_fk(), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_off", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("percent_off", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cap", sa.BigInteger, nullable=True),
        sa.Column("gift_sku", sa.String(64), nullable=False, server_default=""),
        sa.Column("min_spend", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_days", sa.Integer, nullable=True),
        sa.Column("branch_codes", ARRAY(sa.String(32)), nullable=False, server_default="{}"),
        sa.Column("stackable", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("per_member_limit", sa.Integer, nullable=True),
        sa.Column("stock_total", sa.Integer, nullable=True),
        sa.Column("issued_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_coupon_templates"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_coupon_templates_tenant_id_code"),
        sa.CheckConstraint("kind IN ('fixed', 'percent', 'gift')", name="ck_coupon_templates_kind"),
        sa.CheckConstraint(
            "amount_off >= 0 AND min_spend >= 0 AND coalesce(cap, 0) >= 0", name="ck_coupon_templates_amounts"
        ),
        sa.CheckConstraint("percent_off BETWEEN 0 AND 100", name="ck_coupon_templates_percent"),
        sa.CheckConstraint("stock_total IS NULL OR issued_count <= stock_total", name="ck_coupon_templates_stock"),
    )
    op.create_table(
        "coupons",
        sa.Column("tenant_id", UUID(as_uuid=True), _tenant_fk(), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("template_id", UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="issued"),
        sa.Column("source", sa.String(32), nullable=False, server_default="api"),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redeemed_sale_id", UUID(as_uuid=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_coupons"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_coupons_tenant_id_code"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "template_id"],
            ["coupon_templates.tenant_id", "coupon_templates.id"],
            name="fk_coupons_template",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"], ["memberships.tenant_id", "memberships.member_id"], name="fk_coupons_membership"
        ),
        sa.CheckConstraint("status IN ('issued', 'redeemed', 'void', 'expired')", name="ck_coupons_status"),
    )
    op.create_index("ix_coupons_member", "coupons", ["tenant_id", "member_id", "status"])
    op.create_index(
        "ix_coupons_sale",
        "coupons",
        ["tenant_id", "redeemed_sale_id"],
        postgresql_where=sa.text("redeemed_sale_id IS NOT NULL"),
    )
    for table in ("programme_versions", "coupon_templates", "coupons"):
        for statement in rls.tenant_table(table):
            op.execute(statement)
    # programme history is append-only: no UPDATE/DELETE for the app role
    op.execute("REVOKE UPDATE, DELETE ON programme_versions FROM lianka_app")


def downgrade() -> None:
    for table in ("coupons", "coupon_templates", "programme_versions"):
        op.drop_table(table)
