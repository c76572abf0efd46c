"""The member portal's referral, coupon centre, check-in and rewards (issue 14, decision 0028),
through the JSON API and the pages (which call the same use cases).

Referral: a member's invitation code and link; a friend joining through it gets the member as
referrer; the friend's first qualifying purchase at the till rewards the referrer once (a second
purchase pays nothing more); self-referral, an existing member and loops are refused; an unknown
code joins without a referrer; a prospect keeps the referrer until the till confirms them.
Coupon centre: only templates marked claimable, within stock and per-member limits, exactly once
under an Idempotency-Key. Check-in and rewards as pages."""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

from sqlalchemy import text

from lianka.platform.identity import join_codes, members
from lianka.platform.identity.testing import Creds
from lianka.tenants.domain.programme import EarningRule, JoinPolicy, JoinRules, Programme, RuleKind
from lianka.tenants.services import referrals, self_join
from lianka.tenants.services.programme import set_programme
from tests.api.test_console import csrf_of

REFERRAL = EarningRule(code="refer", kind=RuleKind.REFERRAL, points=200, min_spend=5_000)
PROGRAMME = Programme(
    rules=[
        EarningRule(code="welcome", kind=RuleKind.SIGNUP, points=50),
        REFERRAL,
        EarningRule(code="daily", kind=RuleKind.CHECKIN, points=5, streak_bonus={"3": 10}),
    ]
)
PURCHASE_FIRST = Programme(
    rules=[REFERRAL], join=JoinRules(policy=JoinPolicy.QUALIFYING_PURCHASE, single_purchase_min=10_000)
)
CODE = re.compile(r'data-testid="referral-code">([^<]+)<')


def a_phone() -> str:
    return f"139{random.randrange(10**8):08d}"


async def shop(db: Any, auth_kit: Any, tenant_factory: Any, programme: Programme = PROGRAMME) -> dict[str, Any]:
    tenant = await tenant_factory("一点茶 Yidian Tea")
    sh01 = await auth_kit.branch(tenant, "SH01")
    async with db.uow(tenant) as uow:
        await set_programme(uow, programme)
        await uow.commit()
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant})
    pos = await auth_kit.pos(tenant, ["pos"], branch=sh01)
    return {"tenant": tenant, "slug": slug, "sh01": sh01, "pos": pos, "owner": await auth_kit.staff(tenant, "owner")}


async def api(client: Any, method: str, url: str, creds: Creds | None = None, **kw: Any) -> Any:
    client.cookies.clear()
    headers = {**(creds.headers if creds else {}), **kw.pop("headers", {})}
    return await client.request(method, f"/api/v1{url}", headers=headers, **kw)


async def referral_of(client: Any, s: dict[str, Any], member: Creds) -> dict[str, Any]:
    r = await api(client, "GET", f"/portal/merchants/{s['slug']}/referral", member)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def join(client: Any, kit: Any, slug: str, phone: str, ref: str | None, status: int = 201) -> dict[str, Any]:
    """Join through the JSON API (the code asked from a fresh address: the limits are not tested here)."""
    client.cookies.clear()
    ident = kit.ident
    await ident.limiter.reset(join_codes.RESEND_KIND, members.normalise_phone(phone))
    await self_join.request_code(ident, slug, phone, f"198.51.100.{random.randrange(1, 255)}")
    sms = ident.sms.last_to(members.normalise_phone(phone))
    code = sms.text.split("入会验证码是 ")[1][:6]
    body: dict[str, Any] = {"phone": phone, "code": code, "privacy_accepted": True}
    if ref is not None:
        body["ref"] = ref
    r = await client.post(f"/api/v1/portal/join/{slug}", json=body)
    assert r.status_code == status, r.text
    return dict(r.json())


async def sale(client: Any, s: dict[str, Any], amount: int, **who: Any) -> dict[str, Any]:
    key = uuid.uuid4().hex
    r = await api(
        client, "POST", "/pos/sales", s["pos"], json={"amount": amount, **who}, headers={"Idempotency-Key": key}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def points(db: Any, tenant: uuid.UUID, member: uuid.UUID, kind: str | None = None) -> int:
    async with db.uow(tenant) as uow:
        sql = "SELECT coalesce(sum(points), 0) FROM rule_awards WHERE member_id = :m"
        if kind:
            sql += " AND kind = :k"
        return int(await uow.session.scalar(text(sql), {"m": member, "k": kind}) or 0)


async def referrer_of(db: Any, tenant: uuid.UUID, member: uuid.UUID) -> uuid.UUID | None:
    async with db.uow(tenant) as uow:
        found = await uow.session.scalar(
            text("SELECT referrer_member_id FROM member_profiles WHERE member_id = :m"), {"m": member}
        )
    return found if isinstance(found, uuid.UUID) else None


async def test_a_friend_joins_by_the_link_and_the_first_purchase_rewards_the_referrer_once(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    alice = await auth_kit.member(s["tenant"])
    mine = await referral_of(client, s, alice)
    code = mine["code"]
    assert referrals.normalise(code) == code and len(code) == referrals.LENGTH
    assert mine["link"].endswith(f"/join/{s['slug']}?ref={code}")
    assert mine["friends"] == [] and mine["points_earned"] == 0
    assert (await referral_of(client, s, alice))["code"] == code  # stable
    other = await referral_of(client, s, await auth_kit.member(s["tenant"]))
    assert other["code"] != code  # one per member

    bob = await join(client, auth_kit, s["slug"], a_phone(), code.lower())  # case forgiven
    assert (bob["status"], bob["referral"]) == ("joined", "linked")
    bob_id = uuid.UUID(bob["member_id"])
    assert await referrer_of(db, s["tenant"], bob_id) == alice.subject_id
    assert await points(db, s["tenant"], bob_id, "signup") == 50  # the friend's welcome (sign-up rule)
    friends = (await referral_of(client, s, alice))["friends"]
    assert [f["stage"] for f in friends] == ["joined"] and "****" in friends[0]["phone_masked"]

    # a first purchase below the rule's minimum pays nothing, and the rule is for the first purchase
    carol = await join(client, auth_kit, s["slug"], a_phone(), code)
    await sale(client, s, 4_000, member_id=carol["member_id"])
    await sale(client, s, 9_000, member_id=carol["member_id"])
    assert await points(db, s["tenant"], alice.subject_id, "referral") == 0

    await sale(client, s, 6_000, member_id=bob["member_id"])
    assert await points(db, s["tenant"], alice.subject_id, "referral") == 200
    await sale(client, s, 8_000, member_id=bob["member_id"])  # a second purchase pays nothing more
    assert await points(db, s["tenant"], alice.subject_id, "referral") == 200
    view = await referral_of(client, s, alice)
    assert view["points_earned"] == 200
    by_stage = sorted((f["stage"], f["points"]) for f in view["friends"])
    assert by_stage == [("bought", 0), ("bought", 200)]
    client.cookies.clear()
    page = await client.get(f"/m/{s['slug']}/invite", headers=alice.headers)
    assert page.status_code == 200 and f'data-testid="referral-code">{code}<' in page.text
    assert "<svg" in page.text and f"/join/{s['slug']}?ref={code}" in page.text
    assert "邀请累计获得：200 积分" in page.text and page.text.count('data-stage="bought"') == 2


async def test_self_referral_an_existing_member_and_loops_are_refused(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    phone_a = a_phone()
    alice = await auth_kit.member(s["tenant"], phone_a)
    code_a = (await referral_of(client, s, alice))["code"]

    # oneself: joining through one's own link signs in, nobody becomes anyone's referrer
    again = await join(client, auth_kit, s["slug"], phone_a, code_a, status=200)
    assert (again["status"], again["referral"]) == ("already", "refused")
    assert await referrer_of(db, s["tenant"], alice.subject_id) is None

    # A refers B; B's link cannot make A B's referee (A is a member already), nor can staff
    bob = await join(client, auth_kit, s["slug"], a_phone(), code_a)
    bob_id = uuid.UUID(bob["member_id"])
    async with db.uow(s["tenant"]) as uow:
        code_b = await referrals.code_of(uow, bob_id)
        await uow.commit()
    late = await join(client, auth_kit, s["slug"], phone_a, code_b, status=200)
    assert (late["status"], late["referral"]) == ("already", "refused")
    assert await referrer_of(db, s["tenant"], alice.subject_id) is None
    for referrer, member in [(bob_id, alice.subject_id), (alice.subject_id, alice.subject_id)]:
        r = await api(
            client,
            "PATCH",
            f"/members/{member}/profile",
            s["owner"],
            json={"referrer_member_id": str(referrer)},
        )
        assert r.status_code == 400 and r.json()["field"] == "referrer_member_id", r.text
    # a longer loop: A → B → C, then A's referrer C is refused
    carol = await join(client, auth_kit, s["slug"], a_phone(), code_b)
    r = await api(
        client,
        "PATCH",
        f"/members/{alice.subject_id}/profile",
        s["owner"],
        json={"referrer_member_id": carol["member_id"]},
    )
    assert r.status_code == 400, r.text
    assert await referrer_of(db, s["tenant"], alice.subject_id) is None


async def test_an_unknown_code_joins_without_a_referrer_and_the_page_says_so(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    for ref in ("NOPE", "ZZZZZZZZ", "<script>"):
        joined = await join(client, auth_kit, s["slug"], a_phone(), ref)
        assert (joined["status"], joined["referral"]) == ("joined", "unknown")
        assert await referrer_of(db, s["tenant"], uuid.UUID(joined["member_id"])) is None
    # another merchant's member's code is unknown here
    elsewhere = await shop(db, auth_kit, tenant_factory)
    stranger = await auth_kit.member(elsewhere["tenant"])
    foreign = (await referral_of(client, elsewhere, stranger))["code"]
    joined = await join(client, auth_kit, s["slug"], a_phone(), foreign)
    assert joined["referral"] == "unknown"

    # the pages: the notice, the code carried through both steps, the flash on the card
    alice = await auth_kit.member(s["tenant"])
    code = (await referral_of(client, s, alice))["code"]
    client.cookies.clear()
    page = await client.get(f"/join/{s['slug']}", params={"ref": "BADCODE1"})
    assert page.status_code == 200 and "邀请码无效" in page.text
    page = await client.get(f"/join/{s['slug']}/SH01", params={"ref": code})
    assert "好友邀请您" in page.text and f'name="ref" value="{code}"' in page.text
    assert f'name="next" value="/join/{s["slug"]}/{s["sh01"]}?ref={code}"' in page.text  # the language switch
    phone = a_phone()
    r = await client.post(
        f"/join/{s['slug']}/code",
        data={"phone": phone, "branch": "SH01", "ref": code, "_csrf": csrf_of(page.text)},
    )
    assert r.status_code == 200 and f'name="ref" value="{code}"' in r.text
    sms = app.state.identity.sms.last_to(members.normalise_phone(phone))  # the app's own SMS backend
    form = {
        "phone": phone,
        "code": sms.text.split("入会验证码是 ")[1][:6],
        "branch": "SH01",
        "ref": code,
        "privacy": "yes",
        "_csrf": csrf_of(r.text),
    }
    r = await client.post(f"/join/{s['slug']}", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    card = await client.get("/m")
    assert "您通过好友的邀请加入" in card.text
    friends = (await referral_of(client, s, alice))["friends"]
    assert [f["phone_masked"] for f in friends] == [members.mask_phone(members.normalise_phone(phone))]


async def test_a_prospect_keeps_the_referrer_until_the_till_confirms_them(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory, PURCHASE_FIRST)
    alice = await auth_kit.member(s["tenant"])
    code = (await referral_of(client, s, alice))["code"]
    phone = a_phone()
    joined = await join(client, auth_kit, s["slug"], phone, code, status=200)
    assert (joined["status"], joined["referral"]) == ("prospect", "linked")
    assert [f["stage"] for f in (await referral_of(client, s, alice))["friends"]] == ["waiting"]
    confirmed = await sale(client, s, 12_000, join_phone=phone)  # the qualifying purchase enrols them
    assert confirmed["member_id"] == joined["member_id"]
    assert await referrer_of(db, s["tenant"], uuid.UUID(joined["member_id"])) == alice.subject_id
    assert await points(db, s["tenant"], alice.subject_id, "referral") == 200  # on that first purchase
    await sale(client, s, 12_000, member_id=joined["member_id"])
    assert await points(db, s["tenant"], alice.subject_id, "referral") == 200
    assert [f["stage"] for f in (await referral_of(client, s, alice))["friends"]] == ["bought"]


def form_csrf(html: str, action: str) -> str:
    """The member session's token of the form posting to ``action`` (the language switch has another)."""
    return csrf_of(html[html.index(f'action="{action}"') :])


def key_of(html: str, action: str) -> str:
    found = re.search(r'name="_key" value="([^"]+)"', html[html.index(f'action="{action}"') :])
    assert found, action
    return found.group(1)


async def template(client: Any, s: dict[str, Any], code: str, **fields: Any) -> dict[str, Any]:
    body = {"code": code, "name": f"{code} 立减", "kind": "fixed", "amount_off": 500, "valid_days": 30, **fields}
    r = await api(client, "POST", "/coupon-templates", s["owner"], json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_the_coupon_centre_offers_claimable_templates_within_stock_and_limits(
    client: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    one = await template(client, s, "ONE", claimable=True, per_member_limit=1, stock_total=2)
    staff_only = await template(client, s, "STAFF")
    assert (one["claimable"], staff_only["claimable"]) == (True, False)
    alice, bob, carol = [await auth_kit.member(s["tenant"]) for _ in range(3)]
    url = f"/portal/merchants/{s['slug']}/coupon-centre"
    offers = (await api(client, "GET", url, alice)).json()
    assert [(o["template"]["code"], o["can_claim"], o["left_for_member"]) for o in offers] == [("ONE", True, 1)]

    # not claimable: 404 to a member, as an unknown template
    r = await api(client, "POST", f"{url}/{staff_only['id']}/claim", alice, headers={"Idempotency-Key": "k-staff"})
    assert r.status_code == 404, r.text
    # exactly once under the key; the per-member limit; the stock
    r = await api(client, "POST", f"{url}/{one['id']}/claim", alice, headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 201 and r.json()["source"] == "portal", r.text
    again = await api(client, "POST", f"{url}/{one['id']}/claim", alice, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 200 and again.json()["code"] == r.json()["code"]
    r = await api(client, "POST", f"{url}/{one['id']}/claim", alice, headers={"Idempotency-Key": "k-2"})
    assert r.status_code == 422 and r.json()["type"].endswith("coupon-limit-reached"), r.text
    assert [(o["can_claim"], o["reason"]) for o in (await api(client, "GET", url, alice)).json()] == [
        (False, "limit-reached")
    ]
    r = await api(client, "POST", f"{url}/{one['id']}/claim", bob, headers={"Idempotency-Key": "k-3"})
    assert r.status_code == 201
    r = await api(client, "POST", f"{url}/{one['id']}/claim", carol, headers={"Idempotency-Key": "k-4"})
    assert r.status_code == 422 and r.json()["type"].endswith("coupon-sold-out"), r.text
    async with db.uow(s["tenant"]) as uow:
        issued = await uow.session.scalar(text("SELECT count(*) FROM coupons WHERE template_id = :t"), {"t": one["id"]})
    assert issued == 2

    # the page: a claim by the form, the refusal in the member's words, another merchant is 404
    many = await template(client, s, "MANY", claimable=True)
    client.cookies.clear()
    page = await client.get(f"/m/{s['slug']}/coupon-centre", headers=carol.headers)
    assert page.status_code == 200 and "领券中心" in page.text and "已领完" in page.text
    action = f"/m/{s['slug']}/coupon-centre/{many['id']}/claim"
    form = {"_csrf": form_csrf(page.text, action), "_key": key_of(page.text, action)}
    anonymous = csrf_of((await client.get("/m/sign-in")).text)  # a visitor's token, not carol's session's
    for token in ("", anonymous):  # none, or an anonymous one: refused
        cookie_only = {"Cookie": carol.headers["Cookie"]}  # a browser sends no X-CSRF-Token header
        r = await client.post(action, data={**form, "_csrf": token}, headers=cookie_only)
        assert r.status_code == 403, r.text
    for _ in range(2):  # a double tap books one coupon
        r = await client.post(action, data=form, headers={"Cookie": carol.headers["Cookie"]}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/m/{s['slug']}/coupon-centre", r.text
    wallet = await api(client, "GET", f"/portal/merchants/{s['slug']}/coupons", carol)
    assert [c["template_code"] for c in wallet.json()] == ["MANY"]
    gone = await client.get(f"/m/{s['slug']}/coupon-centre", headers=alice.headers)
    action = f"/m/{s['slug']}/coupon-centre/{one['id']}/claim"
    r = await client.post(
        action, data={"_csrf": form_csrf(gone.text, "/m/sign-out"), "_key": "k-5"}, headers=alice.headers
    )
    assert r.status_code == 422 and "您持有的该优惠券已达上限。" in r.text
    elsewhere = await shop(db, auth_kit, tenant_factory)
    assert (await client.get(f"/m/{elsewhere['slug']}/coupon-centre", headers=alice.headers)).status_code == 404


async def test_the_console_form_marks_a_template_claimable(client: Any, auth_kit: Any, tenant_factory: Any) -> None:
    from tests.api.test_console import sign_in_console

    tenant = await tenant_factory()
    console = await sign_in_console(client, auth_kit, tenant)
    form = await console.get("/console/coupons/new", headers={"HX-Request": "true"})
    assert 'name="claimable"' in form.text and "领券中心" in form.text
    base = {"kind": "fixed", "amount_off": "5", "valid_days": "30", "_csrf": console.csrf}
    for code, extra in [("OPEN", {"claimable": "on"}), ("SHUT", {})]:
        r = await console.client.post(
            "/console/coupons", data={**base, "code": code, "name": code, **extra}, follow_redirects=False
        )
        assert r.status_code == 303, r.text
    listed = (await console.get("/console/coupons")).text
    assert listed.count("data-claimable") == 1 and "在领券中心展示" in listed


async def test_check_in_and_rewards_as_pages(client: Any, db: Any, auth_kit: Any, tenant_factory: Any) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    alice = await auth_kit.member(s["tenant"])
    browser = {"Cookie": alice.headers["Cookie"]}  # forms post the page's token, as a browser does
    client.cookies.clear()
    merchant = await client.get(f"/m/{s['slug']}", headers=alice.headers)
    for link in ("checkin", "rewards", "coupon-centre", "invite"):
        assert f'href="/m/{s["slug"]}/{link}"' in merchant.text
    page = await client.get(f"/m/{s['slug']}/checkin", headers=alice.headers)
    assert page.status_code == 200 and 'data-testid="check-in"' in page.text
    assert "连续签到第 3 天：额外 10 积分。" in page.text
    action = f"/m/{s['slug']}/checkin"
    for already in (False, True):  # once per day: a second tap shows the same check-in
        r = await client.post(action, data={"_csrf": form_csrf(page.text, action)}, headers=browser)
        assert r.status_code == 200, r.text
        assert ("您今天已经签到过了。" in r.text) is already and ("签到成功：+5 积分。" in r.text) is not already
    assert 'data-testid="check-in"' not in r.text and "今天已签到（+5 积分）" in r.text
    assert await points(db, s["tenant"], alice.subject_id, "checkin") == 5

    # a gift for 30 points, picked up at SH01; and one the member cannot afford
    for code, cost in (("TEA", 30), ("POT", 5_000)):
        body = {
            "code": code,
            "name": f"{code} 礼品",
            "kind": "gift",
            "points_cost": cost,
            "pickup_branch_id": str(s["sh01"]),
        }
        r = await api(client, "POST", "/rewards", s["owner"], json=body)
        assert r.status_code == 201, r.text
    await sale(client, s, 10_000, member_id=str(alice.subject_id))  # 100 points
    page = await client.get(f"/m/{s['slug']}/rewards", headers=alice.headers)
    assert page.status_code == 200 and 'data-testid="why-POT"' in page.text and "积分不足" in page.text
    rid = re.search(r'action="(/m/[^"]+/rewards/([^/]+)/redeem)"', page.text)
    assert rid and page.text.count("/redeem") == 1  # only the one the member can afford
    action = rid.group(1)
    form = {"_csrf": form_csrf(page.text, action), "_key": key_of(page.text, action)}
    for _ in range(2):
        r = await client.post(action, data=form, headers=browser, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/m/{s['slug']}/redemptions"
    mine = await client.get(f"/m/{s['slug']}/redemptions", headers=alice.headers)
    assert mine.text.count('data-status="awaiting_pickup"') == 1 and "待领取：请到" in mine.text
    listed = await api(client, "GET", f"/portal/merchants/{s['slug']}/redemptions", alice)
    assert [(x["reward_code"], x["points"]) for x in listed.json()] == [("TEA", 30)]
