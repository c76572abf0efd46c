"""Use cases: merchant sign-up, e-mail verification, password and OIDC sign-in, staff tokens.

Staff users are global, so finding one by e-mail runs in system scope; everything about a merchant
runs in that merchant's scope (sign-up switches the same transaction over with ``set_tenant``).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from lianka.platform import validate
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import RateLimited, ValidationFailed
from lianka.platform.identity import passwords, secrets_box
from lianka.platform.identity.errors import (
    AccountLocked,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    MerchantNotFound,
    OidcFailed,
    SlugTaken,
)
from lianka.platform.identity.models import Membership, OidcIdentity, StaffMembership, StaffUser
from lianka.platform.identity.permissions import Role
from lianka.platform.identity.runtime import Identity
from lianka.platform.identity.sessions import NewSession, create_session, revoke_all_sessions
from lianka.platform.outbox import enqueue
from lianka.tenants.models import Merchant

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
VERIFY_TTL = 3 * 24 * 3600
SET_PASSWORD_TTL = 3 * 24 * 3600
RESET_PURPOSE = "lianka:reset-password"
RESET_TTL = 3600
#: forgot-password requests per e-mail and per client address in one window (an hour)
RESET_PER_EMAIL = 3
RESET_PER_IP = 20
RESET_WINDOW = 3600


def normalise_email(email: str) -> str:
    e = email.strip().lower()
    if len(e) > 320 or not EMAIL.match(e):
        raise ValidationFailed("Not a valid e-mail address", field="email")
    return e


# --- action links (e-mail verification, set password) -------------------------------------------


def action_token(secret: str, purpose: str, user_id: uuid.UUID, bound_to: str, ttl: int) -> str:
    """``user.expiry.mac`` — the MAC covers ``bound_to`` (the e-mail, or the current password hash),
    so a set-password link dies once used and a verify link dies if the e-mail changes."""
    exp = int(time.time()) + ttl
    return f"{user_id.hex}.{exp}.{secrets_box.mac(secret, purpose, f'{user_id.hex}.{exp}.{bound_to}')}"


def _parse_action(token: str) -> tuple[uuid.UUID, int, str]:
    try:
        uid, exp, sig = token.split(".")
        return uuid.UUID(hex=uid), int(exp), sig
    except ValueError:
        raise InvalidToken("The link is not valid") from None


def _check_action(secret: str, purpose: str, token: str, user: StaffUser | None, bound_to: str) -> None:
    uid, exp, sig = _parse_action(token)
    if user is None or exp < time.time():
        raise InvalidToken("The link is not valid or has expired")
    expected = secrets_box.mac(secret, purpose, f"{uid.hex}.{exp}.{bound_to}")
    if not secrets_box.same(expected, sig):
        raise InvalidToken("The link is not valid or has expired")


async def queue_verification_mail(uow: UnitOfWork, ident: Identity, user_id: uuid.UUID, email: str) -> None:
    token = action_token(ident.secret, "lianka:verify-email", user_id, email, VERIFY_TTL)
    link = f"{ident.cfg.public_url}/verify-email?token={token}"
    await enqueue(
        uow,
        "send_email",
        queue="messages",
        to=email,
        subject="Confirm your e-mail for Lianka",
        body=f"Welcome to Lianka.\n\nConfirm your e-mail address:\n{link}\n\nThe link works for 3 days.\n"
        f"Token: {token}\n",
    )


async def queue_set_password_mail(uow: UnitOfWork, ident: Identity, user: StaffUser, merchant_name: str) -> None:
    token = action_token(ident.secret, "lianka:set-password", user.id, user.password_hash or "", SET_PASSWORD_TTL)
    link = f"{ident.cfg.public_url}/set-password?token={token}"
    await enqueue(
        uow,
        "send_email",
        queue="messages",
        to=user.email,
        subject=f"You have been added to {merchant_name} on Lianka",
        body=f"Set your password to sign in:\n{link}\n\nThe link works for 3 days.\nToken: {token}\n",
    )


def _reset_binding(user: StaffUser) -> str:
    """What a reset link is bound to: the e-mail and the current password hash, so the link dies once
    used (the hash changes), when the password changes otherwise, or if the e-mail changes."""
    return f"{user.email}|{user.password_hash or ''}"


async def queue_password_reset_mail(uow: UnitOfWork, ident: Identity, user: StaffUser) -> None:
    token = action_token(ident.secret, RESET_PURPOSE, user.id, _reset_binding(user), RESET_TTL)
    link = f"{ident.cfg.public_url}/reset-password?token={token}"
    await enqueue(
        uow,
        "send_email",
        queue="messages",
        to=user.email,
        subject="Reset your Lianka password",
        body=f"Someone (we hope you) asked to reset the password of your Lianka account.\n\n"
        f"Choose a new password:\n{link}\n\nThe link works for 1 hour and once. If you did not ask, "
        f"ignore this e-mail: your password stays as it is.\nToken: {token}\n",
    )


# --- sign-up ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignUp:
    merchant_name: str
    slug: str
    email: str
    password: str
    trade: str = "retail"
    currency: str = "CNY"
    timezone: str = "Asia/Shanghai"
    display_name: str = ""


@dataclass(frozen=True)
class SignedUp:
    merchant_id: uuid.UUID
    user_id: uuid.UUID
    slug: str
    email: str


def _validate_signup(data: SignUp) -> None:
    if not SLUG.match(data.slug):
        raise ValidationFailed("A slug is 2-63 lower-case letters, digits and hyphens", field="slug")
    validate.currency(data.currency)
    validate.time_zone(data.timezone)
    if not data.merchant_name.strip() or len(data.merchant_name) > 200:
        raise ValidationFailed("A merchant name has 1 to 200 characters", field="merchant_name")


async def sign_up(ident: Identity, data: SignUp) -> SignedUp:
    """Create a merchant and its owner in one transaction; queue the verification e-mail."""
    email = normalise_email(data.email)
    _validate_signup(data)
    pw_hash = await passwords.hash_password(data.password)
    async with ident.db.uow(system=True) as uow:
        s = uow.session
        if await s.scalar(select(Merchant.id).where(Merchant.slug == data.slug)):
            raise SlugTaken(field="slug")
        if await s.scalar(select(StaffUser.id).where(StaffUser.email == email)):
            raise EmailTaken(field="email")
        merchant = Merchant(
            slug=data.slug,
            name=data.merchant_name.strip(),
            trade=data.trade or "retail",
            currency=data.currency,
            timezone=data.timezone,
        )
        user = StaffUser(
            email=email,
            display_name=data.display_name.strip(),
            password_hash=pw_hash,
            password_changed_at=datetime.now(UTC),
        )
        s.add_all([merchant, user])
        try:
            await s.flush()
        except IntegrityError as exc:  # a concurrent sign-up took the slug or e-mail
            raise (SlugTaken(field="slug") if "slug" in str(exc.orig) else EmailTaken(field="email")) from None
        await uow.set_tenant(merchant.id)
        s.add(StaffMembership(tenant_id=merchant.id, user_id=user.id, role=Role.OWNER.value, branch_ids=[]))
        await queue_verification_mail(uow, ident, user.id, email)
        await uow.commit()
        return SignedUp(merchant.id, user.id, merchant.slug, email)


async def verify_email(ident: Identity, token: str) -> None:
    uid, _, _ = _parse_action(token)
    async with ident.db.uow(system=True) as uow:
        user = await uow.session.get(StaffUser, uid)
        _check_action(ident.secret, "lianka:verify-email", token, user, user.email if user else "")
        assert user is not None
        if user.email_verified_at is None:
            user.email_verified_at = datetime.now(UTC)
        await uow.commit()


async def set_password(ident: Identity, token: str, password: str) -> uuid.UUID:
    """Set a password from an invitation link (single use: the link is bound to the old hash)."""
    uid, _, _ = _parse_action(token)
    new_hash = await passwords.hash_password(password)
    async with ident.db.uow(system=True) as uow:
        user = await uow.session.get(StaffUser, uid, with_for_update=True)
        _check_action(ident.secret, "lianka:set-password", token, user, (user.password_hash or "") if user else "")
        assert user is not None
        user.password_hash = new_hash
        user.password_changed_at = datetime.now(UTC)
        user.email_verified_at = user.email_verified_at or datetime.now(UTC)  # the link reached the inbox
        await uow.commit()
    await revoke_all_sessions(ident.db, "staff", uid)
    return uid


# --- forgot / reset password --------------------------------------------------------------------


async def request_password_reset(ident: Identity, email: str, ip: str) -> None:
    """Mail a reset link to ``email`` if it is an active staff account — and answer exactly the same
    when it is not (no account enumeration): a malformed address is a 400 whatever the accounts, the
    limits count unknown e-mails like known ones, and nothing else tells them apart.

    Limits (Redis, counted before anything else): :data:`RESET_PER_IP` requests per client address
    and :data:`RESET_PER_EMAIL` per e-mail per :data:`RESET_WINDOW`, then 429 ``rate-limited`` — so
    nobody can flood an inbox or spray the form. The link is signed (purpose ``lianka:reset-password``,
    1 hour) and bound to the current password hash; it travels through the outbox like every e-mail."""
    email = normalise_email(email)
    lim = ident.limiter
    if await lim.hit("reset-ip", ip, RESET_WINDOW) > RESET_PER_IP:
        raise RateLimited(
            "Too many reset requests from this address", retry_after=await lim.retry_after("reset-ip", ip)
        )
    if await lim.hit("reset-mail", email, RESET_WINDOW) > RESET_PER_EMAIL:
        raise RateLimited(
            "Too many reset requests for this address", retry_after=await lim.retry_after("reset-mail", email)
        )
    async with ident.db.uow(system=True) as uow:
        user = await uow.session.scalar(select(StaffUser).where(StaffUser.email == email))
        if user is None or user.disabled_at is not None:
            return
        await queue_password_reset_mail(uow, ident, user)
        await uow.commit()


async def _reset_user(uow: UnitOfWork, ident: Identity, token: str, *, lock: bool = False) -> StaffUser:
    """The active account a reset link is for, or :class:`InvalidToken`."""
    uid, _, _ = _parse_action(token)
    user = await uow.session.get(StaffUser, uid, with_for_update=lock)
    if user is not None and user.disabled_at is not None:
        user = None
    _check_action(ident.secret, RESET_PURPOSE, token, user, _reset_binding(user) if user else "")
    assert user is not None
    return user


async def check_reset_link(ident: Identity, token: str) -> str:
    """The e-mail of the account a reset link is for, or :class:`InvalidToken` (401) when the link is
    malformed, tampered with, expired, already used, or the password changed since it was sent."""
    async with ident.db.uow(system=True) as uow:
        return (await _reset_user(uow, ident, token)).email


async def reset_password(ident: Identity, token: str, new_password: str) -> uuid.UUID:
    """Set a new password from a reset link (sign-up's password policy), then end every session and
    bearer token of the account. The link is checked before the (slow) hash and again, row locked,
    before the write: two uses of one link set one password, the second is refused."""
    await check_reset_link(ident, token)
    new_hash = await passwords.hash_password(new_password)  # sign-up's policy, else 400 on "password"
    async with ident.db.uow(system=True) as uow:
        user = await _reset_user(uow, ident, token, lock=True)
        user.password_hash = new_hash
        user.password_changed_at = datetime.now(UTC)
        user.email_verified_at = user.email_verified_at or datetime.now(UTC)  # the link reached the inbox
        uid = user.id
        await uow.commit()
    await revoke_all_sessions(ident.db, "staff", uid)
    return uid


# --- password sign-in ---------------------------------------------------------------------------


async def authenticate_password(ident: Identity, email: str, password: str, ip: str) -> StaffUser:
    """The user for ``email`` + ``password``, or :class:`InvalidCredentials` — one answer for an
    unknown e-mail, a wrong password and a disabled account, in the same time (a dummy hash is
    verified when there is no real one).

    Every attempt is counted *before* the password is verified (see :func:`_admit_sign_in`), so
    parallel guesses cannot slip past the limits while the hash runs; a success takes its attempt
    back and clears its (e-mail, address) counter."""
    try:
        email = normalise_email(email)
    except ValidationFailed:
        email = email.strip().lower()[:320]
    await _admit_sign_in(ident, email, ip)
    async with ident.db.uow(system=True) as uow:
        user = await uow.session.scalar(select(StaffUser).where(StaffUser.email == email))
    usable = user is not None and user.disabled_at is None
    ok = await passwords.verify_password(user.password_hash if usable and user else None, password)
    if not ok or user is None:
        raise InvalidCredentials()
    await _forgive_sign_in(ident, email, ip)
    if user.password_hash and passwords.needs_rehash(user.password_hash):
        new_hash = await passwords.hash_password(password)
        async with ident.db.uow(system=True) as uow:
            await uow.session.execute(
                text("UPDATE staff_users SET password_hash = :h WHERE id = :i"), {"h": new_hash, "i": user.id}
            )
            await uow.commit()
    return user


async def _admit_sign_in(ident: Identity, email: str, ip: str) -> None:
    """Count this attempt, or refuse it. Three counters, each an atomic ``INCR`` then a compare:

    1. per client address over all e-mails (``max_logins_per_ip``): one address spraying accounts;
    2. per (e-mail, address) (``max_failed_logins``): guessing one account from one address locks
       only that address out of it — the owner signs in from elsewhere as usual;
    3. per e-mail over all addresses (``max_failed_logins_global``, higher): a distributed guess.

    A refused attempt stops at the first counter that refuses it, so an address that is already
    locked out cannot run up the per-e-mail ceiling and lock the owner out everywhere. The first
    lockout of each kind in a window e-mails the account's owner."""
    cfg, lim, window = ident.cfg, ident.limiter, ident.cfg.lockout_seconds
    if await lim.hit("login-ip", ip, window) > cfg.max_logins_per_ip:
        raise RateLimited(
            "Too many sign-in attempts from this address", retry_after=await lim.retry_after("login-ip", ip)
        )
    pair = f"{email}|{ip}"
    if await lim.hit("login-fail", pair, window) > cfg.max_failed_logins:
        await _notify_lockout(ident, email, ip, everywhere=False)
        raise AccountLocked(retry_after=await lim.retry_after("login-fail", pair))
    if await lim.hit("login-fail-all", email, window) > cfg.max_failed_logins_global:
        await _notify_lockout(ident, email, ip, everywhere=True)
        raise AccountLocked(retry_after=await lim.retry_after("login-fail-all", email))


async def _forgive_sign_in(ident: Identity, email: str, ip: str) -> None:
    """A successful sign-in: its own attempt no longer counts, nor do this address's earlier typos."""
    await ident.limiter.reset("login-fail", f"{email}|{ip}")
    await ident.limiter.undo("login-fail-all", email)
    await ident.limiter.undo("login-ip", ip)


async def _notify_lockout(ident: Identity, email: str, ip: str, *, everywhere: bool) -> None:
    """Tell the account's owner, once per lockout window and kind (not once per address: many
    addresses must not flood the inbox). Unknown or disabled e-mails get nothing."""
    kind = "login-notice-all" if everywhere else "login-notice"
    if not await ident.limiter.once(kind, email, ident.cfg.lockout_seconds):
        return
    minutes = max(1, ident.cfg.lockout_seconds // 60)
    async with ident.db.uow(system=True) as uow:
        user = await uow.session.scalar(select(StaffUser).where(StaffUser.email == email))
        if user is None or user.disabled_at is not None:
            return
        if everywhere:
            what = (
                "Sign-in to your Lianka account has been paused for every address after too many failed "
                f"attempts from several addresses. Try again in about {minutes} minutes."
            )
        else:
            what = (
                f"Sign-in to your Lianka account from the address {ip} has been paused for about {minutes} "
                "minutes after too many failed attempts. Sign-in from your other addresses still works."
            )
        await enqueue(
            uow,
            "send_email",
            queue="messages",
            to=user.email,
            subject="Lianka: failed sign-in attempts on your account",
            body=f"{what}\n\nIf this was not you, someone may be guessing your password: nothing has "
            "been changed, but choose a long, unique password.\n",
        )
        await uow.commit()


@dataclass(frozen=True)
class MerchantChoice:
    id: uuid.UUID
    slug: str
    name: str
    role: str
    branch_ids: list[uuid.UUID]


async def staff_merchants(db: Database, user_id: uuid.UUID) -> list[MerchantChoice]:
    """Every merchant ``user_id`` works for, with the role (system scope: before a tenant is chosen)."""
    async with db.uow(system=True) as uow:
        rows = (
            await uow.session.execute(
                text(
                    "SELECT m.id, m.slug, m.name, s.role, s.branch_ids FROM staff_memberships s "
                    "JOIN merchants m ON m.id = s.tenant_id WHERE s.user_id = :u ORDER BY m.name"
                ),
                {"u": user_id},
            )
        ).all()
    return [MerchantChoice(r.id, r.slug, r.name, r.role, list(r.branch_ids)) for r in rows]


async def resolve_merchant_ref(db: Database, ref: str) -> uuid.UUID:
    """A merchant id from an id or a slug (``X-Merchant``); whether the caller may act for it is
    checked against their membership afterwards."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        pass
    if not SLUG.match(ref):
        raise MerchantNotFound()
    async with db.uow(system=True) as uow:
        mid = await uow.session.scalar(select(Merchant.id).where(Merchant.slug == ref))
    if mid is None:
        raise MerchantNotFound()
    return mid


async def member_merchant(db: Database, ref: str, member_id: uuid.UUID) -> uuid.UUID:
    """The merchant ``ref`` (id or slug) when ``member_id`` has joined it; otherwise 404, exactly like
    a merchant that does not exist (a member learns nothing about merchants they have not joined)."""
    tenant = await resolve_merchant_ref(db, ref)
    async with db.uow(tenant) as uow:
        joined = await uow.session.scalar(select(Membership.member_id).where(Membership.member_id == member_id))
    if joined is None:
        raise MerchantNotFound()
    return tenant


async def issue_staff_token(
    ident: Identity,
    user_id: uuid.UUID,
    merchant: uuid.UUID | None,
    *,
    ttl: int | None = None,
    user_agent: str = "",
    ip: str | None = None,
    method: str = "password",
) -> tuple[str, int, uuid.UUID | None]:
    """A short-lived staff bearer token, anchored to a new session row (revocable). With exactly
    one employer, or ``merchant`` named, the token is bound to that merchant (``tid``)."""
    choices = await staff_merchants(ident.db, user_id)
    if merchant is not None:
        if merchant not in {c.id for c in choices}:
            raise MerchantNotFound()
        bound: uuid.UUID | None = merchant
    else:
        bound = choices[0].id if len(choices) == 1 else None
    ttl = ident.cfg.staff_token_ttl if ttl is None else ttl
    sess = await create_session(
        ident.db,
        kind="staff",
        subject_id=user_id,
        method=method,
        ttl=max(ttl, 1),
        cookie=False,
        user_agent=user_agent,
        ip=ip,
    )
    claims: dict[str, object] = {"sub": str(user_id), "kind": "staff", "sid": str(sess.id)}
    if bound:
        claims["tid"] = str(bound)
    token = await ident.keyring.sign(claims, ttl)
    return token, ttl, bound


async def start_staff_session(
    ident: Identity, user_id: uuid.UUID, method: str, *, user_agent: str = "", ip: str | None = None
) -> NewSession:
    return await create_session(
        ident.db,
        kind="staff",
        subject_id=user_id,
        method=method,
        ttl=ident.cfg.staff_session_ttl,
        cookie=True,
        user_agent=user_agent,
        ip=ip,
    )


# --- OpenID Connect linking ---------------------------------------------------------------------


async def link_oidc_identity(
    ident: Identity, issuer: str, subject: str, email: str | None, email_verified: bool
) -> uuid.UUID:
    """The staff user for an external identity: an existing link, else the staff account whose
    e-mail the provider has *verified* (then linked). Nobody is created here: staff accounts come
    from sign-up and invitations."""
    async with ident.db.uow(system=True) as uow:
        s = uow.session
        link = await s.get(OidcIdentity, (issuer, subject))
        if link is not None:
            user = await s.get(StaffUser, link.user_id)
            if user is None or user.disabled_at is not None:
                raise OidcFailed("This account is disabled")
            return user.id
        if not email or not email_verified:
            raise OidcFailed("The provider did not confirm a verified e-mail address")
        user = await s.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
        if user is None or user.disabled_at is not None:
            raise OidcFailed("No staff account uses this e-mail address")
        s.add(OidcIdentity(issuer=issuer, subject=subject, user_id=user.id, email=user.email))
        user.email_verified_at = user.email_verified_at or datetime.now(UTC)
        await uow.commit()
        return user.id
