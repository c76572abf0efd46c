-- ledger_post v1 (migration 0003): the posting engine. One call books an entry — idempotency,
-- period, postings, balances with floors, lots — in the caller's transaction, so a ledger write costs
-- one round trip. Runs as the caller (row-level security applies); the book is the transaction's
-- app.tenant_id. The JSON it takes and returns is alliance/ledger/contract.py.
-- Errors: LK001 insufficient funds, LK002 idempotency conflict, LK003 period closed, LK000 no tenant.
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
