"""Webhook retention: finished deliveries, their attempts and the events nothing points at any more
are deleted after a while (decision 0052, 2026-12).

``webhook_events`` and ``webhook_attempts`` are append-only for the app role (SELECT, INSERT), so
the app cannot delete them itself; ``lianka_webhook_prune(before)`` does, as the tables' owner, for
the merchant whose transaction calls it (``app.tenant_id``; the function refuses a call without
one) and only what is finished and older than ``before``: deliveries delivered or failed (their
attempts with them; pending ones are never touched) and events no delivery references. Returns the
number of deliveries deleted.

Revision ID: 0042
Revises: 0041
"""

from __future__ import annotations

from alembic import op

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

PRUNE = """
CREATE FUNCTION lianka_webhook_prune(before timestamptz) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
DECLARE
    t uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    n bigint;
BEGIN
    IF t IS NULL THEN
        RAISE EXCEPTION 'lianka_webhook_prune: no merchant in this transaction' USING ERRCODE = '42501';
    END IF;
    DELETE FROM webhook_attempts a USING webhook_deliveries d
     WHERE a.tenant_id = t AND d.tenant_id = t AND a.delivery_id = d.id
       AND d.status IN ('delivered', 'failed') AND d.updated_at < before;
    DELETE FROM webhook_deliveries
     WHERE tenant_id = t AND status IN ('delivered', 'failed') AND updated_at < before;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM webhook_events e
     WHERE e.tenant_id = t AND e.created_at < before
       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.tenant_id = t AND d.event_id = e.id);
    RETURN n;
END $$
"""


def upgrade() -> None:
    op.execute(PRUNE)
    op.execute("REVOKE ALL ON FUNCTION lianka_webhook_prune(timestamptz) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION lianka_webhook_prune(timestamptz) TO lianka_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION lianka_webhook_prune(timestamptz)")
