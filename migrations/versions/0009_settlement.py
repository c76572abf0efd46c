"""Clearing and month-end settlement (issue 6): alliances and partners, versioned terms, the spoke
directory of an alliance book, settlement runs and statements; ledger_post takes a shared period lock.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lianka.platform import rls

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: ledger_post as in 0003, plus the (book, period) shared advisory lock the close waits on
LEDGER_POST = r"""
CREATE OR REPLACE FUNCTION ledger_post(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    v_id uuid;
    v_posted timestamptz;
    v_hash text;
    v_bt timestamptz := (p->>'business_time')::timestamptz;
    v_period text := p->>'period';
    v_late boolean := false;
    v_status text;
    v_before bigint;
    v_befores jsonb := '{}'::jsonb;
    v_need bigint;
    v_take bigint;
    v_debt bigint;
    v_lot uuid;
    v_acc uuid;
    v_amt bigint;
    v_prefer uuid[];
    v_lenient boolean;
    leg jsonb;
    r record;
BEGIN
    IF t IS NULL THEN
        RAISE EXCEPTION 'ledger_post needs app.tenant_id' USING ERRCODE = 'LK000';
    END IF;
    -- A shared lock on (book, period) before reading its status: the month-end close takes it
    -- exclusively to switch the period to 'closing', so it waits for every entry already heading
    -- into the period, and every later entry sees 'closing' and moves on to the next open period.
    IF v_period IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock_shared(hashtextextended('ledger-period:' || t::text || ':' || v_period, 0));
        SELECT status INTO v_status FROM ledger_periods WHERE tenant_id = t AND period = v_period;
        IF v_status IN ('closing', 'closed') THEN
            RAISE EXCEPTION 'period % is %', v_period, v_status USING ERRCODE = 'LK003';
        END IF;
    ELSE
        v_period := to_char(v_bt AT TIME ZONE (p->>'tz'), 'YYYY-MM');
        LOOP
            PERFORM pg_advisory_xact_lock_shared(hashtextextended('ledger-period:' || t::text || ':' || v_period, 0));
            EXIT WHEN NOT EXISTS (SELECT 1 FROM ledger_periods
                                   WHERE tenant_id = t AND period = v_period AND status <> 'open');
            v_period := to_char(to_date(v_period || '-01', 'YYYY-MM-DD') + interval '1 month', 'YYYY-MM');
            v_late := true;
        END LOOP;
    END IF;
    INSERT INTO ledger_entries (tenant_id, idempotency_scope, idempotency_key, request_hash, kind, memo,
                                business_time, period, late, reverses_id, refs)
    VALUES (t, p->>'scope', p->>'key', p->>'hash', p->>'kind', coalesce(p->>'memo', ''), v_bt, v_period, v_late,
            (p->>'reverses')::uuid, coalesce(p->'refs', '{}'::jsonb))
    ON CONFLICT (tenant_id, idempotency_scope, idempotency_key) DO NOTHING
    RETURNING id, posted_at INTO v_id, v_posted;
    IF v_id IS NULL THEN
        SELECT id, request_hash INTO v_id, v_hash FROM ledger_entries
         WHERE tenant_id = t AND idempotency_scope = p->>'scope' AND idempotency_key = p->>'key';
        IF v_id IS NULL OR v_hash <> p->>'hash' THEN
            RAISE EXCEPTION 'idempotency key % was used for a different entry', p->>'key' USING ERRCODE = 'LK002';
        END IF;
        RETURN jsonb_build_object('id', v_id, 'replayed', true);
    END IF;
    INSERT INTO ledger_postings (tenant_id, entry_id, seq, account_id, unit, amount, posted_at)
    SELECT t, v_id, (x.o - 1)::smallint, (x.l->>'account')::uuid, x.l->>'unit', (x.l->>'amount')::bigint, v_posted
      FROM jsonb_array_elements(p->'legs') WITH ORDINALITY AS x(l, o);
    FOR r IN SELECT (l->>'account')::uuid AS acc, sum((l->>'amount')::bigint) AS delta,
                    bool_or(coalesce((l->>'overdraw')::boolean, false)) AS over
               FROM jsonb_array_elements(p->'legs') AS l
              WHERE (l->>'tracked')::boolean GROUP BY 1 ORDER BY 1 LOOP
        UPDATE ledger_balances b SET balance = b.balance + r.delta, updated_at = now()
         WHERE b.tenant_id = t AND b.account_id = r.acc
           AND (b.floor IS NULL OR r.delta >= 0 OR r.over OR b.balance + r.delta >= b.floor)
        RETURNING b.balance - r.delta INTO v_before;
        IF NOT FOUND THEN
            SELECT balance INTO v_before FROM ledger_balances WHERE tenant_id = t AND account_id = r.acc;
            RAISE EXCEPTION 'account % has %, needs %', r.acc, v_before, -r.delta USING ERRCODE = 'LK001',
                DETAIL = jsonb_build_object('account', r.acc, 'balance', v_before, 'required', -r.delta)::text;
        END IF;
        v_befores := v_befores || jsonb_build_object(r.acc::text, v_before);
    END LOOP;
    IF p ? 'moves' THEN  -- explicit lot moves (expiry)
        FOR r IN SELECT (m->>0)::uuid AS lot, (m->>1)::bigint AS amt FROM jsonb_array_elements(p->'moves') AS m LOOP
            UPDATE ledger_lots SET remaining = remaining + r.amt WHERE tenant_id = t AND id = r.lot;
            INSERT INTO ledger_lot_moves (tenant_id, entry_id, lot_id, amount) VALUES (t, v_id, r.lot, r.amt);
        END LOOP;
    ELSE
        FOR leg IN SELECT l FROM jsonb_array_elements(p->'legs') AS l WHERE (l->>'lots')::boolean LOOP
            v_acc := (leg->>'account')::uuid;
            v_amt := (leg->>'amount')::bigint;
            v_debt := greatest(0, -coalesce((v_befores->>(v_acc::text))::bigint, 0));
            IF v_amt > 0 AND leg ? 'restore' THEN
                -- a reversal gives back exactly the lots the original took; a debt is paid first
                FOR r IN SELECT (m->>0)::uuid AS lot, (m->>1)::bigint AS a FROM jsonb_array_elements(leg->'restore') AS m LOOP
                    v_take := least(v_debt, r.a);
                    v_debt := v_debt - v_take;
                    IF r.a - v_take > 0 THEN
                        UPDATE ledger_lots SET remaining = remaining + (r.a - v_take) WHERE tenant_id = t AND id = r.lot;
                        INSERT INTO ledger_lot_moves (tenant_id, entry_id, lot_id, amount) VALUES (t, v_id, r.lot, r.a - v_take);
                    END IF;
                END LOOP;
            ELSIF v_amt > 0 THEN
                -- a credit makes a lot; it pays an outstanding debt (clawback) first
                v_take := least(v_debt, v_amt);
                INSERT INTO ledger_lots (tenant_id, account_id, entry_id, amount, remaining, earned_at, available_at,
                                         expires_at)
                VALUES (t, v_acc, v_id, v_amt, v_amt - v_take, v_bt, coalesce((leg->>'available_at')::timestamptz, v_bt),
                        (leg->>'expires_at')::timestamptz)
                RETURNING id INTO v_lot;
                IF v_take > 0 THEN
                    INSERT INTO ledger_lot_moves (tenant_id, entry_id, lot_id, amount) VALUES (t, v_id, v_lot, -v_take);
                END IF;
            ELSE
                -- a debit takes preferred lots first (a reversed credit's own), then first-expiring usable lots
                v_need := -v_amt;
                v_prefer := coalesce(ARRAY(SELECT jsonb_array_elements_text(leg->'prefer')::uuid), '{}');
                v_lenient := coalesce((leg->>'lenient')::boolean, false);
                FOR r IN SELECT id, remaining FROM ledger_lots
                          WHERE tenant_id = t AND account_id = v_acc AND remaining > 0
                            AND (id = ANY(v_prefer) OR v_lenient
                                 OR (available_at <= v_bt AND (expires_at IS NULL OR expires_at > v_bt)))
                          ORDER BY (id = ANY(v_prefer)) DESC, expires_at NULLS LAST, earned_at, id
                          FOR UPDATE LOOP
                    EXIT WHEN v_need = 0;
                    v_take := least(r.remaining, v_need);
                    UPDATE ledger_lots SET remaining = remaining - v_take WHERE tenant_id = t AND id = r.id;
                    INSERT INTO ledger_lot_moves (tenant_id, entry_id, lot_id, amount) VALUES (t, v_id, r.id, -v_take);
                    v_need := v_need - v_take;
                END LOOP;
                IF v_need > 0 AND NOT coalesce((leg->>'overdraw')::boolean, false) THEN
                    RAISE EXCEPTION '% of the points are not available yet', v_need USING ERRCODE = 'LK001',
                        DETAIL = jsonb_build_object('account', v_acc, 'short', v_need, 'required', -v_amt)::text;
                END IF;
            END IF;
        END LOOP;
    END IF;
    RETURN jsonb_build_object('id', v_id, 'posted_at', v_posted, 'period', v_period, 'late', v_late,
                              'replayed', false);
END $$;
"""

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
    op.execute(LEDGER_POST)
    # The commit-time check of an entry reads its book's accounts by the entry's own tenant_id. A
    # partner's transaction posts into an alliance's book and then returns to its own (to store its
    # idempotency record), so at commit RLS would hide the alliance's accounts: the check runs as the
    # owner, and it only ever looks at the rows of the entry being checked.
    op.execute("ALTER FUNCTION ledger_check_balanced() SECURITY DEFINER SET search_path = public")
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
        sa.ForeignKeyConstraint(["tenant_id", "period"], ["settlement_runs.tenant_id", "settlement_runs.period"],
                                name="fk_settlement_statements_run"),
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
        op.execute(f"CREATE POLICY alliance_book ON {table} USING (({predicate}) OR {rls.SYSTEM_PREDICATE}) "
                   f"WITH CHECK (({predicate}) OR {rls.SYSTEM_PREDICATE})")
        for s in rls.grant(table, "SELECT, INSERT, UPDATE"):
            op.execute(s)
    for s in rls.tenant_table("settlement_runs"):
        op.execute(s)
    for s in rls.tenant_table("settlement_statements", append_only=True):
        op.execute(s)
    op.execute("CREATE POLICY own_statements ON settlement_statements FOR SELECT "
               "USING (merchant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)")
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
    for table in ("settlement_statements", "settlement_runs", "alliance_spokes", "alliance_terms",
                  "alliance_invites", "alliance_partners", "alliances"):
        op.drop_table(table)
    op.execute("ALTER FUNCTION ledger_check_balanced() SECURITY INVOKER RESET search_path")
    # ledger_post keeps its period lock: it is compatible with every earlier schema
