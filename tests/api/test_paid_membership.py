"""Paid membership through the API on real PostgreSQL: products, a purchase at the till (exactly once),
a renewal, deferred revenue recognised month by month by the job (exactly once), a refund of unused
whole months, perks priced in a quote and booked with a sale, the portal's value-back meter, and two
merchants that never see each other's terms."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

import lianka.billing.membership.jobs  # noqa: F401 - registers the jobs
from lianka.alliance.ledger import services as ledger
from lianka.billing.membership import domain, products, terms
from lianka.billing.payments.contract import PaidOrder
from lianka.platform.periodic import find, run
from lianka.tenants.domain.pricing import CouponKind
from lianka.tenants.domain.programme import Programme, Tier
from lianka.tenants.services import accounts
from lianka.tenants.services import coupons as coupon_svc
from tests.api.shop import Shop, make_shop

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"

PROGRAMME = Programme(
    tiers=[
        Tier(code="silver", name="Silver", rank=1),
        Tier(code="gold", name="Gold", rank=2, threshold=10**9, discount_percent=5, points_multiplier=Decimal(2)),
    ]
)


@pytest.fixture
async def shop(client, auth_kit, db, tenant_factory) -> Shop:
    s = await make_shop(client, auth_kit, db, tenant_factory)
    await s.programme(PROGRAMME, since=datetime.now(UTC) - timedelta(days=400))
    return s


@pytest.fixture
async def other(client, auth_kit, db, tenant_factory) -> Shop:
    s = await make_shop(client, auth_kit, db, tenant_factory, name="二号店")
    await s.programme(PROGRAMME, since=datetime.now(UTC) - timedelta(days=400))
    return s


async def balances(shop: Shop) -> dict[str, int]:
    async with shop.db.uow(shop.tenant) as uow:
        return {
            "deferred": await ledger.balance(uow, await products.deferred_account(uow, "CNY")),
            "revenue": await ledger.balance(uow, await products.revenue_account(uow, "CNY")),
            "cash": await ledger.balance(uow, (await accounts.merchant_accounts(uow, "CNY")).cash),
        }


async def product(shop: Shop, **fields: Any) -> dict[str, Any]:
    body = {"code": "year", "name": "年卡会员", "period": "yearly", "price": 10_000, **fields}
    return dict(await shop.ok("POST", "/membership/products", json=body, status=201))


async def buy(shop: Shop, member: uuid.UUID, code: str, key: str, at: datetime | None = None, status: int = 201) -> Any:
    body: dict[str, Any] = {"member_id": str(member), "product": code, "branch_id": str(shop.sh01)}
    if at is not None:
        body["business_time"] = at.isoformat()
    return await shop.ok("POST", "/pos/memberships", json=body, key=key, status=status)


async def test_purchase_renew_recognise_month_by_month_and_refund(shop: Shop, other: Shop, member_factory) -> None:
    await product(shop)
    await product(shop, code="month", name="月卡", period="monthly", price=3_000)
    member = await member_factory(shop.tenant)
    start = datetime.now(UTC) - timedelta(days=75)  # in the third month of the term
    key = uuid.uuid4().hex
    term = await buy(shop, member, "year", key, at=start)
    assert (term["months"], term["price"], term["status"], term["source"]) == (12, 10_000, "active", "till")
    assert datetime.fromisoformat(term["ends_at"]) == domain.add_months(start, 12, TZ)
    # the till retries: the same term, nothing booked twice
    again = await shop.call(
        "POST",
        "/pos/memberships",
        json={
            "member_id": str(member),
            "product": "year",
            "branch_id": str(shop.sh01),
            "business_time": start.isoformat(),
        },
        key=key,
    )
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["term_id"] == term["term_id"]
    assert await balances(shop) == {"deferred": 10_000, "revenue": 0, "cash": -10_000}

    # bought again while active: a renewal from the end of the running term
    renewal = await buy(shop, member, "month", uuid.uuid4().hex)
    assert renewal["starts_at"] == term["ends_at"]
    assert await balances(shop) == {"deferred": 13_000, "revenue": 0, "cash": -13_000}

    # the revenue job: the two ended months, once however often it runs
    job = find("membership-revenue")
    now = datetime.now(UTC)
    for _ in range(2):
        report = await run(job, shop.db, as_of=now, merchant=shop.tenant)
        assert not report.failed
    assert await balances(shop) == {"deferred": 13_000 - 2 * 833, "revenue": 2 * 833, "cash": -13_000}
    n = await shop.scalar("SELECT count(*) FROM ledger_entries WHERE kind = 'membership_revenue_recognised'")
    assert n == 2

    # refund: months 4-12 were not begun (9 months, remainder included), month 3 is recognised now,
    # and the renewal not begun is paid back whole; the perks end
    r = await shop.ok("POST", f"/pos/memberships/{term['term_id']}/refund", json={}, idempotent=True, status=201)
    assert r["refunded"] == 8 * 833 + 837 + 3_000
    assert [t["status"] for t in r["terms"]] == ["refunded", "refunded"]
    assert await balances(shop) == {"deferred": 0, "revenue": 3 * 833, "cash": -13_000 + 8 * 833 + 837 + 3_000}
    again_job = await run(job, shop.db, as_of=now + timedelta(days=400), merchant=shop.tenant)
    assert not again_job.failed
    assert (await balances(shop))["revenue"] == 3 * 833  # nothing left to recognise after a refund
    mine = await shop.ok("GET", f"/membership/members/{member}")
    assert mine["current"] is None and len(mine["terms"]) == 2

    # the other merchant sees none of it: another tenant's term is a 404, and its ledger is untouched
    r404 = await other.call("POST", f"/pos/memberships/{term['term_id']}/refund", json={}, idempotent=True)
    assert r404.status_code == 404
    c404 = await other.call("POST", f"/membership/terms/{term['term_id']}/cancel")
    assert c404.status_code == 404
    assert await other.ok("GET", "/membership/products") == []
    assert await balances(other) == {"deferred": 0, "revenue": 0, "cash": 0}


async def test_a_year_is_recognised_month_by_month_summing_to_the_price(shop: Shop, member_factory) -> None:
    await product(shop)
    member = await member_factory(shop.tenant)
    term = await buy(shop, member, "year", uuid.uuid4().hex)
    start = datetime.fromisoformat(term["starts_at"])
    job = find("membership-revenue")
    expected = domain.schedule(10_000, 12)
    for month in range(1, 13):
        at = domain.month_start(start, month, TZ)
        assert not (await run(job, shop.db, as_of=at - timedelta(seconds=1), merchant=shop.tenant)).failed
        assert (await balances(shop))["revenue"] == sum(expected[: month - 1])
        for _ in range(2):  # and again: idempotent
            assert not (await run(job, shop.db, as_of=at, merchant=shop.tenant)).failed
        b = await balances(shop)
        assert b["revenue"] == sum(expected[:month]) and b["deferred"] == 10_000 - sum(expected[:month])
    assert await balances(shop) == {"deferred": 0, "revenue": 10_000, "cash": -10_000}
    amounts = await shop.scalar(
        "SELECT array_agg(-p.amount ORDER BY e.business_time) FROM ledger_entries e JOIN ledger_postings p "
        "ON p.tenant_id = e.tenant_id AND p.entry_id = e.id JOIN ledger_accounts a ON a.tenant_id = p.tenant_id "
        "AND a.id = p.account_id WHERE e.kind = 'membership_revenue_recognised' AND a.kind = 'deferred_membership_revenue'"
    )
    assert amounts == [833] * 11 + [837]
    # the term has run out: the renewals job ends it
    assert not (
        await run(find("membership-renewals"), shop.db, as_of=start + timedelta(days=400), merchant=shop.tenant)
    ).failed
    assert (await shop.ok("GET", f"/membership/members/{member}"))["terms"][0]["status"] == "expired"


async def test_perks_price_the_quote_and_the_sale_and_fill_the_meter(shop: Shop) -> None:
    async with shop.db.uow(shop.tenant) as uow:
        await coupon_svc.create_template(
            uow, coupon_svc.TemplateSpec(code="m5", name="会员券", kind=CouponKind.FIXED, amount_off=500, valid_days=31)
        )
        await uow.commit()
    await product(
        shop,
        code="plus",
        tier="gold",
        extra_discount_percent=10,
        points_multiplier="2",
        coupon_pack=[{"template": "m5", "count": 2}],
        gifts=["包邮"],
    )
    creds = await shop.member()
    member = creds.subject_id
    assert member is not None
    basket = {"member_id": str(member), "amount": 10_000, "branch_id": str(shop.sh01)}
    before = await shop.ok("POST", "/pos/quote", json=basket)
    assert (before["member_discount"], before["paid_membership"], before["tier"]) == (0, None, "silver")

    await buy(shop, member, "plus", uuid.uuid4().hex)
    async with shop.db.uow(shop.tenant) as uow:
        pack = [c for c, _ in await coupon_svc.member_coupons(uow, member) if c.source == "membership"]
    assert len(pack) == 2  # the first month's pack, issued with the purchase
    # the packs job does not issue the same month again
    assert not (
        await run(find("membership-coupon-packs"), shop.db, as_of=datetime.now(UTC), merchant=shop.tenant)
    ).failed
    async with shop.db.uow(shop.tenant) as uow:
        assert len([c for c, _ in await coupon_svc.member_coupons(uow, member) if c.source == "membership"]) == 2

    q = await shop.ok("POST", "/pos/quote", json=basket)
    # gold 5% (5.00), then 10% of 95.00 (9.50); 85.50 × gold 2 × membership 2 = 342 points; silver alone 85
    assert (q["tier"], q["paid_membership"], q["member_discount"], q["membership_discount"]) == (
        "gold",
        "plus",
        1_450,
        1_450,
    )
    assert (q["points_earned"], q["membership_points"]) == (342, 257)

    sale = await shop.ok("POST", "/pos/sales", json={**basket, "coupons": [pack[0].code]}, idempotent=True, status=201)
    assert sale["quote"]["membership_discount"] == 1_450 and sale["quote"]["coupons"] == [[pack[0].code, 500]]
    points_value = await shop.scalar(
        "SELECT points_value FROM membership_savings WHERE sale_id = :s", s=sale["sale_id"]
    )
    extra = sale["quote"]["membership_points"]
    assert points_value == int(Decimal(extra) * PROGRAMME.points.cash_value_per_point * 100)

    meter = (await shop.ok("GET", f"/portal/merchants/{shop.slug}/membership", creds=creds))["meter"]
    assert (meter["discount"], meter["coupons"], meter["points_value"], meter["fee"]) == (
        1_450,
        500,
        points_value,
        10_000,
    )
    assert meter["saved"] == 1_450 + 500 + points_value
    offered = await shop.ok("GET", f"/portal/merchants/{shop.slug}/membership/products", creds=creds)
    assert [p["code"] for p in offered] == ["plus"] and offered[0]["gifts"] == ["包邮"]


async def test_online_fulfilment_once_and_a_product_change_applies_to_new_purchases_only(
    shop: Shop, member_factory
) -> None:
    p = await product(shop, code="plus", extra_discount_percent=5)
    member = await member_factory(shop.tenant)
    order = PaidOrder(
        tenant_id=shop.tenant,
        order_id=uuid.uuid4(),
        member_id=member,
        kind="membership",
        purpose={"product": "plus"},
        amount=10_000,
        currency="CNY",
        provider="stripe",
        provider_ref="pi_123",
        paid_at=datetime.now(UTC),
    )
    for _ in range(2):
        async with shop.db.uow(shop.tenant) as uow:
            await terms.fulfil_membership(uow, order)
            await uow.commit()
    mine = await shop.ok("GET", f"/membership/members/{member}")
    assert len(mine["terms"]) == 1 and mine["current"]["source"] == "stripe"
    async with shop.db.uow(shop.tenant) as uow:
        clearing = await ledger.open_account(
            uow,
            owner_kind="merchant",
            owner_id=shop.tenant,
            kind="payments_clearing",
            unit="CNY",
            allow_negative=True,
            tracked=False,
        )
        assert await ledger.balance(uow, clearing) == -10_000
    assert (await balances(shop))["deferred"] == 10_000
    # the merchant raises the discount: the running term keeps what it was sold with
    await shop.ok("PATCH", f"/membership/products/{p['id']}", json={"extra_discount_percent": 20})
    perks = await shop.scalar(
        "SELECT perks->>'extra_discount_percent' FROM membership_terms WHERE member_id = :m", m=member
    )
    assert perks == "5"
    # an online term is refunded through its order's provider: this one has no order on record, so the
    # refund is refused and nothing changes (a real order's refund: tests/api/test_member_payments.py)
    r = await shop.call("POST", f"/pos/memberships/{mine['current']['term_id']}/refund", json={}, idempotent=True)
    assert r.status_code == 409 and r.json()["type"].endswith("/membership-online-refund-unavailable")
    assert (await balances(shop))["deferred"] == 10_000
    # cancel: no renewal, perks to the end
    c = await shop.ok("POST", f"/membership/terms/{mine['current']['term_id']}/cancel")
    assert (c["status"], c["auto_renew"]) == ("canceled", False)
    assert (await shop.ok("GET", f"/membership/members/{member}"))["current"]["term_id"] == c["term_id"]


async def test_policy_none_refuses_refunds_and_retired_products_are_not_sold(shop: Shop, member_factory) -> None:
    p = await product(shop)
    member = await member_factory(shop.tenant)
    term = await buy(shop, member, "year", uuid.uuid4().hex)
    s = await shop.ok("PUT", "/membership/settings", json={"refund_policy": "none", "reminder_days": 10})
    assert (s["refund_policy"], s["deferred_revenue"]) == ("none", 10_000)
    r = await shop.call("POST", f"/pos/memberships/{term['term_id']}/refund", json={}, idempotent=True)
    assert r.status_code == 422 and r.json()["type"].endswith("/membership-refund-not-allowed")
    await shop.ok("PATCH", f"/membership/products/{p['id']}", json={"active": False})
    r = await shop.call(
        "POST",
        "/pos/memberships",
        json={"member_id": str(member), "product": "year", "branch_id": str(shop.sh01)},
        idempotent=True,
    )
    assert r.status_code == 422 and r.json()["type"].endswith("/membership-product-retired")
    dup = await shop.call(
        "POST", "/membership/products", json={"code": "year", "name": "x", "period": "monthly", "price": 1}
    )
    assert dup.status_code == 409
    assert (await balances(shop))["deferred"] == 10_000


async def test_a_reminder_is_queued_once_before_the_end(shop: Shop, member_factory) -> None:
    await product(shop, code="month", period="monthly", price=3_000)
    member = await member_factory(shop.tenant)
    term = await buy(shop, member, "month", uuid.uuid4().hex)
    ends = datetime.fromisoformat(term["ends_at"])
    job = find("membership-renewals")
    for _ in range(2):
        assert not (await run(job, shop.db, as_of=ends - timedelta(days=3), merchant=shop.tenant)).failed
    n = await shop.scalar(
        "SELECT count(*) FROM outbox WHERE actor = 'membership_expiry_reminder' AND tenant_id = :t", t=shop.tenant
    )
    assert n == 1


async def test_the_routes_refuse_strangers_and_other_merchants(
    shop: Shop, other: Shop, member_factory, security_matrix, owner_engine
) -> None:
    p = await product(shop)
    member = await member_factory(shop.tenant)
    term = await buy(shop, member, "year", uuid.uuid4().hex)

    async def snapshot() -> tuple[Any, ...]:
        async with owner_engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM membership_products WHERE tenant_id = :a), "
                        "(SELECT string_agg(name || price || active, ';') FROM membership_products WHERE tenant_id = :a), "
                        "(SELECT string_agg(status || auto_renew, ';') FROM membership_terms WHERE tenant_id = :a), "
                        "(SELECT count(*) FROM ledger_entries WHERE tenant_id = :a), "
                        "(SELECT count(*) FROM membership_settings WHERE tenant_id = :a)"
                    ),
                    {"a": shop.tenant},
                )
            ).one()
            return tuple(row)

    common: dict[str, Any] = {"tenant": shop.tenant, "other": other.tenant, "snapshot": snapshot}
    await security_matrix.check(
        "POST",
        "/api/v1/membership/products",
        json={"code": "new", "name": "新", "period": "monthly", "price": 100},
        denied_roles=["cashier", "analyst"],
        denied_scopes=[["pos"]],
        other_tenant_status=None,
        **common,
    )
    await security_matrix.check(
        "PATCH",
        f"/api/v1/membership/products/{p['id']}",
        json={"price": 1},
        denied_roles=["cashier", "analyst"],
        denied_scopes=[["pos"]],
        missing_url=f"/api/v1/membership/products/{uuid.uuid4()}",
        **common,
    )
    await security_matrix.check(
        "PUT",
        "/api/v1/membership/settings",
        json={"refund_policy": "none"},
        denied_roles=["cashier", "analyst"],
        denied_scopes=[["pos"]],
        other_tenant_status=None,
        **common,
    )
    await security_matrix.check(
        "POST",
        f"/api/v1/membership/terms/{term['term_id']}/cancel",
        denied_roles=["analyst"],
        denied_scopes=[["members:read"]],
        missing_url=f"/api/v1/membership/terms/{uuid.uuid4()}/cancel",
        **common,
    )
    await security_matrix.check(
        "GET",
        f"/api/v1/membership/members/{member}",
        missing_url=f"/api/v1/membership/members/{uuid.uuid4()}",
        **common,
    )
    await security_matrix.check(
        "POST",
        "/api/v1/pos/memberships",
        json={"member_id": str(member), "product": "year", "branch_id": str(shop.sh01)},
        denied_roles=["analyst"],
        denied_scopes=[["members:read"]],
        other_tenant_status=None,
        **common,
    )
    await security_matrix.check(
        "POST",
        f"/api/v1/pos/memberships/{term['term_id']}/refund",
        json={},
        denied_roles=["analyst"],
        denied_scopes=[["members:read"]],
        other_tenant_status=None,  # the Idempotency-Key is checked first; another's term: the first test
        **common,
    )
