"""Self-join from a merchant's join link (issue 14), through the JSON API the portal's pages share:
the join code (reaches phones that are not members; limits per phone and per address; five wrong
codes lock the phone), the join (privacy notice required, consents in the history, the link's
branch as join branch, the sign-up rule's award, signed in), one member per phone, and a join rule
that asks for a purchase (a prospect until the till's qualifying sale)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.errors import RateLimited
from lianka.platform.identity import join_codes, members
from lianka.platform.identity.sessions import MEMBER_COOKIE
from lianka.tenants.domain.programme import EarningRule, JoinPolicy, JoinRules, Programme, RuleKind
from lianka.tenants.services import self_join
from lianka.tenants.services.programme import set_programme

WELCOME = Programme(rules=[EarningRule(code="welcome", kind=RuleKind.SIGNUP, points=50)])
PURCHASE_FIRST = Programme(join=JoinRules(policy=JoinPolicy.QUALIFYING_PURCHASE, single_purchase_min=10_000))


def a_phone() -> str:
    return f"139{random.randrange(10**8):08d}"


async def merchant(db: Any, auth_kit: Any, tenant_factory: Any, programme: Programme = WELCOME) -> dict[str, Any]:
    tenant = await tenant_factory("一点茶 Yidian Tea")
    sh01, sh02 = await auth_kit.branch(tenant, "SH01"), await auth_kit.branch(tenant, "SH02")
    async with db.uow(tenant) as uow:
        await set_programme(uow, programme)
        await uow.commit()
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant})
    return {"tenant": tenant, "slug": slug, "sh01": sh01, "sh02": sh02}


def last_code(app: Any, phone: str) -> str:
    sms = app.state.identity.sms.last_to(members.normalise_phone(phone))
    assert sms is not None, "no text message"
    assert "入会验证码是 " in sms.text, sms.text  # a join code, not a sign-in code
    return str(sms.text.split("入会验证码是 ")[1][:6])


async def send_code(client: Any, app: Any, slug: str, phone: str) -> str:
    client.cookies.clear()
    r = await client.post(f"/api/v1/portal/join/{slug}/otp", json={"phone": phone})
    assert r.status_code == 202, r.text
    return last_code(app, phone)


def join_body(phone: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"phone": phone, "code": code, "privacy_accepted": True, **extra}


async def count(db: Any, tenant: uuid.UUID, sql: str, **params: Any) -> int:
    async with db.uow(tenant) as uow:
        return int(await uow.session.scalar(text(sql), params) or 0)


async def test_join_by_a_branch_link_enrols_records_consents_and_signs_in(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    m = await merchant(db, auth_kit, tenant_factory)
    r = await client.get(f"/api/v1/portal/join/{m['slug']}", params={"branch": "SH02"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "一点茶 Yidian Tea" and r.json()["branch_id"] == str(m["sh02"])
    assert r.json()["policy"] == "free"

    phone = a_phone()
    code = await send_code(client, app, m["slug"], phone)
    body = join_body(
        phone, code, branch="SH02", consents={"sms": True, "wechat": True}, name="王小明", birthday="1990-05-31"
    )
    r = await client.post(f"/api/v1/portal/join/{m['slug']}", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "joined" and r.json()["merchant"] == m["slug"]
    assert MEMBER_COOKIE in r.cookies  # signed in: the portal's own session
    me = (await client.get("/api/v1/portal/me")).json()
    assert [x["merchant_slug"] for x in me["memberships"]] == [m["slug"]]

    member = uuid.UUID(r.json()["member_id"])
    async with db.uow(m["tenant"]) as uow:
        joined = (await uow.session.execute(text("SELECT branch_id FROM memberships"))).one()
        profile = (
            await uow.session.execute(
                text("SELECT name, birthday::text, source, join_branch_id, consent FROM member_profiles")
            )
        ).one()
        record = (await uow.session.execute(text("SELECT status, privacy_accepted_at FROM self_joins"))).one()
        points = await uow.session.scalar(
            text("SELECT sum(points) FROM rule_awards WHERE member_id = :m AND kind = 'signup'"), {"m": member}
        )
    assert joined.branch_id == m["sh02"]  # the link's branch is the join branch
    assert (profile.name, profile.birthday, profile.source, profile.join_branch_id) == (
        "王小明",
        "1990-05-31",
        "portal",
        m["sh02"],
    )
    consent = profile.consent
    assert {c: consent[c]["granted"] for c in consent} == {"sms": True, "email": False, "wechat": True}
    for channel in ("sms", "email", "wechat"):  # each choice is in the history, with who and how
        [entry] = consent[channel]["history"]
        assert entry["source"] == "portal" and entry["actor"] == f"member:{member}"
    assert record.status == "member" and record.privacy_accepted_at is not None
    assert points == 50  # the programme's sign-up rule, as for any enrolment


async def test_the_same_phone_never_becomes_two_members(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    m = await merchant(db, auth_kit, tenant_factory)
    phone = a_phone()
    first = await client.post(
        f"/api/v1/portal/join/{m['slug']}", json=join_body(phone, await send_code(client, app, m["slug"], phone))
    )
    assert first.status_code == 201, first.text
    await auth_kit.ident.limiter.reset(join_codes.RESEND_KIND, members.normalise_phone(phone))
    # the same person again, typed differently, through another branch's link: signed in, nothing new
    again = await client.post(
        f"/api/v1/portal/join/{m['slug']}",
        json=join_body(f"+86 {phone}", await send_code(client, app, m["slug"], phone), branch="SH01"),
    )
    assert again.status_code == 200 and again.json()["status"] == "already", again.text
    assert again.json()["member_id"] == first.json()["member_id"]
    assert MEMBER_COOKIE in again.cookies
    assert await count(db, m["tenant"], "SELECT count(*) FROM memberships") == 1
    assert await count(db, m["tenant"], "SELECT count(*) FROM rule_awards") == 1  # one welcome bonus
    async with db.uow(system=True) as uow:
        persons = await uow.session.scalar(
            text("SELECT count(*) FROM members WHERE phone = :p"), {"p": members.normalise_phone(phone)}
        )
    assert persons == 1

    # a member enrolled at the till joins by the link: also just signed in
    other = a_phone()
    await members.enrol_member(auth_kit.ident, m["tenant"], other, m["sh01"])
    r = await client.post(
        f"/api/v1/portal/join/{m['slug']}", json=join_body(other, await send_code(client, app, m["slug"], other))
    )
    assert r.status_code == 200 and r.json()["status"] == "already"
    assert await count(db, m["tenant"], "SELECT count(*) FROM memberships") == 2


async def test_the_privacy_notice_is_required_and_refused_before_the_code_is_used(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    m = await merchant(db, auth_kit, tenant_factory)
    phone = a_phone()
    code = await send_code(client, app, m["slug"], phone)
    for bad, field in (
        ({"privacy_accepted": False}, "privacy"),
        ({"birthday": "2999-01-01"}, "birthday"),
    ):
        r = await client.post(f"/api/v1/portal/join/{m['slug']}", json={**join_body(phone, code), **bad})
        assert r.status_code == 400 and r.json()["field"] == field, r.text
    r = await client.post(
        f"/api/v1/portal/join/{m['slug']}", json={**join_body(phone, code), "consents": {"fax": True}}
    )
    assert r.status_code == 400  # an unknown channel
    assert await count(db, m["tenant"], "SELECT count(*) FROM memberships") == 0
    r = await client.post(f"/api/v1/portal/join/{m['slug']}", json=join_body(phone, code))
    assert r.status_code == 201, r.text  # the code was not spent by the refusals


async def test_five_wrong_codes_lock_the_phone(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any, settings: Any
) -> None:
    m = await merchant(db, auth_kit, tenant_factory)
    phone = a_phone()
    code = await send_code(client, app, m["slug"], phone)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    url = f"/api/v1/portal/join/{m['slug']}"
    limit = settings.identity.otp_max_attempts
    assert limit == 5
    for _ in range(limit - 1):
        r = await client.post(url, json=join_body(phone, wrong))
        assert r.status_code == 401 and r.json()["type"].endswith("/invalid-credentials")
    r = await client.post(url, json=join_body(phone, wrong))
    assert r.status_code == 429 and int(r.json()["retry_after"]) > 0
    # locked: the right code, a new code and the phone typed another way are all refused ...
    assert (await client.post(url, json=join_body(phone, code))).status_code == 429
    assert (await client.post(f"{url}/otp", json={"phone": f"+86{phone}"})).status_code == 429
    assert await count(db, m["tenant"], "SELECT count(*) FROM memberships") == 0
    # ... and from another address too: the lock is the phone's
    ident = auth_kit.ident
    with pytest.raises(RateLimited):
        await join_codes.verify_join_code(ident, phone, code, "203.0.113.9")
    # another phone is not affected; a sign-in code of the same phone is another matter (a member's
    # sign-in cannot be locked by a stranger: test_sign_in_lockout)
    other = a_phone()
    r = await client.post(url, json=join_body(other, await send_code(client, app, m["slug"], other)))
    assert r.status_code == 201
    # the lock ends with its window
    await ident.limiter.reset(join_codes.WRONG_KIND, members.normalise_phone(phone))
    await ident.limiter.reset(join_codes.RESEND_KIND, members.normalise_phone(phone))
    r = await client.post(url, json=join_body(phone, await send_code(client, app, m["slug"], phone)))
    assert r.status_code == 201, r.text


async def test_wrong_codes_below_the_limit_are_forgotten_after_a_good_one(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    m = await merchant(db, auth_kit, tenant_factory)
    phone = a_phone()
    code = await send_code(client, app, m["slug"], phone)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    url = f"/api/v1/portal/join/{m['slug']}"
    for _ in range(4):
        assert (await client.post(url, json=join_body(phone, wrong))).status_code == 401
    assert (await client.post(url, json=join_body(phone, code))).status_code == 201
    assert await auth_kit.ident.limiter.count(join_codes.WRONG_KIND, members.normalise_phone(phone)) == 0


async def test_join_codes_are_rate_limited_per_phone_and_per_address(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any, settings: Any
) -> None:
    m = await merchant(db, auth_kit, tenant_factory)
    ident = auth_kit.ident
    phone = a_phone()
    await send_code(client, app, m["slug"], phone)
    r = await client.post(f"/api/v1/portal/join/{m['slug']}/otp", json={"phone": phone})
    assert r.status_code == 429 and int(r.json()["retry_after"]) > 0  # wait before asking again
    # per phone per hour (the resend pause lifted by hand each time, as time passing would)
    e164 = members.normalise_phone(phone)
    sent = 1
    refused: RateLimited | None = None
    for _ in range(settings.identity.otp_per_hour + 1):
        await ident.limiter.reset(join_codes.RESEND_KIND, e164)
        try:
            await self_join.request_code(ident, m["slug"], phone, f"192.0.2.{sent}")
            sent += 1
        except RateLimited as exc:
            refused = exc
            break
    assert sent == settings.identity.otp_per_hour and refused is not None and refused.status == 429
    # per client address: 20 an hour, whatever the phones
    address = f"198.51.100.{random.randrange(1, 250)}"
    for _ in range(20):
        await self_join.request_code(ident, m["slug"], a_phone(), address)
    with pytest.raises(RateLimited):
        await self_join.request_code(ident, m["slug"], a_phone(), address)


async def test_a_join_code_is_not_a_sign_in_code_and_unknown_merchants_are_404(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    m = await merchant(db, auth_kit, tenant_factory)
    phone = a_phone()
    await members.enrol_member(auth_kit.ident, m["tenant"], phone)
    code = await send_code(client, app, m["slug"], phone)
    r = await client.post("/api/v1/portal/session", json={"phone": phone, "code": code})
    assert r.status_code == 401  # a join code never signs in by the sign-in route
    for url in ("/api/v1/portal/join/no-such-shop", f"/api/v1/portal/join/{m['slug']}?branch=NOPE"):
        assert (await client.get(url)).status_code == 404, url
    r = await client.post("/api/v1/portal/join/no-such-shop/otp", json={"phone": a_phone()})
    assert r.status_code == 404
    # another merchant's branch id is not this merchant's branch
    other = await merchant(db, auth_kit, tenant_factory)
    r = await client.get(f"/api/v1/portal/join/{m['slug']}", params={"branch": str(other["sh01"])})
    assert r.status_code == 404


async def test_a_join_rule_that_asks_for_a_purchase_makes_a_prospect_until_the_till_confirms(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    m = await merchant(db, auth_kit, tenant_factory, PURCHASE_FIRST)
    info = (await client.get(f"/api/v1/portal/join/{m['slug']}")).json()
    assert (info["policy"], info["single_purchase_min"]) == ("qualifying_purchase", 10_000)
    phone = a_phone()
    body = join_body(
        phone, await send_code(client, app, m["slug"], phone), branch="SH02", consents={"email": True}, name="李雷"
    )
    r = await client.post(f"/api/v1/portal/join/{m['slug']}", json=body)
    assert r.status_code == 200 and r.json()["status"] == "prospect", r.text
    prospect = uuid.UUID(r.json()["member_id"])  # a person (a card to sign in with), not yet a member
    assert (await client.get("/api/v1/portal/me")).json()["memberships"] == []  # not a member yet
    assert await count(db, m["tenant"], "SELECT count(*) FROM memberships") == 0

    pos = await auth_kit.pos(m["tenant"], ["pos"], branch=m["sh01"])
    client.cookies.clear()
    small = {"amount": 5_000, "join_phone": phone}
    r = await client.post("/api/v1/pos/sales", json=small, headers={**pos.headers, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 422, r.text  # too small to join: still a prospect
    assert await count(db, m["tenant"], "SELECT count(*) FROM memberships") == 0
    r = await client.post(
        "/api/v1/pos/sales",
        json={"amount": 12_000, "join_phone": phone},
        headers={**pos.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    member = uuid.UUID(r.json()["member_id"])
    assert member == prospect  # the same person: the phone is one member
    async with db.uow(m["tenant"]) as uow:
        joined = (await uow.session.execute(text("SELECT member_id, branch_id FROM memberships"))).one()
        profile = (await uow.session.execute(text("SELECT name, consent FROM member_profiles"))).one()
        record = (await uow.session.execute(text("SELECT status, confirmed_at FROM self_joins"))).one()
    assert joined.member_id == member
    assert joined.branch_id == m["sh02"]  # the link's branch, though the sale was at SH01
    assert profile.name == "李雷" and profile.consent["email"]["granted"] is True
    assert profile.consent["email"]["history"][0]["source"] == "portal"
    assert record.status == "confirmed" and record.confirmed_at is not None


async def test_a_prospect_joins_at_once_when_the_join_rule_becomes_free(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    m = await merchant(db, auth_kit, tenant_factory, PURCHASE_FIRST)
    phone = a_phone()
    r = await client.post(
        f"/api/v1/portal/join/{m['slug']}", json=join_body(phone, await send_code(client, app, m["slug"], phone))
    )
    assert r.json()["status"] == "prospect"
    async with db.uow(m["tenant"]) as uow:
        await set_programme(uow, WELCOME)
        await uow.commit()
    await auth_kit.ident.limiter.reset(join_codes.RESEND_KIND, members.normalise_phone(phone))
    body = join_body(phone, await send_code(client, app, m["slug"], phone), consents={"wechat": True})
    r = await client.post(f"/api/v1/portal/join/{m['slug']}", json=body)
    assert r.status_code == 201 and r.json()["status"] == "joined", r.text
    async with db.uow(m["tenant"]) as uow:
        record = (await uow.session.execute(text("SELECT status, consents FROM self_joins"))).one()
    assert record.status == "member" and record.consents == {"sms": False, "email": False, "wechat": True}
    assert await count(db, m["tenant"], "SELECT count(*) FROM memberships") == 1
