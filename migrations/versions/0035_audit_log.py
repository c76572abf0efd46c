"""Operations (issue 18): the audit log of staff and operator actions, decision 0051.

* ``audit_log`` — one row per audited action of a merchant: when (``at``, the transaction's time),
  who (``actor_kind`` staff / client / operator / system, ``actor_id``, ``actor_name`` as it was
  then), what (``action``, a stable slug such as ``programme.published``), on which object
  (``object_kind``, ``object_id``), a small JSON of ``details``, the request id and client address
  when a request caused it. Append-only: the app role may only SELECT and INSERT, and a trigger
  refuses UPDATE, DELETE and TRUNCATE for everybody (owner included). Row-level security per
  merchant; ``tenant_id`` first in the primary key (Citus).

Revision ID: 0035
Revises: 0034
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID

from lianka.platform import rls

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

FORBID = """
CREATE FUNCTION audit_log_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$
"""


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(100), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_kind", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("ip", INET, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_audit_log"),
        sa.CheckConstraint("actor_kind IN ('staff', 'client', 'operator', 'system')", name="actor_kind"),
        sa.CheckConstraint("action ~ '^[a-z_]+\\.[a-z_]+$'", name="action_slug"),
        sa.CheckConstraint("jsonb_typeof(details) = 'object'", name="details_object"),
    )
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant_id", sa.text("at DESC"), sa.text("id DESC")])
    op.create_index("ix_audit_log_tenant_action", "audit_log", ["tenant_id", "action", sa.text("at DESC")])
    op.create_index("ix_audit_log_tenant_object", "audit_log", ["tenant_id", "object_kind", "object_id"])
    op.execute(FORBID)
    op.execute(
        "CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_forbid_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_forbid_change()"
    )
    for statement in rls.tenant_table("audit_log", append_only=True):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION audit_log_forbid_change()")
