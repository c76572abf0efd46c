"""Settlement scopes: a chain (a merchant's book: HQ and its branches) or an alliance (its book: the
operator and the partners' branches). Named on the command line as ``chain:<merchant slug>`` or
``alliance:<alliance code>``. Use cases: each reads in its own transactions and writes nothing."""

from __future__ import annotations

import uuid

from lianka.alliance.settlement import queries
from lianka.alliance.settlement.statements import Scope
from lianka.platform.db import Database
from lianka.platform.errors import NotFound, ValidationFailed


async def chain_scope(db: Database, merchant_id: uuid.UUID) -> Scope:
    async with db.uow(merchant_id) as uow:
        m = await queries.merchant_book(uow, merchant_id)
        if m is None:
            raise NotFound("merchant not found")
        spokes = await queries.branch_spokes(uow, merchant_id)
    return Scope("chain", merchant_id, m.code, m.name, m.currency, m.timezone, m.created_at, spokes)


async def alliance_scope(db: Database, alliance_id: uuid.UUID) -> Scope:
    """The alliance's book; partners are named by their merchant's slug and name, which only system
    scope may read across merchants."""
    async with db.uow(alliance_id) as uow:
        a = await queries.alliance_book(uow, alliance_id)
        if a is None:
            raise NotFound("alliance not found")
        joined = await queries.alliance_merchants(uow, alliance_id)
        spokes = await queries.alliance_spokes(uow, alliance_id)
    async with db.uow(system=True) as uow:
        partners = await queries.parties(uow, list(joined))  # every partner is a merchant (foreign key)
    operator = next((partners[m] for m, role in joined.items() if role == "operator"), None)
    return Scope(
        "alliance",
        alliance_id,
        a.code,
        a.name,
        a.currency,
        a.timezone,
        a.created_at,
        spokes,
        {m: partners[m] for m in joined},
        operator,
    )


async def resolve(db: Database, name: str) -> Scope:
    """``chain:<merchant slug>`` or ``alliance:<alliance code>`` (operators' command line)."""
    kind, _, ident = name.partition(":")
    async with db.uow(system=True) as uow:
        if kind == "chain":
            found = await queries.merchant_by_slug(uow, ident)
            if found is None:
                raise NotFound(f"no merchant {ident!r}")
        elif kind == "alliance":
            found = await queries.alliance_by_code(uow, ident)
            if found is None:
                raise NotFound(f"no alliance {ident!r}")
        else:
            raise ValidationFailed("scope is chain:<merchant slug> or alliance:<alliance code>", field="scope")
    return await (chain_scope(db, found) if kind == "chain" else alliance_scope(db, found))
