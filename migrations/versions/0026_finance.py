"""Finance reports (issue 17, part 2): the merchant's chart-of-accounts mapping for vouchers.

* ``account_mappings`` — per merchant and ledger account kind (``sv_principal``, ``clr_*`` for every
  branch clearing line, …): the accounting code and name its postings go to in the month's vouchers.
  A kind without a row uses the built-in PRC default (``tenants/reports/vouchers.py``).

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_mappings",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("ledger_kind", sa.Text, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "ledger_kind", name="pk_account_mappings"),
        sa.CheckConstraint("ledger_kind ~ '^[a-z][a-z0-9_]{0,39}\\*?$'", name="ledger_kind"),
        sa.CheckConstraint("code ~ '^[0-9A-Za-z.\\-]{1,20}$'", name="code"),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 60", name="name"),
    )
    for statement in rls.tenant_table("account_mappings"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("account_mappings")
