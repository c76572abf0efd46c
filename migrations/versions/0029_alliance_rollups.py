"""Reports (issue 17): the alliance operator dashboard's daily rollups, decision 0046.

* ``alliance_report_daily`` — one row per (alliance, local day in the alliance's time zone, partner
  merchant): points issued and accepted (redeemed at the partner), what the issue cost the partner and
  what it was reimbursed, fees, expired points of its issue and the breakage returned to it, stored
  value collected and consumed, and the net of all its clearing (positive: the operator owes it).
* ``alliance_report_flows`` — one row per (alliance, day, issuing partner, redeeming partner): the
  points of the issuer's lots redeemed at the redeemer, and the reimbursement they were worth.
* ``alliance_report_marks`` — per alliance, the high-water mark over its journal (``posted_at``).
* ``lianka_alliance_shared_members(alliance)`` — per partner, its members who hold a card at another
  partner too (a count; memberships are the partners' and hidden from the alliance's book). It answers
  only inside that alliance's book.

Derived data in the alliance's book (``tenant_id`` = the alliance): the job deletes and rewrites
whole days, like ``report_daily`` (decision 0037).

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from lianka.platform import rls

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

DAILY = (
    "points_issued",
    "points_accepted",
    "issue_cost",
    "reimbursed",
    "fees",
    "points_expired",
    "breakage_returned",
    "sv_collected",
    "sv_consumed",
    "net",
)

SHARED = """
CREATE FUNCTION lianka_alliance_shared_members(alliance uuid) RETURNS TABLE (merchant_id uuid, shared bigint, total bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    WITH p AS (
        SELECT merchant_id FROM alliance_partners
         WHERE alliance_id = $1 AND status <> 'left'
           AND $1 = NULLIF(current_setting('app.tenant_id', true), '')::uuid),
    held AS (
        SELECT m.member_id, m.tenant_id FROM memberships m JOIN p ON p.merchant_id = m.tenant_id),
    multi AS (
        SELECT member_id FROM held GROUP BY member_id HAVING count(DISTINCT tenant_id) >= 2)
    SELECT p.merchant_id,
           (SELECT count(*) FROM held h JOIN multi USING (member_id) WHERE h.tenant_id = p.merchant_id),
           (SELECT count(*) FROM multi)
      FROM p
$$
"""


def upgrade() -> None:
    op.create_table(
        "alliance_report_daily",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("partner_id", UUID(as_uuid=True), primary_key=True),
        *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in DAILY),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "alliance_report_flows",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("issuer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("redeemer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("points", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("amount", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "alliance_report_marks",
        sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("mark", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    for table in ("alliance_report_daily", "alliance_report_flows", "alliance_report_marks"):
        for statement in rls.tenant_table(table):
            op.execute(statement)
    op.execute(SHARED)
    op.execute("REVOKE ALL ON FUNCTION lianka_alliance_shared_members(uuid) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION lianka_alliance_shared_members(uuid) TO lianka_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION lianka_alliance_shared_members(uuid)")
    for table in ("alliance_report_marks", "alliance_report_flows", "alliance_report_daily"):
        op.drop_table(table)
