"""A circuit breaker per webhook subscription (issue 18, decision 0052's 2026-12 paragraph).

* ``consecutive_failures`` — attempts in a row that got no 2xx (reset by a 2xx);
* ``failing_since`` — when the first of them was made (NULL while healthy);
* ``paused_until`` — open breaker: no POST to this receiver before then except one probe;
* ``switched_off_reason`` — why Lianka switched the subscription off itself ('' when it did not).

Revision ID: 0040
Revises: 0038
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0040"
down_revision = "0038"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "webhook_subscriptions", sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column("webhook_subscriptions", sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("webhook_subscriptions", sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "webhook_subscriptions",
        sa.Column("switched_off_reason", sa.String(40), nullable=False, server_default=""),
    )
    op.execute(
        "ALTER TABLE webhook_subscriptions ADD CONSTRAINT ck_webhook_subscriptions_consecutive_failures "
        "CHECK (consecutive_failures >= 0)"
    )
    op.create_index(
        "ix_webhook_deliveries_pending_subscription",
        "webhook_deliveries",
        ["tenant_id", "subscription_id"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_pending_subscription", "webhook_deliveries")
    for column in ("switched_off_reason", "paused_until", "failing_since", "consecutive_failures"):
        op.drop_column("webhook_subscriptions", column)
