"""Members: one global identity (phone, card number, QR token), merchant-scoped memberships,
portal sign-in with one-time codes."""

from __future__ import annotations

import time

from lianka.platform.identity import members
from lianka.platform.identity.sessions import MEMBER_COOKIE

PROBLEM = "application/problem+json"


def phone() -> str:
    import random

    return f"139{random.randrange(10**8):08d}"


async def test_enrol_is_idempotent_and_one_card_everywhere(client, auth_kit, two_tenants) -> None:
    a, b = two_tenants
    cashier_a, cashier_b = await auth_kit.staff(a, "cashier"), await auth_kit.staff(b, "cashier")
    p = phone()
    r1 = await client.post("/api/v1/members", json={"phone": p}, headers=cashier_a.headers)
    assert r1.status_code == 201, r1.text
    card = r1.json()["card_number"]
    assert members.is_valid_card_number(card)
    assert r1.json()["phone_masked"] == f"+86{p[:3]}****{p[-4:]}"
    again = await client.post("/api/v1/members", json={"phone": f"+86 {p}"}, headers=cashier_a.headers)
    assert again.status_code == 200 and again.json()["card_number"] == card
    # merchant b cannot see a's member until the person joins b too — then it is the same card
    r = await client.get(f"/api/v1/members/lookup?card={card}", headers=cashier_b.headers)
    assert r.status_code == 404
    r = await client.get(f"/api/v1/members/{r1.json()['member_id']}", headers=cashier_b.headers)
    assert r.status_code == 404
    rb = await client.post("/api/v1/members", json={"phone": p}, headers=cashier_b.headers)
    assert rb.status_code == 201 and rb.json()["card_number"] == card


async def test_lookup_by_card_phone_and_rotating_qr(client, auth_kit, tenant_factory) -> None:
    tenant = await tenant_factory()
    pos = await auth_kit.pos(tenant, ["pos"])
    member = await auth_kit.member(tenant)
    me = await client.get("/api/v1/portal/me", headers=member.headers)
    card = me.json()["card_number"]
    for query in (f"card={card}", f"phone={member.extra['phone'].replace('+', '%2B')}"):
        r = await client.get(f"/api/v1/members/lookup?{query}", headers=pos.headers)
        assert r.status_code == 200, r.text
        assert r.json()["member_id"] == str(member.subject_id)
    qr = (await client.get("/api/v1/portal/qr", headers=member.headers)).json()
    assert qr["token"].startswith(f"LK1.{card}.") and 0 < qr["expires_in"] <= members.QR_STEP
    r = await client.get("/api/v1/members/lookup", params={"qr": qr["token"]}, headers=pos.headers)
    assert r.status_code == 200 and r.json()["card_number"] == card
    # a stale QR (a screenshot from minutes ago) and a forged one are refused
    _, step, _ = members.parse_qr(qr["token"])
    stale = qr["token"].replace(f".{step}.", f".{step - 10}.")
    for bad in (stale, qr["token"][:-1] + ("0" if not qr["token"].endswith("0") else "1")):
        r = await client.get("/api/v1/members/lookup", params={"qr": bad}, headers=pos.headers)
        assert r.status_code == 404
    r = await client.get("/api/v1/members/lookup", params={"qr": "garbage"}, headers=pos.headers)
    assert r.status_code == 400


async def test_invalid_phone_is_400(client, auth_kit, tenant_factory) -> None:
    owner = await auth_kit.staff(await tenant_factory())
    for bad in ("12345", "not a phone", "+86 000"):
        r = await client.post("/api/v1/members", json={"phone": bad}, headers=owner.headers)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["type"].endswith("/validation-failed")


async def test_otp_sign_in_single_use_and_portal(client, app, auth_kit, two_tenants) -> None:
    a, b = two_tenants
    p = phone()
    await members.enrol_member(auth_kit.ident, a, p)
    await members.enrol_member(auth_kit.ident, b, p)
    r = await client.post("/api/v1/portal/otp", json={"phone": p})
    assert r.status_code == 202
    sms = app.state.identity.sms.last_to(members.normalise_phone(p))
    code = sms.text.split("验证码是 ")[1][:6]
    # asking again at once is rate limited
    r = await client.post("/api/v1/portal/otp", json={"phone": p})
    assert r.status_code == 429 and r.json()["retry_after"] > 0
    r = await client.post("/api/v1/portal/session", json={"phone": p, "code": code})
    assert r.status_code == 200, r.text
    token = r.cookies.get(MEMBER_COOKIE)
    csrf = r.json()["csrf_token"]
    client.cookies.clear()
    # single use
    r2 = await client.post("/api/v1/portal/session", json={"phone": p, "code": code})
    assert r2.status_code == 401
    h = {"Cookie": f"{MEMBER_COOKIE}={token}"}
    me = await client.get("/api/v1/portal/me", headers=h)
    assert me.status_code == 200
    assert {m["merchant_id"] for m in me.json()["memberships"]} == {str(a), str(b)}
    assert "****" in me.json()["phone_masked"]
    # a member session is not a staff credential
    assert (await client.get("/api/v1/staff", headers=h)).status_code == 401
    assert (await client.delete("/api/v1/portal/session", headers=h)).status_code == 403  # CSRF
    assert (await client.delete("/api/v1/portal/session", headers={**h, "X-CSRF-Token": csrf})).status_code == 204
    assert (await client.get("/api/v1/portal/me", headers=h)).status_code == 401


async def test_otp_wrong_codes_burn_it_and_unknown_phones_get_no_sms(
    client, app, auth_kit, tenant_factory, settings
) -> None:
    tenant = await tenant_factory()
    p = phone()
    await members.enrol_member(auth_kit.ident, tenant, p)
    await client.post("/api/v1/portal/otp", json={"phone": p})
    code = app.state.identity.sms.last_to(members.normalise_phone(p)).text.split("验证码是 ")[1][:6]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(settings.identity.otp_max_attempts):
        r = await client.post("/api/v1/portal/session", json={"phone": p, "code": wrong})
        assert r.status_code == 401
        assert r.json()["type"].endswith("/invalid-credentials")
    r = await client.post("/api/v1/portal/session", json={"phone": p, "code": code})
    assert r.status_code == 401  # burnt after too many wrong guesses

    stranger = phone()
    r = await client.post("/api/v1/portal/otp", json={"phone": stranger})
    assert r.status_code == 202  # same answer…
    assert app.state.identity.sms.last_to(members.normalise_phone(stranger)) is None  # …but no SMS


def test_card_numbers_and_qr_are_well_formed() -> None:
    cards = {members.new_card_number() for _ in range(500)}
    assert len(cards) == 500
    assert all(members.is_valid_card_number(c) and len(c) == members.CARD_LENGTH for c in cards)
    card = next(iter(cards))
    wrong_digit = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert not members.is_valid_card_number(wrong_digit)
    assert members.luhn_check_digit("7992739871") == "3"  # the textbook example
    secret = b"k" * 32
    now = time.time()
    token = members.qr_token(card, secret, now)
    c, step, mac = members.parse_qr(token)
    assert members.qr_matches(c, secret, step, mac, now + members.QR_STEP)
    assert not members.qr_matches(c, secret, step, mac, now + members.QR_STEP * members.QR_WINDOW + 1)
    assert not members.qr_matches(c, b"x" * 32, step, mac, now)
