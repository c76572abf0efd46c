"""Outbound webhooks for integrators (issue 18), decision 0052.

* ``webhook_subscriptions`` — a merchant's receiver: URL, the event types it wants, its signing
  secret sealed with ``platform/secrets.py`` (shown once, rotatable), active flag.
* ``webhook_events`` — one row per event that had at least one subscriber when it happened, written
  in the transaction of the action (a rolled-back sale writes none): type, data (ids and amounts, no
  more personal data than needed), time. Never changed.
* ``webhook_deliveries`` — one event to one subscription: status (``pending`` → ``delivered`` or
  ``failed``), attempts so far, when the next attempt is due; a replay is a new delivery of the same
  event (``replay_of``), so the receiver sees the same event id again.
* ``webhook_attempts`` — the delivery log: every POST with its HTTP status (NULL: no response),
  duration, error and the start of the response body. Append-only.

Revision ID: 0036
Revises: 0035
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from lianka.platform import rls

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False)


def _id() -> sa.Column[object]:
    return sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()"))


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        _tenant(),
        _id(),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("events", ARRAY(sa.String(40)), nullable=False),
        sa.Column("description", sa.String(200), nullable=False, server_default=""),
        sa.Column("secret_sealed", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        _now("created_at"),
        _now("secret_rotated_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_subscriptions"),
        sa.CheckConstraint("cardinality(events) > 0", name="events"),
    )
    op.create_table(
        "webhook_events",
        _tenant(),
        _id(),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("data", JSONB, nullable=False),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_events"),
    )
    op.create_table(
        "webhook_deliveries",
        _tenant(),
        _id(),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("subscription_id", UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("replay_of", UUID(as_uuid=True), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_deliveries"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "event_id"],
            ["webhook_events.tenant_id", "webhook_events.id"],
            name="fk_webhook_deliveries_event",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subscription_id"],
            ["webhook_subscriptions.tenant_id", "webhook_subscriptions.id"],
            name="fk_webhook_deliveries_subscription",
        ),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        sa.CheckConstraint("attempts >= 0", name="attempts"),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["tenant_id", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_webhook_deliveries_recent", "webhook_deliveries", ["tenant_id", "created_at"])
    op.create_table(
        "webhook_attempts",
        _tenant(),
        _id(),
        sa.Column("delivery_id", UUID(as_uuid=True), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("error", sa.String(200), nullable=False, server_default=""),
        sa.Column("response_snippet", sa.String(500), nullable=False, server_default=""),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_attempts"),
        sa.UniqueConstraint("tenant_id", "delivery_id", "attempt", name="uq_webhook_attempts_attempt"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            name="fk_webhook_attempts_delivery",
        ),
        sa.CheckConstraint("attempt >= 1 AND duration_ms >= 0", name="attempt"),
    )
    for table in ("webhook_subscriptions", "webhook_deliveries"):
        for statement in rls.tenant_table(table):
            op.execute(statement)
    for table in ("webhook_events", "webhook_attempts"):  # what happened, and each POST: never changed
        for statement in rls.tenant_table(table, append_only=True):
            op.execute(statement)


def downgrade() -> None:
    for table in ("webhook_attempts", "webhook_deliveries", "webhook_events", "webhook_subscriptions"):
        op.drop_table(table)
