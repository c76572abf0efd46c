"""The member's alliance card (issue 14): the partners where it works, the alliance balances, and the
per-partner recognition choice — a partner switched off finds nothing at its alliance till by card,
phone or QR (the stranger's 404) and cannot move value on the card; the others still find it; the
choice is reversible and every change is kept with its time. Through the JSON API the pages share."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lianka.platform.identity.testing import Creds
from tests.api.settlement_kit import World, make_world

pytestmark = pytest.mark.integration


@pytest.fixture
async def world(client, db, tenant_factory, auth_kit, staff_token) -> World:
    return await make_world(client, db, tenant_factory, auth_kit, staff_token)


async def as_member(world: World, method: str, url: str, me: Creds, body: Any = None, expect: int = 200) -> Any:
    world.client.cookies.clear()
    r = await world.client.request(method, f"/api/v1{url}", json=body, headers=me.headers)
    assert r.status_code == expect, r.text
    return r.json() if r.content else None


async def lookups(world: World, who: str, me: Creds) -> dict[str, int]:
    """The status of partner ``who``'s alliance till looking the member up by card, phone and QR."""
    card = (await as_member(world, "GET", "/portal/me", me))["card_number"]
    qr = (await as_member(world, "GET", "/portal/qr", me))["token"]
    out = {}
    for how, value in (("card", card), ("phone", me.extra["phone"]), ("qr", qr)):
        world.client.cookies.clear()
        r = await world.client.get(
            f"/api/v1/pos/alliances/{world.alliance}/cards", params={how: value}, headers=world.partners[who].pos
        )
        if r.status_code == 200:
            assert r.json()["member_id"] == str(me.subject_id) and "phone" not in r.json()
        else:
            assert r.json()["type"].endswith("/not-a-cardholder"), r.text
        out[how] = r.status_code
    return out


def partner(card: dict[str, Any], world: World, who: str) -> dict[str, Any]:
    return next(p for p in card["partners"] if p["merchant_id"] == str(world.partners[who].tenant))


async def test_switching_a_partner_off_hides_the_card_from_that_partner_only(
    world: World, auth_kit: Any, member_factory: Any
) -> None:
    me = await auth_kit.member(world.partners["P"].tenant)  # a member of P: the card works at O, P, Q, R
    assert me.subject_id is not None
    await world.earn("P", "P1", me.subject_id, 50_000)  # 500 alliance points
    [card] = await as_member(world, "GET", "/portal/alliances", me)
    assert card["alliance_id"] == world.alliance and card["name"] == "城市联盟" and card["points"] == 500
    assert {p["name"] for p in card["partners"]} == {"Partner O", "Partner P", "Partner Q", "Partner R"}
    assert partner(card, world, "P")["is_member"] and partner(card, world, "P")["branches"] == 2
    assert all(p["recognised"] for p in card["partners"]) and card["history"] == []  # the default
    for who in "OQR":
        assert await lookups(world, who, me) == {"card": 200, "phone": 200, "qr": 200}

    q, url = (
        world.partners["Q"],
        f"/portal/alliances/{world.alliance}/partners/{world.partners['Q'].tenant}/recognition",
    )
    changed = await as_member(world, "PUT", url, me, {"recognised": False})
    assert changed["recognised"] is False and changed["name"] == "Partner Q"
    assert await lookups(world, "Q", me) == {"card": 404, "phone": 404, "qr": 404}  # as for a stranger
    stranger = await member_factory(world.partners["O"].tenant)
    world.client.cookies.clear()
    r = await world.client.get(f"/api/v1/pos/alliances/{world.alliance}/cards/{stranger}", headers=q.pos)
    assert r.status_code == 200  # a member of O is found by id at Q …
    r = await world.client.get(f"/api/v1/pos/alliances/{world.alliance}/cards/{me.subject_id}", headers=q.pos)
    assert r.status_code == 404 and r.json()["type"].endswith("/not-a-cardholder")  # … the switched-off one not
    refused = await world.earn("Q", "Q1", me.subject_id, 10_000, expect=404)  # nor can Q move value on it
    assert refused["type"].endswith("/not-a-cardholder")
    await world.redeem("Q", "Q1", me.subject_id, 10, expect=404)
    for who in "OPR":  # the others still find the member
        assert await lookups(world, who, me) == {"card": 200, "phone": 200, "qr": 200}
    await world.redeem("R", "R1", me.subject_id, 100)

    # the same choice again writes nothing; the history shows the one change, with its time
    await as_member(world, "PUT", url, me, {"recognised": False})
    card = await as_member(world, "GET", f"/portal/alliances/{world.alliance}", me)
    assert not partner(card, world, "Q")["recognised"] and card["points"] == 400
    assert [(h["partner"], h["recognised"]) for h in card["history"]] == [("Partner Q", False)]
    assert card["history"][0]["at"] and card["history"][0]["source"] == "portal"

    # switching back on works, and the history keeps both changes, newest first
    await as_member(world, "PUT", url, me, {"recognised": True})
    assert await lookups(world, "Q", me) == {"card": 200, "phone": 200, "qr": 200}
    card = await as_member(world, "GET", f"/portal/alliances/{world.alliance}", me)
    assert [(h["partner"], h["recognised"]) for h in card["history"]] == [("Partner Q", True), ("Partner Q", False)]
    assert card["history"][0]["at"] >= card["history"][1]["at"]


async def test_own_merchant_other_alliances_and_other_members(world: World, auth_kit: Any) -> None:
    me = await auth_kit.member(world.partners["P"].tenant)
    own = f"/portal/alliances/{world.alliance}/partners/{world.partners['P'].tenant}/recognition"
    r = await as_member(world, "PUT", own, me, {"recognised": False}, expect=422)
    assert r["type"].endswith("/own-merchant")
    assert await lookups(world, "P", me) == {"card": 200, "phone": 200, "qr": 200}
    unknown = f"/portal/alliances/{uuid.uuid4()}/partners/{world.partners['Q'].tenant}/recognition"
    assert (await as_member(world, "PUT", unknown, me, {"recognised": False}, expect=404))["type"].endswith(
        "/alliance-not-found"
    )
    stranger_merchant = f"/portal/alliances/{world.alliance}/partners/{uuid.uuid4()}/recognition"
    await as_member(world, "PUT", stranger_merchant, me, {"recognised": False}, expect=404)
    await as_member(world, "PUT", own, me, {"recognised": "no"}, expect=400)
    # a person who belongs to no partner holds no card: nothing listed, nothing to switch, 404 by card
    outsider = await auth_kit.member()
    assert await as_member(world, "GET", "/portal/alliances", outsider) == []
    await as_member(world, "GET", f"/portal/alliances/{world.alliance}", outsider, expect=404)
    q = f"/portal/alliances/{world.alliance}/partners/{world.partners['Q'].tenant}/recognition"
    await as_member(world, "PUT", q, outsider, {"recognised": False}, expect=404)
    assert await lookups(world, "Q", outsider) == {"card": 404, "phone": 404, "qr": 404}
    # one member's choice is theirs alone: another member of P stays recognised at Q
    other = await auth_kit.member(world.partners["P"].tenant)
    await as_member(world, "PUT", q, me, {"recognised": False})
    assert await lookups(world, "Q", other) == {"card": 200, "phone": 200, "qr": 200}
    assert (await as_member(world, "GET", "/portal/alliances", other))[0]["history"] == []
    # without a session, nothing
    world.client.cookies.clear()
    assert (await world.client.get("/api/v1/portal/alliances")).status_code == 401


async def test_the_alliance_card_page_switches_a_partner_off_and_on(world: World, auth_kit: Any) -> None:
    me = await auth_kit.member(world.partners["P"].tenant)
    q = world.partners["Q"].tenant
    for lang, words in (("zh-CN", ("我的联盟卡", "认可我的卡")), ("en", ("My alliance card", "Recognises my card"))):
        world.client.cookies.clear()
        world.client.cookies.set("lk_lang", lang)
        page = await world.client.get("/m/alliances", headers={"Cookie": f"{me.headers['Cookie']}; lk_lang={lang}"})
        assert page.status_code == 200 and all(w in page.text for w in words), page.text
        assert "Partner Q" in page.text and f'data-partner="{q}" data-recognised="yes"' in page.text
    world.client.cookies.clear()
    form = {"recognised": "no", "_csrf": me.headers["X-CSRF-Token"]}
    cookie = {"Cookie": me.headers["Cookie"]}
    r = await world.client.post(
        f"/m/alliances/{world.alliance}/partners/{q}", data=form, headers=cookie, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/m/alliances"), r.text
    assert await lookups(world, "Q", me) == {"card": 404, "phone": 404, "qr": 404}
    world.client.cookies.clear()
    page = await world.client.get("/m/alliances", headers=cookie)
    assert f'data-partner="{q}" data-recognised="no"' in page.text and 'data-testid="recognition-history"' in page.text
    # without the session's token the form is refused and nothing changes
    world.client.cookies.clear()
    r = await world.client.post(
        f"/m/alliances/{world.alliance}/partners/{q}", data={"recognised": "yes"}, headers=cookie
    )
    assert r.status_code == 403
    assert await lookups(world, "Q", me) == {"card": 404, "phone": 404, "qr": 404}
    world.client.cookies.clear()
    r = await world.client.post(
        f"/m/alliances/{world.alliance}/partners/{q}",
        data={**form, "recognised": "yes"},
        headers=cookie,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert await lookups(world, "Q", me) == {"card": 200, "phone": 200, "qr": 200}
    # the own merchant has no switch; another alliance's page is the portal's 404
    world.client.cookies.clear()
    page = await world.client.get("/m/alliances", headers=cookie)
    own = page.text.split(f'data-partner="{world.partners["P"].tenant}"')[1].split("</li>")[0]
    assert "<form" not in own
    world.client.cookies.clear()
    r = await world.client.post(
        f"/m/alliances/{uuid.uuid4()}/partners/{q}", data=form, headers=cookie, follow_redirects=False
    )
    assert r.status_code == 404
