"""The ledger (issue 4): accounts, journal entries, postings, balances, point lots, periods.

Revision ID: 0003
Revises: 0002

Enforced in the database, not only in Python:
- entries, postings and lot moves are append-only: the app role has no UPDATE/DELETE, and a trigger
  refuses UPDATE/DELETE/TRUNCATE for everybody, owner included;
- per entry and unit the postings sum to zero: a deferred constraint trigger checks it at commit;
- a posting's account exists in its book with the posting's unit (checked at commit, without the
  row lock a foreign key would take on hot accounts);
- a balance row never passes its floor unless the entry carries an explicit override (clawback).
"""

from __future__ import annotations

from alembic import op

from lianka.platform import rls

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DDL = r"""
CREATE TABLE ledger_accounts (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_kind text NOT NULL CHECK (owner_kind IN ('platform','merchant','branch','alliance','partner','member')),
    owner_id uuid,
    kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,39}$'),
    unit text NOT NULL CHECK (unit ~ '^([A-Z]{3}|PTS:[A-Za-z0-9:_-]{1,60})$'),
    allow_negative boolean NOT NULL DEFAULT false,
    tracked boolean NOT NULL DEFAULT false,
    lots boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ledger_accounts PRIMARY KEY (tenant_id, id),
    CONSTRAINT uq_ledger_accounts_unit UNIQUE (tenant_id, id, unit),
    CONSTRAINT uq_ledger_accounts_owner UNIQUE NULLS NOT DISTINCT (tenant_id, owner_kind, owner_id, kind, unit),
    CONSTRAINT ck_ledger_accounts_lots_tracked CHECK (NOT lots OR tracked)
);

CREATE TABLE ledger_periods (
    tenant_id uuid NOT NULL,
    period text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open','closing','closed')),
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ledger_periods PRIMARY KEY (tenant_id, period)
);

CREATE TABLE ledger_entries (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    idempotency_scope text NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash text NOT NULL,
    kind text NOT NULL,
    memo text NOT NULL DEFAULT '',
    business_time timestamptz NOT NULL,
    posted_at timestamptz NOT NULL DEFAULT now(),
    period text NOT NULL,
    late boolean NOT NULL DEFAULT false,
    reverses_id uuid,
    refs jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pk_ledger_entries PRIMARY KEY (tenant_id, id),
    CONSTRAINT uq_ledger_entries_idempotency UNIQUE (tenant_id, idempotency_scope, idempotency_key),
    CONSTRAINT fk_ledger_entries_reverses FOREIGN KEY (tenant_id, reverses_id) REFERENCES ledger_entries (tenant_id, id)
);
CREATE UNIQUE INDEX uq_ledger_entries_one_reversal ON ledger_entries (tenant_id, reverses_id) WHERE reverses_id IS NOT NULL;
CREATE INDEX ix_ledger_entries_period ON ledger_entries (tenant_id, period);

CREATE TABLE ledger_postings (
    tenant_id uuid NOT NULL,
    entry_id uuid NOT NULL,
    seq smallint NOT NULL,
    account_id uuid NOT NULL,
    unit text NOT NULL,
    amount bigint NOT NULL CHECK (amount <> 0 AND amount BETWEEN -1000000000000000 AND 1000000000000000),
    posted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ledger_postings PRIMARY KEY (tenant_id, entry_id, seq),
    CONSTRAINT fk_ledger_postings_entry FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id)
    -- no foreign key to ledger_accounts: its KEY SHARE lock would make every posting to a hot account
    -- (an alliance pool) fight over one row's multixact; ledger_check_posting checks it at commit
);
CREATE INDEX ix_ledger_postings_account ON ledger_postings (tenant_id, account_id, posted_at);

CREATE TABLE ledger_balances (
    tenant_id uuid NOT NULL,
    account_id uuid NOT NULL,
    balance bigint NOT NULL DEFAULT 0,
    floor bigint,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ledger_balances PRIMARY KEY (tenant_id, account_id),
    CONSTRAINT fk_ledger_balances_account FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
);

CREATE TABLE ledger_lots (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    account_id uuid NOT NULL,
    entry_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    remaining bigint NOT NULL CHECK (remaining >= 0),
    earned_at timestamptz NOT NULL,
    available_at timestamptz NOT NULL,
    expires_at timestamptz,
    CONSTRAINT pk_ledger_lots PRIMARY KEY (tenant_id, id),
    CONSTRAINT ck_ledger_lots_remaining CHECK (remaining <= amount),
    CONSTRAINT fk_ledger_lots_account FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id),
    CONSTRAINT fk_ledger_lots_entry FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id)
);
CREATE INDEX ix_ledger_lots_open ON ledger_lots (tenant_id, account_id, expires_at) WHERE remaining > 0;
CREATE INDEX ix_ledger_lots_due ON ledger_lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

CREATE TABLE ledger_lot_moves (
    tenant_id uuid NOT NULL,
    entry_id uuid NOT NULL,
    lot_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount <> 0),
    CONSTRAINT pk_ledger_lot_moves PRIMARY KEY (tenant_id, entry_id, lot_id),
    CONSTRAINT fk_ledger_lot_moves_entry FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id),
    CONSTRAINT fk_ledger_lot_moves_lot FOREIGN KEY (tenant_id, lot_id) REFERENCES ledger_lots (tenant_id, id)
);
CREATE INDEX ix_ledger_lot_moves_lot ON ledger_lot_moves (tenant_id, lot_id);

CREATE TABLE ledger_snapshots (
    tenant_id uuid NOT NULL,
    account_id uuid NOT NULL,
    as_of timestamptz NOT NULL,
    balance bigint NOT NULL,
    CONSTRAINT pk_ledger_snapshots PRIMARY KEY (tenant_id, account_id, as_of),
    CONSTRAINT fk_ledger_snapshots_account FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
);

CREATE FUNCTION ledger_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable: % on % is not allowed (post a reversal instead)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
    PERFORM 1 FROM ledger_accounts WHERE tenant_id = NEW.tenant_id AND id = NEW.account_id AND unit = NEW.unit;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'posting to account % in unit %: no such account in this book with that unit',
            NEW.account_id, NEW.unit USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT unit, sum(amount) AS total INTO bad FROM ledger_postings
     WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.entry_id
     GROUP BY unit HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entry % does not balance: % sums to %', NEW.entry_id, bad.unit, bad.total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

-- The posting engine: one call books an entry — idempotency, period, postings, balances with floors,
-- lots — in the caller's transaction, so a ledger write costs one round trip. Runs as the caller
-- (row-level security applies); the tenant is the transaction's app.tenant_id.
-- Errors: LK001 insufficient funds, LK002 idempotency conflict, LK003 period closed, LK000 no tenant.
CREATE FUNCTION ledger_post(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
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
    IF v_period IS NOT NULL THEN
        SELECT status INTO v_status FROM ledger_periods WHERE tenant_id = t AND period = v_period;
        IF v_status IN ('closing', 'closed') THEN
            RAISE EXCEPTION 'period % is %', v_period, v_status USING ERRCODE = 'LK003';
        END IF;
    ELSE
        v_period := to_char(v_bt AT TIME ZONE (p->>'tz'), 'YYYY-MM');
        WHILE EXISTS (SELECT 1 FROM ledger_periods WHERE tenant_id = t AND period = v_period AND status <> 'open') LOOP
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

-- jobs discover which books have due lots without seeing any row: SECURITY DEFINER, ids only
CREATE FUNCTION ledger_books_with_due_lots(at timestamptz) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT DISTINCT tenant_id FROM ledger_lots WHERE remaining > 0 AND expires_at <= at
$$;

REVOKE ALL ON FUNCTION ledger_books_with_due_lots(timestamptz) FROM PUBLIC;

CREATE CONSTRAINT TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
"""

APPEND_ONLY = ("ledger_entries", "ledger_postings", "ledger_lot_moves")


def statements(script: str) -> list[str]:
    """One statement at a time (asyncpg prepares each): blocks are separated by blank lines; a block
    holding a function body (``$$``) is one statement, other blocks may hold several."""
    out: list[str] = []
    for raw in script.strip().split("\n\n"):
        block = "\n".join(ln for ln in raw.splitlines() if not ln.startswith("--")).strip()
        if not block:
            continue
        parts = [block] if "$$" in block else block.split(";\n")
        out.extend(x.strip().rstrip(";") for x in parts if x.strip())
    return out


def upgrade() -> None:
    for statement in statements(DDL):
        op.execute(statement)
    for table in APPEND_ONLY:
        op.execute(f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()")
        for s in rls.tenant_table(table, append_only=True):
            op.execute(s)
    for table in ("ledger_accounts", "ledger_snapshots"):
        for s in rls.tenant_table(table, append_only=True):
            op.execute(s)
    for table in ("ledger_balances", "ledger_lots", "ledger_periods"):
        for s in rls.tenant_table(table):
            op.execute(s)
    op.execute("GRANT EXECUTE ON FUNCTION ledger_books_with_due_lots(timestamptz) TO lianka_app")
    op.execute("GRANT EXECUTE ON FUNCTION ledger_post(jsonb) TO lianka_app")
    # balances and lots change only through their own columns; never deleted by the app
    op.execute("REVOKE DELETE ON ledger_balances, ledger_lots, ledger_periods FROM lianka_app")


def downgrade() -> None:
    for table in ("ledger_snapshots", "ledger_lot_moves", "ledger_lots", "ledger_balances", "ledger_postings",
                  "ledger_entries", "ledger_periods", "ledger_accounts"):
        op.execute(f"DROP TABLE {table} CASCADE")
    for fn in ("ledger_post(jsonb)", "ledger_check_balanced()", "ledger_forbid_change()",
               "ledger_books_with_due_lots(timestamptz)"):
        op.execute(f"DROP FUNCTION {fn}")
