"""The merchant's subscription facts get their own clock (``billing_accounts.subscription_at``).

A plan change makes Stripe send ``customer.subscription.updated`` and the proration's
``invoice.paid`` at once; applied by two workers, the newer ``invoice.paid`` could land first, and
the single ``state_at`` clock then threw the plan change away as "older than the state already
applied". ``subscription_at`` is the ``created`` time of the newest ``customer.subscription.*``
event applied: the plan, period end and cancel flag follow the newest of those, the status still
follows ``state_at`` (billing/domain.py). Existing rows start from their ``state_at`` (every
subscription event applied so far was no newer).

Revision ID: 0044
Revises: 0043
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("billing_accounts", sa.Column("subscription_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE billing_accounts SET subscription_at = state_at WHERE stripe_subscription_id IS NOT NULL")


def downgrade() -> None:
    op.drop_column("billing_accounts", "subscription_at")
