"""The SQL of the members' monthly value statements (``member_statements``) and the ledger movements
they sum, each behind a typed function; the unit of work is in the merchant's book unless a function
says otherwise. They never commit."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text

from lianka.platform.db import UnitOfWork


class Movement(NamedTuple):
    """The sum of a member's postings on one account kind, of one entry kind, one direction."""

    member_id: uuid.UUID
    account: str  # points | sv_principal | sv_bonus
    entry_kind: str
    reversal: bool
    amount: int


class StatementRow(NamedTuple):
    """A row of ``member_statements``."""

    member_id: uuid.UUID
    month: str
    currency: str
    figures: dict[str, Any]
    created_at: datetime
    sent_channel: str | None


#: every posting on a member's programme accounts posted in [start, end), summed per member, account,
#: entry kind, reversal or not, and sign. Posting time (not business time): each movement is on exactly
#: one statement even when an offline till books it days late, and a month's figures never change
#: once the month is over.
_MOVEMENTS = text("""
SELECT a.owner_id AS member_id, a.kind AS account, e.kind AS entry_kind, e.reverses_id IS NOT NULL AS reversal,
       sum(p.amount) AS amount
  FROM ledger_accounts a
  JOIN ledger_postings p ON p.tenant_id = a.tenant_id AND p.account_id = a.id
                        AND p.posted_at >= :start AND p.posted_at < :end
  JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
 WHERE a.tenant_id = :t AND a.owner_kind = 'member' AND a.kind IN ('points', 'sv_principal', 'sv_bonus')
   AND (CAST(:m AS uuid) IS NULL OR a.owner_id = :m)
 GROUP BY 1, 2, 3, 4, sign(p.amount)
 ORDER BY 1
""")
_HAS_STATEMENT = text("SELECT 1 FROM member_statements WHERE member_id = :m AND month = :month")
_INSERT = text("""
INSERT INTO member_statements (tenant_id, member_id, month, currency, figures, sent_channel)
VALUES (:t, :m, :month, :c, CAST(:f AS jsonb), :ch)
ON CONFLICT (tenant_id, member_id, month) DO NOTHING RETURNING true
""")
_CONSENT = text("SELECT consent FROM member_profiles WHERE member_id = :m")
_PHONE = text("SELECT phone FROM members WHERE id = :m")
_SLUG_AND_NAME = text("SELECT slug, name FROM merchants WHERE id = :t")
_MINE = text("""
SELECT member_id, month, currency, figures, created_at, sent_channel FROM member_statements
 WHERE member_id = :m ORDER BY month DESC
""")
_ONE = text("""
SELECT member_id, month, currency, figures, created_at, sent_channel FROM member_statements
 WHERE member_id = :m AND month = :month
""")


async def movements(
    uow: UnitOfWork, tenant: uuid.UUID, start: datetime, end: datetime, member_id: uuid.UUID | None = None
) -> list[Movement]:
    rows = await uow.session.execute(_MOVEMENTS, {"t": tenant, "start": start, "end": end, "m": member_id})
    return [Movement(r.member_id, r.account, r.entry_kind, bool(r.reversal), int(r.amount)) for r in rows]


async def has_statement(uow: UnitOfWork, member_id: uuid.UUID, month: str) -> bool:
    return bool(await uow.session.scalar(_HAS_STATEMENT, {"m": member_id, "month": month}))


async def insert(
    uow: UnitOfWork,
    tenant: uuid.UUID,
    member_id: uuid.UUID,
    month: str,
    currency: str,
    figures: dict[str, Any],
    sent_channel: str | None,
) -> bool:
    """Write the statement; False (nothing written) when the member's month already has one."""
    done = await uow.session.scalar(
        _INSERT,
        {"t": tenant, "m": member_id, "month": month, "c": currency, "f": json.dumps(figures), "ch": sent_channel},
    )
    return bool(done)


async def consent(uow: UnitOfWork, member_id: uuid.UUID) -> dict[str, Any]:
    """The member's marketing consents at this merchant (``{}`` without a profile)."""
    found = await uow.session.scalar(_CONSENT, {"m": member_id})
    return dict(found or {})


async def phone(uow: UnitOfWork, member_id: uuid.UUID) -> str | None:
    found: str | None = await uow.session.scalar(_PHONE, {"m": member_id})
    return found


async def slug_and_name(uow: UnitOfWork, tenant: uuid.UUID) -> tuple[str, str]:
    row = (await uow.session.execute(_SLUG_AND_NAME, {"t": tenant})).one()
    return str(row.slug), str(row.name)


async def mine(uow: UnitOfWork, member_id: uuid.UUID) -> list[StatementRow]:
    """The member's statements at the unit of work's merchant, newest month first."""
    return [StatementRow(*r) for r in await uow.session.execute(_MINE, {"m": member_id})]


async def one(uow: UnitOfWork, member_id: uuid.UUID, month: str) -> StatementRow | None:
    row = (await uow.session.execute(_ONE, {"m": member_id, "month": month})).first()
    return None if row is None else StatementRow(*row)
