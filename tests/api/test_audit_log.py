"""The audit log (issue 18, decision 0051): each audited action writes exactly one row, as its actor,
in the action's own transaction; the log is append-only in the database, per merchant, readable by
owners and admins through ``GET /api/v1/audit`` and the console, and exportable."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lianka.alliance.settlement import close, scopes
from lianka.platform import audit, audit_queries
from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder, PointsConfig, Programme, Tier
from lianka.tenants.services.programme import set_programme
from tests.api.settlement_kit import Chain, make_chain, make_world, xlsx_sheets
from tests.api.test_console import sign_in_console

pytestmark = pytest.mark.integration
PROGRAMME = Programme(
    points=PointsConfig(),
    tiers=[Tier(code="regular", name="普通", rank=0), Tier(code="silver", name="银卡", rank=1, threshold=50_000)],
)


async def rows(db: Database, tenant: uuid.UUID, action: str | None = None) -> list[Any]:
    async with db.uow(tenant) as uow:
        result = await uow.session.execute(
            text(
                "SELECT action, actor_kind, actor_id, actor_name, object_kind, object_id, details, request_id,"
                " host(ip) AS ip FROM audit_log WHERE CAST(:a AS text) IS NULL OR action = :a ORDER BY at, id"
            ),
            {"a": action},
        )
        return list(result)


async def owner_named(auth_kit: Any, owner_engine: Any, tenant: uuid.UUID, name: str) -> Any:
    creds = await auth_kit.staff(tenant, "owner")
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE staff_users SET display_name = :n WHERE id = :u"), {"n": name, "u": creds.subject_id}
        )
    return creds


async def test_staff_and_client_changes_each_write_one_row_as_their_actor(
    client, auth_kit, tenant_factory, owner_engine, db
) -> None:
    tenant = await tenant_factory()
    owner = await owner_named(auth_kit, owner_engine, tenant, "王店长")
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    h = {**owner.headers, "X-Request-ID": "audit-test-request-1"}
    r = await client.post("/api/v1/staff", json={"email": email, "role": "cashier"}, headers=h)
    assert r.status_code == 201, r.text
    user = r.json()["user_id"]
    assert (
        await client.patch(f"/api/v1/staff/{user}", json={"role": "analyst"}, headers=owner.headers)
    ).status_code == 200
    assert (await client.delete(f"/api/v1/staff/{user}", headers=owner.headers)).status_code == 204
    r = await client.post("/api/v1/clients", json={"name": "Till 9", "scopes": ["pos"]}, headers=owner.headers)
    assert r.status_code == 201, r.text
    made = {**r.json()["client"], "client_secret": r.json()["client_secret"]}
    assert (await client.delete(f"/api/v1/clients/{made['id']}", headers=owner.headers)).status_code == 204
    assert (await client.delete(f"/api/v1/clients/{made['id']}", headers=owner.headers)).status_code == 204  # again

    log = await rows(db, tenant)
    assert [e.action for e in log] == [
        "staff.invited",
        "staff.role_changed",
        "staff.removed",
        "client.created",
        "client.revoked",  # once: revoking a revoked client changes nothing
    ]
    assert {(e.actor_kind, e.actor_id, e.actor_name) for e in log} == {("staff", str(owner.subject_id), "王店长")}
    invited, changed, removed, created, revoked = log
    assert invited.object_id == user and invited.details["role"] == "cashier"
    assert invited.request_id == "audit-test-request-1"  # (the test client has no IP address to record)
    assert changed.details == {
        "before": {"role": "cashier", "branch_ids": []},
        "after": {"role": "analyst", "branch_ids": []},
    }
    assert removed.details == {"role": "analyst"}
    assert created.object_id == made["id"] and created.details["scopes"] == ["pos"]
    assert revoked.details == {"client_id": made["client_id"]}
    # never a secret, nor a person's e-mail address
    dumped = str([e.details for e in log])
    assert made["client_secret"] not in dumped and email not in dumped


async def test_refused_actions_write_nothing(client, auth_kit, tenant_factory, db) -> None:
    tenant = await tenant_factory()
    owner = await auth_kit.staff(tenant, "owner")
    r = await client.patch(f"/api/v1/staff/{owner.subject_id}", json={"role": "admin"}, headers=owner.headers)
    assert r.status_code == 422  # a merchant keeps one owner
    r = await client.post("/api/v1/clients", json={"name": "x", "scopes": ["root"]}, headers=owner.headers)
    assert r.status_code == 400
    r = await client.put("/api/v1/programme", json={"tiers": "nope"}, headers=owner.headers)
    assert r.status_code == 400
    assert await rows(db, tenant) == []


async def test_an_action_rolled_back_after_its_row_leaves_neither(
    client, auth_kit, tenant_factory, db, monkeypatch
) -> None:
    """The row is written in the action's transaction: if the action fails after writing it (here a
    fault injected right after the insert), the version and the row both disappear."""
    tenant = await tenant_factory()
    owner = await auth_kit.staff(tenant, "owner")
    current = (await client.get("/api/v1/programme", headers=owner.headers)).json()["document"]
    real = audit_queries.insert

    async def insert_then_fail(uow: Any, entry: Any) -> None:
        await real(uow, entry)
        assert await uow.session.scalar(text("SELECT count(*) FROM audit_log")) == 1  # written, not committed
        raise RuntimeError("injected fault after the audit row")

    monkeypatch.setattr(audit_queries, "insert", insert_then_fail)
    assert (await client.put("/api/v1/programme", json=current, headers=owner.headers)).status_code == 500
    monkeypatch.setattr(audit_queries, "insert", real)
    assert await rows(db, tenant) == []
    assert (await client.get("/api/v1/programme/versions", headers=owner.headers)).json() == []

    r = await client.put("/api/v1/programme", json=current, headers=owner.headers)
    assert r.status_code == 200, r.text
    (published,) = await rows(db, tenant)
    assert published.action == "programme.published" and published.object_kind == "programme_version"
    assert published.object_id == str(r.json()["version"]) and published.actor_id == str(owner.subject_id)


async def test_tier_grant_and_member_export_are_audited(client, auth_kit, tenant_factory, member_factory, db) -> None:
    tenant = await tenant_factory()
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME, effective_from=datetime(2026, 1, 1, tzinfo=UTC))
        await uow.commit()
    admin = await auth_kit.staff(tenant, "admin")
    member = await member_factory(tenant, "+8613912345678")
    h = {**admin.headers, "Idempotency-Key": uuid.uuid4().hex}
    body = {"tier": "silver", "reason": "门店邀请"}
    assert (await client.put(f"/api/v1/members/{member}/tier", json=body, headers=h)).status_code == 200
    r = await client.get("/api/v1/members/export.csv", headers=admin.headers)
    assert r.status_code == 200
    granted, exported = await rows(db, tenant)
    assert granted.action == "tier.granted" and granted.object_id == str(member)
    assert granted.details["before"] == {"tier": None} and granted.details["after"]["tier"] == "silver"
    assert granted.details["reason"] == "门店邀请" and granted.actor_id == str(admin.subject_id)
    assert exported.action == "export.downloaded" and exported.object_id == "members_full"
    assert exported.details["rows"] == 1 and "13912345678" not in str(exported.details)


@pytest.fixture
async def chain(client, db: Database, tenant_factory, auth_kit, staff_token, member_factory) -> Chain:
    c = await make_chain(client, db, tenant_factory, auth_kit, staff_token, BonusFunder.HQ)
    await c.top_up(await member_factory(c.tenant), "500", "A")  # October 2026: the book's first month
    return c


async def test_a_month_close_is_audited_once_as_who_asked(chain: Chain, db: Database) -> None:
    r = await chain.client.post("/api/v1/settlement/periods/2026-10/close?wait=true", headers=chain.owner)
    assert r.status_code == 200, r.text
    again = await chain.client.post("/api/v1/settlement/periods/2026-10/close?wait=true", headers=chain.owner)
    assert again.status_code == 200  # a closed month answers what it closed with: not closed twice
    (closed,) = await rows(db, chain.tenant, "period.closed")
    assert closed.actor_kind == "staff" and closed.object_kind == "chain_period" and closed.object_id == "2026-10"
    assert closed.details["checksum"] == r.json()["checksum"]
    # the queued close: the request now, by the staff member; the close by the job, as the same person
    r = await chain.client.post("/api/v1/settlement/periods/2026-11/close", headers=chain.owner)
    assert r.status_code in (202, 422)
    if r.status_code == 202:
        (requested,) = await rows(db, chain.tenant, "period.close_requested")
        assert requested.actor_id == closed.actor_id
        async with db.uow(chain.tenant) as uow:
            payload = await uow.session.scalar(
                text("SELECT payload FROM outbox WHERE actor = 'close_period' ORDER BY created_at DESC LIMIT 1")
            )
        assert audit.decode(payload) == audit.Actor(audit.ActorKind.STAFF, closed.actor_id)


async def test_the_scheduled_close_is_audited_as_the_scheduler(chain: Chain, db: Database) -> None:
    scope = await scopes.chain_scope(db, chain.tenant)
    await close.close(db, scope, "2026-10")
    (closed,) = await rows(db, chain.tenant, "period.closed")
    assert (closed.actor_kind, closed.actor_name) == ("system", "scheduler")


async def test_alliance_terms_are_audited_in_the_operators_log(
    client, db, tenant_factory, auth_kit, staff_token
) -> None:
    w = await make_world(client, db, tenant_factory, auth_kit, staff_token)
    o = w.partners["O"]
    terms = {"issue_price": "0.012", "reimbursement_price": "0.008", "member_value": "0.010", "earn_rate": "1"}
    r = await client.put(f"/api/v1/alliances/{w.alliance}/terms?note=涨价", json=terms, headers=o.owner)
    assert r.status_code == 200, r.text
    (changed,) = await rows(db, o.tenant, "alliance.terms_changed")
    assert changed.object_id == w.alliance and changed.details["version"] == r.json()["version"]
    assert changed.details["note"] == "涨价"
    assert await rows(db, w.partners["P"].tenant, "alliance.terms_changed") == []
    # a partner may not publish terms: refused, and nothing recorded
    r = await client.put(f"/api/v1/alliances/{w.alliance}/terms", json=terms, headers=w.partners["P"].owner)
    assert r.status_code in (403, 404)
    assert await rows(db, w.partners["P"].tenant, "alliance.terms_changed") == []


async def test_the_log_is_append_only_even_for_the_owner(tenant_factory, db, owner_engine) -> None:
    tenant = await tenant_factory()
    async with db.uow(tenant) as uow:
        await audit.record(uow, audit.operator("ops"), "staff.removed", object_kind="staff", object_id="x")
        await uow.commit()
    for statement in ("UPDATE audit_log SET action = 'staff.added'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match=r"permission denied|append-only"):
            async with db.uow(tenant) as uow:  # the app role: no grant
                await uow.session.execute(text(statement))
        with pytest.raises(DBAPIError, match="append-only"):
            async with owner_engine.begin() as conn:  # the owner: the trigger
                await conn.execute(
                    text(statement + (" WHERE tenant_id = :t" if "TRUNCATE" not in statement else "")), {"t": tenant}
                )
    assert len(await rows(db, tenant)) == 1


async def test_tenants_see_only_their_own_log_and_filters_work(client, auth_kit, two_tenants, db) -> None:
    a, b = two_tenants
    owner_a, owner_b = await auth_kit.staff(a, "owner"), await auth_kit.staff(b, "owner")
    await client.post("/api/v1/clients", json={"name": "A till", "scopes": ["pos"]}, headers=owner_a.headers)
    await client.post(
        "/api/v1/staff",
        json={"email": f"a-{uuid.uuid4().hex[:6]}@example.com", "role": "cashier"},
        headers=owner_a.headers,
    )
    await client.post("/api/v1/clients", json={"name": "B till", "scopes": ["pos"]}, headers=owner_b.headers)
    page_a = (await client.get("/api/v1/audit", headers=owner_a.headers)).json()
    page_b = (await client.get("/api/v1/audit", headers=owner_b.headers)).json()
    assert page_a["total"] == 2 and [i["action"] for i in page_a["items"]] == ["staff.invited", "client.created"]
    assert page_b["total"] == 1 and page_b["items"][0]["details"]["name"] == "B till"
    async with db.uow(b) as uow:  # row-level security, not only the API's WHERE
        assert await uow.session.scalar(text("SELECT count(*) FROM audit_log")) == 1
        with pytest.raises(DBAPIError):
            await uow.session.execute(
                text("INSERT INTO audit_log (tenant_id, actor_kind, actor_id, actor_name, action, object_kind, object_id)"
                     " VALUES (:t, 'system', 'x', 'x', 'staff.added', 'staff', 'x')"), {"t": a}
            )  # fmt: skip

    def listed(**q: str) -> Any:
        return client.get("/api/v1/audit", params=q, headers=owner_a.headers)

    assert (await listed(action="client.created")).json()["total"] == 1
    assert (await listed(action="staff.")).json()["total"] == 1
    assert (await listed(actor=str(owner_a.subject_id))).json()["total"] == 2
    assert (await listed(object_kind="client")).json()["total"] == 1
    assert (await listed(since="2099-01-01T00:00:00Z")).json()["total"] == 0
    assert (await listed(limit="1")).json()["items"][0]["action"] == "staff.invited"
    assert (await listed(limit="1", offset="1")).json()["items"][0]["action"] == "client.created"
    r = await listed(action="DROP TABLE")
    assert r.status_code == 400 and r.json()["field"] == "action"
    assert (await listed(limit="1000")).status_code == 400

    r = await client.get("/api/v1/audit/export", params={"format": "csv"}, headers=owner_a.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0] == audit.EXPORT_HEADER and [row[4] for row in table[1:]] == ["staff.invited", "client.created"]
    r = await client.get("/api/v1/audit/export", params={"format": "xlsx"}, headers=owner_a.headers)
    assert r.status_code == 200
    (sheet,) = xlsx_sheets(r.content).values()
    assert len(sheet) == 1 + 3  # the CSV download is itself on the log by now
    assert (await listed(action="export.downloaded")).json()["total"] == 2


async def test_who_may_read_the_log(security_matrix, two_tenants) -> None:
    a, b = two_tenants
    await security_matrix.check(
        "GET", "/api/v1/audit", tenant=a, other=b, denied_roles=["cashier", "manager", "analyst"],
        denied_scopes=[["pos"], ["reports:read"]], other_tenant_status=None,
    )  # fmt: skip
    await security_matrix.check(
        "GET", "/api/v1/audit/export?format=csv", tenant=a, other=b, denied_roles=["cashier", "analyst"],
        denied_scopes=[["pos"]], other_tenant_status=None,
    )  # fmt: skip


async def test_console_page_for_owners_in_both_languages(client, auth_kit, tenant_factory, db) -> None:
    tenant = await tenant_factory()
    r = await client.post(
        "/api/v1/clients", json={"name": "Till 1", "scopes": ["pos"]}, headers=(await auth_kit.staff(tenant)).headers
    )
    assert r.status_code == 201
    owner = await sign_in_console(client, auth_kit, tenant, "admin")
    zh = await owner.get("/console/settings/audit", headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 200 and "操作日志" in zh.text and "创建 API 客户端" in zh.text
    en = await owner.get("/console/settings/audit?action=client.created", headers={"Accept-Language": "en"})
    assert en.status_code == 200 and "Audit log" in en.text and "API client created" in en.text
    empty = await owner.get("/console/settings/audit?action=staff.removed", headers={"Accept-Language": "en"})
    assert 'data-testid="audit-empty"' in empty.text
    bad = await owner.get("/console/settings/audit?from=yesterday", headers={"Accept-Language": "en"})
    assert bad.status_code == 400 and 'id="f-from-error"' in bad.text
    r = await owner.post("/console/settings/audit/export", {"format": "csv", "action": "client.created"})
    assert r.status_code == 200 and [row[4] for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig")))][1:] == [
        "client.created"
    ]
    assert (await owner.post("/console/settings/audit/export", {"format": "csv"}, token=False)).status_code == 403
    exported = await rows(db, tenant, "export.downloaded")
    assert len(exported) == 1 and exported[0].actor_id == str(owner.user_id)
    cashier = await sign_in_console(client, auth_kit, tenant, "cashier")
    assert (await cashier.get("/console/settings/audit")).status_code == 403
