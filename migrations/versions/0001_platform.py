"""Platform foundation: app role, tenant registry, branches, outbox, inbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls
from lianka.platform.settings import get_settings

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _exec(statements: list[str]) -> None:
    for s in statements:
        op.execute(s)


def upgrade() -> None:
    _exec(rls.create_app_role(get_settings().app_db_password or None))
    op.create_table(
        "merchants",
        sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("slug", sa.String(63), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("trade", sa.String(100), nullable=False, server_default="retail"),
        sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="Asia/Shanghai"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="ck_merchants_slug_format"),
    )
    # A tenant sees its own registry row; sign-up, sign-in and cross-tenant jobs use system scope.
    _exec(rls.tenant_or_system_table("merchants", column="id", privileges="SELECT, INSERT, UPDATE"))

    op.create_table(
        "branches",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(400), nullable=False, server_default=""),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="Asia/Shanghai"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_branches"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_branches_tenant_id_code"),
    )
    _exec(rls.tenant_table("branches"))

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("queue", sa.String(64), nullable=False, server_default="default"),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("payload", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_outbox_unsent", "outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"))
    _exec(rls.tenant_or_system_table("outbox"))

    op.create_table(
        "processed_messages",
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    _exec(rls.tenant_or_system_table("processed_messages"))


def downgrade() -> None:
    for table in ("processed_messages", "outbox", "branches", "merchants"):
        op.drop_table(table)
