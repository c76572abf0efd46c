-- ledger_check_balanced v2 (migration 0009): v1's body, run as the owner. A partner's transaction
-- posts into an alliance's book and then returns to its own (to store its idempotency record), so at
-- commit row-level security would hide the alliance's accounts; the check only ever looks at the rows
-- of the entry being checked.
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public AS $$
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
