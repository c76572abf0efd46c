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
