"""Test helpers for billing: put a merchant on a plan in a status, and a small plan for limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from lianka.billing import services
from lianka.platform.db import Database

#: a plan small enough to reach each limit in a test: 1 branch, 2 members, 2 staff seats, 3 messages
TINY = "test-tiny"


async def put_on_plan(db: Database, tenant: uuid.UUID, plan: str, status: str = "active") -> None:
    async with db.uow(tenant) as uow:
        await services.ensure_account(uow, tenant)
        await uow.session.execute(
            text("UPDATE billing_accounts SET plan = :p, status = :s WHERE tenant_id = :t"),
            {"p": plan, "s": status, "t": tenant},
        )
        await uow.commit()


@pytest.fixture(scope="module")
async def tiny_plan(owner_engine: Any) -> AsyncIterator[str]:
    """A plan row only this module's tests use (removed afterwards: the home page lists the plans)."""
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO billing_plans (code, name, price_minor, currency, max_branches, max_members, "
                "max_staff_seats, messages_per_month, alliance_membership, sort) "
                "VALUES (:c, 'Tiny', 100, 'CNY', 1, 2, 2, 3, false, 99) ON CONFLICT DO NOTHING"
            ),
            {"c": TINY},
        )
    yield TINY
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE billing_accounts SET plan = 'free' WHERE plan = :c"), {"c": TINY})
        await conn.execute(text("DELETE FROM billing_plans WHERE code = :c"), {"c": TINY})
