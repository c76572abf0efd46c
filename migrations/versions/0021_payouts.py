"""Settlement payouts (issue 15 §3): who can be paid how, one payout per statement line, its attempts.

* ``payout_accounts`` — one row per payee of a book (a chain's branch, an alliance's partner): its
  Stripe Connect account (``acct_…``, unique) and whether Stripe lets it receive transfers
  (``payouts_enabled``, from ``account.updated``; ``state_at`` is the newest event applied), and the
  bank details the bank payment file uses. Tenant rows (the book's); system scope reads them too,
  because Stripe's events about a connected account name only the account (``acct_…``).
* ``payouts`` — one row per owed or owing statement line of a closed month: UNIQUE (book, period,
  entity), so running a month twice makes nothing new. ``direction`` payout (the hub pays) or
  collection (the payee pays the hub); ``amount_minor`` > 0; ``status`` pending → paid | failed |
  returned, mirrored from its latest attempt; ``attempt`` is that attempt's number (0: none yet).
* ``payout_attempts`` — each try to pay a payout: by Stripe (``stripe_transfer_id``, unique) or in the
  bank file. A retry adds attempt n+1 only when attempt n is failed or returned.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payout_accounts",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("payee_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("payee_kind", sa.String(16), nullable=False),
        sa.Column("stripe_account_id", sa.String(255), nullable=True, unique=True),
        sa.Column("payouts_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("details_submitted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("problem", sa.Text, nullable=True),
        sa.Column("bank_account_name", sa.String(200), nullable=True),
        sa.Column("bank_name", sa.String(200), nullable=True),
        sa.Column("bank_account_number", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("payee_kind IN ('branch', 'partner')", name="payee_kind"),
    )
    for statement in rls.tenant_or_system_table("payout_accounts", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)

    op.create_table(
        "payouts",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("entity_kind", sa.String(16), nullable=False),
        sa.Column("entity_id", UUID(as_uuid=True), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("statement_checksum", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount_minor > 0", name="amount"),
        sa.CheckConstraint("direction IN ('payout', 'collection')", name="direction"),
        sa.CheckConstraint("status IN ('pending', 'paid', 'failed', 'returned')", name="status"),
        sa.UniqueConstraint("tenant_id", "period", "entity_id", name="uq_payouts_line"),
    )
    for statement in rls.tenant_table("payouts"):
        op.execute(statement)

    op.create_table(
        "payout_attempts",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("payout_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("destination", sa.String(255), nullable=True),
        sa.Column("stripe_transfer_id", sa.String(255), nullable=True, unique=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id", "payout_id"], ["payouts.tenant_id", "payouts.id"]),
        sa.CheckConstraint("attempt >= 1", name="attempt"),
        sa.CheckConstraint("method IN ('stripe', 'bank')", name="method"),
        sa.CheckConstraint("status IN ('sending', 'pending', 'paid', 'failed', 'returned')", name="status"),
    )
    for statement in rls.tenant_table("payout_attempts"):
        op.execute(statement)


def downgrade() -> None:
    for table in ("payout_attempts", "payouts", "payout_accounts"):
        op.drop_table(table)
