-- ledger_forbid_change v1 (migration 0003): the trigger function behind *_immutable and *_no_truncate
-- on ledger_entries, ledger_postings and ledger_lot_moves. It refuses UPDATE, DELETE and TRUNCATE for
-- everybody, the owner included: corrections are reversals.
CREATE OR REPLACE FUNCTION ledger_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable: % on % is not allowed (post a reversal instead)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
