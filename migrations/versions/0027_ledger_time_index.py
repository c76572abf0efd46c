"""Reports (issue 17, part 3): the journal by business time, for the rollups and the benchmark.

* ``ix_ledger_entries_business_time`` on ``ledger_entries (tenant_id, business_time)`` — the daily
  rollup's points part (decision 0037) and the report benchmark read a merchant's entries by a range of
  business times; without it every rollup of a month of days scans the merchant's whole journal
  (decision 0041 has the figures).

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ledger_entries_business_time", "ledger_entries", ["tenant_id", "business_time"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_business_time", table_name="ledger_entries")
