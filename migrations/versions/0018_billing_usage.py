"""Billing (issue 15, part 1 finished): the billing e-mail, the invoices Stripe reported, and the
metered usage reported to Stripe.

* ``billing_accounts.billing_email`` — where Stripe sends receipts (the owner edits it in the
  console; it is also set on the Stripe customer).
* ``billing_invoices`` — one row per Stripe invoice, upserted from ``invoice.*`` webhook events
  (number, amounts, status, hosted URL, period), newest state wins by the event's ``created``.
  Tenant rows; system scope (webhook processing) writes them.
* ``billing_usage_reports`` — one row per merchant, meter and day: the value reported to Stripe's
  billing meter events and the ``Idempotency-Key`` used, so a rerun of the daily job reports
  nothing twice. Tenant rows; the job writes in the tenant's scope.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("billing_accounts", sa.Column("billing_email", sa.String(320), nullable=True))

    op.create_table(
        "billing_invoices",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("stripe_invoice_id", sa.String(255), nullable=False),
        sa.Column("number", sa.String(64), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_due", sa.BigInteger, nullable=False),
        sa.Column("amount_paid", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hosted_invoice_url", sa.Text, nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "stripe_invoice_id"),
        sa.CheckConstraint("amount_due >= 0 AND amount_paid >= 0", name="amounts"),
    )
    op.create_index("ix_billing_invoices_created", "billing_invoices", ["tenant_id", "created"])
    for statement in rls.tenant_or_system_table("billing_invoices", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)

    op.create_table(
        "billing_usage_reports",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("meter", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("stripe_customer_id", sa.String(255), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "meter", "day"),
        sa.CheckConstraint("value >= 0", name="value"),
    )
    for statement in rls.tenant_or_system_table("billing_usage_reports", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("billing_usage_reports")
    op.drop_table("billing_invoices")
    op.drop_column("billing_accounts", "billing_email")
