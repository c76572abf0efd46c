"""SQL of the month-end finance reports: what moved on the accounts that are liabilities — members'
points and stored value (principal, bonus) and deferred paid-membership revenue — read from the
ledger journal itself (a month-end report, not a dashboard: it reads the journal once, decision 0040)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from lianka.platform.db import UnitOfWork

MEMBER_KINDS = ("points", "sv_principal", "sv_bonus")
DEFERRED_KIND = "deferred_membership_revenue"

#: one row per (account kind, branch, entry kind) of the month, and per (account kind, branch) before
#: it (entry kind ''); the branch is the sale's when the entry belongs to a sale, else the entry's own
_MOVEMENTS = text("""
WITH acc AS (
  SELECT id, kind FROM ledger_accounts
   WHERE tenant_id = :t
     AND ((owner_kind = 'member' AND kind = ANY(CAST(:member_kinds AS text[])))
          OR (owner_kind = 'merchant' AND kind = :deferred))
)
SELECT acc.kind AS account_kind,
       coalesce(CAST(s.branch_id AS text), e.refs->>'branch', '') AS branch,
       CASE WHEN e.period < :p THEN '' ELSE e.kind END AS entry_kind,
       sum(p.amount) AS amount
  FROM ledger_postings p
  JOIN acc ON acc.id = p.account_id
  JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
  LEFT JOIN sales s ON s.tenant_id = e.tenant_id AND e.refs ? 'sale' AND s.id = CAST(e.refs->>'sale' AS uuid)
 WHERE p.tenant_id = :t AND e.period <= :p
 GROUP BY 1, 2, 3
""")


@dataclass(frozen=True)
class Movement:
    account_kind: str
    branch: str  # a branch id as text, '' when the entry names none
    entry_kind: str  # '' for everything before the month (the opening)
    amount: int


async def movements(uow: UnitOfWork, period: str) -> list[Movement]:
    assert uow.tenant_id is not None
    rows = await uow.session.execute(
        _MOVEMENTS, {"t": uow.tenant_id, "p": period, "member_kinds": list(MEMBER_KINDS), "deferred": DEFERRED_KIND}
    )
    return [Movement(r.account_kind, r.branch, r.entry_kind, int(r.amount)) for r in rows]


# --- vouchers ---------------------------------------------------------------------------------------

_VOUCHER_MOVES = text("""
SELECT e.kind AS entry_kind, a.kind AS account_kind, sum(p.amount) AS amount
  FROM ledger_postings p
  JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
  JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
 WHERE p.tenant_id = :t AND e.period = :p AND a.unit = :unit
 GROUP BY 1, 2
""")
_MAPPINGS = text("SELECT ledger_kind, code, name FROM account_mappings WHERE tenant_id = :t")
_UPSERT_MAPPING = text("""
INSERT INTO account_mappings (tenant_id, ledger_kind, code, name) VALUES (:t, :k, :c, :n)
ON CONFLICT (tenant_id, ledger_kind) DO UPDATE SET code = excluded.code, name = excluded.name, updated_at = now()
""")
_DELETE_MAPPING = text("DELETE FROM account_mappings WHERE tenant_id = :t AND ledger_kind = :k")


@dataclass(frozen=True)
class VoucherMove:
    entry_kind: str
    account_kind: str
    amount: int


async def voucher_moves(uow: UnitOfWork, period: str, unit: str) -> list[VoucherMove]:
    """The month's postings in ``unit`` summed per (entry kind, ledger account kind)."""
    rows = await uow.session.execute(_VOUCHER_MOVES, {"t": uow.tenant_id, "p": period, "unit": unit})
    return [VoucherMove(r.entry_kind, r.account_kind, int(r.amount)) for r in rows]


async def account_mappings(uow: UnitOfWork) -> dict[str, tuple[str, str]]:
    return {r.ledger_kind: (r.code, r.name) for r in await uow.session.execute(_MAPPINGS, {"t": uow.tenant_id})}


async def upsert_mapping(uow: UnitOfWork, kind: str, code: str, name: str) -> None:
    await uow.session.execute(_UPSERT_MAPPING, {"t": uow.tenant_id, "k": kind, "c": code, "n": name})


async def delete_mapping(uow: UnitOfWork, kind: str) -> None:
    await uow.session.execute(_DELETE_MAPPING, {"t": uow.tenant_id, "k": kind})
