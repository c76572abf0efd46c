"""Every identity route, exercised as every caller who must be refused: no credentials, a garbage
or expired or revoked token, a lower role, a client without the scope, a member, another merchant
(its token, or naming our merchant in X-Merchant). Each answers the right 401/403/404 problem and
changes nothing. Later areas use the same ``security_matrix`` fixture for their routes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.identity.guards import declared_access
from lianka.web.app import api_routes


def test_every_api_route_declares_its_access(app) -> None:
    undeclared = []
    for route in app.routes:
        if not route.path.startswith("/api/v1") or "/_test/" in route.path:
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.http_methods == {"OPTIONS"}:  # Litestar's automatic CORS pre-flight handler
                continue
            if declared_access(handler) is None:
                undeclared.append(f"{route.path} {sorted(handler.http_methods)}")
    assert api_routes(), "no API routes registered"
    assert undeclared == []


@pytest.fixture
async def world(auth_kit, two_tenants, owner_engine):
    a, b = two_tenants
    branch_a1, branch_a2 = await auth_kit.branch(a), await auth_kit.branch(a)
    staff_a = await auth_kit.staff(a, "cashier")
    pos_a = await auth_kit.pos(a, ["pos"])
    member_a = await auth_kit.member(a)

    async def snapshot() -> tuple[Any, ...]:
        async with owner_engine.connect() as conn:
            return tuple(
                (
                    await conn.execute(
                        text(
                            "SELECT (SELECT count(*) FROM staff_memberships WHERE tenant_id = :a),"
                            " (SELECT string_agg(role || array_to_string(branch_ids, ','), ';' ORDER BY user_id)"
                            "    FROM staff_memberships WHERE tenant_id = :a),"
                            " (SELECT count(*) FROM api_clients WHERE tenant_id = :a AND revoked_at IS NULL),"
                            " (SELECT count(*) FROM memberships WHERE tenant_id = :a),"
                            " (SELECT count(*) FROM members)"
                        ),
                        {"a": a},
                    )
                ).one()
            )

    return {
        "a": a,
        "b": b,
        "branches": (branch_a1, branch_a2),
        "staff": staff_a,
        "pos": pos_a,
        "member": member_a,
        "snapshot": snapshot,
    }


def new_phone() -> str:
    return f"136{uuid.uuid4().int % 10**8:08d}"


async def test_staff_routes(security_matrix, world) -> None:
    a, b, snap = world["a"], world["b"], world["snapshot"]
    user = world["staff"].subject_id
    await security_matrix.check(
        "GET",
        "/api/v1/staff",
        tenant=a,
        other=b,
        snapshot=snap,
        denied_roles=["cashier"],
        denied_scopes=[["pos"], ["members:read"]],
        other_tenant_status=None,
    )
    body = {"email": f"x-{uuid.uuid4().hex[:6]}@example.com", "role": "cashier"}
    await security_matrix.check(
        "POST",
        "/api/v1/staff",
        json=body,
        tenant=a,
        other=b,
        snapshot=snap,
        denied_roles=["manager", "cashier", "analyst"],
        denied_scopes=[["pos"], ["admin"]],
        other_tenant_status=None,
    )
    for method, json in (("PATCH", {"role": "analyst"}), ("DELETE", None)):
        await security_matrix.check(
            method,
            f"/api/v1/staff/{user}",
            json=json,
            tenant=a,
            other=b,
            snapshot=snap,
            denied_roles=[("manager", [world["branches"][0]]), "cashier", "analyst"],
            denied_scopes=[["admin"]],
            missing_url=f"/api/v1/staff/{uuid.uuid4()}",
        )


async def test_client_routes(security_matrix, world) -> None:
    a, b, snap = world["a"], world["b"], world["snapshot"]
    await security_matrix.check(
        "GET",
        "/api/v1/clients",
        tenant=a,
        other=b,
        snapshot=snap,
        denied_roles=[("manager", [world["branches"][0]]), "cashier"],
        denied_scopes=[["pos"], ["admin"]],
        other_tenant_status=None,
    )
    await security_matrix.check(
        "POST",
        "/api/v1/clients",
        json={"name": "x", "scopes": ["pos"]},
        tenant=a,
        other=b,
        snapshot=snap,
        denied_roles=[("manager", [world["branches"][0]]), "cashier", "analyst"],
        denied_scopes=[["pos"], ["admin"], ["reports:read"]],
        other_tenant_status=None,
    )
    await security_matrix.check(
        "DELETE",
        f"/api/v1/clients/{world['pos'].subject_id}",
        tenant=a,
        other=b,
        snapshot=snap,
        denied_roles=["analyst", "cashier"],
        denied_scopes=[["admin"]],
        missing_url=f"/api/v1/clients/{uuid.uuid4()}",
    )


async def test_member_routes(security_matrix, world) -> None:
    a, b, snap = world["a"], world["b"], world["snapshot"]
    member = world["member"].subject_id
    await security_matrix.check(
        "GET",
        f"/api/v1/members/{member}",
        tenant=a,
        other=b,
        snapshot=snap,
        denied_scopes=[["reports:read"]],
        allowed_scopes=["pos"],
        missing_url=f"/api/v1/members/{uuid.uuid4()}",
    )
    card = await world_card(security_matrix, world)
    await security_matrix.check(
        "GET",
        f"/api/v1/members/lookup?card={card}",
        tenant=a,
        other=b,
        snapshot=snap,
        denied_scopes=[["reports:read"]],
        allowed_scopes=["members:read"],
        missing_url="/api/v1/members/lookup?card=100000000008",
    )
    await security_matrix.check(
        "POST",
        "/api/v1/members",
        json={"phone": new_phone(), "branch_id": str(world["branches"][1])},
        tenant=a,
        other=b,
        snapshot=snap,
        denied_roles=["analyst", ("manager", [world["branches"][0]])],
        denied_scopes=[["members:read"], ["reports:read"]],
        allowed_scopes=["pos"],
        other_tenant_status=404,
    )  # b's caller names a's branch: not found


async def world_card(security_matrix, world) -> str:
    creds = await security_matrix.kit.staff(world["a"], "cashier")
    r = await security_matrix.client.get(f"/api/v1/members/{world['member'].subject_id}", headers=creds.headers)
    return str(r.json()["card_number"])


async def test_staff_self_routes(client, auth_kit, world) -> None:
    """/auth/me, sign-out and revoke: staff only (clients and members are refused)."""
    pos, member = world["pos"], world["member"]
    for method, url in (
        ("GET", "/api/v1/auth/me"),
        ("POST", "/api/v1/auth/revoke"),
        ("DELETE", "/api/v1/auth/session"),
    ):
        for headers, status in (
            ({}, 401),
            (pos.headers, 403),
            (member.headers, 401),
            ((await auth_kit.expired(world["staff"])).headers, 401),
            ({"Authorization": "Bearer x.y.z"}, 401),
        ):
            client.cookies.clear()
            r = await client.request(method, url, headers=headers)
            assert r.status_code == status, (method, url, headers, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")


async def test_portal_routes(client, auth_kit, world) -> None:
    staff, pos = world["staff"], world["pos"]
    for method, url in (
        ("GET", "/api/v1/portal/me"),
        ("GET", "/api/v1/portal/qr"),
        ("DELETE", "/api/v1/portal/session"),
    ):
        for headers, status in (
            ({}, 401),
            (staff.headers, 401),
            (pos.headers, 401),
            ({"Cookie": "lk_member=forged-session-token"}, 401),
            ({"Cookie": f"lk_session={staff.token}"}, 401),
        ):
            client.cookies.clear()
            r = await client.request(method, url, headers=headers)
            assert r.status_code == status, (method, url, headers, r.text)


async def test_the_matrix_itself_catches_a_role_that_gets_in(security_matrix, two_tenants) -> None:
    a, b = two_tenants
    with pytest.raises(AssertionError, match="role analyst"):
        await security_matrix.check(
            "GET", "/api/v1/staff", tenant=a, other=b, denied_roles=["analyst"], other_tenant_status=None
        )
