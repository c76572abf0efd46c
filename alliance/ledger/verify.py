"""Ledger invariants, checked over the whole database by the operator (``lianka ledger verify``).

Runs as the owner role (row-level security would hide other tenants' rows from the app role). Each
check is one set-based query returning the offending rows (at most ``limit``); an empty report means
the books are sound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CHECKS: dict[str, str] = {
    "entries balance per unit": """
        SELECT tenant_id, entry_id, unit, sum(amount) AS total FROM ledger_postings
        GROUP BY tenant_id, entry_id, unit HAVING sum(amount) <> 0""",
    "every entry has postings": """
        SELECT e.tenant_id, e.id FROM ledger_entries e
        WHERE NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id)""",
    "each unit sums to zero over all accounts": """
        SELECT tenant_id, unit, sum(amount) AS total FROM ledger_postings
        GROUP BY tenant_id, unit HAVING sum(amount) <> 0""",
    "balance rows equal the fold of their postings": """
        SELECT b.tenant_id, b.account_id, b.balance, coalesce(p.total, 0) AS postings FROM ledger_balances b
        LEFT JOIN (SELECT tenant_id, account_id, sum(amount) AS total FROM ledger_postings
                   GROUP BY tenant_id, account_id) p ON p.tenant_id = b.tenant_id AND p.account_id = b.account_id
        WHERE b.balance <> coalesce(p.total, 0)""",
    "balances respect their floors": """
        SELECT tenant_id, account_id, balance, floor FROM ledger_balances
        WHERE floor IS NOT NULL AND balance < floor
          AND NOT EXISTS (SELECT 1 FROM ledger_lots l WHERE l.tenant_id = ledger_balances.tenant_id
                          AND l.account_id = ledger_balances.account_id)""",
    "lot remaining = credit + moves": """
        SELECT l.tenant_id, l.id, l.amount, l.remaining, coalesce(m.total, 0) AS moves FROM ledger_lots l
        LEFT JOIN (SELECT tenant_id, lot_id, sum(amount) AS total FROM ledger_lot_moves GROUP BY tenant_id, lot_id) m
          ON m.tenant_id = l.tenant_id AND m.lot_id = l.id
        WHERE l.remaining <> l.amount + coalesce(m.total, 0)""",
    "open lots = positive balance (debt leaves no lots)": """
        SELECT b.tenant_id, b.account_id, b.balance, coalesce(l.open, 0) AS open_lots FROM ledger_balances b
        JOIN ledger_accounts a ON a.tenant_id = b.tenant_id AND a.id = b.account_id AND a.lots
        LEFT JOIN (SELECT tenant_id, account_id, sum(remaining) AS open FROM ledger_lots
                   GROUP BY tenant_id, account_id) l ON l.tenant_id = b.tenant_id AND l.account_id = b.account_id
        WHERE coalesce(l.open, 0) <> greatest(b.balance, 0)""",
    "a posting's account exists with the posting's unit": """
        SELECT p.tenant_id, p.entry_id, p.seq FROM ledger_postings p
        LEFT JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
        WHERE a.id IS NULL OR a.unit <> p.unit""",
}


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    failures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


async def verify(conn: AsyncConnection, *, limit: int = 20,
                 progress: Callable[[str], None] | None = None) -> Report:
    report = Report()
    for table in ("ledger_entries", "ledger_postings", "ledger_accounts", "ledger_lots"):
        report.counts[table] = int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
    for name, sql in CHECKS.items():
        rows = (await conn.execute(text(f"{sql} LIMIT {int(limit)}"))).mappings().all()
        if rows:
            report.failures[name] = [dict(r) for r in rows]
        if progress:
            progress(name)
    return report
