"""The member portal's pages through the test client (issue 14): sign-in by code and sign-out, the
join link's pages (a branch's link sets the join branch; errors beside their fields), the card with
its rotating QR (the token the page shows is accepted by the till's look-up; the fragment htmx
fetches), the balances and history at a merchant (another merchant's slug is 404 like an unknown
one), and the pages' security (CSP, CSRF, no inline code).

The rules themselves (codes, lockout, one member per phone, prospects) are pinned by
tests/api/test_self_join.py through the JSON API; the pages call the same use cases.
"""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

from sqlalchemy import text

from lianka.platform.identity import members
from lianka.platform.identity.sessions import MEMBER_COOKIE
from lianka.tenants.domain.programme import (
    EarningRule,
    Programme,
    RuleKind,
    StoredValueConfig,
    StoredValuePlan,
    Tier,
)
from lianka.tenants.services import enrolment
from lianka.tenants.services.programme import set_programme
from lianka.web.console.security import CONTENT_SECURITY_POLICY
from tests.api.test_console import csrf_of

PROGRAMME = Programme(
    tiers=[Tier(code="regular", name="普通会员", rank=0), Tier(code="gold", name="金卡", rank=1, threshold=50_000)],
    rules=[EarningRule(code="welcome", kind=RuleKind.SIGNUP, points=50)],
    stored_value=StoredValueConfig(plans=[StoredValuePlan(code="100-110", name="充100送10", pay=10_000, get=11_000)]),
)
TOKEN = re.compile(r'data-token="([^"]+)"')


def a_phone() -> str:
    return f"139{random.randrange(10**8):08d}"


async def shop(db: Any, auth_kit: Any, tenant_factory: Any, name: str = "一点茶 Yidian Tea") -> dict[str, Any]:
    tenant = await tenant_factory(name)
    sh01 = await auth_kit.branch(tenant, "SH01")
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME)
        await uow.commit()
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant})
    return {"tenant": tenant, "slug": slug, "sh01": sh01}


def sms_code(app: Any, phone: str, marker: str) -> str:
    sms = app.state.identity.sms.last_to(members.normalise_phone(phone))
    assert sms is not None and marker in sms.text, sms
    return str(sms.text.split(marker)[1][:6])


async def sign_in(client: Any, app: Any, phone: str) -> None:
    """Sign in through the pages, as a member would."""
    page = await client.get("/m/sign-in")
    r = await client.post("/m/sign-in/code", data={"phone": phone, "_csrf": csrf_of(page.text)})
    assert r.status_code == 200 and 'name="code"' in r.text, r.text
    code = sms_code(app, phone, "验证码是 ")
    r = await client.post(
        "/m/sign-in", data={"phone": phone, "code": code, "_csrf": csrf_of(r.text)}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/m", r.text


async def test_sign_in_by_code_then_the_card_then_sign_out(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    phone = a_phone()
    enrolled = await members.enrol_member(auth_kit.ident, s["tenant"], phone)
    r = await client.get("/m", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/m/sign-in?next=/m"
    page = await client.get("/m/sign-in")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    # a form without the page's token is refused, and nothing is texted
    r = await client.post("/m/sign-in/code", data={"phone": phone})
    assert r.status_code == 403
    assert app.state.identity.sms.last_to(members.normalise_phone(phone)) is None
    # a wrong code stays on the page with the message beside the code
    r = await client.post("/m/sign-in/code", data={"phone": phone, "_csrf": csrf_of(page.text)})
    r = await client.post("/m/sign-in", data={"phone": phone, "code": "000000", "_csrf": csrf_of(r.text)})
    assert r.status_code == 401 and "验证码错误或已过期" in r.text
    await auth_kit.ident.limiter.reset("otp-resend", members.normalise_phone(phone))
    await sign_in(client, app, phone)
    card = await client.get("/m")
    assert card.status_code == 200
    assert enrolled.member.card_number in card.text and f'href="/m/{s["slug"]}"' in card.text
    assert "一点茶 Yidian Tea" in card.text
    signed = csrf_of(card.text[card.text.index('action="/m/sign-out"') :])  # the member session's token
    anonymous = csrf_of((await client.get("/m/sign-in")).text)  # a page's token before signing in
    assert anonymous != signed
    r = await client.post("/m/sign-out", data={"_csrf": anonymous}, follow_redirects=False)
    assert r.status_code == 403  # the anonymous token does not sign out
    r = await client.post("/m/sign-out", data={"_csrf": signed}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/m/sign-in"
    client.cookies.delete(MEMBER_COOKIE)
    assert (await client.get("/m", follow_redirects=False)).status_code == 303


async def test_join_from_a_branch_link_in_english_and_land_on_the_card(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    client.cookies.set("lk_lang", "en")
    page = await client.get(f"/join/{s['slug']}/{s['sh01']}")  # a branch's link by its id (or its code)
    assert page.status_code == 200 and "一点茶 Yidian Tea" in page.text and "SH01" in page.text
    assert (await client.get(f"/join/{s['slug']}/SH01")).status_code == 200
    phone = a_phone()
    r = await client.post(
        f"/join/{s['slug']}/code", data={"phone": phone, "branch": str(s["sh01"]), "_csrf": csrf_of(page.text)}
    )
    assert r.status_code == 200 and 'name="privacy"' in r.text and "We have sent a code" in r.text
    code = sms_code(app, phone, "入会验证码是 ")
    form = {"phone": phone, "code": code, "branch": str(s["sh01"]), "_csrf": csrf_of(r.text), "consent_sms": "yes"}
    # without the privacy notice: refused beside the box, the code kept for the next try
    r = await client.post(f"/join/{s['slug']}", data=form, follow_redirects=False)
    assert r.status_code == 400
    assert 'id="f-privacy-error"' in r.text and "Accept the privacy notice to join." in r.text
    assert 'value="yes" checked' in r.text  # the consent chosen is kept
    r = await client.post(
        f"/join/{s['slug']}", data={**form, "privacy": "yes", "birthday": "31/05/1990"}, follow_redirects=False
    )
    assert r.status_code == 400 and 'id="f-birthday-error"' in r.text
    r = await client.post(f"/join/{s['slug']}", data={**form, "privacy": "yes", "name": "Ming"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/m", r.text
    card = await client.get("/m")
    assert "Welcome! You are a member now" in card.text and f'data-merchant="{s["slug"]}"' in card.text
    async with db.uow(s["tenant"]) as uow:
        row = (await uow.session.execute(text("SELECT branch_id FROM memberships"))).one()
        consent = await uow.session.scalar(text("SELECT consent FROM member_profiles"))
    assert row.branch_id == s["sh01"]
    assert consent["sms"]["granted"] is True and consent["email"]["granted"] is False
    merchant = await client.get(f"/m/{s['slug']}")
    assert merchant.status_code == 200
    assert re.search(r'data-testid="points-available">50<', merchant.text)  # the welcome bonus


async def test_the_qr_on_the_card_is_accepted_by_the_till_lookup(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    phone = a_phone()
    enrolled = await members.enrol_member(auth_kit.ident, s["tenant"], phone)
    await sign_in(client, app, phone)
    card = await client.get("/m")
    token = TOKEN.search(card.text)
    assert token is not None and "<svg" in card.text and 'hx-get="/m/qr"' in card.text
    fragment = await client.get("/m/qr", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and TOKEN.search(fragment.text)
    pos = await auth_kit.pos(s["tenant"], ["pos"])
    client.cookies.clear()
    for shown in (token.group(1), TOKEN.search(fragment.text).group(1)):  # type: ignore[union-attr]
        r = await client.get("/api/v1/members/lookup", params={"qr": shown}, headers=pos.headers)
        assert r.status_code == 200 and r.json()["card_number"] == enrolled.member.card_number
    # the token is the member's own, and goes stale: an old step is refused by the same look-up
    _, step, _ = members.parse_qr(token.group(1))
    stale = token.group(1).replace(f".{step}.", f".{step - 10}.")
    r = await client.get("/api/v1/members/lookup", params={"qr": stale}, headers=pos.headers)
    assert r.status_code == 404


async def test_balances_and_history_show_a_sale_and_another_merchant_is_404(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    other = await shop(db, auth_kit, tenant_factory, "别家 Other Shop")
    phone = a_phone()
    enrolled = await enrolment.enrol(auth_kit.ident, s["tenant"], phone, s["sh01"])  # with the welcome bonus
    member = enrolled.member.member_id
    pos = await auth_kit.pos(s["tenant"], ["pos"], branch=s["sh01"])
    from lianka.tenants.pos import schemas, stored_value

    await stored_value.top_up(
        db, s["tenant"], schemas.TopUpIn(member_id=member, plan="100-110"), uuid.uuid4().hex, s["sh01"]
    )
    r = await client.post(
        "/api/v1/pos/sales",
        json={"amount": 12_345, "member_id": str(member)},
        headers={**pos.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    await sign_in(client, app, phone)
    page = await client.get(f"/m/{s['slug']}")
    assert page.status_code == 200
    assert re.search(r'data-testid="points-available">173<', page.text), page.text  # 50 welcome + 123 earned
    assert 'data-testid="sv-principal">¥100.00<' in page.text and 'data-testid="sv-bonus">¥10.00<' in page.text
    assert "金卡" in page.text and "¥376.55" in page.text  # ¥500 for gold, ¥123.45 spent
    history = await client.get(f"/m/{s['slug']}/history")
    assert history.status_code == 200
    assert "您支付了 ¥123.45" in history.text and "+123 积分" in history.text
    assert "入会奖励" in history.text  # the welcome bonus, in the member's words
    sv = history.text.split('data-testid="sv-history"')[1].split("</ul>")[0]
    assert "+¥110.00" in sv and "充值" in sv and "¥100.00" in sv and "¥10.00" in sv  # paid in and bonus apart
    assert 'data-testid="tier-keep"' not in page.text  # the lowest tier is never lost

    # gold reached: the page says what keeps it at the next review (保级)
    r = await client.post(
        "/api/v1/pos/sales",
        json={"amount": 40_000, "member_id": str(member)},
        headers={**pos.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    page = await client.get(f"/m/{s['slug']}")
    keep = page.text.split('data-testid="tier-keep">')[1].split("</p>")[0]
    assert "下次评级将保留金卡：您近 12 个月已消费 ¥523.45。" in keep, keep

    # another merchant's page — not joined — answers exactly as an unknown merchant
    theirs = await client.get(f"/m/{other['slug']}")
    unknown = await client.get("/m/no-such-shop")
    assert theirs.status_code == unknown.status_code == 404
    assert (await client.get(f"/m/{other['slug']}/history")).status_code == 404
    request_id = re.compile(r"[0-9a-f]{32}")
    same = [
        request_id.sub("ID", r.text).replace(other["slug"], "X").replace("no-such-shop", "X") for r in (theirs, unknown)
    ]
    assert same[0] == same[1]
    assert (await client.get("/join/no-such-shop")).status_code == 404


async def test_portal_pages_carry_the_csp_and_no_inline_code(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    phone = a_phone()
    await members.enrol_member(auth_kit.ident, s["tenant"], phone)
    pages = [await client.get(f"/join/{s['slug']}"), await client.get("/m/sign-in")]
    await sign_in(client, app, phone)
    pages += [await client.get(u) for u in ("/m", f"/m/{s['slug']}", f"/m/{s['slug']}/history")]
    for page in pages:
        assert page.status_code == 200, page.url
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert page.headers["cache-control"] == "no-store"
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), page.url  # no inline script
        assert " style=" not in page.text and "hx-on" not in page.text, page.url
        assert 'name="viewport" content="width=device-width' in page.text


async def test_the_console_shows_every_join_link_and_prints_its_poster(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    from tests.api.test_console import sign_in_console

    s = await shop(db, auth_kit, tenant_factory)
    other = await shop(db, auth_kit, tenant_factory, "别家 Other Shop")
    owner = await sign_in_console(client, auth_kit, s["tenant"], "owner")
    page = await owner.get("/console/join-posters")
    assert page.status_code == 200 and 'href="/console/join-posters"' in page.text  # in the menu
    base = app.state.settings.identity.public_url
    links = re.findall(r'data-testid="join-link" class="join-link">([^<]+)<', page.text)
    assert links == [f"{base}/join/{s['slug']}", f"{base}/join/{s['slug']}/SH01"]
    assert page.text.count("<svg") >= 2
    png = await owner.get(f"/console/join-posters/poster.png?branch={s['sh01']}")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and "SH01.png" in png.headers["content-disposition"]
    pdf = await owner.get("/console/join-posters/poster.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # each link opens its join page
    for link in links:
        r = await client.get(link.removeprefix(base))
        assert r.status_code == 200, (link, r.text[-600:])
    # another merchant's branch has no poster here; a cashier has the till only
    assert (await owner.get(f"/console/join-posters/poster.png?branch={other['sh01']}")).status_code == 404
    assert (await owner.get("/console/join-posters/poster.gif")).status_code == 404
    cashier = await sign_in_console(client, auth_kit, s["tenant"], "cashier")
    assert (await cashier.get("/console/join-posters")).status_code == 403
    assert (await cashier.get("/console/join-posters/poster.pdf")).status_code == 403
