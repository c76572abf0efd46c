"""The liability report read from the journal: two months of top-ups, spends on stored value and
refunds at a three-branch chain; closing = opening + movements, one month's closing is the next
one's opening, the closing equals what members hold (the ledger's balances), and the branch rows
sum to the scheme's total. Another merchant's activity never shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder, Consumption
from lianka.tenants.pos import sales as pos_sales
from lianka.tenants.pos import schemas, stored_value
from lianka.tenants.reports import liability
from lianka.tenants.services import accounts
from tests.integration.settlement.test_close import _month

pytestmark = pytest.mark.integration
SEPT = datetime(2026, 9, 12, 4, tzinfo=UTC)
PLAN = [
    ("top_up", 0, "p300", 0),
    ("top_up", 1, "p500", 1),
    ("spend", 0, 20_000, 1),
    ("spend", 1, 30_000, 2),
    ("refund", 0, 50, 1),
    ("top_up", 2, "p100", 2),
]


async def test_two_months_tie_to_the_ledger(db: Database, tenant_factory, member_factory) -> None:
    tenant, _, members = await _month(
        db, tenant_factory, member_factory, BonusFunder.HQ, Consumption.PROPORTIONAL, PLAN
    )
    other, _, _ = await _month(db, tenant_factory, member_factory, BonusFunder.HQ, Consumption.PROPORTIONAL, PLAN[:2])
    async with db.uow(tenant) as uow:
        branch = await uow.session.scalar(text("SELECT id FROM branches WHERE code = 'C'"))
    await stored_value.top_up(
        db, tenant, schemas.TopUpIn(member_id=members[2], plan="p300", business_time=SEPT), uuid.uuid4().hex, branch
    )
    basket = schemas.Basket(amount=12_000, member_id=members[2], stored_value=12_000, business_time=SEPT)
    await pos_sales.sale(db, tenant, basket, uuid.uuid4().hex, branch)

    aug = await liability.report(db, tenant, "2026-08")
    sep = await liability.report(db, tenant, "2026-09")
    held = {"points": 0, "sv_principal": 0, "sv_bonus": 0}
    async with db.uow(tenant) as uow:
        for m in members:
            b = await accounts.balances(uow, m, datetime.now(UTC))
            held["points"] += b.points
            held["sv_principal"] += b.sv_principal
            held["sv_bonus"] += b.sv_bonus
    for scheme, amount in held.items():
        assert sep.total(scheme).closing == amount, scheme
        assert sep.total(scheme).opening == aug.total(scheme).closing, scheme
    # August by hand: top-ups 300+500+100 principal, bonus 30+80; spends consumed some, a refund gave some back
    assert aug.total("sv_principal").issued == 90_000
    assert aug.total("sv_bonus").issued == 11_000
    assert aug.total("sv_principal").opening == 0
    assert aug.total("sv_principal").used + aug.total("sv_bonus").used < 50_000  # the refund gave some back
    assert sep.total("sv_principal").issued == 30_000 and sep.total("sv_bonus").issued == 3_000
    assert sep.total("sv_principal").used + sep.total("sv_bonus").used == 12_000
    for report in (aug, sep):
        for scheme in liability.SCHEMES:
            total = report.total(scheme)
            parts = [r for r in report.rows if r.scheme == scheme and r.branch != "*"]
            for col in liability.COLUMNS:
                assert sum(r.figures()[col] for r in parts) == total.figures()[col], (scheme, col)
        assert set(report.branches) >= {r.branch for r in report.rows if r.branch not in ("*", "")}
    # the other merchant: only its own two top-ups
    theirs = await liability.report(db, other, "2026-08")
    assert theirs.total("sv_principal").issued == 80_000
    assert set(theirs.branches).isdisjoint(aug.branches)


def test_columns_of_entry_kinds() -> None:
    assert liability.category("") == "opening"
    assert liability.category("expiry") == "expired"
    assert liability.category("stored_value_spent") == "used"
    assert liability.category("stored_value_restored") == "used"
    assert liability.category("membership_revenue_recognised") == "used"
    assert liability.category("membership_refunded") == "refunded"
    assert liability.category("stored_value_refunded") == "refunded"
    assert liability.category("stored_value_top_up") == "issued"
    assert liability.category("membership_sold") == "issued"
    from lianka.tenants.reports.finance_queries import Movement

    rows = liability.build(
        [
            Movement("points", "b", "", 500),
            Movement("points", "b", "points_earned", 120),
            Movement("points", "b", "points_redeemed", -100),
            Movement("points", "b", "expiry", -50),
            Movement("deferred_membership_revenue", "", "membership_sold", 9_900),
            Movement("deferred_membership_revenue", "", "membership_revenue_recognised", -825),
            Movement("deferred_membership_revenue", "", "membership_refunded", -4_000),
        ]
    )
    points = next(r for r in rows if r.scheme == "points" and r.branch == "*")
    assert (points.opening, points.issued, points.used, points.expired, points.closing) == (500, 120, 100, 50, 470)
    deferred = next(r for r in rows if r.scheme == "deferred_membership_revenue" and r.branch == "*")
    assert (deferred.issued, deferred.used, deferred.refunded, deferred.closing) == (9_900, 825, 4_000, 5_075)


async def test_points_expiry_and_a_paid_membership(db: Database, tenant_factory, member_factory) -> None:
    """Points earned in July expire in August (breakage); a yearly membership sold in August is
    deferred and recognised month by month; each month ties to the ledger's balances."""
    from datetime import timedelta

    from lianka.alliance.ledger import services as ledger
    from lianka.billing.membership import products, terms
    from lianka.billing.membership import schemas as ms
    from lianka.tenants.domain.programme import ExpiryPolicy, PointsConfig, Programme

    tenant, _, members = await _month(db, tenant_factory, member_factory, BonusFunder.HQ, Consumption.PROPORTIONAL, [])
    async with db.uow(tenant) as uow:
        branch = await uow.session.scalar(text("SELECT id FROM branches WHERE code = 'A'"))
        short = Programme(points=PointsConfig(expiry=ExpiryPolicy(months=1)))
        await accounts.award_points(
            uow,
            members[0],
            40,
            programme=short,
            reason="x",
            key="july",
            business_time=datetime(2026, 7, 3, 4, tzinfo=UTC),
        )
        await accounts.award_points(
            uow,
            members[1],
            25,
            programme=short,
            reason="x",
            key="aug",
            business_time=datetime(2026, 8, 20, 4, tzinfo=UTC),
        )
        await ledger.expire_due(uow, datetime(2026, 8, 31, tzinfo=UTC), timezone="Asia/Shanghai")
        await uow.commit()
    await products.create_product(db, tenant, ms.ProductIn(code="year", name="年卡", period="yearly", price=36_000))
    await terms.buy_at_till(
        db,
        tenant,
        ms.TillPurchaseIn(member_id=members[2], product="year", business_time=datetime(2026, 8, 2, 4, tzinfo=UTC)),
        uuid.uuid4().hex,
        branch,
    )
    async with db.uow(tenant) as uow:
        await terms.recognise_revenue(uow, datetime(2026, 9, 15, tzinfo=UTC))
        await uow.commit()

    jul = await liability.report(db, tenant, "2026-07")
    aug = await liability.report(db, tenant, "2026-08")
    sep = await liability.report(db, tenant, "2026-09")
    points = aug.total("points")
    assert jul.total("points").closing == points.opening == 40
    assert (points.issued, points.expired, points.closing) == (25, 40, 25)
    assert points.value["expired"] == 40  # 40 points at ¥0.01 = 40 fen
    deferred = [r.total("deferred_membership_revenue") for r in (aug, sep)]
    assert deferred[0].issued == 36_000 and deferred[0].opening == 0
    assert deferred[1].opening == deferred[0].closing
    assert deferred[0].used + deferred[1].used > 0  # at least the first month recognised
    async with db.uow(tenant) as uow:
        held = await ledger.balance(uow, await products.deferred_account(uow, "CNY"))
        pts = sum([(await accounts.balances(uow, m, datetime.now(UTC) + timedelta(days=1))).points for m in members])
    assert deferred[1].closing == held
    assert sep.total("points").closing == pts
