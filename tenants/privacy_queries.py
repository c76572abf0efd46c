"""SQL of the member's privacy rights (PIPL, decision 0029): the rows the member's data download
reads beside the CRM detail, and the statements that erase one merchant's personal data about a
member. Each runs in the unit of work's merchant scope (RLS) unless it says otherwise."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from lianka.platform.db import UnitOfWork
from lianka.tenants.queries import rows_as


@dataclass(frozen=True)
class ErasureRow:
    """Row type: one erasure request, with the member's card number (the console's list)."""

    id: uuid.UUID
    member_id: uuid.UUID
    card_number: str
    merchant_slug: str
    merchant_name: str
    scope: str
    status: str
    reason: str
    requested_at: datetime
    completed_at: datetime | None


_ERASURES = (
    "SELECT r.id, r.member_id, m.card_number, mc.slug AS merchant_slug, mc.name AS merchant_name, r.scope, "
    "r.status, r.reason, r.requested_at, r.completed_at FROM erasure_requests r "
    "JOIN members m ON m.id = r.member_id JOIN merchants mc ON mc.id = r.tenant_id"
)


async def erasures(uow: UnitOfWork, *, member_id: uuid.UUID | None = None, limit: int = 200) -> list[ErasureRow]:
    """The merchant's erasure requests, newest first (one member's when ``member_id`` is given)."""
    where = " WHERE r.member_id = :m" if member_id is not None else ""
    return await rows_as(
        uow,
        ErasureRow,
        f"{_ERASURES}{where} ORDER BY r.requested_at DESC, r.id LIMIT :limit",
        {"m": member_id, "limit": limit},
    )


async def my_erasures(uow: UnitOfWork) -> list[ErasureRow]:
    """In the member's portal scope: their own requests at every merchant."""
    return await rows_as(uow, ErasureRow, f"{_ERASURES} ORDER BY r.requested_at DESC, r.id", {})


async def erasure(uow: UnitOfWork, request_id: uuid.UUID) -> ErasureRow:
    return (await rows_as(uow, ErasureRow, f"{_ERASURES} WHERE r.id = :i", {"i": request_id}))[0]


@dataclass(frozen=True)
class MyCard:
    """Row type: the member's own card (their portal scope)."""

    member_id: uuid.UUID
    card_number: str
    phone: str
    created_at: datetime


async def my_card(uow: UnitOfWork) -> MyCard:
    """In the member's portal scope: their card row."""
    return (await rows_as(uow, MyCard, "SELECT id AS member_id, card_number, phone, created_at FROM members", {}))[0]


@dataclass(frozen=True)
class Joined:
    """Row type: a merchant the member belongs to."""

    tenant_id: uuid.UUID
    joined_at: datetime


async def my_memberships(uow: UnitOfWork) -> list[Joined]:
    """In the member's portal scope: the merchants they belong to, first joined first."""
    return await rows_as(uow, Joined, "SELECT tenant_id, joined_at FROM memberships ORDER BY joined_at", {})


async def self_join_record(uow: UnitOfWork, member_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        await uow.session.execute(
            text(
                "SELECT status, name, birthday, consents, privacy_accepted_at, created_at, confirmed_at "
                "FROM self_joins WHERE member_id = :m"
            ),
            {"m": member_id},
        )
    ).first()
    return dict(row._mapping) if row else None


async def erase_merchant_data(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    """Remove this merchant's personal data about the member: the profile's name, gender, birthday,
    e-mail, address, tags, preferences (free text) and consents; the join record's name, birthday
    and choices. Balances, purchases and the ledger are untouched (they keep
    the account, not the person)."""
    params = {"m": member_id}
    await uow.session.execute(
        text(
            "UPDATE member_profiles SET name = '', gender = 'unknown', birthday = NULL, email = '', address = '', "
            "tags = '{}', preferences = '{}'::jsonb, consent = '{}'::jsonb, erased_at = now(), updated_at = now() "
            "WHERE member_id = :m"
        ),
        params,
    )
    await uow.session.execute(
        text("UPDATE self_joins SET name = '', birthday = NULL, consents = '{}'::jsonb WHERE member_id = :m"), params
    )
