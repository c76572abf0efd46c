"""Forged and altered tokens are refused: wrong key, ``alg: none``, HS256 with the public key,
edited claims, missing ``kid``, wrong issuer or audience."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

PROBLEM = "application/problem+json"


def b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(h))), json.loads(base64.urlsafe_b64decode(pad(p))), s


@pytest.fixture
async def victim(auth_kit, two_tenants):
    a, b = two_tenants
    pos = await auth_kit.pos(b, ["pos"])
    enrolled = await auth_kit.member(a)
    return a, b, pos, enrolled


async def assert_refused(client, token: str, url: str) -> None:
    r = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith(("/invalid-token", "/token-expired"))


async def test_forgeries(client, auth_kit, victim) -> None:
    a, _b, pos, member = victim
    url = f"/api/v1/members/{member.subject_id}"
    header, claims, _ = split(pos.token)
    assert (await client.get(url, headers=pos.headers)).status_code == 404  # b's client: a's member is invisible

    stolen = dict(claims, tid=str(a))  # claim to be merchant a
    forged = []
    # 1. tampered payload, original signature
    h, _, s = pos.token.split(".")
    forged.append(f"{h}.{b64(stolen)}.{s}")
    # 2. alg none
    forged.append(f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': header['kid']})}.{b64(stolen)}.")
    # 3. signed with an attacker's RSA key that reuses our kid
    evil = RSAKey.generate_key(2048, parameters={"kid": header["kid"]}, private=True)
    forged.append(jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": header["kid"]}, stolen, evil))
    # 4. HS256 keyed with our public key (algorithm confusion)
    public_pem = (await auth_kit.ident.keyring.signing_key()).as_pem(private=False)
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': header['kid']})}.{b64(stolen)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged.append(signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode())
    # 5. no kid
    key = await auth_kit.ident.keyring.signing_key()
    forged.append(jwt.encode({"alg": "RS256", "typ": "at+jwt"}, stolen, key))
    # 6. unknown kid
    forged.append(jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": "nope"}, stolen, key))
    # 7. right key, wrong issuer / audience / missing exp (our key, so only the claims are wrong)
    for bad in ({"iss": "https://evil.example"}, {"aud": "someone-else"}, {"exp": None}):
        c = {**stolen, **bad}
        c = {k: v for k, v in c.items() if v is not None}
        forged.append(jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, c, key))
    # 8. wrong typ (e.g. an id_token-like JWT)
    forged.append(jwt.encode({"alg": "RS256", "typ": "JWT", "kid": key.kid}, stolen, key))
    # 9. not a JWT at all
    forged += ["", "a.b", "a.b.c", "e30.e30.e30", "a.b.c.d.e"]
    for token in forged:
        await assert_refused(client, token, url)


async def test_valid_signature_but_unknown_client_or_subject(client, auth_kit, victim) -> None:
    a, _b, pos, member = victim
    key = await auth_kit.ident.keyring.signing_key()
    _, claims, _ = split(pos.token)
    now = int(time.time())
    # a correctly signed token whose client row belongs to another tenant (as if our key leaked a claim
    # mix-up): RLS finds no such client in tenant a → refused
    mixed = dict(claims, tid=str(a), iat=now, exp=now + 60, jti=uuid.uuid4().hex)
    token = jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, mixed, key)
    await assert_refused(client, token, f"/api/v1/members/{member.subject_id}")
    staff = {
        "iss": claims["iss"],
        "aud": claims["aud"],
        "sub": str(uuid.uuid4()),
        "kind": "staff",
        "sid": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, staff, key)
    await assert_refused(client, token, "/api/v1/auth/me")


async def test_expired_tokens(client, auth_kit, two_tenants) -> None:
    a, _ = two_tenants
    for creds in (await auth_kit.staff(a, "owner"), await auth_kit.pos(a, ["pos"])):
        expired = await auth_kit.expired(creds)
        r = await client.get("/api/v1/members/lookup?card=123", headers=expired.headers)
        assert r.status_code == 401
        assert r.json()["type"].endswith("/token-expired")
