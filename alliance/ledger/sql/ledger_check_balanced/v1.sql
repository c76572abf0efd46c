-- ledger_check_balanced v1 (migration 0003): the deferred constraint trigger ledger_postings_balanced
-- runs it at commit for every posting: the posting's account exists in the entry's book with the
-- posting's unit (checked here, without the row lock a foreign key would take on hot accounts), and
-- per entry and unit the postings sum to zero.
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
