"""The member's alliance card and monthly value statements (issue 14, slice 2).

``alliance_recognition`` keeps every change a member makes to which partners of an alliance may
recognise their card (append-only: the latest row per alliance, member and partner is the state;
no row means recognised). The member writes and reads their own rows (portal scope); partners never
read it: the till asks ``lianka_is_cardholder``, which now also says no for a partner the member
switched off — the same 404 as a stranger's card.

``lianka_my_alliance_cards()`` is the member's door to the alliances they hold a card of: for the
member in ``app.member_id`` alone, every partner still in the alliance with its branch count, whether
the member is that partner's own member, and whether the member lets it recognise the card.

``member_statements``: one monthly value statement per merchant, member and month, written once by
the ``member-statements-monthly`` job (tenant table; the member reads their own).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

MEMBER = "member_id = NULLIF(current_setting('app.member_id', true), '')::uuid"

#: the member's own recognition choice for one partner (true when never changed)
RECOGNISED = """
CREATE FUNCTION lianka_recognised(alliance uuid, member uuid, partner uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT coalesce((SELECT r.recognised FROM alliance_recognition r
                      WHERE r.alliance_id = $1 AND r.member_id = $2 AND r.merchant_id = $3
                      ORDER BY r.seq DESC LIMIT 1), true)
$$
"""

#: 0009's door, now refusing the asking partner when the member switched it off
IS_CARDHOLDER = """
CREATE OR REPLACE FUNCTION lianka_is_cardholder(alliance uuid, member uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT EXISTS (SELECT 1 FROM memberships m JOIN alliance_partners p ON p.merchant_id = m.tenant_id
                    WHERE p.alliance_id = $1 AND m.member_id = $2)
       AND lianka_recognised($1, $2, NULLIF(current_setting('app.tenant_id', true), '')::uuid)
$$
"""

IS_CARDHOLDER_0009 = """
CREATE OR REPLACE FUNCTION lianka_is_cardholder(alliance uuid, member uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT EXISTS (SELECT 1 FROM memberships m JOIN alliance_partners p ON p.merchant_id = m.tenant_id
                    WHERE p.alliance_id = $1 AND m.member_id = $2)
$$
"""

MY_ALLIANCE_CARDS = """
CREATE FUNCTION lianka_my_alliance_cards() RETURNS TABLE (
    alliance_id uuid, alliance_name text, currency text, merchant_id uuid, merchant_name text,
    merchant_slug text, role text, status text, branches integer, is_member boolean, recognised boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    WITH me AS (SELECT NULLIF(current_setting('app.member_id', true), '')::uuid AS id),
    held AS (
        SELECT DISTINCT p.alliance_id FROM alliance_partners p
          JOIN memberships ms ON ms.tenant_id = p.merchant_id
         WHERE ms.member_id = (SELECT id FROM me)
    )
    SELECT a.id, a.name::text, a.currency::text, p.merchant_id, mc.name::text, mc.slug::text, p.role::text,
           p.status::text,
           (SELECT count(*)::integer FROM branches b WHERE b.tenant_id = p.merchant_id),
           EXISTS (SELECT 1 FROM memberships ms WHERE ms.tenant_id = p.merchant_id AND ms.member_id = (SELECT id FROM me)),
           lianka_recognised(a.id, (SELECT id FROM me), p.merchant_id)
      FROM held h
      JOIN alliances a ON a.id = h.alliance_id
      JOIN alliance_partners p ON p.alliance_id = a.id AND p.status <> 'left'
      JOIN merchants mc ON mc.id = p.merchant_id
     ORDER BY a.name, a.id, p.joined_at
$$
"""


def upgrade() -> None:
    op.create_table(
        "alliance_recognition",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("alliance_id", UUID(as_uuid=True), sa.ForeignKey("alliances.id"), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("merchant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("recognised", sa.Boolean, nullable=False),
        sa.Column(
            "changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")
        ),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
    )
    op.create_index(
        "ix_alliance_recognition_choice", "alliance_recognition", ["alliance_id", "member_id", "merchant_id", "seq"]
    )
    op.create_index("ix_alliance_recognition_member", "alliance_recognition", ["member_id", "seq"])
    op.execute("ALTER TABLE alliance_recognition ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE alliance_recognition FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY member_self ON alliance_recognition USING ({MEMBER}) WITH CHECK ({MEMBER})")
    op.execute(f"CREATE POLICY system_read ON alliance_recognition FOR SELECT USING ({rls.SYSTEM_PREDICATE})")
    for s in rls.grant("alliance_recognition", "SELECT, INSERT"):
        op.execute(s)
    op.execute(RECOGNISED)
    op.execute(IS_CARDHOLDER)
    op.execute(MY_ALLIANCE_CARDS)
    # lianka_recognised is only called inside the two doors (they run as the owner): the app cannot ask
    # about a member's choice directly
    op.execute("REVOKE ALL ON FUNCTION lianka_recognised(uuid, uuid, uuid) FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION lianka_my_alliance_cards() FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION lianka_my_alliance_cards() TO lianka_app")

    op.create_table(
        "member_statements",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("member_id", UUID(as_uuid=True), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("figures", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        #: the channel the statement's notice was queued on (None: the member consented to none)
        sa.Column("sent_channel", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", "month", name="pk_member_statements"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"],
            ["memberships.tenant_id", "memberships.member_id"],
            name="fk_member_statements_membership",
        ),
        sa.CheckConstraint("month ~ '^[0-9]{4}-[0-9]{2}$'", name="ck_member_statements_month"),
    )
    for s in rls.tenant_table("member_statements", append_only=True):
        op.execute(s)
    op.execute(f"CREATE POLICY member_self ON member_statements FOR SELECT USING ({MEMBER})")


def downgrade() -> None:
    op.drop_table("member_statements")
    op.execute("DROP FUNCTION lianka_my_alliance_cards()")
    op.execute(IS_CARDHOLDER_0009)
    op.execute("DROP FUNCTION lianka_recognised(uuid, uuid, uuid)")
    op.drop_table("alliance_recognition")
