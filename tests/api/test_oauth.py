"""POS terminals and integrations: API clients, the client-credentials grant, scopes, revocation,
key rotation."""

from __future__ import annotations

import asyncio
import base64
import uuid

from joserfc import jws
from sqlalchemy import text

from lianka.platform.identity.tokens import rotate_signing_key

PROBLEM = "application/problem+json"


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def make_client(client, owner_headers, **body):
    r = await client.post("/api/v1/clients", json={"name": "Till 1", "scopes": ["pos"], **body}, headers=owner_headers)
    assert r.status_code == 201, r.text
    return r.json()


async def token(client, client_id: str, secret: str, **form: str):
    return await client.post(
        "/oauth/token", data={"grant_type": "client_credentials", **form}, headers=basic(client_id, secret)
    )


async def test_create_client_secret_shown_once_and_hashed(client, staff_token, tenant_factory, owner_engine) -> None:
    tenant = await tenant_factory()
    owner = await staff_token(tenant, "owner")
    made = await make_client(client, owner.headers, scopes=["pos", "members:read"])
    secret = made["client_secret"]
    assert secret.startswith("lks_") and made["client"]["client_id"].startswith("lkc_")
    listed = await client.get("/api/v1/clients", headers=owner.headers)
    assert secret not in listed.text
    assert listed.json()[0]["scopes"] == ["members:read", "pos"]
    async with owner_engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT secret_hash FROM api_clients WHERE client_id = :c"), {"c": made["client"]["client_id"]}
        )
    assert secret.encode() not in bytes(stored) and len(bytes(stored)) == 32


async def test_client_credentials_token_carries_tenant_branch_scopes_and_kid(client, auth_kit, tenant_factory) -> None:
    tenant = await tenant_factory()
    branch = await auth_kit.branch(tenant)
    owner = await auth_kit.staff(tenant)
    made = await make_client(client, owner.headers, scopes=["pos", "members:read"], branch_id=str(branch))
    cid, secret = made["client"]["client_id"], made["client_secret"]

    r = await token(client, cid, secret)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "members:read pos"
    header = jws.extract_compact(body["access_token"].encode()).protected
    assert header["alg"] == "RS256" and header["typ"] == "at+jwt" and header["kid"]
    claims = await auth_kit.ident.keyring.verify(body["access_token"])
    assert claims["tid"] == str(tenant) and claims["bid"] == str(branch) and claims["client_id"] == cid
    jwks = (await client.get("/oauth/jwks")).json()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert all("d" not in k and "p" not in k for k in jwks["keys"])  # public halves only

    # client_secret_post works too; a narrower scope is granted as asked
    r = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret, "scope": "members:read"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "members:read"
    narrow = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get(f"/api/v1/members/{uuid.uuid4()}", headers=narrow)).status_code == 404
    r = await client.post("/api/v1/members", json={"phone": "13800138000"}, headers=narrow)
    assert r.status_code == 403
    assert r.json()["type"].endswith("/insufficient-permission")


async def test_token_endpoint_errors_are_problems(client, auth_kit, tenant_factory) -> None:
    tenant = await tenant_factory()
    creds = await auth_kit.pos(tenant, ["members:read"])
    cid, secret = creds.client_id, creds.client_secret
    assert cid and secret
    cases = [
        (await token(client, cid, "lks_wrong"), 401, "invalid_client"),
        (await token(client, "lkc_nope", secret), 401, "invalid_client"),
        (await client.post("/oauth/token", data={"grant_type": "client_credentials"}), 401, "invalid_client"),
        (await token(client, cid, secret, scope="admin"), 400, "invalid_scope"),
        (
            await client.post(
                "/oauth/token",
                data={"grant_type": "password", "username": "x", "password": "y"},
                headers=basic(cid, secret),
            ),
            400,
            "unsupported_grant_type",
        ),
        (
            await client.post(
                "/oauth/token",
                content=b"grant_type=client_credentials&grant_type=client_credentials",
                headers={**basic(cid, secret), "Content-Type": "application/x-www-form-urlencoded"},
            ),
            400,
            "invalid_request",
        ),
    ]
    for r, status, error in cases:
        assert r.status_code == status, (error, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["error"] == error
        assert r.json()["status"] == status


async def test_revoked_client_and_revoked_token_are_401(client, auth_kit, tenant_factory) -> None:
    tenant = await tenant_factory()
    owner = await auth_kit.staff(tenant)
    pos = await auth_kit.pos(tenant, ["pos"])
    other_pos = await auth_kit.pos(tenant, ["pos"])
    assert (await client.get(f"/api/v1/members/{uuid.uuid4()}", headers=pos.headers)).status_code == 404

    # RFC 7009: the client revokes its own token; another client's attempt is a silent no-op
    r = await client.post(
        "/oauth/revoke", data={"token": other_pos.token}, headers=basic(pos.client_id, pos.client_secret)
    )
    assert r.status_code == 200
    assert (await client.get(f"/api/v1/members/{uuid.uuid4()}", headers=other_pos.headers)).status_code == 404
    r = await client.post("/oauth/revoke", data={"token": pos.token}, headers=basic(pos.client_id, pos.client_secret))
    assert r.status_code == 200
    r = await client.get(f"/api/v1/members/{uuid.uuid4()}", headers=pos.headers)
    assert r.status_code == 401
    assert r.json()["type"].endswith("/invalid-token")

    # revoking the client ends its live tokens and its ability to get new ones
    r = await client.delete(f"/api/v1/clients/{other_pos.subject_id}", headers=owner.headers)
    assert r.status_code == 204
    r = await client.get(f"/api/v1/members/{uuid.uuid4()}", headers=other_pos.headers)
    assert r.status_code == 401
    r = await token(client, other_pos.client_id, other_pos.client_secret)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


async def test_expired_client_cannot_get_tokens(client, auth_kit, tenant_factory, owner_engine) -> None:
    tenant = await tenant_factory()
    pos = await auth_kit.pos(tenant, ["pos"])
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE api_clients SET expires_at = now() - interval '1 minute' WHERE client_id = :c"),
            {"c": pos.client_id},
        )
    assert (await token(client, pos.client_id, pos.client_secret)).status_code == 401
    assert (await client.get(f"/api/v1/members/{uuid.uuid4()}", headers=pos.headers)).status_code == 401


async def test_branch_client_enrols_only_at_its_branch(client, auth_kit, tenant_factory) -> None:
    tenant = await tenant_factory()
    here, there = await auth_kit.branch(tenant), await auth_kit.branch(tenant)
    pos = await auth_kit.pos(tenant, ["pos"], branch=here)
    r = await client.post("/api/v1/members", json={"phone": "13800138001"}, headers=pos.headers)
    assert r.status_code == 201, r.text
    assert r.json()["branch_id"] == str(here)
    r = await client.post(
        "/api/v1/members", json={"phone": "13800138002", "branch_id": str(there)}, headers=pos.headers
    )
    assert r.status_code == 403


async def test_key_rotation(client, auth_kit, tenant_factory, settings, app) -> None:
    tenant = await tenant_factory()
    before = await auth_kit.pos(tenant, ["pos"])
    old_kid = jws.extract_compact(before.token.encode()).protected["kid"]
    new_kid = await rotate_signing_key(auth_kit.ident.db, settings.secret_key, settings.identity)
    await auth_kit.ident.keyring.refresh(force=True)
    after = await auth_kit.pos(tenant, ["pos"])
    assert jws.extract_compact(after.token.encode()).protected["kid"] == new_kid != old_kid
    # the app has not reloaded yet: an unknown kid makes it look again
    for creds in (before, after):
        assert (await client.get(f"/api/v1/members/{uuid.uuid4()}", headers=creds.headers)).status_code == 404
    kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= kids
    # once the retired key's grace period is over, its tokens are refused
    async with auth_kit.ident.db.uow(system=True) as uow:
        await uow.session.execute(text("UPDATE signing_keys SET expires_at = now() WHERE kid = :k"), {"k": old_kid})
        await uow.commit()
    app.state.identity.keyring._loaded_at = 0.0  # as if REFRESH_SECONDS had passed
    r = await client.get(f"/api/v1/members/{uuid.uuid4()}", headers=before.headers)
    assert r.status_code == 401
    assert old_kid not in {k["kid"] for k in (await client.get("/oauth/jwks")).json()["keys"]}


async def test_metadata(client) -> None:
    md = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert md["token_endpoint"].endswith("/oauth/token")
    assert md["grant_types_supported"] == ["client_credentials"]


async def test_a_revocation_made_by_another_process_reaches_this_one(
    client, auth_kit, tenant_factory, owner_engine, monkeypatch
) -> None:
    """Client principals are cached per process (decision 0011). Another process that revokes bumps
    the generation in Redis; this process drops its cache at its next check (within ``recheck``)."""
    from lianka.platform.identity import principal_cache

    monkeypatch.setattr(principal_cache.clients, "recheck", 0.05)
    tenant = await tenant_factory()
    pos = await auth_kit.pos(tenant, ["pos"])
    url = f"/api/v1/members/{uuid.uuid4()}"
    assert (await client.get(url, headers=pos.headers)).status_code == 404  # authenticated, now cached
    # the other process: its revocation commits, then it bumps the generation (principal_cache.revoked
    # without this process's local clear)
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE api_clients SET revoked_at = now() WHERE client_id = :c"), {"c": pos.client_id})
    assert (await client.get(url, headers=pos.headers)).status_code == 404  # served from the cache
    await auth_kit.ident.redis.incr(principal_cache.GENERATION_KEY)
    await asyncio.sleep(0.1)
    r = await client.get(url, headers=pos.headers)
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-token")


async def test_a_lookup_that_raced_a_revocation_is_not_cached() -> None:
    from lianka.platform.identity import principal_cache
    from lianka.platform.identity.principal import Kind, Principal

    cache = principal_cache.ClientPrincipalCache(ttl=30)
    key = (uuid.uuid4(), uuid.uuid4(), "jti")
    p = Principal(kind=Kind.CLIENT, subject_id=key[1], tenant_id=key[0])
    epoch = cache.epoch  # the lookup begins …
    cache.clear()  # … a revocation lands while it reads the database …
    cache.put(key, p, None, epoch=epoch)  # … and its (stale) answer is not remembered
    assert key not in cache._entries
    cache.put(key, p, None, epoch=cache.epoch)
    assert cache._entries[key].principal == p
