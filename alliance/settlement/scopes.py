"""Settlement scopes: a chain (a merchant's book: HQ and its branches) or an alliance (its book: the
operator and the partners' branches). Named on the command line as ``chain:<merchant slug>`` or
``alliance:<alliance code>``."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from lianka.alliance.settlement.close import Party, Scope, Spoke
from lianka.platform.db import Database
from lianka.platform.errors import NotFound, ValidationFailed


async def chain_scope(db: Database, merchant_id: uuid.UUID) -> Scope:
    async with db.uow(merchant_id) as uow:
        m = (await uow.session.execute(text(
            "SELECT slug, name, currency, timezone, created_at FROM merchants WHERE id = :m"),
            {"m": merchant_id})).first()
        if m is None:
            raise NotFound("merchant not found")
        branches = await uow.session.execute(text("SELECT id, code, name FROM branches ORDER BY code"))
        spokes = tuple(Spoke(b.id, b.code, b.name, merchant_id) for b in branches)
    return Scope("chain", merchant_id, m.slug, m.name, m.currency, m.timezone, m.created_at, spokes)


async def alliance_scope(db: Database, alliance_id: uuid.UUID) -> Scope:
    """The alliance's book; partners are named by their merchant's slug and name, which only system
    scope may read across merchants."""
    async with db.uow(alliance_id) as uow:
        a = (await uow.session.execute(text(
            "SELECT code, name, currency, timezone, created_at FROM alliances WHERE id = :a"),
            {"a": alliance_id})).first()
        if a is None:
            raise NotFound("alliance not found")
        joined = {r.merchant_id: r.role for r in await uow.session.execute(text(
            "SELECT merchant_id, role FROM alliance_partners WHERE alliance_id = :a"), {"a": alliance_id})}
        spokes = tuple(Spoke(s.branch_id, s.code, s.name, s.merchant_id) for s in await uow.session.execute(text(
            "SELECT branch_id, code, name, merchant_id FROM alliance_spokes WHERE alliance_id = :a ORDER BY code"),
            {"a": alliance_id}))
    async with db.uow(system=True) as uow:
        registry = {r.id: (r.slug, r.name) for r in await uow.session.execute(text(
            "SELECT id, slug, name FROM merchants WHERE id = ANY(:ids)"), {"ids": list(joined)})}
    partners = {m: Party(m, *registry[m]) for m in joined}  # a partner is a merchant (foreign key)
    operator = next((partners[m] for m, role in joined.items() if role == "operator"), None)
    return Scope("alliance", alliance_id, a.code, a.name, a.currency, a.timezone, a.created_at, spokes, partners,
                 operator)


async def resolve(db: Database, name: str) -> Scope:
    """``chain:<merchant slug>`` or ``alliance:<alliance code>`` (operators' command line)."""
    kind, _, ident = name.partition(":")
    async with db.uow(system=True) as uow:
        if kind == "chain":
            found = await uow.session.scalar(text("SELECT id FROM merchants WHERE slug = :s"), {"s": ident})
            if found is None:
                raise NotFound(f"no merchant {ident!r}")
        elif kind == "alliance":
            found = await uow.session.scalar(text("SELECT id FROM alliances WHERE code = :c"), {"c": ident})
            if found is None:
                raise NotFound(f"no alliance {ident!r}")
        else:
            raise ValidationFailed("scope is chain:<merchant slug> or alliance:<alliance code>", field="scope")
    return await (chain_scope(db, found) if kind == "chain" else alliance_scope(db, found))
