"""Marketing, first part (issue 16): segments, audience snapshots, RFM scores, SMS/e-mail providers.

* ``segments`` — a merchant's saved audience rules (the versioned rule document of
  ``tenants/marketing/domain.py``, stored as JSON) with the last count seen.
* ``audience_snapshots`` + ``audience_snapshot_members`` — an audience frozen at send time: the
  rule document as it was, and one row per member (written by one ``INSERT … SELECT``); a holdout
  member is kept with ``holdout = true`` (the control group a campaign measures against). Append-only.
* ``member_rfm`` — recency/frequency/monetary scores 1–5 per member, recomputed nightly.
* ``messaging_providers`` — per merchant and channel (sms, email): the provider, its public settings
  and its credentials sealed by ``platform/secrets.py``.
* ``delivery_receipts`` — delivery reports the SMS providers post back. Platform rows (the webhook
  does not know the merchant); ``tenant_id`` is filled when known.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "segments",
        _tenant(),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("rules_version", sa.Integer, nullable=False),
        sa.Column("last_count", sa.Integer, nullable=True),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_segments"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_segments_name"),
    )
    op.create_table(
        "audience_snapshots",
        _tenant(),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("segment_id", UUID(as_uuid=True), nullable=False),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("holdout_pct", sa.Integer, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("members", sa.Integer, nullable=False, server_default="0"),
        sa.Column("holdout", sa.Integer, nullable=False, server_default="0"),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_audience_snapshots"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "segment_id"], ["segments.tenant_id", "segments.id"], name="fk_audience_snapshots_segment"
        ),
        sa.CheckConstraint("holdout_pct BETWEEN 0 AND 100", name="holdout_pct"),
    )
    op.create_table(
        "audience_snapshot_members",
        _tenant(),
        sa.Column("snapshot_id", UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("holdout", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "snapshot_id", "member_id", name="pk_audience_snapshot_members"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "snapshot_id"],
            ["audience_snapshots.tenant_id", "audience_snapshots.id"],
            name="fk_audience_snapshot_members_snapshot",
        ),
    )
    op.create_table(
        "member_rfm",
        _tenant(),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("recency", sa.SmallInteger, nullable=False),
        sa.Column("frequency", sa.SmallInteger, nullable=False),
        sa.Column("monetary", sa.SmallInteger, nullable=False),
        sa.Column("last_purchase_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purchases", sa.Integer, nullable=False),
        sa.Column("spend", sa.BigInteger, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", name="pk_member_rfm"),
        sa.CheckConstraint(
            "recency BETWEEN 1 AND 5 AND frequency BETWEEN 1 AND 5 AND monetary BETWEEN 1 AND 5", name="scores"
        ),
    )
    op.create_table(
        "messaging_providers",
        _tenant(),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("settings", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("secret_sealed", sa.Text, nullable=False, server_default=""),
        sa.Column("secret_hint", sa.String(16), nullable=False, server_default=""),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("tenant_id", "channel", name="pk_messaging_providers"),
        sa.CheckConstraint("channel IN ('sms', 'email')", name="channel"),
        sa.CheckConstraint("provider IN ('console', 'aliyun', 'tencent', 'smtp')", name="provider"),
    )
    op.create_table(
        "delivery_receipts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False, server_default=""),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", JSONB, nullable=False),
        _now("received_at"),
        sa.CheckConstraint("status IN ('delivered', 'failed')", name="status"),
        sa.UniqueConstraint("provider", "message_id", "phone", name="uq_delivery_receipts_message"),
    )
    for table in ("segments", "member_rfm", "messaging_providers"):
        for statement in rls.tenant_table(table):
            op.execute(statement)
    for table in ("audience_snapshots", "audience_snapshot_members"):
        for statement in rls.tenant_table(table, append_only=True):
            op.execute(statement)
    op.execute(rls.grant("audience_snapshots", "UPDATE")[0])  # its counts, set right after the INSERT
    for statement in rls.tenant_or_system_table("delivery_receipts", privileges="SELECT, INSERT"):
        op.execute(statement)
    op.execute("CREATE INDEX ix_member_rfm_scores ON member_rfm (tenant_id, recency, frequency, monetary)")


def downgrade() -> None:
    for table in (
        "delivery_receipts",
        "messaging_providers",
        "member_rfm",
        "audience_snapshot_members",
        "audience_snapshots",
        "segments",
    ):
        op.drop_table(table)
