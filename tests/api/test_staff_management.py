"""Staff management rules and role permissions (a cashier cannot change the programme, an analyst
cannot write, a manager stays in its branches)."""

from __future__ import annotations

import uuid

from sqlalchemy import text


async def test_add_invite_change_remove(client, auth_kit, tenant_factory, owner_engine) -> None:
    tenant = await tenant_factory("Invite Co")
    owner = await auth_kit.staff(tenant, "owner")
    branch = await auth_kit.branch(tenant)
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    r = await client.post(
        "/api/v1/staff", json={"email": email, "role": "manager", "branch_ids": [str(branch)]}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]
    assert r.json()["branch_ids"] == [str(branch)]
    async with owner_engine.connect() as conn:
        mail = (
            await conn.execute(
                text("SELECT payload FROM outbox WHERE tenant_id = :t AND payload->>'to' = :e"),
                {"t": tenant, "e": email},
            )
        ).one()
    token = mail.payload["body"].split("Token: ")[1].strip()
    assert (
        await client.post("/api/v1/auth/password", json={"token": token, "password": "a fine passphrase"})
    ).status_code == 204
    # the link is single use
    r = await client.post("/api/v1/auth/password", json={"token": token, "password": "another passphrase"})
    assert r.status_code == 401
    r = await client.post("/api/v1/auth/token", json={"email": email, "password": "a fine passphrase"})
    assert r.status_code == 200
    mgr = {"Authorization": f"Bearer {r.json()['access_token']}"}
    me = (await client.get("/api/v1/auth/me", headers=mgr)).json()
    assert me["role"] == "manager" and me["branch_ids"] == [str(branch)]

    # adding the same person twice is a conflict; a role change applies to live tokens at once
    r = await client.post("/api/v1/staff", json={"email": email, "role": "cashier"}, headers=owner.headers)
    assert r.status_code == 409
    r = await client.patch(f"/api/v1/staff/{user_id}", json={"role": "analyst"}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["branch_ids"] == []
    assert (await client.get("/api/v1/auth/me", headers=mgr)).json()["role"] == "analyst"
    assert (await client.delete(f"/api/v1/staff/{user_id}", headers=owner.headers)).status_code == 204
    r = await client.get("/api/v1/staff", headers=mgr)
    assert r.status_code in (400, 404)  # no longer works for this merchant


async def test_owner_rules(client, auth_kit, tenant_factory) -> None:
    tenant = await tenant_factory()
    owner = await auth_kit.staff(tenant, "owner")
    admin = await auth_kit.staff(tenant, "admin")
    # an admin cannot make owners, nor touch one
    r = await client.post(
        "/api/v1/staff",
        json={"email": "x-" + uuid.uuid4().hex[:6] + "@example.com", "role": "owner"},
        headers=admin.headers,
    )
    assert r.status_code == 403
    r = await client.patch(f"/api/v1/staff/{owner.subject_id}", json={"role": "cashier"}, headers=admin.headers)
    assert r.status_code == 403
    # the last owner stays an owner
    r = await client.patch(f"/api/v1/staff/{owner.subject_id}", json={"role": "admin"}, headers=owner.headers)
    assert r.status_code == 422
    r = await client.delete(f"/api/v1/staff/{owner.subject_id}", headers=owner.headers)
    assert r.status_code == 422
    # a manager needs branches, and only this merchant's
    r = await client.post(
        "/api/v1/staff",
        json={"email": "m-" + uuid.uuid4().hex[:6] + "@example.com", "role": "manager"},
        headers=owner.headers,
    )
    assert r.status_code == 400
    other_branch = await auth_kit.branch(await tenant_factory())
    r = await client.post(
        "/api/v1/staff",
        json={
            "email": "m-" + uuid.uuid4().hex[:6] + "@example.com",
            "role": "manager",
            "branch_ids": [str(other_branch)],
        },
        headers=owner.headers,
    )
    assert r.status_code == 404
    r = await client.post(
        "/api/v1/staff",
        json={"email": "m-" + uuid.uuid4().hex[:6] + "@example.com", "role": "wizard"},
        headers=owner.headers,
    )
    assert r.status_code == 400


async def test_role_matrix_on_the_routes_we_have(client, auth_kit, tenant_factory) -> None:
    tenant = await tenant_factory()
    here, there = await auth_kit.branch(tenant), await auth_kit.branch(tenant)
    roles = {
        "owner": await auth_kit.staff(tenant, "owner"),
        "admin": await auth_kit.staff(tenant, "admin"),
        "manager": await auth_kit.staff(tenant, "manager", branches=[here]),
        "cashier": await auth_kit.staff(tenant, "cashier"),
        "analyst": await auth_kit.staff(tenant, "analyst"),
    }
    expect_clients = {"owner": 201, "admin": 201, "manager": 403, "cashier": 403, "analyst": 403}
    for role, creds in roles.items():
        r = await client.post("/api/v1/clients", json={"name": role, "scopes": ["pos"]}, headers=creds.headers)
        assert r.status_code == expect_clients[role], (role, r.text)
    expect_enrol_there = {"owner": 201, "admin": 201, "manager": 403, "cashier": 201, "analyst": 403}
    for role, creds in roles.items():
        phone = f"137{uuid.uuid4().int % 10**8:08d}"
        r = await client.post("/api/v1/members", json={"phone": phone, "branch_id": str(there)}, headers=creds.headers)
        assert r.status_code == expect_enrol_there[role], (role, r.text)
    r = await client.post(
        "/api/v1/members", json={"phone": f"137{uuid.uuid4().int % 10**8:08d}"}, headers=roles["manager"].headers
    )
    assert r.status_code == 201 and r.json()["branch_id"] == str(here)  # defaults to the manager's branch
    for role in ("analyst", "cashier", "manager"):
        perms = (await client.get("/api/v1/auth/me", headers=roles[role].headers)).json()["permissions"]
        assert "programme:write" not in perms, role
    assert all(
        p.endswith(":read")
        for p in (await client.get("/api/v1/auth/me", headers=roles["analyst"].headers)).json()["permissions"]
    )
