"""SQL of the bonus-funding simulator: the stored-value bonus a chain's month consumed, per redeeming
branch and issuing branch (refunds' restored bonus subtracted). Read-only; RLS scopes it to the book."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import text

from lianka.platform.db import UnitOfWork

#: spends take bonus from lots (the lot's issuer is the ``branch`` of the entry that made it); a
#: refund gives bonus back with the issuer in its own ``refs.branch``; the redeeming branch is the sale's
_BONUS_BY_BRANCH = text("""
SELECT s.branch_id AS redeeming, coalesce(ie.refs->>'branch', '') AS issuer, -sum(m.amount) AS bonus
  FROM ledger_entries e
  JOIN sales s ON s.tenant_id = e.tenant_id AND s.id = CAST(e.refs->>'sale' AS uuid)
  JOIN ledger_lot_moves m ON m.tenant_id = e.tenant_id AND m.entry_id = e.id
  JOIN ledger_lots l ON l.tenant_id = m.tenant_id AND l.id = m.lot_id
  JOIN ledger_accounts a ON a.tenant_id = l.tenant_id AND a.id = l.account_id
  JOIN ledger_entries ie ON ie.tenant_id = l.tenant_id AND ie.id = l.entry_id
 WHERE e.period = :period AND e.kind = 'stored_value_spent' AND a.kind = ANY(CAST(:kinds AS text[]))
 GROUP BY 1, 2
UNION ALL
SELECT s.branch_id, coalesce(e.refs->>'branch', ''), -sum(p.amount)
  FROM ledger_entries e
  JOIN sales s ON s.tenant_id = e.tenant_id AND s.id = CAST(e.refs->>'sale' AS uuid)
  JOIN ledger_postings p ON p.tenant_id = e.tenant_id AND p.entry_id = e.id
  JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
 WHERE e.period = :period AND e.kind = 'stored_value_restored' AND a.kind = ANY(CAST(:kinds AS text[]))
 GROUP BY 1, 2
""")


async def bonus_by_branch(uow: UnitOfWork, period: str, kinds: Sequence[str]) -> dict[uuid.UUID, dict[str, int]]:
    """redeeming branch -> issuing branch id as text ('' when the bonus had none) -> net bonus consumed
    in ``period`` (the ledger's period of the entries, as the close reads them)."""
    out: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in await uow.session.execute(_BONUS_BY_BRANCH, {"period": period, "kinds": list(kinds)}):
        out[r.redeeming][r.issuer] += int(r.bonus)
    return {k: dict(v) for k, v in out.items()}
