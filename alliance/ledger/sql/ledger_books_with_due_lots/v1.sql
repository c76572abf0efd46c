-- ledger_books_with_due_lots v1 (migration 0003): the expiry job discovers which books have due lots
-- without seeing any row: SECURITY DEFINER, ids only (EXECUTE is granted to lianka_app alone).
CREATE OR REPLACE FUNCTION ledger_books_with_due_lots(at timestamptz) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT DISTINCT tenant_id FROM ledger_lots WHERE remaining > 0 AND expires_at <= at
$$;
