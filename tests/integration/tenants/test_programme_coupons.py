"""Programme versions and coupons on the real database (two tenants)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lianka.platform.db import Database
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.tenants.domain.pricing import CouponKind, CouponNotApplicable
from lianka.tenants.domain.programme import PointsConfig, Programme, Tier
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services import programme as programme_svc

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


async def test_versions_apply_from_their_effective_time_and_history_is_kept(db: Database, two_tenants) -> None:
    a, b = two_tenants
    v1 = Programme(points=PointsConfig(earn_per_major=Decimal(1)))
    v2 = Programme(points=PointsConfig(earn_per_major=Decimal(2)), tiers=[Tier(code="gold", name="金卡", rank=1)])
    async with db.uow(a) as uow:
        assert await programme_svc.programme_at(uow) == (0, Programme())
        assert await programme_svc.set_programme(uow, v1, effective_from=NOW - timedelta(days=30)) == 1
        assert await programme_svc.set_programme(uow, v2, effective_from=NOW + timedelta(days=1)) == 2
        await uow.commit()
    async with db.uow(a) as uow:
        assert (await programme_svc.programme_at(uow, NOW))[0] == 1
        assert (await programme_svc.programme_at(uow, NOW + timedelta(days=2))) == (2, v2)
        assert [v.version for v in await programme_svc.history(uow)] == [2, 1]
        with pytest.raises(DBAPIError):  # history cannot be edited, even by a forgetful query
            await uow.session.execute(text("UPDATE programme_versions SET note = 'x'"))
    async with db.uow(b) as uow:  # the other tenant still has the default
        assert await programme_svc.programme_at(uow, NOW + timedelta(days=2)) == (0, Programme())


def test_bad_documents_are_validation_errors() -> None:
    with pytest.raises(ValidationFailed):
        programme_svc.decode({"points": {"earn_per_major": "lots"}})
    with pytest.raises(ValidationFailed):
        programme_svc.decode({"tiers": [{"code": "a", "name": "A", "rank": 0}, {"code": "a", "name": "B", "rank": 1}]})
    with pytest.raises(ValidationFailed):
        programme_svc.decode({"unknown_section": 1})


async def test_coupon_stock_is_never_oversold(db: Database, tenant_factory, member_factory) -> None:
    t = await tenant_factory()
    members = [await member_factory(t) for _ in range(20)]
    async with db.uow(t) as uow:
        tpl = await coupon_svc.create_template(
            uow,
            coupon_svc.TemplateSpec(
                code="c10", name="¥10 off", kind=CouponKind.FIXED, amount_off=1_000, valid_days=30, stock_total=5
            ),
        )
        await uow.commit()

    async def one(member: uuid.UUID) -> bool:
        async with db.uow(t) as uow:
            try:
                await coupon_svc.issue(uow, tpl.id, member)
            except coupon_svc.CouponSoldOut:
                return False
            await uow.commit()
            return True

    results = await asyncio.gather(*[one(m) for m in members])
    assert sum(results) == 5
    async with db.uow(t) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM coupons")) == 5
        assert (await coupon_svc.get_template(uow, tpl.id)).issued_count == 5


async def test_coupon_rules_at_the_till(db: Database, two_tenants, member_factory) -> None:
    a, b = two_tenants
    member, stranger = await member_factory(a), await member_factory(a)
    async with db.uow(a) as uow:
        tpl = await coupon_svc.create_template(
            uow,
            coupon_svc.TemplateSpec(
                code="p20",
                name="20% off",
                kind=CouponKind.PERCENT,
                percent_off=20,
                cap=2_000,
                valid_days=7,
                branch_codes=("SH01",),
                per_member_limit=1,
            ),
        )
        c = await coupon_svc.issue(uow, tpl.id, member, now=NOW)
        with pytest.raises(coupon_svc.CouponLimitReached):
            await coupon_svc.issue(uow, tpl.id, member, now=NOW)
        await uow.commit()
    assert len(c.code) == 14
    async with db.uow(a) as uow:
        [(coupon, terms)] = await coupon_svc.terms_for_sale(
            uow, [c.code.lower().replace("-", "")], member, "SH01", NOW + timedelta(hours=1), lock=True
        )
        assert terms.percent_off == 20
        assert terms.cap == 2_000
        for codes, who, branch, at in [
            ([c.code], stranger, "SH01", NOW),  # someone else's coupon
            ([c.code], member, "SH02", NOW),  # wrong branch
            ([c.code], member, "SH01", NOW + timedelta(days=8)),  # expired
            (["NOPE-NOPE-NOPE"], member, "SH01", NOW),  # unknown
        ]:
            with pytest.raises(CouponNotApplicable):
                await coupon_svc.terms_for_sale(uow, codes, who, branch, at, lock=False)
        sale = uuid.uuid4()
        await coupon_svc.mark_redeemed(uow, coupon, sale, NOW)
        with pytest.raises(CouponNotApplicable, match="redeemed"):
            await coupon_svc.terms_for_sale(uow, [c.code], member, "SH01", NOW, lock=False)
        assert await coupon_svc.restore(uow, sale, reissue=True) == 1
        assert len(await coupon_svc.terms_for_sale(uow, [c.code], member, "SH01", NOW, lock=False)) == 1
        await uow.commit()
    async with db.uow(b) as uow:  # another merchant cannot see or use it
        with pytest.raises(CouponNotApplicable):
            await coupon_svc.terms_for_sale(uow, [c.code], member, "SH01", NOW, lock=False)
        with pytest.raises(NotFound):
            await coupon_svc.get_template(uow, tpl.id)


async def test_bad_templates(db: Database, tenant_factory) -> None:
    t = await tenant_factory()
    async with db.uow(t) as uow:
        for spec in [
            coupon_svc.TemplateSpec(code="a", name="A", kind=CouponKind.FIXED, amount_off=0, valid_days=1),
            coupon_svc.TemplateSpec(code="b", name="B", kind=CouponKind.PERCENT, percent_off=101, valid_days=1),
            coupon_svc.TemplateSpec(code="c", name="C", kind=CouponKind.GIFT, valid_days=1),
            coupon_svc.TemplateSpec(code="d", name="D", kind=CouponKind.FIXED, amount_off=1),
            coupon_svc.TemplateSpec(code="e", name="E", kind=CouponKind.FIXED, amount_off=-5, valid_days=1),
        ]:
            with pytest.raises(ValidationFailed):
                await coupon_svc.create_template(uow, spec)
