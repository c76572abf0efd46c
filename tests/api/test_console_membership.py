"""Paid membership in the console and the portal (server-rendered pages through the test client): the
products page with the liability note, a product added by form, the till's membership box selling
once under its form's key, the member's terms with a refund, another merchant's member refused, and
the portal's tile with the value-back meter and the products."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.test_console import sign_in_console

pytestmark = pytest.mark.integration
KEY = re.compile(r'name="key" value="([^"]+)"')


async def terms_of(db: Any, tenant: uuid.UUID) -> list[str]:
    async with db.uow(tenant) as uow:
        return [str(s) for s in (await uow.session.scalars(text("SELECT status FROM membership_terms"))).all()]


async def test_products_till_sale_member_page_and_portal(
    client: Any, auth_kit: Any, db: Any, tenant_factory: Any, member_factory: Any
) -> None:
    tenant, other = await tenant_factory("一点茶"), await tenant_factory("别家")
    branch = await auth_kit.branch(tenant, "SH01")
    console = await sign_in_console(client, auth_kit, tenant)
    client.cookies.set("lk_lang", "en")
    page = await console.get("/console/membership")
    assert page.status_code == 200 and "deferred-revenue" in page.text

    bad = await console.post(
        "/console/membership/products", {"code": "year", "name": "年卡", "period": "yearly", "price": "abc"}
    )
    assert bad.status_code == 400 and 'id="f-price-error"' in bad.text
    assert await terms_of(db, tenant) == []
    made = await console.post(
        "/console/membership/products",
        {"code": "year", "name": "年卡会员", "period": "yearly", "price": "99.00", "gifts": "包邮，生日礼"},
    )
    assert made.status_code == 303
    page = await console.get("/console/membership")
    assert 'data-product="year"' in page.text and "¥99.00" in page.text and "包邮" in page.text

    phone = f"+86139{uuid.uuid4().int % 10**8:08d}"
    member = await member_factory(tenant, phone)
    box = await console.get(f"/console/membership/till/{member}")
    assert box.status_code == 200 and 'data-testid="sell-membership"' in box.text
    key = KEY.search(box.text)
    assert key is not None
    form = {"member_id": str(member), "product": "year", "payment_method": "cash", "branch_id": str(branch)}
    for attempt in range(2):  # a double click: one membership
        sold = await console.post("/console/membership/till", {**form, "key": key.group(1)}, htmx=True)
        assert sold.status_code == 200 and 'data-testid="membership-sold"' in sold.text
        assert ("already recorded" in sold.text) == (attempt == 1)
    assert await terms_of(db, tenant) == ["active"]

    detail = await console.get(f"/console/membership/members/{member}")
    assert detail.status_code == 200 and "年卡会员" in detail.text and "/refund" in detail.text
    term_id = re.search(r'data-term="([0-9a-f-]+)"', detail.text)
    assert term_id is not None
    assert (await console.get(f"/console/members/{member}")).status_code == 200
    settlement = await console.get("/console/settlement")
    assert 'data-testid="membership-liability"' in settlement.text and "¥99.00" in settlement.text

    # another merchant's owner: the member and the term are not there
    stranger = await sign_in_console(client, auth_kit, other)
    assert (await stranger.get(f"/console/membership/members/{member}")).status_code == 404
    r = await stranger.post(f"/console/membership/terms/{term_id.group(1)}/refund", {"key": "k-" + uuid.uuid4().hex})
    assert r.status_code == 404
    assert await terms_of(db, tenant) == ["active"]

    # the portal: the member's tile shows the term, the meter and the products
    creds = await auth_kit.member(tenant, phone)
    client.cookies.clear()
    slug = await slug_of(db, tenant)
    portal = await client.get(f"/m/{slug}", headers=creds.headers)
    assert portal.status_code == 200, portal.text[:300]
    assert 'data-testid="value-back"' in portal.text and "¥0.00" in portal.text and "¥99.00" in portal.text
    assert 'data-testid="buy-membership"' in portal.text

    console = await sign_in_console(client, auth_kit, tenant)
    refunded = await console.post(
        f"/console/membership/terms/{term_id.group(1)}/refund", {"key": "k-" + uuid.uuid4().hex}
    )
    assert refunded.status_code == 303 and refunded.headers["location"] == f"/console/members/{member}"
    assert await terms_of(db, tenant) == ["refunded"]


async def slug_of(db: Any, tenant: uuid.UUID) -> str:
    async with db.uow(system=True) as uow:
        return str(await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant}))
