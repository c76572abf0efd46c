"""Reports at scale (issue 17, decision 0055): buyers and tiers kept with the daily rollups.

* ``report_buyers`` — per (merchant, local day, branch): how many members made their first and their
  second purchase of that calendar month (merchant time zone) that day at that branch (ranked among
  their purchases at that branch), and on the nil branch at the merchant as a whole (ranked among all
  their purchases). A month-aligned period's active members and repeat buyers are sums over its days.
  Written by the rollup's tick and rebuild (``tenants/reports/rollups.py``).
* ``report_tier_counts`` — signed changes to how many members hold each tier (``''``: none yet),
  appended by the trigger ``member_profiles_tier_count`` on every insert, delete and tier change of a
  profile, folded into one row per tier by the tick; Σ per tier is the distribution, exact at once.
  Append-only changes, not a counter row updated in place: concurrent enrolments never wait on
  one another. Seeded here from the profiles.

Both are tenant tables with RLS like ``report_daily`` and ``tenant_id`` first in their keys (Citus).
Every rollup mark is forgotten: each merchant's next tick rebuilds its rollups, buyers included.

Revision ID: 0038
Revises: 0037
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

_TRIGGER_FN = """
CREATE FUNCTION member_profiles_tier_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    INSERT INTO report_tier_counts (tenant_id, tier_code, members)
    VALUES (OLD.tenant_id, COALESCE(OLD.tier_code, ''), -1);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN
    INSERT INTO report_tier_counts (tenant_id, tier_code, members)
    VALUES (NEW.tenant_id, COALESCE(NEW.tier_code, ''), 1);
  END IF;
  RETURN NULL;
END
$$
"""
_TRIGGERS = (
    "CREATE TRIGGER member_profiles_tier_count AFTER INSERT OR DELETE ON member_profiles "
    "FOR EACH ROW EXECUTE FUNCTION member_profiles_tier_count()",
    "CREATE TRIGGER member_profiles_tier_change AFTER UPDATE OF tier_code ON member_profiles "
    "FOR EACH ROW WHEN (OLD.tier_code IS DISTINCT FROM NEW.tier_code OR OLD.tenant_id <> NEW.tenant_id) "
    "EXECUTE FUNCTION member_profiles_tier_count()",
)


def upgrade() -> None:
    op.create_table(
        "report_buyers",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("branch_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("firsts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("seconds", sa.BigInteger, nullable=False, server_default="0"),
    )
    for statement in rls.tenant_table("report_buyers"):
        op.execute(statement)
    op.create_table(
        "report_tier_counts",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("tier_code", sa.String(64), nullable=False),
        sa.Column("members", sa.BigInteger, nullable=False),
    )
    for statement in rls.tenant_table("report_tier_counts"):
        op.execute(statement)
    op.execute(_TRIGGER_FN)
    for statement in _TRIGGERS:
        op.execute(statement)
    op.execute(
        "INSERT INTO report_tier_counts (tenant_id, tier_code, members) "
        "SELECT tenant_id, COALESCE(tier_code, ''), count(*) FROM member_profiles GROUP BY 1, 2"
    )
    # no merchant has buyer rows yet: the next tick must roll every day up again
    op.execute("DELETE FROM report_marks")


def downgrade() -> None:
    op.execute("DROP TRIGGER member_profiles_tier_change ON member_profiles")
    op.execute("DROP TRIGGER member_profiles_tier_count ON member_profiles")
    op.execute("DROP FUNCTION member_profiles_tier_count()")
    op.drop_table("report_tier_counts")
    op.drop_table("report_buyers")
