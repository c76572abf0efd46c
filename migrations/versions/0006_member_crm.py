"""Member CRM: profiles, tier changes, export log.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from lianka.platform import rls

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "member_profiles",
        _tenant(),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(100), nullable=False, server_default=""),
        sa.Column("gender", sa.String(8), nullable=False, server_default="unknown"),
        sa.Column("birthday", sa.Date, nullable=True),
        sa.Column("email", sa.String(320), nullable=False, server_default=""),
        sa.Column("address", sa.String(400), nullable=False, server_default=""),
        sa.Column("tags", ARRAY(sa.String(40)), nullable=False, server_default="{}"),
        sa.Column("preferences", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("referrer_member_id", UUID(as_uuid=True), nullable=True),
        sa.Column("join_branch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("source", sa.String(16), nullable=False, server_default="till"),
        sa.Column("consent", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("tier_code", sa.String(32), nullable=True),
        sa.Column("tier_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tier_floor", sa.String(32), nullable=True),
        sa.Column("tier_floor_until", sa.Date, nullable=True),
        sa.Column("tier_reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cumulative_spend", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("purchase_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_purchase_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_purchase_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checkin_streak", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_checkin", sa.Date, nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", name="pk_member_profiles"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"],
            ["memberships.tenant_id", "memberships.member_id"],
            name="fk_member_profiles_membership",
        ),
        sa.CheckConstraint("gender IN ('male', 'female', 'other', 'unknown')", name="ck_member_profiles_gender"),
        sa.CheckConstraint("cumulative_spend >= 0 AND purchase_count >= 0", name="ck_member_profiles_counters"),
    )
    op.create_index(
        "ix_member_profiles_birthday", "member_profiles", ["tenant_id", sa.text("extract(month from birthday)")]
    )
    op.create_index("ix_member_profiles_last_purchase", "member_profiles", ["tenant_id", "last_purchase_at"])
    op.create_table(
        "tier_changes",
        _tenant(),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("old_tier", sa.String(32), nullable=True),
        sa.Column("new_tier", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False, server_default="system"),
        _now("at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_tier_changes"),
    )
    op.create_index("ix_tier_changes_member", "tier_changes", ["tenant_id", "member_id", "at"])
    op.create_table(
        "export_log",
        _tenant(),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("filters", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("row_count", sa.Integer, nullable=False),
        _now("at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_export_log"),
    )
    for table in ("member_profiles",):
        for s in rls.tenant_table(table):
            op.execute(s)
    for table in ("tier_changes", "export_log"):
        for s in rls.tenant_table(table, append_only=True):
            op.execute(s)


def downgrade() -> None:
    for table in ("export_log", "tier_changes", "member_profiles"):
        op.drop_table(table)
