"""Identity tables. Which are global and which are tenant-scoped, and why: decision 0004.

Global (no ``tenant_id``): ``staff_users`` (one person may work for several merchants),
``oidc_identities``, ``auth_sessions``, ``signing_keys`` and ``members`` (one person, one card
everywhere). Tenant-scoped (``tenant_id`` first in the key, RLS): ``staff_memberships``,
``api_clients``, ``revoked_tokens``, ``memberships``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, DateTime, ForeignKey, LargeBinary, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lianka.platform.db import Base


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class StaffUser(Base):
    """A person who works for one or more merchants. Readable by a tenant only if it is their
    employer; written only in system scope."""

    __tablename__ = "staff_users"

    id: Mapped[uuid.UUID] = _uuid_pk()
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-cased
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(Text)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()


class StaffMembership(Base):
    """A staff user's role at one merchant (and, for managers and cashiers, its branches)."""

    __tablename__ = "staff_memberships"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("merchants.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("staff_users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    branch_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), default=list)
    created_at: Mapped[datetime] = _created()


class OidcIdentity(Base):
    """An external OpenID Connect account (issuer + subject) linked to a staff user."""

    __tablename__ = "oidc_identities"

    issuer: Mapped[str] = mapped_column(String(400), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("staff_users.id"))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = _created()


class AuthSession(Base):
    """A sign-in: a console or portal cookie session (``token_hash`` set) or the anchor of staff
    bearer tokens (their ``sid`` claim). Revoking it ends the cookie and every token it issued."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    kind: Mapped[str] = mapped_column(String(16))  # staff | member
    subject_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    token_hash: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    method: Mapped[str] = mapped_column(String(16))  # password | oidc | otp
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    ip: Mapped[str | None] = mapped_column(INET)


class SigningKey(Base):
    """A JWT signing key. The newest unretired key signs; retired keys verify until ``expires_at``.
    ``private_key`` is the PEM encrypted with a key derived from ``LIANKA_SECRET_KEY``."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    private_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiClient(Base):
    """An OAuth2 client (POS terminal or integration) of one merchant, optionally of one branch."""

    __tablename__ = "api_clients"
    #: unique per merchant only: Citus's rule (migration 0029c, decision 0048); the ids are random
    __table_args__ = (UniqueConstraint("tenant_id", "client_id", name="uq_api_clients_client_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("merchants.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    name: Mapped[str] = mapped_column(String(200))
    branch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RevokedToken(Base):
    """An access token revoked before its expiry (RFC 7009); kept until it would have expired."""

    __tablename__ = "revoked_tokens"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime] = _created()


class Member(Base):
    """A member: one person (phone in E.164), one card number (Luhn check digit) valid at every
    merchant and alliance partner, and the secret behind the rotating QR token. A merchant sees a
    member only through its own :class:`Membership`."""

    __tablename__ = "members"

    id: Mapped[uuid.UUID] = _uuid_pk()
    phone: Mapped[str] = mapped_column(String(16), unique=True)
    card_number: Mapped[str] = mapped_column(String(19), unique=True)
    qr_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created()
    #: erased everywhere (PIPL): the phone is a pseudonym, the QR secret replaced (migration 0015)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Membership(Base):
    """A member's enrolment at one merchant (the programme data of issue 5 hangs off this row)."""

    __tablename__ = "memberships"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("merchants.id"), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("members.id"), primary_key=True)
    branch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    joined_at: Mapped[datetime] = _created()
