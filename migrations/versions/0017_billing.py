"""Billing (issue 15, first part): the plans, each merchant's subscription, and the webhook inbox.

* ``billing_plans`` — the plans as data (price per month in minor units, currency, limits; NULL is
  unlimited), seeded here. Platform reference data: every role reads it; only migrations change it.
* ``billing_accounts`` — one row per merchant: plan, status of the state machine
  (``billing/domain.py``), trial end, Stripe customer and subscription ids, the unpaid stretch and
  its grace, and ``state_at`` (the ``created`` of the newest Stripe event applied: older ones change
  nothing). Tenant rows; system scope (webhook processing, which learns the merchant from the
  Stripe customer id, and the grace job) reads and writes every row.
* ``billing_events`` — the webhook inbox: every delivery that passed the signature check, stored
  before we answer (unique by provider and event id, so a duplicate is a no-op), with its processing
  status; refused deliveries (bad signature) are recorded too, without an event id. Platform rows;
  a merchant may read the events resolved to it.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

#: code, name, price per month (fen), branches, members, staff seats, messages a month, alliance
PLANS = [
    ("free", "Free", 0, 1, 300, 2, 0, False, 0),
    ("shop", "Shop", 19_900, 1, 5_000, 5, 1_000, False, 1),
    ("chain", "Chain", 59_900, 20, 50_000, 50, 10_000, False, 2),
    ("alliance", "Alliance", 129_900, None, None, None, 50_000, True, 3),
]


def upgrade() -> None:
    op.create_table(
        "billing_plans",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("max_branches", sa.Integer, nullable=True),
        sa.Column("max_members", sa.Integer, nullable=True),
        sa.Column("max_staff_seats", sa.Integer, nullable=True),
        sa.Column("messages_per_month", sa.Integer, nullable=True),
        sa.Column("alliance_membership", sa.Boolean, nullable=False),
        sa.Column("sort", sa.Integer, nullable=False),
        sa.CheckConstraint("price_minor >= 0", name="price"),
    )
    op.bulk_insert(
        sa.table(
            "billing_plans",
            *(
                sa.column(c)
                for c in (
                    "code",
                    "name",
                    "price_minor",
                    "currency",
                    "max_branches",
                    "max_members",
                    "max_staff_seats",
                    "messages_per_month",
                    "alliance_membership",
                    "sort",
                )
            ),
        ),
        [
            {
                "code": code,
                "name": name,
                "price_minor": price,
                "currency": "CNY",
                "max_branches": branches,
                "max_members": members,
                "max_staff_seats": seats,
                "messages_per_month": messages,
                "alliance_membership": alliance,
                "sort": sort,
            }
            for code, name, price, branches, members, seats, messages, alliance, sort in PLANS
        ],
    )
    op.execute(rls.grant("billing_plans", "SELECT")[0])

    op.create_table(
        "billing_accounts",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), primary_key=True),
        sa.Column("plan", sa.String(32), sa.ForeignKey("billing_plans.code"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trial_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stripe_customer_id", sa.String(255), nullable=True, unique=True),
        sa.Column("stripe_subscription_id", sa.String(255), nullable=True),
        sa.Column("past_due_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grace_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('trialing', 'active', 'past_due', 'restricted', 'canceled')", name="status"),
    )
    for statement in rls.tenant_or_system_table("billing_accounts", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)

    op.create_table(
        "billing_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=True),
        sa.Column("type", sa.String(128), nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", JSONB, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("deliveries", sa.Integer, nullable=False, server_default="1"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('received', 'processed', 'failed', 'ignored', 'refused')", name="status"),
        sa.CheckConstraint("(status = 'refused') = (event_id IS NULL)", name="refused_has_no_event"),
        sa.UniqueConstraint("provider", "event_id", name="uq_billing_events_provider_event"),
    )
    op.create_index(
        "ix_billing_events_open", "billing_events", ["id"], postgresql_where=sa.text("status IN ('received', 'failed')")
    )
    for statement in rls.tenant_or_system_table("billing_events", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)


def downgrade() -> None:
    for table in ("billing_events", "billing_accounts", "billing_plans"):
        op.drop_table(table)
