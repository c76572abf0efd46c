from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from lianka.alliance.ledger import services as ledger
from lianka.platform.db import Database


@dataclass
class Book:
    tenant: uuid.UUID
    member: ledger.Account  # member points, with lots
    issued: ledger.Account  # the merchant's side of issued points (untracked, hot)
    unit: str


async def make_book(db: Database, tenant: uuid.UUID, member_id: uuid.UUID | None = None) -> Book:
    unit = f"PTS:{tenant.hex[:12]}"
    async with db.uow(tenant) as uow:
        member = await ledger.open_account(
            uow, owner_kind="member", owner_id=member_id or uuid.uuid4(), kind="points", unit=unit
        )
        issued = await ledger.open_account(
            uow, owner_kind="merchant", owner_id=tenant, kind="points_issued", unit=unit, allow_negative=True
        )
        await uow.commit()
    return Book(tenant, member, issued, unit)


@pytest.fixture
async def book(db: Database, tenant_factory) -> Book:
    return await make_book(db, await tenant_factory())
