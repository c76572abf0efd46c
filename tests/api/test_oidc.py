"""Staff sign-in with an external OpenID Connect provider: a real provider on a loopback port
(discovery, authorize, token, JWKS; RS256 id_tokens), the app's authlib client talking to it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from lianka.platform.identity.dev_oidc import DevOidcProvider, DevUser
from lianka.platform.identity.sessions import STAFF_COOKIE
from lianka.web.app import create_app


@pytest.fixture(scope="module")
def provider() -> Iterator[DevOidcProvider]:
    p = DevOidcProvider()
    p.start()
    yield p
    p.stop()


@pytest.fixture
async def oidc_client(settings, provider) -> AsyncIterator[AsyncTestClient[Litestar]]:
    provider.tamper.clear()
    identity = dataclasses.replace(
        settings.identity,
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
    )
    app = create_app(dataclasses.replace(settings, identity=identity))
    async with AsyncTestClient(app=app) as c:
        yield c


async def run_flow(client, provider, *, next_path: str = "/console", keep_binding: bool = True):
    r = await client.get("/api/v1/auth/oidc/login", params={"next": next_path}, follow_redirects=False)
    assert r.status_code == 302, r.text
    authorize = r.headers["location"]
    q = parse_qs(urlsplit(authorize).query)
    assert q["code_challenge_method"] == ["S256"] and q["nonce"][0] and q["state"][0]
    assert "openid" in q["scope"][0].split()
    async with httpx.AsyncClient() as browser:  # the "browser" visits the provider over real HTTP
        at_provider = await browser.get(authorize, follow_redirects=False)
    assert at_provider.status_code == 302
    callback = urlsplit(at_provider.headers["location"])
    assert callback.path == "/api/v1/auth/oidc/callback"
    if not keep_binding:
        client.cookies.clear()
    return await client.get(f"{callback.path}?{callback.query}", follow_redirects=False)


async def test_sign_in_links_by_verified_email(oidc_client, provider, auth_kit, tenant_factory) -> None:
    tenant = await tenant_factory()
    email = f"oidc-{uuid.uuid4().hex[:8]}@example.com"
    user_id = await auth_kit.user(email)
    await auth_kit.add_membership(tenant, user_id, "manager", [await auth_kit.branch(tenant)])
    provider.next_user = DevUser(sub=f"sub-{uuid.uuid4().hex[:6]}", email=email.upper())
    r = await run_flow(oidc_client, provider)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/console"
    session = r.cookies.get(STAFF_COOKIE)
    assert session
    oidc_client.cookies.clear()
    me = await oidc_client.get("/api/v1/auth/me", headers={"Cookie": f"{STAFF_COOKIE}={session}"})
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == str(user_id) and me.json()["role"] == "manager"
    # PKCE: the app sent the verifier to the token endpoint; the client authenticated with Basic
    assert provider.token_requests[-1]["code_verifier"]
    # second sign-in: found through the stored link even if the e-mail changed at the provider
    provider.next_user = dataclasses.replace(provider.next_user, email="changed@example.com")
    assert (await run_flow(oidc_client, provider)).status_code == 302


@pytest.mark.parametrize(
    ("tamper", "user_over"),
    [
        ({}, {"email_verified": False}),  # unverified e-mail: no linking
        ({}, {"email": "nobody-here@example.com"}),  # no staff account with this e-mail
        ({"nonce": "replayed"}, {}),  # wrong nonce
        ({"iss": "http://evil.example"}, {}),  # wrong issuer in the id_token
        ({"aud": "another-client"}, {}),  # id_token for another client
        ({"aud": "another-client", "azp": "lianka-dev"}, {}),  # … even if it names us as azp
        ({"exp": 1}, {}),  # expired id_token
        ({"sign_with_other_key": True}, {}),  # signature by a key not in the JWKS
        ({"algs": ["none"]}, {}),  # provider offers only alg none
        ({"discovery_issuer": "http://other.example"}, {}),  # discovery names another issuer
    ],
)
async def test_bad_provider_answers_are_refused(oidc_client, provider, auth_kit, tamper, user_over) -> None:
    email = f"oidc-{uuid.uuid4().hex[:8]}@example.com"
    await auth_kit.user(email)
    provider.next_user = DevUser(sub=f"sub-{uuid.uuid4().hex[:6]}", email=email)
    provider.next_user = dataclasses.replace(provider.next_user, **user_over)
    provider.tamper.update(tamper)
    if "algs" in tamper or "discovery_issuer" in tamper:
        r = await oidc_client.get("/api/v1/auth/oidc/login", follow_redirects=False)
    else:
        r = await run_flow(oidc_client, provider)
    assert r.status_code == 401, r.text
    assert r.json()["type"].endswith("/oidc-failed")
    assert STAFF_COOKIE not in r.cookies


async def test_state_must_match_and_be_bound_to_the_browser(oidc_client, provider, auth_kit) -> None:
    email = f"oidc-{uuid.uuid4().hex[:8]}@example.com"
    await auth_kit.user(email)
    provider.next_user = DevUser(sub=f"sub-{uuid.uuid4().hex[:6]}", email=email)
    r = await run_flow(oidc_client, provider, keep_binding=False)
    assert r.status_code == 401
    r = await oidc_client.get("/api/v1/auth/oidc/callback?code=x&state=forged", follow_redirects=False)
    assert r.status_code == 401
    r = await oidc_client.get("/api/v1/auth/oidc/callback?error=access_denied", follow_redirects=False)
    assert r.status_code == 401


async def test_open_redirects_are_neutralised(oidc_client, provider, auth_kit) -> None:
    email = f"oidc-{uuid.uuid4().hex[:8]}@example.com"
    await auth_kit.user(email)
    provider.next_user = DevUser(sub=f"sub-{uuid.uuid4().hex[:6]}", email=email)
    r = await run_flow(oidc_client, provider, next_path="//evil.example/steal")
    assert r.status_code == 302 and r.headers["location"] == "/"


async def test_not_configured_is_404(client) -> None:
    r = await client.get("/api/v1/auth/oidc/login", follow_redirects=False)
    assert r.status_code == 404
