"""Programme accounts on the ledger: award with the programme's expiry/pending rules, spend, balances."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lianka.alliance.ledger import services as ledger
from lianka.alliance.ledger.errors import InsufficientFunds
from lianka.platform.db import Database
from lianka.platform.errors import ValidationFailed
from lianka.tenants.domain.programme import ExpiryKind, ExpiryPolicy, PointsConfig, Programme
from lianka.tenants.services import accounts

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
PROGRAMME = Programme(
    points=PointsConfig(expiry=ExpiryPolicy(kind=ExpiryKind.ROLLING_MONTHS, months=12), pending_days=7)
)


async def test_award_spend_and_balances(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    m = await member_factory(t)
    async with db.uow(t) as uow:
        await accounts.award_points(uow, m, 100, programme=PROGRAMME, reason="signup", key="s1", business_time=NOW)
        await accounts.award_points(
            uow, m, 50, programme=PROGRAMME, reason="sale", key="s2", business_time=NOW, pending=True
        )
        await uow.commit()
    async with db.uow(t) as uow:
        b = await accounts.balances(uow, m, NOW + timedelta(days=1))
        assert (b.points, b.points_available, b.points_pending) == (150, 100, 50)
        lots = await ledger.lots(uow, (await accounts.member_accounts(uow, m, "CNY")).points)
        # valid through 23 Nov 2027, i.e. until midnight starting 24 Nov in the merchant's time zone
        assert {lot.expires_at for lot in lots} == {datetime(2027, 11, 24, tzinfo=ZoneInfo("Asia/Shanghai"))}
        with pytest.raises(InsufficientFunds):
            await accounts.spend_points(uow, m, 120, reason="redeem", key="r0", business_time=NOW + timedelta(days=1))
    async with db.uow(t) as uow:
        await accounts.spend_points(uow, m, 120, reason="redeem", key="r1", business_time=NOW + timedelta(days=8))
        await uow.commit()
    async with db.uow(t) as uow:
        b = await accounts.balances(uow, m, NOW + timedelta(days=8))
        assert (b.points, b.points_available, b.points_pending, b.stored_value) == (30, 30, 0, 0)


async def test_bad_amounts(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    async with db.uow(t) as uow:
        with pytest.raises(ValidationFailed):
            await accounts.award_points(
                uow, uuid.uuid4(), 0, programme=PROGRAMME, reason="x", key="k", business_time=NOW
            )
