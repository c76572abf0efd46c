"""Member payments (issue 15 §2): orders paid online, their refunds, and each merchant's provider
credentials (encrypted).

* ``payment_orders`` — one member order (a stored-value top-up, a paid membership) paid through a
  provider (Stripe Checkout, WeChat Pay). ``status`` moves ``pending → paid → refunded /
  partially_refunded`` (or ``pending → failed / expired``); ``pending → paid`` is one conditional
  update in the transaction that delivers the order, which is what makes confirmation exactly once.
  Tenant rows; system scope (the reconciliation poll) reads every merchant's pending orders.
* ``payment_refunds`` — money sent back through the provider for an order (unique per order and
  key, so a retried refund request is the same refund).
* ``payment_credentials`` — the merchant's chosen provider and its credentials, encrypted with
  ``LIANKA_SECRETS_KEY`` (``platform/secrets.py``); ``hints`` keeps only the last four characters for display.
  Tenant rows; system scope reads them to verify a WeChat Pay notification before the merchant is known.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_orders",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("purpose", JSONB, nullable=False),
        sa.Column("description", sa.String(200), nullable=False, server_default=""),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_ref", sa.String(255), nullable=True),
        sa.Column("checkout_ref", sa.String(255), nullable=True),
        sa.Column("status", sa.String(24), nullable=False, server_default="pending"),
        sa.Column("refunded_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("result", JSONB, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_payment_orders"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"],
            ["memberships.tenant_id", "memberships.member_id"],
            name="fk_payment_orders_membership",
        ),
        sa.CheckConstraint("amount > 0", name="ck_payment_orders_amount"),
        sa.CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="ck_payment_orders_refunded"),
        sa.CheckConstraint("kind IN ('top_up', 'membership')", name="ck_payment_orders_kind"),
        sa.CheckConstraint("provider IN ('stripe', 'wechatpay')", name="ck_payment_orders_provider"),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'refunded', 'partially_refunded', 'failed', 'expired')",
            name="ck_payment_orders_status",
        ),
    )
    op.create_index("ix_payment_orders_member", "payment_orders", ["tenant_id", "member_id", "created_at"])
    op.create_index(
        "ix_payment_orders_pending", "payment_orders", ["created_at"], postgresql_where=sa.text("status = 'pending'")
    )
    for statement in rls.tenant_or_system_table("payment_orders", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)

    op.create_table(
        "payment_refunds",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("bonus_forfeited", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_ref", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_payment_refunds"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "order_id"],
            ["payment_orders.tenant_id", "payment_orders.id"],
            name="fk_payment_refunds_order",
        ),
        sa.UniqueConstraint("tenant_id", "order_id", "key", name="uq_payment_refunds_key"),
        sa.CheckConstraint("amount > 0", name="ck_payment_refunds_amount"),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="ck_payment_refunds_status"),
    )
    for statement in rls.tenant_table("payment_refunds"):
        op.execute(statement)

    op.create_table(
        "payment_credentials",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("hints", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("provider IN ('stripe', 'wechatpay')", name="ck_payment_credentials_provider"),
    )
    for statement in rls.tenant_or_system_table("payment_credentials", privileges="SELECT, INSERT, UPDATE, DELETE"):
        op.execute(statement)


def downgrade() -> None:
    for table in ("payment_credentials", "payment_refunds", "payment_orders"):
        op.drop_table(table)
