"""Test helpers for every area: real credentials (rows in PostgreSQL, tokens signed with the real
keys) and a security matrix that checks a route refuses whom it should, changing nothing.

Used through the fixtures in ``tests/api/conftest.py`` (``auth_kit``, ``staff_token``,
``pos_token``, ``member_session``, ``security_matrix``)::

    async def test_enrol_is_guarded(security_matrix, two_tenants, db_snapshot):
        a, b = two_tenants
        await security_matrix.check(
            "POST", "/api/v1/members", json={"phone": "13800138000"}, tenant=a, other=b,
            denied_roles=["analyst"], denied_scopes=[["reports:read"]], snapshot=...)
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.identity import clients, members, oauth, sessions
from lianka.platform.identity.permissions import ROLE_PERMISSIONS, Role
from lianka.platform.identity.principal import Kind, Principal
from lianka.platform.identity.runtime import Identity
from lianka.platform.identity.services import issue_staff_token
from lianka.platform.settings import Settings

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Creds:
    """Headers to send (``Authorization`` or ``Cookie`` + CSRF) and what they stand for."""

    kind: str
    headers: dict[str, str]
    tenant_id: uuid.UUID | None = None
    subject_id: uuid.UUID | None = None
    token: str | None = None
    role: str | None = None
    scopes: tuple[str, ...] = ()
    branch_ids: tuple[uuid.UUID, ...] = ()
    client_id: str | None = None
    client_secret: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class AuthKit:
    def __init__(self, db: Database, settings: Settings, redis: Any) -> None:
        self.ident = Identity.create(db, settings, redis)
        self.db = db

    async def branch(self, tenant: uuid.UUID, code: str | None = None) -> uuid.UUID:
        code = code or "B" + uuid.uuid4().hex[:6]
        async with self.db.uow(tenant) as uow:
            bid = await uow.session.scalar(
                text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
                {"t": tenant, "c": code},
            )
            await uow.commit()
        assert isinstance(bid, uuid.UUID)
        return bid

    async def user(self, email: str | None = None, password_hash: str | None = None) -> uuid.UUID:
        email = email or f"staff-{uuid.uuid4().hex[:10]}@example.com"
        async with self.db.uow(system=True) as uow:
            uid = await uow.session.scalar(
                text(
                    "INSERT INTO staff_users (email, password_hash, email_verified_at) VALUES (:e, :h, now()) "
                    "RETURNING id"
                ),
                {"e": email, "h": password_hash},
            )
            await uow.commit()
        assert isinstance(uid, uuid.UUID)
        return uid

    async def add_membership(
        self, tenant: uuid.UUID, user_id: uuid.UUID, role: str, branches: Iterable[uuid.UUID] = ()
    ) -> None:
        async with self.db.uow(tenant) as uow:
            await uow.session.execute(
                text("INSERT INTO staff_memberships (tenant_id, user_id, role, branch_ids) VALUES (:t, :u, :r, :b)"),
                {"t": tenant, "u": user_id, "r": role, "b": list(branches)},
            )
            await uow.commit()

    async def staff(
        self,
        tenant: uuid.UUID,
        role: str = "owner",
        *,
        branches: Sequence[uuid.UUID] = (),
        ttl: int | None = None,
        user_id: uuid.UUID | None = None,
    ) -> Creds:
        """A staff user with ``role`` at ``tenant`` and a bearer token bound to it."""
        if user_id is None:
            user_id = await self.user()
            await self.add_membership(tenant, user_id, role, branches)
        token, _, _ = await issue_staff_token(self.ident, user_id, tenant, ttl=ttl)
        return Creds(
            "staff", {"Authorization": f"Bearer {token}"}, tenant, user_id, token, role, branch_ids=tuple(branches)
        )

    async def staff_session(
        self, tenant: uuid.UUID, role: str = "owner", *, branches: Sequence[uuid.UUID] = ()
    ) -> Creds:
        """A console session (cookie + CSRF header) for a new staff user."""
        user_id = await self.user()
        await self.add_membership(tenant, user_id, role, branches)
        sess = await sessions.create_session(
            self.db, kind="staff", subject_id=user_id, method="password", ttl=3600, cookie=True
        )
        assert sess.token
        csrf = sessions.csrf_token(self.ident.secret, sess.token)
        return Creds(
            "staff-session",
            {"Cookie": f"{sessions.STAFF_COOKIE}={sess.token}", "X-CSRF-Token": csrf},
            tenant,
            user_id,
            sess.token,
            role,
            branch_ids=tuple(branches),
        )

    async def pos(
        self,
        tenant: uuid.UUID,
        scopes: Sequence[str] = ("pos",),
        *,
        branch: uuid.UUID | None = None,
        request_scopes: Sequence[str] | None = None,
    ) -> Creds:
        """A new API client and a token from the real ``/oauth/token`` code path."""
        admin = Principal(
            kind=Kind.STAFF,
            subject_id=uuid.uuid4(),
            tenant_id=tenant,
            role=Role.OWNER,
            permissions=ROLE_PERMISSIONS[Role.OWNER],
        )
        made = await clients.create_client(self.ident, admin, "test terminal", list(scopes), branch_id=branch)
        basic = base64.b64encode(f"{made.client.client_id}:{made.client_secret}".encode()).decode()
        form = {"grant_type": ["client_credentials"]}
        if request_scopes is not None:
            form["scope"] = [" ".join(request_scopes)]
        result = await oauth.token_endpoint(self.ident, {"authorization": f"Basic {basic}"}, form)
        assert result.status == 200, result.body
        token = str(result.body["access_token"])
        return Creds(
            "client",
            {"Authorization": f"Bearer {token}"},
            tenant,
            made.client.id,
            token,
            scopes=tuple(scopes),
            branch_ids=(branch,) if branch else (),
            client_id=made.client.client_id,
            client_secret=made.client_secret,
        )

    async def member(self, tenant: uuid.UUID | None = None, phone: str | None = None) -> Creds:
        """A member (enrolled at ``tenant`` if given) signed in to the portal."""
        phone = phone or f"+86139{uuid.uuid4().int % 10**8:08d}"
        if tenant is not None:
            enrolled = await members.enrol_member(self.ident, tenant, phone)
            member_id = enrolled.member.member_id
        else:
            async with self.db.uow(system=True) as uow:
                member_id = await members._find_or_create_person(uow, members.normalise_phone(phone))
                await uow.commit()
        sess = await sessions.create_session(
            self.db, kind="member", subject_id=member_id, method="otp", ttl=3600, cookie=True
        )
        assert sess.token
        csrf = sessions.csrf_token(self.ident.secret, sess.token)
        return Creds(
            "member",
            {"Cookie": f"{sessions.MEMBER_COOKIE}={sess.token}", "X-CSRF-Token": csrf},
            tenant,
            member_id,
            sess.token,
            extra={"phone": members.normalise_phone(phone)},
        )

    async def expired(self, creds: Creds) -> Creds:
        """The same credential, but as a token that expired a minute ago (correctly signed)."""
        assert creds.token and creds.kind in {"staff", "client"}, "only bearer tokens expire this way"
        claims = await self.ident.keyring.verify(creds.token)
        now = int(time.time())
        claims.update(iat=now - 3600, exp=now - 120, jti=uuid.uuid4().hex)
        for k in ("iss", "aud"):
            claims.pop(k, None)
        token = self.ident.keyring.sign_with(await self.ident.keyring.signing_key(), claims)
        return Creds(
            creds.kind,
            {"Authorization": f"Bearer {token}"},
            creds.tenant_id,
            creds.subject_id,
            token,
            creds.role,
            creds.scopes,
            creds.branch_ids,
        )


Snapshot = Callable[[], Awaitable[Any]]
Request = Callable[..., Awaitable[Any]]


@dataclass
class SecurityMatrix:
    """Sends one request as every kind of caller who must be refused and checks the problem answer
    (status, ``application/problem+json``) and that ``snapshot()`` is unchanged afterwards."""

    client: Any
    kit: AuthKit
    results: list[tuple[str, int]] = field(default_factory=list)

    async def _send(self, method: str, url: str, headers: dict[str, str], json: Any) -> Any:
        kwargs: dict[str, Any] = {"headers": headers}
        if json is not None:
            kwargs["json"] = json
        self.client.cookies.clear()
        return await self.client.request(method, url, **kwargs)

    async def check(
        self,
        method: str,
        url: str | Callable[[uuid.UUID], str],
        *,
        tenant: uuid.UUID,
        other: uuid.UUID,
        json: Any = None,
        denied_roles: Sequence[str | tuple[str, Sequence[uuid.UUID]]] = (),
        denied_scopes: Sequence[Sequence[str]] = (),
        allowed_role: str = "owner",
        allowed_scopes: Sequence[str] | None = None,
        other_tenant_status: int | None = 404,
        missing_url: str | None = None,
        snapshot: Snapshot | None = None,
        members_too: bool = True,
    ) -> None:
        """``url`` is for ``tenant``'s data. ``other_tenant_status``: what ``other``'s owner gets for
        it (404 for an id of ``tenant``; None when the route is a collection and the other merchant
        legitimately sees its own). ``missing_url``: the same route with an id that does not exist,
        which must answer exactly like ``other``'s token does."""
        target = url(tenant) if callable(url) else url
        cases: list[tuple[str, dict[str, str], int, str | None]] = [
            ("no credentials", {}, 401, None),
            ("garbage token", {"Authorization": "Bearer not.a.jwt"}, 401, "invalid-token"),
            ("wrong scheme", {"Authorization": "Basic Zm9vOmJhcg=="}, 401, "invalid-token"),
        ]
        allowed = await self.kit.staff(tenant, allowed_role)
        cases.append(("expired staff token", (await self.kit.expired(allowed)).headers, 401, "token-expired"))
        if allowed_scopes is not None:
            pos = await self.kit.pos(tenant, allowed_scopes)
            cases.append(("expired client token", (await self.kit.expired(pos)).headers, 401, "token-expired"))
        revoked = await self.kit.staff(tenant, allowed_role)
        await sessions.revoke_session(self.kit.db, _sid(await self.kit.ident.keyring.verify(revoked.token or "")))
        cases.append(("revoked staff token", revoked.headers, 401, "invalid-token"))
        for spec in denied_roles:
            role, branches = (spec, ()) if isinstance(spec, str) else spec
            creds = await self.kit.staff(tenant, role, branches=branches)
            cases.append((f"role {role}", creds.headers, 403, None))
        for scopes in denied_scopes:
            creds = await self.kit.pos(tenant, scopes)
            cases.append((f"client scopes {list(scopes)}", creds.headers, 403, None))
        if members_too:
            member = await self.kit.member(tenant)
            member_headers = dict(member.headers)
            cases.append(("member session", member_headers, 401, None))
        if other_tenant_status is not None:
            foreign = await self.kit.staff(other, allowed_role)
            cases.append(("another merchant's owner", foreign.headers, other_tenant_status, None))
            if allowed_scopes is not None:
                foreign_pos = await self.kit.pos(other, allowed_scopes)
                cases.append(("another merchant's client", foreign_pos.headers, other_tenant_status, None))
            cases.append(
                ("X-Merchant of a merchant not mine", {**foreign.headers, "X-Merchant": str(tenant)}, 404, None)
            )

        before = await snapshot() if snapshot else None  # taken after the credentials were made
        failures = []
        for label, headers, status, slug in cases:
            r = await self._send(method, target, headers, json)
            self.results.append((label, r.status_code))
            ctype = r.headers.get("content-type", "")
            if r.status_code != status or not ctype.startswith(PROBLEM_JSON):
                failures.append(f"{label}: expected {status} problem, got {r.status_code} {r.text[:200]}")
            elif slug and not r.json()["type"].endswith("/" + slug):
                failures.append(f"{label}: expected problem type {slug}, got {r.json()['type']}")
        if missing_url is not None and other_tenant_status is not None:
            missing = await self._send(method, missing_url, allowed.headers, json)
            theirs = await self._send(method, target, foreign.headers, json)
            if (missing.status_code, missing.json().get("type")) != (theirs.status_code, theirs.json().get("type")):
                failures.append(
                    f"another merchant's id answers {theirs.status_code} {theirs.json().get('type')}, "
                    f"a missing id {missing.status_code} {missing.json().get('type')}"
                )
        if snapshot is not None and await snapshot() != before:
            failures.append("the data changed after refused requests")
        assert not failures, f"{method} {target}:\n  " + "\n  ".join(failures)


def _sid(claims: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(str(claims["sid"]))
