"""Clearing and month-end settlement (issue 6): alliances and partners, versioned terms, the spoke
directory of an alliance book, settlement runs and statements; ledger_post takes a shared period lock.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.alliance.ledger import sql
from lianka.platform import rls

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: the alliances a merchant (the current tenant) belongs to, and how: partners cannot read the
#: alliance's tables (their RLS key is the alliance), so this is the one door, and it only ever
#: answers for the tenant asking
MY_ALLIANCES = """
CREATE FUNCTION lianka_my_alliances() RETURNS TABLE (alliance_id uuid, role text, status text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT p.alliance_id, p.role, p.status FROM alliance_partners p
     WHERE p.merchant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
$$
"""

#: an invitation code is redeemed by a merchant that cannot see the alliance yet
FIND_INVITE = """
CREATE FUNCTION lianka_find_invite(code_hash text) RETURNS TABLE (alliance_id uuid, invite_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT i.alliance_id, i.id FROM alliance_invites i
     WHERE i.code_hash = $1 AND i.accepted_by IS NULL AND i.expires_at > now()
$$
"""


#: whether a person holds the alliance's card: a member of any of its partners (past partners too:
#: their members' alliance balances stay valid at the others). Memberships are tenant rows, so the
#: accepting partner asks through this door and learns nothing else.
IS_CARDHOLDER = """
CREATE FUNCTION lianka_is_cardholder(alliance uuid, member uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT EXISTS (SELECT 1 FROM memberships m JOIN alliance_partners p ON p.merchant_id = m.tenant_id
                    WHERE p.alliance_id = $1 AND m.member_id = $2)
$$
"""


def _book() -> sa.Column[object]:
    return sa.Column("tenant_id", UUID(as_uuid=True), nullable=False)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    # ledger_post v2 takes the (book, period) shared lock the close waits on; ledger_check_balanced v2
    # runs as the owner, as an alliance book's accounts are hidden from a partner at commit (the files
    # say why: alliance/ledger/sql/<name>/v2.sql)
    op.execute(sql.load("ledger_post", 2))
    op.execute(sql.load("ledger_check_balanced", 2))
    op.create_table(
        "alliances",
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("operator_merchant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=True),
        _now("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_alliances"),
        sa.UniqueConstraint("code", name="uq_alliances_code"),
        sa.CheckConstraint("code ~ '^[a-z0-9][a-z0-9-]{1,39}$'", name="ck_alliances_code"),
    )
    op.create_table(
        "alliance_partners",
        sa.Column("alliance_id", UUID(as_uuid=True), sa.ForeignKey("alliances.id"), nullable=False),
        sa.Column("merchant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _now("joined_at"),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("alliance_id", "merchant_id", name="pk_alliance_partners"),
        sa.CheckConstraint("role IN ('operator', 'partner')", name="ck_alliance_partners_role"),
        sa.CheckConstraint("status IN ('active', 'suspended', 'left')", name="ck_alliance_partners_status"),
    )
    op.create_index("ix_alliance_partners_merchant", "alliance_partners", ["merchant_id"])
    op.create_table(
        "alliance_invites",
        sa.Column("alliance_id", UUID(as_uuid=True), sa.ForeignKey("alliances.id"), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("note", sa.String(200), nullable=False, server_default=""),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_by", UUID(as_uuid=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        _now("created_at"),
        sa.PrimaryKeyConstraint("alliance_id", "id", name="pk_alliance_invites"),
        sa.UniqueConstraint("code_hash", name="uq_alliance_invites_code"),
    )
    op.create_table(
        "alliance_terms",
        sa.Column("alliance_id", UUID(as_uuid=True), sa.ForeignKey("alliances.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("note", sa.String(400), nullable=False, server_default=""),
        _now("created_at"),
        sa.PrimaryKeyConstraint("alliance_id", "version", name="pk_alliance_terms"),
    )
    op.create_table(
        "alliance_spokes",  # the alliance book's directory of the branches its clearing accounts belong to
        sa.Column("alliance_id", UUID(as_uuid=True), sa.ForeignKey("alliances.id"), nullable=False),
        sa.Column("branch_id", UUID(as_uuid=True), nullable=False),
        sa.Column("merchant_id", UUID(as_uuid=True), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("alliance_id", "branch_id", name="pk_alliance_spokes"),
    )
    op.create_table(
        "settlement_runs",
        _book(),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("entities", sa.Integer, nullable=False, server_default="0"),
        sa.Column("checksum", sa.String(64), nullable=True),
        sa.Column("summary", JSONB, nullable=True),
        _now("started_at"),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "period", name="pk_settlement_runs"),
        sa.CheckConstraint("scope IN ('chain', 'alliance')", name="ck_settlement_runs_scope"),
        sa.CheckConstraint("status IN ('running', 'closed')", name="ck_settlement_runs_status"),
    )
    op.create_table(
        "settlement_statements",
        _book(),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("entity_kind", sa.String(16), nullable=False),
        sa.Column("entity_id", UUID(as_uuid=True), nullable=False),
        #: the merchant the entity belongs to: RLS lets it read its own statements in an alliance book
        sa.Column("merchant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("parent_id", UUID(as_uuid=True), nullable=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("opening", sa.BigInteger, nullable=False),
        sa.Column("lines", JSONB, nullable=False),
        sa.Column("late", sa.BigInteger, nullable=False),
        sa.Column("net", sa.BigInteger, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        _now("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "period", "entity_id", name="pk_settlement_statements"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "period"],
            ["settlement_runs.tenant_id", "settlement_runs.period"],
            name="fk_settlement_statements_run",
        ),
        sa.CheckConstraint("entity_kind IN ('hub', 'branch', 'partner')", name="ck_settlement_statements_kind"),
    )
    op.create_index("ix_settlement_statements_merchant", "settlement_statements", ["merchant_id", "period"])
    alliance_key = "id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
    for table, predicate in (
        ("alliances", alliance_key),
        ("alliance_partners", alliance_key.replace("id", "alliance_id", 1)),
        ("alliance_invites", alliance_key.replace("id", "alliance_id", 1)),
        ("alliance_terms", alliance_key.replace("id", "alliance_id", 1)),
        ("alliance_spokes", alliance_key.replace("id", "alliance_id", 1)),
    ):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY alliance_book ON {table} USING (({predicate}) OR {rls.SYSTEM_PREDICATE}) "
            f"WITH CHECK (({predicate}) OR {rls.SYSTEM_PREDICATE})"
        )
        for s in rls.grant(table, "SELECT, INSERT, UPDATE"):
            op.execute(s)
    for s in rls.tenant_table("settlement_runs"):
        op.execute(s)
    for s in rls.tenant_table("settlement_statements", append_only=True):
        op.execute(s)
    op.execute(
        "CREATE POLICY own_statements ON settlement_statements FOR SELECT "
        "USING (merchant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
    )
    op.execute("REVOKE DELETE ON settlement_runs FROM lianka_app")
    op.execute(MY_ALLIANCES)
    op.execute(FIND_INVITE)
    op.execute(IS_CARDHOLDER)
    op.execute("REVOKE ALL ON FUNCTION lianka_is_cardholder(uuid, uuid) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION lianka_is_cardholder(uuid, uuid) TO lianka_app")
    op.execute("REVOKE ALL ON FUNCTION lianka_my_alliances() FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION lianka_find_invite(text) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION lianka_my_alliances() TO lianka_app")
    op.execute("GRANT EXECUTE ON FUNCTION lianka_find_invite(text) TO lianka_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION lianka_is_cardholder(uuid, uuid)")
    op.execute("DROP FUNCTION lianka_find_invite(text)")
    op.execute("DROP FUNCTION lianka_my_alliances()")
    for table in (
        "settlement_statements",
        "settlement_runs",
        "alliance_spokes",
        "alliance_terms",
        "alliance_invites",
        "alliance_partners",
        "alliances",
    ):
        op.drop_table(table)
    op.execute(sql.load("ledger_check_balanced", 1))
    # ledger_post keeps its period lock: it is compatible with every earlier schema
