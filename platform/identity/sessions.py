"""Sign-in sessions: console and portal cookies, and the anchors of staff bearer tokens.

A cookie holds a random token; the database holds only its SHA-256 (``auth_sessions.token_hash``),
so a leaked table opens no session. The CSRF token is an HMAC of the session token: it needs no
storage, changes with each session, and a page can read it (the ``lk_csrf`` cookie or the sign-in
response) while the session cookie itself stays ``HttpOnly``.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.identity import secrets_box

STAFF_COOKIE = "lk_session"
MEMBER_COOKIE = "lk_member"
CSRF_COOKIE = "lk_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "_csrf"


@dataclass(frozen=True)
class NewSession:
    id: uuid.UUID
    token: str | None
    expires_at: datetime


@dataclass(frozen=True)
class LiveSession:
    id: uuid.UUID
    kind: str
    subject_id: uuid.UUID


async def create_session(
    db: Database,
    *,
    kind: str,
    subject_id: uuid.UUID,
    method: str,
    ttl: int,
    cookie: bool,
    user_agent: str = "",
    ip: str | None = None,
) -> NewSession:
    token = secrets_box.new_token() if cookie else None
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    async with db.uow(system=True) as uow:
        sid = await uow.session.scalar(
            text(
                "INSERT INTO auth_sessions (kind, subject_id, token_hash, method, expires_at, user_agent, ip) "
                "VALUES (:k, :s, :h, :m, :e, :ua, CAST(:ip AS inet)) RETURNING id"
            ),
            {
                "k": kind,
                "s": subject_id,
                "h": secrets_box.token_hash(token) if token else None,
                "m": method,
                "e": expires,
                "ua": user_agent[:400],
                "ip": _ip(ip),
            },
        )
        await uow.commit()
    assert isinstance(sid, uuid.UUID)
    return NewSession(sid, token, expires)


def _ip(ip: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


async def session_by_token(db: Database, kind: str, token: str) -> LiveSession | None:
    async with db.uow(system=True) as uow:
        row = (
            await uow.session.execute(
                text(
                    "SELECT id, kind, subject_id FROM auth_sessions WHERE token_hash = :h AND kind = :k "
                    "AND revoked_at IS NULL AND expires_at > now()"
                ),
                {"h": secrets_box.token_hash(token), "k": kind},
            )
        ).first()
    return LiveSession(row.id, row.kind, row.subject_id) if row else None


async def revoke_session(db: Database, session_id: uuid.UUID) -> None:
    async with db.uow(system=True) as uow:
        await uow.session.execute(
            text("UPDATE auth_sessions SET revoked_at = now() WHERE id = :i AND revoked_at IS NULL"), {"i": session_id}
        )
        await uow.commit()


async def revoke_all_sessions(db: Database, kind: str, subject_id: uuid.UUID) -> None:
    """Sign a person out everywhere (e.g. after a password change)."""
    async with db.uow(system=True) as uow:
        await uow.session.execute(
            text(
                "UPDATE auth_sessions SET revoked_at = now() WHERE kind = :k AND subject_id = :s AND revoked_at IS NULL"
            ),
            {"k": kind, "s": subject_id},
        )
        await uow.commit()


def csrf_token(secret_key: str, session_token: str) -> str:
    return secrets_box.mac(secret_key, "lianka:csrf", session_token)


def csrf_ok(secret_key: str, session_token: str, presented: str | None) -> bool:
    return bool(presented) and secrets_box.same(csrf_token(secret_key, session_token), presented or "")
