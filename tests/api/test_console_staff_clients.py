"""The staff (/console/staff) and POS clients (/console/clients) pages through the test client: the
lists, invite / change / remove, create (the secret shown once) / revoke; errors beside their
fields; roles, CSRF and other merchants' ids refused, with nothing changed."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import text

from tests.api.test_console import menu_of, sign_in_console


async def staff_rows(db: Any, tenant: uuid.UUID) -> dict[str, tuple[str, list[uuid.UUID]]]:
    async with db.uow(tenant) as uow:
        rows = (
            await uow.session.execute(
                text(
                    "SELECT u.email, m.role, m.branch_ids FROM staff_memberships m JOIN staff_users u ON u.id = m.user_id"
                )
            )
        ).all()
    return {r.email: (r.role, list(r.branch_ids)) for r in rows}


async def client_rows(db: Any, tenant: uuid.UUID) -> dict[str, tuple[bool, list[str]]]:
    async with db.uow(tenant) as uow:
        rows = (await uow.session.execute(text("SELECT name, revoked_at, scopes FROM api_clients"))).all()
    return {r.name: (r.revoked_at is not None, list(r.scopes)) for r in rows}


# --- staff ----------------------------------------------------------------------------------------


async def test_invite_change_and_remove_staff(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any, owner_engine: Any
) -> None:
    tenant = await tenant_factory()
    sh01 = await auth_kit.branch(tenant, "SH01")
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    page = await owner.get("/console/staff")
    assert page.status_code == 200 and 'data-testid="invite-staff"' in page.text
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"

    # errors beside their fields, what was typed kept, nothing written
    r = await owner.post("/console/staff", {"email": "not-an-email", "role": "cashier"}, htmx=True)
    assert r.status_code == 400 and 'id="f-email-error"' in r.text and 'value="not-an-email"' in r.text
    r = await owner.post("/console/staff", {"email": email, "role": "manager"}, htmx=True)
    assert r.status_code == 400 and 'id="f-branch_ids-error"' in r.text and "店长至少需要一家门店" in r.text
    r = await owner.post("/console/staff", {"email": email, "role": "wizard"}, htmx=True)
    assert r.status_code == 400 and 'id="f-role-error"' in r.text
    assert email not in await staff_rows(db, tenant)

    r = await owner.post(
        "/console/staff",
        {"email": email, "display_name": "小李", "role": "cashier", "branch_ids": str(sh01)},
        htmx=True,
    )
    assert r.status_code == 200 and 'id="staff-panel"' in r.text and "邀请已发送" in r.text
    assert f'data-staff="{email}"' in r.text and "收银员（仅收银台）" in r.text and "已邀请" in r.text
    assert (await staff_rows(db, tenant))[email] == ("cashier", [sh01])
    async with owner_engine.connect() as conn:  # the invitation e-mail with its set-password link
        body = await conn.scalar(
            text("SELECT payload->>'body' FROM outbox WHERE actor = 'send_email' AND payload->>'to' = :to"),
            {"to": email},
        )
    assert body and "/set-password?token=" in body
    r = await owner.post("/console/staff", {"email": email, "role": "cashier"}, htmx=True)
    assert r.status_code == 409 and "此人已是您的员工" in r.text

    user_id = await user_of(db, email)
    r = await owner.get(f"/console/staff/{user_id}/edit", headers={"HX-Request": "true"})
    assert r.status_code == 200 and 'id="staff-edit-form"' in r.text and f'value="{sh01}" checked' in r.text
    r = await owner.post(f"/console/staff/{user_id}", {"role": "manager"}, htmx=True)  # no branch left
    assert r.status_code == 400 and 'id="e-branch_ids-error"' in r.text
    r = await owner.post(f"/console/staff/{user_id}", {"role": "manager", "branch_ids": str(sh01)})
    assert r.status_code == 303 and r.headers["location"] == "/console/staff"
    assert (await staff_rows(db, tenant))[email] == ("manager", [sh01])

    r = await owner.post(f"/console/staff/{user_id}/remove", {}, htmx=True)
    assert r.status_code == 200 and "已移出员工" in r.text and email not in r.text
    assert email not in await staff_rows(db, tenant)


async def user_of(db: Any, email: str) -> uuid.UUID:
    async with db.uow(system=True) as uow:
        found = await uow.session.scalar(text("SELECT id FROM staff_users WHERE email = :e"), {"e": email})
    assert isinstance(found, uuid.UUID)
    return found


async def test_the_last_owner_stays_and_only_owners_make_owners(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    r = await owner.post(f"/console/staff/{owner.user_id}", {"role": "admin"}, htmx=True)
    assert r.status_code == 422 and 'id="e-role-error"' in r.text and "商户至少要保留一位所有者" in r.text
    r = await owner.post(f"/console/staff/{owner.user_id}/remove", {}, htmx=True)
    assert r.status_code == 422 and "商户至少要保留一位所有者" in r.text

    admin = await sign_in_console(client, auth_kit, tenant, "admin")
    page = (await admin.get("/console/staff")).text
    assert 'value="owner"' not in page.split('id="staff-form"')[1].split("</form>")[0]  # not offered
    email = f"x-{uuid.uuid4().hex[:8]}@example.com"
    r = await admin.post("/console/staff", {"email": email, "role": "owner"})  # a crafted post
    assert r.status_code == 403
    r = await admin.post(f"/console/staff/{owner.user_id}/remove", {})
    assert r.status_code == 403
    roles = await staff_rows(db, tenant)
    assert email not in roles and sorted(role for role, _ in roles.values()) == ["admin", "owner"]


async def test_a_manager_reads_the_staff_list_and_cannot_change_it(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    branch = await auth_kit.branch(tenant)
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    manager = await sign_in_console(client, auth_kit, tenant, "manager", (branch,))
    page = await manager.get("/console/staff")
    assert page.status_code == 200 and "/console/staff" in menu_of(page.text)
    assert 'data-testid="invite-staff"' not in page.text and "/edit" not in page.text and "/remove" not in page.text
    before = await staff_rows(db, tenant)
    for url, data in [
        ("/console/staff", {"email": "m@example.com", "role": "cashier"}),
        (f"/console/staff/{owner.user_id}", {"role": "cashier"}),
        (f"/console/staff/{owner.user_id}/remove", {}),
    ]:
        r = await manager.post(url, data, htmx=True)
        assert r.status_code == 403 and r.headers["hx-retarget"] == "#flash"
    assert (await manager.get(f"/console/staff/{owner.user_id}/edit")).status_code == 403
    # without the page's token a write is refused too, even from the owner
    r = await owner.post("/console/staff", {"email": "csrf@example.com", "role": "cashier"}, token=False)
    assert r.status_code == 403
    assert await staff_rows(db, tenant) == before


async def test_another_merchants_staff_is_not_found(client: Any, auth_kit: Any, tenant_factory: Any, db: Any) -> None:
    mine, theirs = await tenant_factory(), await tenant_factory()
    other = await sign_in_console(client, auth_kit, theirs, "owner")
    foreign_branch = await auth_kit.branch(theirs)
    owner = await sign_in_console(client, auth_kit, mine, "owner")
    assert (await owner.get(f"/console/staff/{other.user_id}/edit")).status_code == 404
    r = await owner.post(f"/console/staff/{other.user_id}", {"role": "cashier"})
    assert r.status_code == 404
    r = await owner.post(f"/console/staff/{other.user_id}/remove", {})
    assert r.status_code == 404
    r = await owner.post(
        "/console/staff", {"email": "b@example.com", "role": "cashier", "branch_ids": str(foreign_branch)}
    )
    assert r.status_code == 404
    assert list((await staff_rows(db, theirs)).values()) == [("owner", [])]
    assert "b@example.com" not in await staff_rows(db, mine)


# --- POS clients ----------------------------------------------------------------------------------


async def test_create_a_client_the_secret_is_shown_once_then_revoke_it(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory()
    sh01 = await auth_kit.branch(tenant, "SH01")
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    page = await owner.get("/console/clients")
    assert page.status_code == 200 and 'data-testid="new-client"' in page.text and "还没有客户端" in page.text

    r = await owner.post("/console/clients", {"name": "", "scopes": "pos"}, htmx=True)
    assert r.status_code == 400 and 'id="f-name-error"' in r.text
    r = await owner.post("/console/clients", {"name": "Till 1"}, htmx=True)
    assert r.status_code == 400 and 'id="f-scopes-error"' in r.text and 'value="Till 1"' in r.text
    r = await owner.post("/console/clients", {"name": "Till 1", "scopes": "pos", "expires_in_days": "99999"}, htmx=True)
    assert r.status_code == 400 and 'id="f-expires_in_days-error"' in r.text
    assert await client_rows(db, tenant) == {}

    r = await owner.post(
        "/console/clients",
        {"name": "Till 1", "scopes": "pos", "branch_id": str(sh01), "expires_in_days": "365"},
        htmx=True,
    )
    assert r.status_code == 200 and 'data-testid="client-secret-box"' in r.text and "客户端已创建" in r.text
    secret = re.search(r'data-testid="client-secret"', r.text) and re.search(
        r'id="new-client-secret" readonly value="(lks_[^"]+)"', r.text
    )
    assert secret, r.text
    client_id = re.search(r'value="(lkc_[0-9a-f]+)"', r.text).group(1)  # type: ignore[union-attr]
    assert 'data-copy="new-client-secret"' in r.text

    # the secret works at the token endpoint, and it is never shown again
    client.cookies.clear()
    token = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret.group(1))
    )
    assert token.status_code == 200
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    page = (await owner.get("/console/clients")).text
    assert secret.group(1) not in page and client_id in page and "有效" in page
    async with db.uow(tenant) as uow:
        row_id = await uow.session.scalar(text("SELECT id FROM api_clients WHERE client_id = :c"), {"c": client_id})

    r = await owner.post(f"/console/clients/{row_id}/revoke", {}, htmx=True)
    assert r.status_code == 200 and "客户端已吊销" in r.text and "已吊销" in r.text
    assert await client_rows(db, tenant) == {"Till 1": (True, ["pos"])}
    client.cookies.clear()
    token = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret.group(1))
    )
    assert token.status_code in (400, 401)


async def test_clients_are_for_owners_and_admins_and_other_merchants_ids_are_not_found(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant, theirs = await tenant_factory(), await tenant_factory()
    pos = await auth_kit.pos(theirs, ["pos"])
    foreign_branch = await auth_kit.branch(theirs)
    analyst = await sign_in_console(client, auth_kit, tenant, "analyst")
    page = await analyst.get("/console/clients")
    assert page.status_code == 200 and 'data-testid="new-client"' not in page.text
    r = await analyst.post("/console/clients", {"name": "x", "scopes": "pos"})
    assert r.status_code == 403
    for role in ("manager", "cashier"):
        console = await sign_in_console(client, auth_kit, tenant, role)
        assert (await console.get("/console/clients")).status_code == 403
    owner = await sign_in_console(client, auth_kit, tenant, "owner")
    r = await owner.post(f"/console/clients/{pos.subject_id}/revoke", {})
    assert r.status_code == 404
    r = await owner.post("/console/clients", {"name": "x", "scopes": "pos", "branch_id": str(foreign_branch)})
    assert r.status_code == 404
    r = await owner.post("/console/clients", {"name": "x", "scopes": "pos"}, token=False)
    assert r.status_code == 403
    assert await client_rows(db, tenant) == {}
    assert (await client_rows(db, theirs))["test terminal"] == (False, ["pos"])
