"""The member's profile, consents and privacy rights in the portal (issue 14, decision 0029), through
the JSON API and the pages: the birthday set once, consent withdrawn and kept in the history with its
time, the data download holding the member's own rows only (at every merchant they belong to), and
erasure — at one merchant or everywhere — pseudonymising the person while the ledger keeps the
account (``lianka ledger verify`` green), recorded with its time and completion for the console,
idempotent, refused everywhere while stored value is left. And the language switch for a signed-in
member (it accepts the member session's token).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from typer.testing import CliRunner

from lianka.cli import app as cli_app
from lianka.platform.identity import members
from lianka.platform.identity.sessions import MEMBER_COOKIE
from lianka.tenants.pos import schemas, stored_value
from lianka.tenants.services import enrolment, member_privacy
from lianka.web.console.security import ANON_COOKIE
from tests.api.test_console import csrf_of, sign_in_console
from tests.api.test_portal_pages import a_phone, shop, sign_in, sms_code

runner = CliRunner()


async def ledger_verify() -> str:
    """``lianka ledger verify`` as from a shell; its output, after asserting it passed."""
    result = await asyncio.to_thread(runner.invoke, cli_app, ["ledger", "verify"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "FAIL" not in result.output
    return result.output


async def api_sign_in(client: Any, app: Any, phone: str) -> dict[str, str]:
    """Sign in through the JSON API; the CSRF header the member's writes carry."""
    client.cookies.clear()
    r = await client.post("/api/v1/portal/otp", json={"phone": phone})
    assert r.status_code == 202, r.text
    r = await client.post("/api/v1/portal/session", json={"phone": phone, "code": sms_code(app, phone, "验证码是 ")})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


async def member_with_activity(
    client: Any, db: Any, auth_kit: Any, s: dict[str, Any], phone: str, *, top_up: bool = False, amount: int = 5_000
) -> uuid.UUID:
    """A member at the shop with a welcome bonus, a sale (points) and, if asked, stored value."""
    enrolled = await enrolment.enrol(auth_kit.ident, s["tenant"], phone, s["sh01"])
    member = enrolled.member.member_id
    if top_up:
        await stored_value.top_up(
            db, s["tenant"], schemas.TopUpIn(member_id=member, plan="100-110"), uuid.uuid4().hex, s["sh01"]
        )
    pos = await auth_kit.pos(s["tenant"], ["pos"], branch=s["sh01"])
    r = await client.post(
        "/api/v1/pos/sales",
        json={"amount": amount, "member_id": str(member)},
        headers={**pos.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    return member


async def test_profile_birthday_once_and_consent_withdrawn_with_its_time(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    other = await shop(db, auth_kit, tenant_factory, "别家 Other Shop")
    phone = a_phone()
    member = (await enrolment.enrol(auth_kit.ident, s["tenant"], phone, s["sh01"])).member.member_id
    h = await api_sign_in(client, app, phone)
    url = f"/api/v1/portal/merchants/{s['slug']}"
    r = await client.patch(
        f"{url}/profile",
        json={"name": "小明", "birthday": "1990-05-31", "email": "ming@example.com", "preferences": {"note": "少糖"}},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "小明" and r.json()["birthday"] == "1990-05-31"
    # the birthday is the member's to set once: another is refused beside the field, the same is fine
    r = await client.patch(f"{url}/profile", json={"birthday": "1991-01-01"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "birthday", r.text
    assert (await client.patch(f"{url}/profile", json={"birthday": "1990-05-31"}, headers=h)).status_code == 200
    # only the member's own fields: tags and tiers are the merchant's
    assert (await client.patch(f"{url}/profile", json={"tags": ["vip"]}, headers=h)).status_code == 400
    # the CRM's rules hold (no second implementation): a bad e-mail is refused with its field
    r = await client.patch(f"{url}/profile", json={"email": "not-an-address"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "email"
    # a merchant the member has not joined is 404, like one that does not exist
    assert (await client.get(f"/api/v1/portal/merchants/{other['slug']}/profile")).status_code == 404
    assert (
        await client.patch(f"/api/v1/portal/merchants/{other['slug']}/profile", json={}, headers=h)
    ).status_code == 404

    # consent: granted, then withdrawn — each change with its time, source portal, actor member:<id>
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert (await client.put(f"{url}/consent/sms", json={"granted": True}, headers=h)).status_code == 200
    r = await client.put(f"{url}/consent/sms", json={"granted": False}, headers=h)
    assert r.status_code == 200
    sms = r.json()["sms"]
    assert sms["granted"] is False and [e["granted"] for e in sms["history"]] == [True, False]
    for entry in sms["history"]:
        assert entry["source"] == "portal" and entry["actor"] == f"member:{member}"
        assert before <= datetime.fromisoformat(entry["at"]) <= datetime.now(UTC)
    assert (await client.put(f"{url}/consent/fax", json={"granted": True}, headers=h)).status_code == 400

    # the page shows it, and its form withdraws/grants through the same use case
    page = await client.get(f"/m/{s['slug']}/profile")
    assert page.status_code == 200
    assert 'data-testid="birthday-locked"' in page.text and 'name="birthday"' not in page.text
    assert 'value="小明"' in page.text and 'value="少糖"' in page.text
    assert 'data-testid="grant-sms"' in page.text and 'data-testid="withdraw-sms"' not in page.text
    r = await client.post(
        f"/m/{s['slug']}/consent",
        data={"_csrf": csrf_of(page.text), "_key": "k1", "channel": "email", "granted": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/m/{s['slug']}/profile"
    r = await client.post(
        f"/m/{s['slug']}/consent",
        data={"_csrf": csrf_of(page.text), "_key": "k1", "channel": "email", "granted": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303  # the same form twice (a double tap) records once
    profile = (await client.get(f"{url}/profile")).json()
    assert [e["granted"] for e in profile["consent"]["email"]["history"]] == [True]
    # a refused page form shows its error beside the field, values kept
    r = await client.post(
        f"/m/{s['slug']}/profile",
        data={"_csrf": csrf_of(page.text), "name": "小明", "email": "nope", "address": "", "preference": ""},
    )
    assert r.status_code == 400 and 'id="f-email-error"' in r.text and 'value="nope"' in r.text
    # without the member session's token nothing is written
    r = await client.post(f"/m/{s['slug']}/consent", data={"channel": "sms", "granted": "yes"})
    assert r.status_code == 403


async def test_the_download_holds_only_the_members_own_rows_at_every_merchant(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    a, b = await shop(db, auth_kit, tenant_factory), await shop(db, auth_kit, tenant_factory, "二店 Second")
    stranger_shop = await shop(db, auth_kit, tenant_factory, "别家 Other Shop")
    mine, theirs = a_phone(), a_phone()
    me = await member_with_activity(client, db, auth_kit, a, mine, top_up=True, amount=12_300)
    await enrolment.enrol(auth_kit.ident, b["tenant"], mine, b["sh01"])
    # another member at both of my merchants and at one I never joined, with a name and a purchase
    them = await member_with_activity(client, db, auth_kit, a, theirs, amount=77_700)
    await enrolment.enrol(auth_kit.ident, stranger_shop["tenant"], theirs, stranger_shop["sh01"])
    h = await api_sign_in(client, app, theirs)
    await client.patch(f"/api/v1/portal/merchants/{a['slug']}/profile", json={"name": "Other Person"}, headers=h)
    h = await api_sign_in(client, app, mine)
    await client.patch(f"/api/v1/portal/merchants/{a['slug']}/profile", json={"name": "Me Myself"}, headers=h)
    await client.put(f"/api/v1/portal/merchants/{b['slug']}/consent/wechat", json={"granted": True}, headers=h)

    r = await client.get("/api/v1/portal/data")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    data = r.json()
    assert data["identity"]["member_id"] == str(me) and data["identity"]["phone"] == members.normalise_phone(mine)
    assert [m["merchant"]["slug"] for m in data["merchants"]] == [a["slug"], b["slug"]]
    at_a = data["merchants"][0]
    assert at_a["profile"]["name"] == "Me Myself"
    assert at_a["balances"]["sv_principal"] == 10_000 and at_a["balances"]["sv_bonus"] == 1_000
    assert [p["gross"] for p in at_a["purchases"]] == [12_300]
    assert at_a["points_history"] and at_a["tier"]["code"] is not None
    assert data["merchants"][1]["consents"]["wechat"]["history"][0]["actor"] == f"member:{me}"
    for section in ("coupons", "redemptions", "erasure_requests", "join", "membership"):
        assert section in at_a
    body = r.text
    for foreign in (str(them), members.normalise_phone(theirs), "Other Person", "77700", stranger_shop["slug"]):
        assert foreign not in body, foreign

    page = await client.get("/m/privacy/data.csv")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/csv")
    assert "attachment" in page.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(page.content.decode("utf-8-sig"))))
    assert rows[0] == ["merchant", "section", "field", "value"]
    values = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
    assert values[("", "identity", "phone")] == "'" + members.normalise_phone(mine)  # a '+' cell kept as text
    assert values[(a["slug"], "purchases", "[0].gross")] == "12300"
    assert values[(a["slug"], "profile", "name")] == "Me Myself"
    text_ = page.content.decode("utf-8-sig")
    for foreign in (str(them), members.normalise_phone(theirs), "Other Person", stranger_shop["slug"]):
        assert foreign not in text_, foreign
    page_json = await client.get("/m/privacy/data.json")
    assert page_json.status_code == 200 and json.loads(page_json.content)["identity"]["member_id"] == str(me)


async def test_erasure_at_one_merchant_pseudonymises_keeps_the_ledger_and_is_idempotent(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any, owner_engine: Any
) -> None:
    s, b = await shop(db, auth_kit, tenant_factory), await shop(db, auth_kit, tenant_factory, "二店 Second")
    phone, neighbour = a_phone(), a_phone()
    me = await member_with_activity(client, db, auth_kit, s, phone, top_up=True)
    await enrolment.enrol(auth_kit.ident, b["tenant"], phone, b["sh01"])
    other = await member_with_activity(client, db, auth_kit, s, neighbour)
    async with db.uow(s["tenant"]) as uow:
        await uow.session.execute(
            text(
                "UPDATE member_profiles SET name = 'Ming', birthday = '1990-05-31', email = 'm@example.com', "
                "address = '1 Road', tags = '{vip}', preferences = '{\"note\": \"oat milk\"}'::jsonb, "
                'consent = \'{"sms": {"granted": true}}\'::jsonb'
            )
        )
        await uow.commit()
    async with owner_engine.connect() as conn:
        entries_before = await conn.scalar(text("SELECT count(*) FROM ledger_entries"))
    async with db.uow(s["tenant"]) as uow:
        from lianka.tenants.services import crm

        sv_before = (await crm.detail(uow, me))["balances"]
        await uow.commit()

    await sign_in(client, app, phone)
    page = await client.get("/m/privacy")
    assert page.status_code == 200 and f'value="{s["slug"]}"' in page.text and 'value="everywhere"' in page.text
    # a wrong phone is refused beside the field, nothing erased
    r = await client.post(
        "/m/privacy/erase", data={"_csrf": csrf_of(page.text), "scope": s["slug"], "phone": neighbour}
    )
    assert r.status_code == 400 and 'id="f-phone-error"' in r.text
    r = await client.post(
        "/m/privacy/erase",
        data={"_csrf": csrf_of(page.text), "scope": s["slug"], "phone": phone},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/m/privacy"

    async with db.uow(s["tenant"]) as uow:
        p = (await uow.session.execute(text("SELECT * FROM member_profiles WHERE member_id = :m"), {"m": me})).one()
        kept = (
            await uow.session.execute(text("SELECT * FROM member_profiles WHERE member_id = :m"), {"m": other})
        ).one()
        sv_after = (await crm.detail(uow, me))["balances"]
        reqs = (await uow.session.execute(text("SELECT * FROM erasure_requests"))).all()
        await uow.commit()
    assert (p.name, p.birthday, p.email, p.address, list(p.tags), p.preferences, p.consent) == (
        "",
        None,
        "",
        "",
        [],
        {},
        {},
    )
    assert p.erased_at is not None and kept.erased_at is None and kept.purchase_count == 1
    assert sv_after == sv_before  # the balance stays the card's (it keeps working here)
    assert len(reqs) == 1 and reqs[0].status == "done" and reqs[0].scope == "merchant"
    assert reqs[0].requested_at <= reqs[0].completed_at
    # the other merchant keeps its data; the member still signs in (phone kept: not erased everywhere)
    async with db.uow(b["tenant"]) as uow:
        assert (
            await uow.session.scalar(text("SELECT erased_at FROM member_profiles WHERE member_id = :m"), {"m": me})
            is None
        )
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM ledger_entries")) == entries_before
        assert await conn.scalar(text("SELECT phone FROM members WHERE id = :m"), {"m": me}) == members.normalise_phone(
            phone
        )
    await ledger_verify()

    # a second request: the same request, no second row
    h = {"X-CSRF-Token": csrf_of((await client.get("/m/privacy")).text)}
    r = await client.post("/api/v1/portal/erasure", json={"merchant": s["slug"], "phone": phone}, headers=h)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == [str(reqs[0].id)]
    async with db.uow(s["tenant"]) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM erasure_requests")) == 1
    mine = (await client.get("/api/v1/portal/erasure")).json()
    assert [(x["merchant_slug"], x["status"]) for x in mine] == [(s["slug"], "done")]

    # the console: the member shows as erased (no phone), the request with its times, guarded like export
    console = await sign_in_console(client, auth_kit, s["tenant"])
    listing = await console.client.get("/console/members")
    assert listing.status_code == 200 and 'data-testid="erased"' in listing.text
    detail = await console.client.get(f"/console/members/{me}")
    assert 'data-testid="erased"' in detail.text and "Ming" not in detail.text
    erasures = await console.client.get("/console/members/erasures")
    assert erasures.status_code == 200 and 'data-status="done"' in erasures.text
    await sign_in_console(client, auth_kit, s["tenant"], role="analyst")  # reads members, may not export
    assert (await client.get("/console/members/erasures")).status_code in (403, 404)
    # another merchant's console sees none of it
    await sign_in_console(client, auth_kit, b["tenant"])
    assert 'data-testid="no-erasures"' in (await client.get("/console/members/erasures")).text


async def test_erasure_everywhere_is_refused_with_stored_value_then_pseudonymises_the_person(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any, owner_engine: Any
) -> None:
    s, b = await shop(db, auth_kit, tenant_factory), await shop(db, auth_kit, tenant_factory, "二店 Second")
    rich, plain = a_phone(), a_phone()
    await member_with_activity(client, db, auth_kit, s, rich, top_up=True)
    h = await api_sign_in(client, app, rich)
    r = await client.post("/api/v1/portal/erasure", json={"phone": rich}, headers=h)
    assert r.status_code == 409 and r.json()["type"].endswith("stored-value-left"), r.text
    async with db.uow(s["tenant"]) as uow:
        refused = (await uow.session.execute(text("SELECT status, reason, completed_at FROM erasure_requests"))).one()
        assert await uow.session.scalar(text("SELECT count(*) FROM member_profiles WHERE erased_at IS NOT NULL")) == 0
    assert refused.status == "refused" and refused.reason == "stored-value-left" and refused.completed_at

    me = await member_with_activity(client, db, auth_kit, s, plain)
    await enrolment.enrol(auth_kit.ident, b["tenant"], plain, b["sh01"])
    h = await api_sign_in(client, app, plain)
    old_qr, _ = await members.current_qr(auth_kit.ident, me)
    r = await client.post("/api/v1/portal/erasure", json={"phone": plain}, headers=h)
    assert r.status_code == 200, r.text
    assert sorted(x["merchant_slug"] for x in r.json()) == sorted([s["slug"], b["slug"]])
    assert {x["scope"] for x in r.json()} == {"everywhere"} and {x["status"] for x in r.json()} == {"done"}
    # signed out everywhere; the phone is a pseudonym nobody can receive a code on; a new QR secret
    assert (await client.get("/api/v1/portal/me")).status_code == 401
    async with owner_engine.connect() as conn:
        person = (
            await conn.execute(text("SELECT phone, erased_at, card_number FROM members WHERE id = :m"), {"m": me})
        ).one()
        profiles = (
            await conn.execute(text("SELECT erased_at FROM member_profiles WHERE member_id = :m"), {"m": me})
        ).all()
        accounts_kept = await conn.scalar(text("SELECT count(*) FROM ledger_accounts WHERE owner_id = :m"), {"m": me})
    assert person.phone.startswith(members.ERASED_PHONE_PREFIX) and person.erased_at is not None
    assert len(profiles) == 2 and all(p.erased_at for p in profiles)
    assert accounts_kept and accounts_kept > 0
    assert (await members.current_qr(auth_kit.ident, me))[0] != old_qr
    await ledger_verify()
    # the phone is free: the same person may join again as someone new
    assert await members.phone_matches(auth_kit.ident, me, plain) is False
    # again (the use case): the same requests, the same pseudonym
    again = await member_privacy.request_erasure(auth_kit.ident, me, merchant_ref=None, confirm_phone="")
    assert sorted(x.id for x in again) == sorted(uuid.UUID(x["id"]) for x in r.json())
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT phone FROM members WHERE id = :m"), {"m": me}) == person.phone
    # the console's list shows the member erased, with no phone
    await sign_in_console(client, auth_kit, s["tenant"])
    listing = await client.get("/console/members")
    assert listing.text.count('data-testid="erased"') == 1 and person.phone not in listing.text


async def test_a_signed_in_member_switches_the_language_with_the_member_token(
    client: Any, app: Any, db: Any, auth_kit: Any, tenant_factory: Any
) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    phone = a_phone()
    await enrolment.enrol(auth_kit.ident, s["tenant"], phone, s["sh01"])
    await sign_in(client, app, phone)
    client.cookies.delete(ANON_COOKIE)  # e.g. the browser was closed: the session cookie outlives it
    card = await client.get("/m")
    token = csrf_of(card.text[card.text.index('action="/lang"') :])
    client.cookies.delete(ANON_COOKIE)
    r = await client.post("/lang", data={"_csrf": token, "lang": "en", "next": "/m"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/m"
    assert "My data and erasure" in (await client.get("/m")).text
    # a token of another session is still refused
    client.cookies.set(MEMBER_COOKIE, "not-a-session")
    r = await client.post("/lang", data={"_csrf": token, "lang": "zh-CN", "next": "/m"})
    assert r.status_code == 403
