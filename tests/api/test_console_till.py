"""The web till (/console/till) through the test client: find a member (phone, card, scanned QR),
enrol at the till, the live quote, the sale (once under its form's Idempotency-Key), top-ups,
refunds; errors beside their fields; branches, roles, CSRF and other merchants' ids refused, with
nothing written.

The till calls the POS use cases, so the rules themselves (pricing, refunds, clearing) are pinned by
tests/api/test_pos.py; these pin what the page does with them.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.identity.members import qr_token
from lianka.tenants.domain.programme import Programme, StoredValueConfig, StoredValuePlan, Tier
from lianka.tenants.services.programme import set_programme
from tests.api.test_console import Console, menu_of, sign_in_console, steps_done

KEY = re.compile(r'name="key" value="([^"]+)"')
PROGRAMME = Programme(
    tiers=[
        Tier(code="regular", name="普通会员", rank=0),
        Tier(code="gold", name="金卡", rank=1, threshold=10**9, discount_percent=10, points_multiplier=Decimal(2)),
    ],
    stored_value=StoredValueConfig(plans=[StoredValuePlan(code="100-110", name="充100送10", pay=10_000, get=11_000)]),
)


def key_of(html: str, form: str = "basket") -> str:
    """The Idempotency-Key the page put in form ``form`` (the first ``key`` field after its id)."""
    start = html.index(f'id="{form}"')
    found = KEY.search(html, start)
    assert found, f"no key in #{form}"
    return found.group(1)


COUNT = {
    "sales": "SELECT count(*) FROM sales",
    "top_ups": "SELECT count(*) FROM top_ups",
    "refunds": "SELECT count(*) FROM refunds",
    "memberships": "SELECT count(*) FROM memberships",
}


async def count(db: Any, tenant: uuid.UUID, table: str) -> int:
    async with db.uow(tenant) as uow:
        return int(await uow.session.scalar(text(COUNT[table])) or 0)


async def shop(
    db: Any, auth_kit: Any, tenant_factory: Any, *, codes: tuple[str, ...] = ("SH01",)
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A merchant with branches and a programme (a gold tier, a stored-value plan)."""
    tenant = await tenant_factory()
    branches = [await auth_kit.branch(tenant, code) for code in codes]
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME)
        await uow.commit()
    return tenant, branches


async def sell(console: Console, data: dict[str, Any], *, htmx: bool = True) -> Any:
    page = (await console.get("/console/till")).text
    return await console.post("/console/till/sale", {"key": key_of(page), **data}, htmx=htmx)


async def top_up(db: Any, tenant: uuid.UUID, member: uuid.UUID, branch: uuid.UUID) -> None:
    from lianka.tenants.pos import schemas, stored_value

    await stored_value.top_up(db, tenant, schemas.TopUpIn(member_id=member, plan="100-110"), uuid.uuid4().hex, branch)


async def member_at_the_till(
    client: Any, db: Any, auth_kit: Any, tenant_factory: Any, member_factory: Any
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, Console]:
    """(merchant, branch, a member holding ¥110 of stored value, a cashier of that branch signed in)."""
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    member = await member_factory(tenant)
    await top_up(db, tenant, member, branch)
    return tenant, branch, member, await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))


# --- the page and the menu --------------------------------------------------------------------------


async def test_a_cashier_has_the_till_only_and_an_analyst_no_till(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))
    landing = await cashier.get("/console")
    assert landing.headers["location"] == "/console/till"
    page = await cashier.get("/console/till")
    assert page.status_code == 200 and menu_of(page.text) == ["/console/till"]
    assert 'id="f-q"' in page.text and "autofocus" in page.text and 'id="basket"' in page.text
    assert "SH01" in page.text and 'type="hidden" id="f-branch_id"' in page.text  # its only branch, no choice
    for url in ("/console/staff", "/console/clients", "/console/start/programme", "/console/branches"):
        assert (await cashier.get(url)).status_code == 403, url

    analyst = await sign_in_console(client, auth_kit, tenant, "analyst")
    assert "/console/till" not in menu_of((await analyst.get("/console/start")).text)
    assert (await analyst.get("/console/till")).status_code == 403
    r = await analyst.post("/console/till/sale", {"key": "k-analyst", "amount": "10", "branch_id": str(branch)})
    assert r.status_code == 403 and "您的角色无权执行此操作" in r.text
    r = await analyst.post("/console/till/find", {"q": "13800000000"}, htmx=True)
    assert r.status_code == 403
    assert await count(db, tenant, "sales") == 0


async def test_an_owner_chooses_the_branch_and_sells_there(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant, (_, sh02) = await shop(db, auth_kit, tenant_factory, codes=("SH01", "SH02"))
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    page = (await owner.get("/console/till")).text
    assert '<select id="f-branch_id" name="branch_id" form="basket"' in page and "SH02" in page
    r = await sell(owner, {"amount": "12.34", "branch_id": str(sh02)})
    assert r.status_code == 200 and 'data-testid="receipt"' in r.text and "¥12.34" in r.text
    async with db.uow(tenant) as uow:
        assert (await uow.session.execute(text("SELECT branch_id, gross FROM sales"))).one() == (sh02, 1234)


async def test_a_branch_cashier_sells_at_its_branch_and_cannot_sell_at_another(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant, (mine, other) = await shop(db, auth_kit, tenant_factory, codes=("MINE", "OTHER"))
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (mine,))
    page = (await cashier.get("/console/till")).text
    assert "OTHER" not in page
    r = await sell(cashier, {"amount": "8"})  # no branch named: its own
    assert r.status_code == 200, r.text
    r = await sell(cashier, {"amount": "9", "branch_id": str(other)})  # a crafted post
    assert r.status_code == 403
    foreign = await auth_kit.branch(await tenant_factory(), "THEIRS")
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    r = await sell(owner, {"amount": "9", "branch_id": str(foreign)})  # another merchant's branch
    assert r.status_code == 404
    async with db.uow(tenant) as uow:
        assert (await uow.session.execute(text("SELECT branch_id FROM sales"))).scalars().all() == [mine]


# --- finding the member -----------------------------------------------------------------------------


async def test_find_by_phone_card_or_scanned_code(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    member = await member_factory(tenant, "+8613900001111")
    await top_up(db, tenant, member, branch)
    async with db.uow(system=True) as uow:
        card, secret = (
            await uow.session.execute(text("SELECT card_number, qr_secret FROM members WHERE id = :m"), {"m": member})
        ).one()
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))
    for q in ("13900001111", "+86 139 0000 1111", card, qr_token(card, bytes(secret))):
        r = await cashier.post("/console/till/find", {"q": q}, htmx=True)
        assert r.status_code == 200, (q, r.text)
        assert f'data-member="{member}"' in r.text and card in r.text
        assert "****1111" in r.text and "13900001111" not in r.text.replace(q, "")  # the phone masked
        assert 'data-testid="stored-value">¥110.00' in r.text  # the wallet: 100 + 10 bonus
        assert 'hx-swap-oob="true"' in r.text and f'name="member_id" value="{member}"' in r.text  # into the basket
        assert 'id="f-plan"' in r.text and "充100送10" in r.text  # a top-up offered
        assert "till-quote" in r.headers["hx-trigger"]
    # without JavaScript the whole till comes back with the member in it
    r = await cashier.post("/console/till/find", {"q": card})
    assert r.status_code == 200 and "<html" in r.text and f'data-member="{member}"' in r.text


async def test_find_errors_stand_beside_the_box(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    stranger = await member_factory(await tenant_factory(), "+8613900002222")  # another merchant's member
    async with db.uow(system=True) as uow:
        card = await uow.session.scalar(text("SELECT card_number FROM members WHERE id = :m"), {"m": stranger})
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))
    for q, status, message in [
        (card, 404, "没有会员使用此卡号或会员码。"),
        ("LK1.bogus", 400, "这不是联卡会员码。"),
        ("hello", 400, "请输入手机号或卡号，或扫描会员码。"),
        ("", 400, "请输入手机号或卡号，或扫描会员码。"),
    ]:
        r = await cashier.post("/console/till/find", {"q": q}, htmx=True)
        assert r.status_code == status, (q, r.text)
        assert 'id="f-q-error"' in r.text and message in r.text and 'aria-invalid="true"' in r.text
        assert "data-member=" not in r.text


# --- enrolling at the till ------------------------------------------------------------------------


async def test_a_new_phone_joins_with_the_sale_and_the_checklist_shows_the_first_sale(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    assert steps_done((await owner.get("/console/start")).text)["live"] is False
    r = await owner.post("/console/till/find", {"q": "13900003333"}, htmx=True)
    assert r.status_code == 200 and 'data-newcomer="true"' in r.text
    assert 'name="join_phone" value="+8613900003333"' in r.text and 'data-testid="enrol-now"' in r.text

    r = await owner.post(
        "/console/till/quote", {"amount": "30", "join_phone": "+8613900003333", "branch_id": str(branch)}, htmx=True
    )
    assert r.status_code == 200 and 'data-testid="quote-points">30' in r.text and "顾客将随本单入会" in r.text

    r = await sell(owner, {"amount": "30", "join_phone": "+8613900003333", "branch_id": str(branch)})
    assert r.status_code == 200 and "欢迎！顾客已成为会员。" in r.text and 'data-testid="receipt-points">30' in r.text
    async with db.uow(tenant) as uow:
        joined = (
            await uow.session.execute(
                text("SELECT ms.branch_id, s.member_id FROM memberships ms JOIN sales s ON s.member_id = ms.member_id")
            )
        ).one()
    assert joined[0] == branch
    assert steps_done((await owner.get("/console/start")).text)["live"] is True


async def test_enrol_now_without_a_sale(client: Any, auth_kit: Any, tenant_factory: Any, db: Any) -> None:
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))
    r = await cashier.post("/console/till/enrol", {"phone": "+8613900004444"}, htmx=True)
    assert r.status_code == 200 and "data-member=" in r.text and 'data-testid="points-available">0' in r.text
    async with db.uow(tenant) as uow:
        assert await uow.session.scalar(text("SELECT branch_id FROM memberships")) == branch
    r = await cashier.post("/console/till/enrol", {"phone": "12"}, htmx=True)
    assert r.status_code == 400 and 'id="f-q-error"' in r.text
    assert await count(db, tenant, "memberships") == 1


# --- quote and sale -------------------------------------------------------------------------------


async def test_the_live_quote_shows_what_the_sale_would_do_and_writes_nothing(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant, branch, member, cashier = await member_at_the_till(client, db, auth_kit, tenant_factory, member_factory)
    base = {"member_id": str(member), "branch_id": str(branch)}
    r = await cashier.post("/console/till/quote", {**base, "amount": ""}, htmx=True)
    assert r.status_code == 200 and "输入金额" in r.text
    r = await cashier.post("/console/till/quote", {**base, "amount": "88", "stored_value": "20"}, htmx=True)
    assert r.status_code == 200 and "<html" not in r.text
    assert 'data-testid="quote-due">¥68.00' in r.text and 'data-testid="quote-points">' in r.text
    # the lines make the amount when it is left empty
    r = await cashier.post(
        "/console/till/quote", {**base, "sku": ["TEA", "CAKE"], "qty": ["2", ""], "price": ["15", "8.5"]}, htmx=True
    )
    assert 'data-testid="quote-due">¥38.50' in r.text
    # problems are named beside what they are about
    r = await cashier.post("/console/till/quote", {**base, "amount": "10", "points": "999999"}, htmx=True)
    assert r.status_code == 422 and "会员的积分不足。" in r.text and 'data-testid="quote-errors"' in r.text
    r = await cashier.post("/console/till/quote", {**base, "amount": "1000", "stored_value": "500"}, htmx=True)
    assert r.status_code == 422 and "储值余额不足" in r.text
    r = await cashier.post("/console/till/quote", {**base, "amount": "12.345"}, htmx=True)
    assert r.status_code == 400 and "请输入金额，例如 12.50。" in r.text
    assert await count(db, tenant, "sales") == 0


async def test_a_sale_to_a_member_shows_the_receipt_and_a_double_click_books_once(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant, _, member, cashier = await member_at_the_till(client, db, auth_kit, tenant_factory, member_factory)
    page = (await cashier.get("/console/till")).text
    form = {
        "key": key_of(page),
        "member_id": str(member),
        "amount": "88",
        "stored_value": "10",
        "payment_method": "wechat_pay",
    }
    first = await cashier.post("/console/till/sale", form, htmx=True)
    assert first.status_code == 200, first.text
    assert first.headers["hx-retarget"] == "#receipt" and "till-sold" in first.headers["hx-trigger"]
    # the bonus part of the stored value (¥0.91 of ¥10) earns no points: 87.09 → 87
    assert 'data-testid="receipt-due">¥78.00' in first.text and 'data-testid="receipt-points">87' in first.text
    assert "¥100.00" in first.text  # stored value after: 110 - 10
    sale_id = re.search(r'data-sale="([^"]+)"', first.text).group(1)  # type: ignore[union-attr]

    again = await cashier.post("/console/till/sale", form, htmx=True)  # the second click of a double click
    assert again.status_code == 200 and f'data-sale="{sale_id}"' in again.text and "已记录" in again.text
    async with db.uow(tenant) as uow:
        assert (await uow.session.execute(text("SELECT id, due, payment_method FROM sales"))).all() == [
            (uuid.UUID(sale_id), 7800, "wechat_pay")
        ]
    # the next customer gets a fresh form, with a new key
    fresh = await cashier.get("/console/till/work", headers={"HX-Request": "true"})
    assert key_of(fresh.text) != form["key"] and "<html" not in fresh.text
    # the same key for a different basket is refused, and books nothing
    r = await cashier.post("/console/till/sale", {**form, "amount": "99"}, htmx=True)
    assert r.status_code == 409 and "此表单已用于其他操作" in r.text
    assert await count(db, tenant, "sales") == 1


async def test_sale_errors_stand_beside_their_fields_and_book_nothing(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    member = await member_factory(tenant)
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))
    cases = [
        ({"amount": ""}, 400, "f-amount-error"),
        ({"amount": "-5"}, 400, "f-amount-error"),
        ({"amount": "1e3"}, 400, "f-amount-error"),
        ({"amount": "10", "member_id": str(member), "points": "50"}, 422, "f-points-error"),
        ({"amount": "10", "member_id": str(member), "stored_value": "1"}, 422, "f-stored_value-error"),
        ({"amount": "10", "member_id": str(member), "coupon": "NOPE"}, 422, "f-coupons-error"),
        ({"amount": "10", "sku": "TEA", "qty": "1", "price": "9"}, 400, "f-lines-error"),
        ({"amount": "10", "sku": "", "qty": "1", "price": "9"}, 400, "f-lines-error"),
    ]
    for data, status, where in cases:
        r = await sell(cashier, data)
        assert r.status_code == status, (data, r.text)
        assert where in r.text and 'id="basket"' in r.text and "<html" not in r.text, data
        if data.get("amount"):
            assert f'value="{data["amount"]}"' in r.text  # what was typed stays
    r = await sell(cashier, {"amount": "abc"}, htmx=False)  # no JavaScript: the whole till, the error inline
    assert r.status_code == 400 and "<html" in r.text and 'id="f-amount-error"' in r.text
    assert await count(db, tenant, "sales") == 0


async def test_the_till_refuses_other_merchants_members_and_posts_without_the_token(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    stranger = await member_factory(await tenant_factory())
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))
    r = await sell(cashier, {"amount": "10", "member_id": str(stranger)})
    assert r.status_code == 404
    assert (await cashier.get(f"/console/till/members/{stranger}", headers={"HX-Request": "true"})).status_code == 404
    page = (await cashier.get("/console/till")).text
    r = await cashier.post("/console/till/sale", {"key": key_of(page), "amount": "10"}, token=False)
    assert r.status_code == 403 and "页面已过期" in r.text
    r = await cashier.post("/console/till/top-up", {"key": "k1", "member_id": str(stranger), "plan": "100-110"})
    assert r.status_code == 404
    assert await count(db, tenant, "sales") == 0 and await count(db, tenant, "top_ups") == 0


# --- top-ups --------------------------------------------------------------------------------------


async def test_a_top_up_books_once_and_refreshes_the_member(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    member = await member_factory(tenant)
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))
    found = await cashier.post("/console/till/find", {"q": str(await card_of(db, member))}, htmx=True)
    form = {
        "key": key_of(found.text, "top-up-form"),
        "member_id": str(member),
        "plan": "100-110",
        "payment_method": "alipay",
    }
    for _ in range(2):  # a double click
        r = await cashier.post("/console/till/top-up", form, htmx=True)
        assert r.status_code == 200 and 'data-testid="top-up-balance">¥110.00' in r.text
        assert "till-member" in r.headers["hx-trigger"]
    assert await count(db, tenant, "top_ups") == 1
    r = await cashier.post("/console/till/top-up", {**form, "key": "another", "plan": "gone"}, htmx=True)
    assert r.status_code == 404 and 'id="f-plan-error"' in r.text and "该储值方案已停售。" in r.text
    assert r.headers["hx-retarget"] == "#find-area"
    panel = await cashier.get(f"/console/till/members/{member}", headers={"HX-Request": "true"})
    assert 'data-testid="stored-value">¥110.00' in panel.text and key_of(panel.text, "top-up-form") != form["key"]
    assert await count(db, tenant, "top_ups") == 1


async def card_of(db: Any, member: uuid.UUID) -> str:
    async with db.uow(system=True) as uow:
        return str(await uow.session.scalar(text("SELECT card_number FROM members WHERE id = :m"), {"m": member}))


# --- refunds --------------------------------------------------------------------------------------


async def test_refund_all_an_amount_or_lines(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    tenant, (branch,) = await shop(db, auth_kit, tenant_factory)
    member = await member_factory(tenant)
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (branch,))
    r = await sell(
        cashier, {"member_id": str(member), "sku": ["TEA", "CAKE"], "qty": ["2", "1"], "price": ["15", "20"]}
    )
    sale_id = re.search(r'data-sale="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    recent = await cashier.get("/console/till/sales", headers={"HX-Request": "true"})
    assert f'data-sale="{sale_id}"' in recent.text and "¥50.00" in recent.text

    form = await cashier.get(f"/console/till/sales/{sale_id}", headers={"HX-Request": "true"})
    assert form.status_code == 200 and 'id="refund-form"' in form.text and 'name="qty_0"' in form.text
    assert 'data-testid="refund-left">¥50.00' in form.text
    key = key_of(form.text, "refund-form")
    url = f"/console/till/sales/{sale_id}/refund"
    r = await cashier.post(url, {"key": key, "mode": "amount", "refund_amount": "60"}, htmx=True)
    assert r.status_code == 422 and 'id="f-refund_amount-error"' in r.text and "超过了可退金额" in r.text
    r = await cashier.post(url, {"key": key, "mode": "lines", "qty_0": "3"}, htmx=True)
    assert r.status_code == 422 and 'id="f-refund_lines-error"' in r.text
    r = await cashier.post(url, {"key": key, "mode": "lines", "qty_0": "1"}, htmx=True)
    assert r.status_code == 200 and 'data-testid="refund-amount">¥15.00' in r.text and "部分退款" in r.text
    assert "till-refunded" in r.headers["hx-trigger"]
    again = await cashier.post(url, {"key": key, "mode": "lines", "qty_0": "1"}, htmx=True)  # a retry
    assert again.status_code == 200 and "已记录" in again.text
    key2 = key_of(
        (await cashier.get(f"/console/till/sales/{sale_id}", headers={"HX-Request": "true"})).text, "refund-form"
    )
    r = await cashier.post(url, {"key": key2, "mode": "amount", "refund_amount": "5"}, htmx=True)
    assert 'data-testid="refund-amount">¥5.00' in r.text
    key3 = key_of(
        (await cashier.get(f"/console/till/sales/{sale_id}", headers={"HX-Request": "true"})).text, "refund-form"
    )
    r = await cashier.post(url, {"key": key3, "mode": "all"}, htmx=True)
    assert 'data-testid="refund-amount">¥30.00' in r.text and "已全额退款" in r.text
    async with db.uow(tenant) as uow:
        assert (await uow.session.execute(text("SELECT amount FROM refunds ORDER BY amount"))).scalars().all() == [
            500,
            1500,
            3000,
        ]
        assert await uow.session.scalar(text("SELECT status FROM sales")) == "refunded"


async def test_refunds_of_other_branches_and_merchants_are_not_found(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant, (mine, other) = await shop(db, auth_kit, tenant_factory, codes=("MINE", "OTHER"))
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    r = await sell(owner, {"amount": "20", "branch_id": str(other)})
    sale_id = re.search(r'data-sale="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier", (mine,))
    assert (await cashier.get(f"/console/till/sales/{sale_id}")).status_code == 404
    assert sale_id not in (await cashier.get("/console/till/sales")).text
    r = await cashier.post(f"/console/till/sales/{sale_id}/refund", {"key": "k", "mode": "all"})
    assert r.status_code == 404
    outsider = await sign_in_console(client, auth_kit, await tenant_factory(), "owner")
    assert (await outsider.get(f"/console/till/sales/{sale_id}")).status_code == 404
    r = await outsider.post(f"/console/till/sales/{sale_id}/refund", {"key": "k", "mode": "all"})
    assert r.status_code == 404
    assert await count(db, tenant, "refunds") == 0


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_the_till_speaks_both_languages(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, lang: str
) -> None:
    tenant, _ = await shop(db, auth_kit, tenant_factory)
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier")
    client.cookies.set("lk_lang", lang)
    page = (await cashier.get("/console/till")).text
    assert ("收款" if lang == "zh-CN" else "Take payment") in page


async def test_the_apis_basket_problems_name_their_field(
    client: Any, pos_token: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    """The till shows these beside the amount and the items; API clients get the same ``field``."""
    tenant = await tenant_factory()
    pos = await pos_token(tenant, branch=await auth_kit.branch(tenant))
    client.cookies.clear()
    r = await client.post(
        "/api/v1/pos/quote",
        headers=pos.headers,
        json={"amount": 1000, "lines": [{"sku": "TEA", "qty": 1, "unit_price": 900}]},
    )
    assert r.status_code == 400 and r.json()["field"] == "lines"


async def test_this_slices_pages_carry_the_csp_and_no_inline_code(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, member_factory: Any
) -> None:
    """The Content-Security-Policy forbids inline scripts, styles and handlers: none on these pages."""
    from lianka.web.console.security import CONTENT_SECURITY_POLICY

    tenant, _, member, _ = await member_at_the_till(client, db, auth_kit, tenant_factory, member_factory)
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    pages = [
        await owner.get(url)
        for url in ("/console/till", "/console/staff", "/console/clients", "/console/start/programme")
    ]
    pages.append(await owner.post("/console/till/find", {"q": await card_of(db, member)}))
    pages.append(await owner.post("/console/clients", {"name": "Till 9", "scopes": "pos"}))
    for r in pages:
        assert r.status_code == 200, r.url
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), r.url
        assert not re.search(r"\sstyle=|\son[a-z]+=", r.text), r.url
