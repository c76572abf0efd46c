"""Branches and the programme document through the API: owners open and change branches, managers
see their own; the programme is published whole or by section, a future-dated version waits for its
time, and every version is kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.programme import Programme
from lianka.tenants.services.programme import SECTIONS
from tests.api.shop import PROBLEM, Shop, make_shop

pytestmark = pytest.mark.integration


@pytest.fixture
async def shop(client, auth_kit, db: Database, tenant_factory) -> Shop:
    return await make_shop(client, auth_kit, db, tenant_factory)


def iso(when: datetime) -> str:
    return quote(when.isoformat())


# --- branches --------------------------------------------------------------------------------------


async def test_owners_open_and_change_branches(shop: Shop) -> None:
    hz = await shop.ok(
        "POST",
        "/branches",
        json={"code": "HZ01", "name": " 杭州西湖店 ", "address": "西湖区", "timezone": "Asia/Shanghai"},
        status=201,
    )
    assert (hz["code"], hz["name"], hz["address"]) == ("HZ01", "杭州西湖店", "西湖区")
    moved = await shop.ok("PATCH", f"/branches/{hz['id']}", json={"address": "上城区", "code": "HZ-01"})
    assert (moved["code"], moved["address"], moved["name"]) == ("HZ-01", "上城区", "杭州西湖店")
    assert [b["code"] for b in await shop.ok("GET", "/branches")] == ["HZ-01", "SH01", "SH02"]
    for body, status in [
        ({"code": "SH01", "name": "again"}, 409),
        ({"code": "no spaces", "name": "x"}, 400),
        ({"code": "X1", "name": ""}, 400),
        ({"code": "X1", "name": "x", "timezone": "Mars/Base"}, 400),
        ({"code": "X1"}, 400),
        ({"code": "X1", "name": "x", "floor": 3}, 400),
    ]:
        r = await shop.call("POST", "/branches", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    r = await shop.call("PATCH", f"/branches/{hz['id']}", json={"code": "SH02"})
    assert r.status_code == 409
    assert await shop.scalar("SELECT count(*) FROM branches") == 3
    assert await shop.scalar("SELECT code FROM branches WHERE id = :b", b=uuid.UUID(hz["id"])) == "HZ-01"


async def test_a_manager_sees_and_changes_only_its_branches(shop: Shop) -> None:
    manager = await shop.kit.staff(shop.tenant, "manager", branches=[shop.sh01])
    assert [b["code"] for b in await shop.ok("GET", "/branches", manager)] == ["SH01"]
    cashier = await shop.kit.staff(shop.tenant, "cashier")  # no branches listed: every till
    assert len(await shop.ok("GET", "/branches", cashier)) == 2
    for creds in (manager, cashier):  # branches are the owner's and admins' to change
        r = await shop.call("PATCH", f"/branches/{shop.sh01}", creds, {"name": "mine now"})
        assert r.status_code == 403
        r = await shop.call("POST", "/branches", creds, {"code": "NEW", "name": "new"})
        assert r.status_code == 403
    assert await shop.scalar("SELECT name FROM branches WHERE id = :b", b=shop.sh01) == "SH01"


async def test_another_merchants_branch_is_not_found(
    shop: Shop, client, auth_kit, db: Database, tenant_factory
) -> None:
    other = await make_shop(client, auth_kit, db, tenant_factory, "别家")
    for branch in (other.sh01, uuid.uuid4()):
        r = await shop.call("PATCH", f"/branches/{branch}", json={"name": "taken over"})
        assert (r.status_code, r.json()["type"].split("/")[-1]) == (404, "not-found")
    assert [b["id"] for b in await other.ok("GET", "/branches")] == [str(other.sh01), str(other.sh02)]
    assert await other.scalar("SELECT name FROM branches WHERE id = :b", b=other.sh01) == "SH01"


# --- programme -------------------------------------------------------------------------------------

DOC = {
    "points": {"earn_per_major": "1"},
    "tiers": [
        {"code": "regular", "name": "普通", "rank": 0},
        {"code": "gold", "name": "金卡", "rank": 1, "threshold": 100_000, "points_multiplier": "2"},
    ],
}


async def test_publishing_keeps_history_and_future_versions_wait(shop: Shop) -> None:
    default = await shop.ok("GET", "/programme")
    assert (default["version"], default["effective_from"]) == (0, None)
    v1 = await shop.ok("PUT", "/programme?note=opening", json=DOC)
    assert v1["version"] == 1
    soon = datetime.now(UTC) + timedelta(days=7)
    v2 = await shop.ok(
        "PUT", f"/programme/points?effective_from={iso(soon)}&note=double%20for%20launch", json={"earn_per_major": "2"}
    )
    assert v2["version"] == 2
    assert v2["document"]["tiers"] == v1["document"]["tiers"]  # only the section changed
    now = await shop.ok("GET", "/programme")
    assert (now["version"], now["document"]["points"]["earn_per_major"]) == (1, "1")  # v2 is not in force yet
    versions = await shop.ok("GET", "/programme/versions")
    assert [(v["version"], v["in_force"], v["note"]) for v in versions] == [
        (2, False, "double for launch"),
        (1, True, "opening"),
    ]
    assert versions[0]["created_by"] == str(shop.owner.subject_id)
    v3 = await shop.ok("PUT", "/programme/rules", json=[{"code": "join", "kind": "signup", "points": 50}])
    assert v3["document"]["points"]["earn_per_major"] == "2"  # builds on the newest version written
    assert len(await shop.ok("GET", "/programme/versions")) == 3
    async with shop.db.uow(shop.tenant) as uow:
        with pytest.raises(Exception, match="permission denied"):  # history cannot be edited
            await uow.session.execute(text("UPDATE programme_versions SET note = 'rewritten'"))


async def test_bad_programmes_change_nothing(shop: Shop) -> None:
    await shop.ok("PUT", "/programme", json=DOC)
    past = datetime.now(UTC) - timedelta(days=1)
    for url, body in [
        ("/programme", {"points": {"earn_per_major": "lots"}}),
        ("/programme", {"tiers": [{"code": "a", "name": "A", "rank": 0}, {"code": "a", "name": "B", "rank": 1}]}),
        ("/programme", {"unknown_section": 1}),
        (f"/programme?effective_from={iso(past)}", DOC),  # never back-dated
        ("/programme?effective_from=2030-01-01T00:00:00", DOC),  # no time zone
        ("/programme/loyalty", {}),  # no such section
        ("/programme/rules", [{"code": "x", "kind": "custom"}]),  # a custom rule needs its event
        ("/programme/rules", [{"code": "x", "kind": "signup", "coupon_template": "no-such-template"}]),
        ("/programme/tiers", {"tiers": "gold"}),
    ]:
        r = await shop.call("PUT", url, json=body)
        assert r.status_code == 400, (url, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    bad_json = await shop.client.put("/api/v1/programme", content=b"{not json", headers=shop.owner.headers)
    assert bad_json.status_code == 400
    assert len(await shop.ok("GET", "/programme/versions")) == 1


async def test_cashiers_and_managers_read_the_programme_but_cannot_change_it(
    security_matrix, shop: Shop, tenant_factory
) -> None:
    other = await tenant_factory()
    await shop.ok("PUT", "/programme", json=DOC)
    cashier = await shop.kit.staff(shop.tenant, "cashier")
    assert (await shop.ok("GET", "/programme", cashier))["version"] == 1

    async def versions() -> int:
        return int(await shop.scalar("SELECT count(*) FROM programme_versions"))

    for url in ("/api/v1/programme", "/api/v1/programme/points"):
        body = DOC if url.endswith("programme") else {"earn_per_major": "3"}
        await security_matrix.check(
            "PUT",
            url,
            tenant=shop.tenant,
            other=other,
            json=body,
            denied_roles=["cashier", ("manager", [shop.sh01]), "analyst"],
            denied_scopes=[["pos"], ["reports:read"]],
            other_tenant_status=None,
            snapshot=versions,
        )
    await security_matrix.check(
        "GET",
        "/api/v1/branches",
        tenant=shop.tenant,
        other=other,
        denied_scopes=[["members:read"]],
        allowed_scopes=["pos"],
        other_tenant_status=None,
    )


#: per section: a body that replaces it, what the new document then holds, and bodies that are refused
SECTION_CASES: dict[str, tuple[Any, dict[str, Any], list[Any]]] = {
    "points": (
        {"earn_per_major": "3"},
        {"points": {"earn_per_major": "3"}},
        [{"earn_per_major": "lots"}, {"earn_per_major": "-1"}, {"bonus": 1}, []],
    ),
    "tiers": (
        {"tiers": [{"code": "regular", "name": "普通", "rank": 0}], "tier_policy": {"window_months": 6}},
        {"tiers": [{"code": "regular"}], "tier_policy": {"window_months": 6}},
        [
            {"tiers": "gold"},
            {"tiers": [{"code": "A!", "name": "x", "rank": 0}]},
            {"tier_policy": {}},
            [{"code": "a", "name": "A", "rank": 0}, {"code": "b", "name": "B", "rank": 0}],
        ],
    ),
    "rules": (
        [{"code": "join", "kind": "signup", "points": 50}],
        {"rules": [{"code": "join", "points": 50}]},
        [[{"code": "x", "kind": "custom"}], [{"code": "x", "kind": "lottery"}], {"code": "x"}],
    ),
    "join": (
        {"policy": "qualifying_purchase", "single_purchase_min": 10_000},
        {"join": {"policy": "qualifying_purchase", "single_purchase_min": 10_000}},
        [{"policy": "whenever"}, {"single_purchase_min": -1}, "free"],
    ),
    "stored-value": (
        {"plans": [{"code": "p1", "name": "储值100送10", "pay": 10_000, "get": 11_000}]},
        {"stored_value": {"plans": [{"code": "p1", "pay": 10_000, "get": 11_000}]}},
        [{"plans": [{"code": "p1", "name": "x", "pay": 200, "get": 100}]}, {"consumption": "lifo"}],
    ),
    "refunds": (
        {"clawback": False, "reissue_coupons": False, "anywhere": True},
        {"refunds": {"clawback": False, "reissue_coupons": False, "anywhere": True}},
        [{"anywhere": "yes"}, {"refund_all": True}, [], None],
    ),
    "promotions": (
        [{"code": "mj", "name": "满100减10", "kind": "spend_save", "steps": [{"spend": 10_000, "off": 1_000}]}],
        {"promotions": [{"code": "mj", "steps": [{"spend": 10_000, "off": 1_000}]}]},
        [
            [{"code": "x", "name": "x", "kind": "percent_off", "percent_off": 101}],
            [{"code": "x", "name": "x", "kind": "member_day", "weekdays": [2], "multiplier": "NaN"}],
            [{"code": "x", "name": "x", "kind": "spend_save", "steps": [{"spend": -1, "off": 1}]}],
            [{"code": "x", "name": "x", "kind": "member_day", "weekdays": [2], "percent_off": 5, "min_tier": "vip"}],
            [
                {
                    "code": "x",
                    "name": "x",
                    "kind": "percent_off",
                    "percent_off": 5,
                    "starts": "2026-02-01",
                    "ends": "2026-01-01",
                }
            ],
        ],
    ),
}


def _holds(document: Any, expected: Any) -> bool:
    """``expected`` is a part of ``document``: its keys (recursively) and list items in order."""
    if isinstance(expected, dict):
        return isinstance(document, dict) and all(k in document and _holds(document[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(document, list)
            and len(document) == len(expected)
            and all(_holds(d, e) for d, e in zip(document, expected, strict=True))
        )
    return bool(document == expected)


def test_every_part_of_the_programme_has_a_section() -> None:
    covered = {key for keys in SECTIONS.values() for key in keys}
    assert covered == set(Programme.__struct_fields__)
    assert set(SECTION_CASES) == set(SECTIONS)


@pytest.mark.parametrize("section", sorted(SECTION_CASES))
async def test_each_section_is_replaced_on_its_own(shop: Shop, section: str) -> None:
    body, expected, bad_bodies = SECTION_CASES[section]
    v1 = await shop.ok("PUT", "/programme", json=DOC)
    for bad in bad_bodies:  # refused, and no version written
        r = await shop.call("PUT", f"/programme/{section}", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["type"].endswith("/validation-failed")
    assert len(await shop.ok("GET", "/programme/versions")) == 1
    v2 = await shop.ok("PUT", f"/programme/{section}", json=body)
    assert v2["version"] == 2
    assert _holds(v2["document"], expected), v2["document"]
    assert (await shop.ok("GET", "/programme"))["document"] == v2["document"]
    untouched = set(v1["document"]) - set(SECTIONS[section])
    assert {k: v2["document"][k] for k in untouched} == {k: v1["document"][k] for k in untouched}
