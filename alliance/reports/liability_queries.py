"""SQL of the alliance's month-end liability report: what members hold of the alliance's points and
stored value, read from the alliance's book (its journal and its lots), never from the rollups
(decision 0057, after 0040). Every statement runs in the alliance's book; none writes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from lianka.platform.db import UnitOfWork

MEMBER_KINDS = ("alliance_points", "alliance_sv_principal", "alliance_sv_bonus")

#: per (account kind, entry kind) of the month and per account kind before it (entry kind ''): what
#: moved on members' accounts — the totals, which equal the accounts' balances
_TOTALS = text("""
SELECT a.kind AS account_kind, CASE WHEN e.period < :p THEN '' ELSE e.kind END AS entry_kind,
       sum(p.amount) AS amount
  FROM ledger_postings p
  JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
  JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE p.tenant_id = :t AND a.owner_kind = 'member' AND a.kind = ANY(CAST(:kinds AS text[])) AND e.period <= :p
 GROUP BY 1, 2
""")

#: per (account kind, issuer, entry kind): the lots members' accounts hold, by the partner whose branch
#: booked the entry that made the lot — a lot's making adds its amount, every move on it (a redemption,
#: an expiry, a reversal giving it back, a clawback) adds the move's; the issuer is '' when the making
#: entry names no branch of the alliance
_BY_ISSUER = text("""
WITH lots AS (
  SELECT l.id, a.kind AS account_kind, l.amount, le.period, le.kind,
         coalesce(CAST(s.merchant_id AS text), '') AS issuer
    FROM ledger_lots l
    JOIN ledger_accounts a ON a.tenant_id = l.tenant_id AND a.id = l.account_id
    JOIN ledger_entries le ON le.tenant_id = l.tenant_id AND le.id = l.entry_id
    LEFT JOIN alliance_spokes s ON s.alliance_id = :t AND s.branch_id = CAST(NULLIF(le.refs->>'branch', '') AS uuid)
   WHERE l.tenant_id = :t AND a.owner_kind = 'member' AND a.kind = ANY(CAST(:kinds AS text[])) AND le.period <= :p),
moves AS (
  SELECT lots.account_kind, lots.issuer, e.period, e.kind, m.amount
    FROM ledger_lot_moves m
    JOIN lots ON lots.id = m.lot_id
    JOIN ledger_entries e ON e.tenant_id = m.tenant_id AND e.id = m.entry_id
   WHERE m.tenant_id = :t AND e.period <= :p),
u AS (
  SELECT account_kind, issuer, period, kind, amount FROM lots
  UNION ALL SELECT account_kind, issuer, period, kind, amount FROM moves)
SELECT account_kind, issuer, CASE WHEN period < :p THEN '' ELSE kind END AS entry_kind, sum(amount) AS amount
  FROM u
 GROUP BY 1, 2, 3
""")


@dataclass(frozen=True)
class Movement:
    account_kind: str
    issuer: str  # a partner's merchant id as text; '' when none ('*' is never read here)
    entry_kind: str  # '' for everything before the month (the opening)
    amount: int


async def totals(uow: UnitOfWork, period: str) -> list[Movement]:
    rows = await uow.session.execute(_TOTALS, {"t": uow.tenant_id, "p": period, "kinds": list(MEMBER_KINDS)})
    return [Movement(r.account_kind, "*", r.entry_kind, int(r.amount)) for r in rows]


async def by_issuer(uow: UnitOfWork, period: str) -> list[Movement]:
    rows = await uow.session.execute(_BY_ISSUER, {"t": uow.tenant_id, "p": period, "kinds": list(MEMBER_KINDS)})
    return [Movement(r.account_kind, r.issuer, r.entry_kind, int(r.amount)) for r in rows]
