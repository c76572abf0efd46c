"""What the alliance and settlement endpoints accept (issue 11): currencies and time zones through
``platform.validate`` (400 ``validation-failed``, nothing written — ``ABCD`` was a 500, ``Mars/Olympus``
a 201 whose every close then failed), every string bounded, and unknown or another merchant's ids
answered 404 alike."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from tests.api.settlement_kit import World, make_world

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"


@pytest.fixture
async def world(client, db: Database, tenant_factory, auth_kit, staff_token) -> World:
    return await make_world(client, db, tenant_factory, auth_kit, staff_token)


async def founded_by(db: Database, merchant: uuid.UUID) -> int:
    async with db.uow(system=True) as uow:
        return int(
            await uow.session.scalar(
                text("SELECT count(*) FROM alliances WHERE operator_merchant_id = :m"), {"m": merchant}
            )
        )


def assert_400(r: Any, field: str | None = None) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == PROBLEM and r.json()["type"].endswith("/validation-failed"), r.text
    if field is not None:
        assert field in r.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"currency": "ABCD"}, "currency"),
        ({"currency": "cny"}, "currency"),
        ({"currency": "XXX"}, "currency"),  # ISO 4217 "no currency": well-formed, not bookable
        ({"currency": "C" * 5000}, "currency"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"timezone": "Asia/" + "x" * 100}, "timezone"),
        ({"name": "n" * 201}, "name"),
        ({"name": ""}, "name"),
        ({"code": "UPPER-case"}, "code"),
        ({"code": "c" * 41}, "code"),
        ({"code": "trailing-newline\n"}, "code"),
        ({"terms": {"earn_rates": {"k" * 65: "1"}}}, "earn_rates"),
    ],
)
async def test_founding_an_alliance_checks_every_field_and_writes_nothing(
    world: World, db: Database, body: dict[str, Any], field: str
) -> None:
    o = world.partners["O"]
    before = await founded_by(db, o.tenant)
    r = await world.client.post(
        "/api/v1/alliances", json={"code": f"v-{uuid.uuid4().hex[:8]}", "name": "校验联盟", **body}, headers=o.owner
    )
    assert_400(r, field)
    assert await founded_by(db, o.tenant) == before


async def test_a_valid_currency_and_zone_are_kept_and_the_alliance_closes(world: World, member_factory) -> None:
    o = world.partners["O"]
    made = await world.call(
        "POST",
        "/api/v1/alliances",
        o.owner,
        {"code": f"usd-{uuid.uuid4().hex[:8]}", "name": "美元联盟", "currency": "USD", "timezone": "America/New_York"},
    )
    assert (made["currency"], made["timezone"]) == ("USD", "America/New_York")
    world.alliance = made["id"]
    closed = await world.close("2026-10", expect=422)  # before this alliance's book, and said so: no 500
    assert closed["type"].endswith("/period-before-book")


async def test_every_other_string_is_bounded(world: World, db: Database, member_factory) -> None:
    o, p = world.partners["O"], world.partners["P"]
    a = world.alliance
    x = await member_factory(p.tenant)
    async with db.uow(system=True) as uow:
        card = await uow.session.scalar(text("SELECT card_number FROM members WHERE id = :m"), {"m": x})
    cases: list[tuple[str, str, dict[str, str], Any, str]] = [
        ("POST", f"/api/v1/alliances/{a}/invites", o.owner, {"note": "n" * 201}, "note"),
        ("POST", f"/api/v1/alliances/{a}/invites", o.owner, {"days": 91}, "days"),
        ("POST", "/api/v1/alliances/join", p.owner, {"code": "c" * 129}, "code"),
        ("PUT", f"/api/v1/alliances/{a}/partners/{p.tenant}/status", o.owner, {"status": "s" * 17}, "status"),
        ("PUT", f"/api/v1/alliances/{a}/terms?note={'n' * 401}", o.owner, {}, "note"),
        ("PUT", f"/api/v1/alliances/{a}/terms", o.owner, {"credit_limits": {"k" * 65: 1}}, "credit_limits"),
        ("GET", f"/api/v1/pos/alliances/{a}/cards?card={'4' * 129}", p.pos, None, "card"),
        # a step of 5,000 digits made int() raise: a 500 before
        ("GET", f"/api/v1/pos/alliances/{a}/cards?qr=LK1.{card}.{'9' * 5000}.mac", p.pos, None, "qr"),
        (
            "POST",
            f"/api/v1/pos/alliances/{a}/stored-value/top-ups",
            p.pos,
            {"member_id": str(x), "plan": "p" * 41, "branch_id": str(p.branches["P1"])},
            "plan",
        ),
        (
            "POST",
            f"/api/v1/pos/alliances/{a}/stored-value/top-ups",
            p.pos,
            {"member_id": str(x), "plan": "500", "branch_id": str(p.branches["P1"]), "payment_method": "=cmd"},
            "payment_method",
        ),
        ("POST", f"/api/v1/alliances/{a}/settlement/periods/2026-1/close", o.owner, None, "period"),
        ("GET", f"/api/v1/alliances/{a}/settlement/periods/{'2' * 300}", o.owner, None, "period"),
    ]
    async with db.uow(uuid.UUID(a)) as uow:
        before = await uow.session.scalar(text("SELECT count(*) FROM alliance_invites"))
    for method, url, headers, body, field in cases:
        r = await world.client.request(method, url, json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        assert_400(r, field)
    async with db.uow(uuid.UUID(a)) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM alliance_invites")) == before
        assert await uow.session.scalar(text("SELECT count(*) FROM alliance_terms")) == 1


async def test_unknown_and_other_merchants_alliances_answer_404_alike(
    world: World, security_matrix, tenant_factory, member_factory
) -> None:
    o = world.partners["O"]
    outsider = await tenant_factory("Outsider")
    missing = uuid.uuid4()
    a = world.alliance
    await world.earn("P", "P1", await member_factory(world.partners["P"].tenant), 10_000)
    await world.close("2026-10")
    routes: list[tuple[str, str, Any, list[str]]] = [
        ("GET", "/api/v1/alliances/{a}", None, []),
        ("GET", "/api/v1/alliances/{a}/partners", None, []),
        ("GET", "/api/v1/alliances/{a}/terms", None, []),
        ("POST", "/api/v1/alliances/{a}/invites", {}, ["analyst", "cashier"]),
        ("PUT", "/api/v1/alliances/{a}/terms", {}, ["analyst", "cashier"]),
        (
            "PUT",
            "/api/v1/alliances/{a}/partners/" + str(world.partners["Q"].tenant) + "/status",
            {"status": "suspended"},
            ["analyst", "cashier"],
        ),
        ("POST", "/api/v1/alliances/{a}/settlement/periods/2026-10/close", None, ["analyst", "cashier", "manager"]),
        ("GET", "/api/v1/alliances/{a}/settlement/periods/2026-10", None, ["cashier", "manager"]),
        ("GET", "/api/v1/alliances/{a}/settlement/periods/2026-10/download/csv", None, ["cashier", "manager"]),
    ]
    for method, url, body, denied in routes:
        await security_matrix.check(
            method,
            url.format(a=a),
            tenant=o.tenant,
            other=outsider,
            json=body,
            denied_roles=denied,
            missing_url=url.format(a=missing),
        )
    # the operator asking about a merchant that is no partner, and a statement of no one
    r = await world.client.put(
        f"/api/v1/alliances/{a}/partners/{outsider}/status", json={"status": "suspended"}, headers=o.owner
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
