"""Members' global identity: phone (E.164), card number (Luhn), rotating QR token, enrolment,
look-up at the till, and portal sign-in by one-time code.

A member is one person everywhere; a merchant sees a member only through its own ``memberships``
row (RLS). Enrolment finds or creates the person in system scope and then, in the same
transaction, switches to the merchant's scope to write the membership. Issue 5 builds the
programme (points, tiers, profile) on :func:`enrol_member` and the ``memberships`` row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from lianka.platform.db import UnitOfWork
from lianka.platform.errors import NotFound, RateLimited, ValidationFailed
from lianka.platform.identity import secrets_box, sessions
from lianka.platform.identity.errors import InvalidCredentials
from lianka.platform.identity.runtime import Identity
from lianka.platform.log import get_logger

log = get_logger(__name__)
CARD_LENGTH = 12
QR_STEP = 30
QR_WINDOW = 3  # the current step and the two before it: a QR shown on a phone works ~60-90 s


# --- phone --------------------------------------------------------------------------------------


def normalise_phone(raw: str, region: str = "CN") -> str:
    """E.164 (``+8613812345678``) of a valid number; national numbers are read in ``region``."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        raise ValidationFailed("Not a phone number", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed("Not a valid phone number", field="phone")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def mask_phone(e164: str) -> str:
    return e164[:-8] + "****" + e164[-4:] if len(e164) > 8 else "****"


# --- card number --------------------------------------------------------------------------------


def luhn_check_digit(payload: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def is_valid_card_number(card: str) -> bool:
    return card.isdigit() and len(card) == CARD_LENGTH and card[0] != "0" and luhn_check_digit(card[:-1]) == card[-1]


def new_card_number() -> str:
    payload = str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(CARD_LENGTH - 2))
    return payload + luhn_check_digit(payload)


# --- QR token -----------------------------------------------------------------------------------


def qr_token(card: str, qr_secret: bytes, now: float | None = None) -> str:
    """``LK1.<card>.<step>.<mac>``: changes every :data:`QR_STEP` seconds; a screenshot goes stale."""
    step = int((now or time.time()) // QR_STEP)
    return f"LK1.{card}.{step}.{_qr_mac(card, qr_secret, step)}"


def _qr_mac(card: str, qr_secret: bytes, step: int) -> str:
    return hmac.new(qr_secret, f"{card}.{step}".encode(), hashlib.sha256).hexdigest()[:16]


def parse_qr(token: str) -> tuple[str, int, str]:
    parts = token.strip().split(".")
    if len(parts) != 4 or parts[0] != "LK1" or not parts[2].isdigit() or not is_valid_card_number(parts[1]):
        raise ValidationFailed("Not a Lianka QR code", field="qr")
    return parts[1], int(parts[2]), parts[3]


def qr_matches(card: str, qr_secret: bytes, step: int, mac: str, now: float | None = None) -> bool:
    current = int((now or time.time()) // QR_STEP)
    if not current - QR_WINDOW < step <= current:
        return False
    return hmac.compare_digest(_qr_mac(card, qr_secret, step), mac)


# --- enrolment and look-up ----------------------------------------------------------------------


@dataclass(frozen=True)
class MemberView:
    member_id: uuid.UUID
    card_number: str
    phone_masked: str
    branch_id: uuid.UUID | None
    joined_at: datetime


@dataclass(frozen=True)
class Enrolled:
    member: MemberView
    new_membership: bool


async def _find_or_create_person(uow: UnitOfWork, phone: str) -> uuid.UUID:
    """Within a system-scope transaction: the member id for ``phone`` (created with a fresh, unique
    card number if new)."""
    s = uow.session
    for _ in range(8):
        try:
            async with s.begin_nested():
                mid = await s.scalar(
                    text(
                        "INSERT INTO members (phone, card_number, qr_secret) VALUES (:p, :c, :q) "
                        "ON CONFLICT (phone) DO NOTHING RETURNING id"
                    ),
                    {"p": phone, "c": new_card_number(), "q": secrets.token_bytes(32)},
                )
        except IntegrityError:  # the random card number is taken: draw again
            continue
        if mid is None:
            mid = await s.scalar(text("SELECT id FROM members WHERE phone = :p"), {"p": phone})
        assert isinstance(mid, uuid.UUID)
        return mid
    raise RuntimeError("could not draw a unique card number")


OnJoin = Callable[[UnitOfWork, uuid.UUID], Awaitable[object]]


async def enrol_member(
    ident: Identity,
    tenant_id: uuid.UUID,
    phone: str,
    branch_id: uuid.UUID | None = None,
    *,
    on_join: OnJoin | None = None,
) -> Enrolled:
    """Enrol the person with ``phone`` at merchant ``tenant_id`` (idempotent: enrolling twice
    returns the existing membership). ``on_join(uow, member_id)`` runs in the same transaction when
    the membership is new (the programme's sign-up rules), so a membership never lacks its bonus."""
    phone = normalise_phone(phone)
    async with ident.db.uow(system=True) as uow:
        member_id = await _find_or_create_person(uow, phone)
        await uow.set_tenant(tenant_id)
        if branch_id is not None and not await uow.session.scalar(
            text("SELECT 1 FROM branches WHERE id = :b"), {"b": branch_id}
        ):
            raise NotFound("Branch not found", field="branch_id")
        created = await uow.session.scalar(
            text(
                "INSERT INTO memberships (tenant_id, member_id, branch_id) VALUES (:t, :m, :b) "
                "ON CONFLICT (tenant_id, member_id) DO NOTHING RETURNING true"
            ),
            {"t": tenant_id, "m": member_id, "b": branch_id},
        )
        if created and on_join is not None:
            await on_join(uow, member_id)
        view = await _membership_view(uow, "id", member_id)
        assert view is not None
        await uow.commit()
    return Enrolled(view, bool(created))


#: how a member is looked up: the SQL fragment is picked from constants, the value is bound
_MEMBER_BY = {"id": "m.id = :v", "card": "m.card_number = :v", "phone": "m.phone = :v"}


async def _membership_view(uow: UnitOfWork, by: str, value: object) -> MemberView | None:
    row = (
        await uow.session.execute(
            text(
                "SELECT m.id, m.card_number, m.phone, ms.branch_id, ms.joined_at FROM memberships ms "
                f"JOIN members m ON m.id = ms.member_id WHERE {_MEMBER_BY[by]}"
            ),
            {"v": value},
        )
    ).first()
    if row is None:
        return None
    return MemberView(row.id, row.card_number, mask_phone(row.phone), row.branch_id, row.joined_at)


async def get_member(ident: Identity, tenant_id: uuid.UUID, member_id: uuid.UUID) -> MemberView:
    async with ident.db.uow(tenant_id) as uow:
        view = await _membership_view(uow, "id", member_id)
    if view is None:
        raise NotFound("Member not found")
    return view


async def lookup_member(
    ident: Identity, tenant_id: uuid.UUID, *, card: str | None = None, phone: str | None = None, qr: str | None = None
) -> MemberView:
    """Find this merchant's member by card number, phone or a current QR token (the till)."""
    async with ident.db.uow(tenant_id) as uow:
        if qr:
            card_no, step, mac = parse_qr(qr)
            row = (
                await uow.session.execute(
                    text(
                        "SELECT m.qr_secret FROM memberships ms JOIN members m ON m.id = ms.member_id "
                        "WHERE m.card_number = :c"
                    ),
                    {"c": card_no},
                )
            ).first()
            if row is None or not qr_matches(card_no, bytes(row.qr_secret), step, mac):
                raise NotFound("Member not found (or the QR code has expired)")
            view = await _membership_view(uow, "card", card_no)
        elif card:
            view = await _membership_view(uow, "card", card.strip()) if is_valid_card_number(card.strip()) else None
        elif phone:
            view = await _membership_view(uow, "phone", normalise_phone(phone))
        else:
            raise ValidationFailed("Give card, phone or qr")
    if view is None:
        raise NotFound("Member not found")
    return view


# --- portal: one-time codes ---------------------------------------------------------------------


def _otp_key(phone: str) -> str:
    return "lk:otp:" + hashlib.sha256(phone.encode()).hexdigest()[:32]


def _otp_address_field(ip: str) -> str:
    return "a:" + hashlib.sha256(ip.encode()).hexdigest()[:16]


#: Count one guess at the live code *before* it is compared — atomically, so parallel guesses
#: cannot all read the code before any of them is counted. Per client address first (an address
#: over its limit is refused without touching the total, so it cannot burn the code for everyone),
#: then over all addresses (over the total, the code is burnt). Returns {status, mac, total}:
#: status 0 = no live code, 1 = this address has used its guesses, 2 = compare against mac.
_OTP_GUESS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, '', 0} end
if redis.call('HINCRBY', KEYS[1], ARGV[1], 1) > tonumber(ARGV[2]) then return {1, '', 0} end
local total = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if total > tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return {0, '', total}
end
return {2, redis.call('HGET', KEYS[1], 'mac'), total}
"""


async def request_otp(ident: Identity, phone_raw: str, ip: str) -> None:
    """Send a 6-digit sign-in code to a member's phone. The answer is the same whether or not the
    phone belongs to a member (only members get an SMS)."""
    cfg = ident.cfg
    phone = normalise_phone(phone_raw)
    if await ident.limiter.hit("otp-ip", ip, 3600) > 20:
        raise RateLimited(
            "Too many codes requested from this address", retry_after=await ident.limiter.retry_after("otp-ip", ip)
        )
    if await ident.limiter.count("otp-resend", phone) > 0:
        raise RateLimited(
            "Wait before asking for another code", retry_after=await ident.limiter.retry_after("otp-resend", phone)
        )
    if await ident.limiter.hit("otp-hour", phone, 3600) > cfg.otp_per_hour:
        raise RateLimited(
            "Too many codes for this phone; try again later",
            retry_after=await ident.limiter.retry_after("otp-hour", phone),
        )
    await ident.limiter.hit("otp-resend", phone, cfg.otp_resend_seconds)
    async with ident.db.uow(system=True) as uow:
        known = await uow.session.scalar(text("SELECT 1 FROM members WHERE phone = :p"), {"p": phone})
    if not known:
        return
    code = f"{secrets.randbelow(1_000_000):06d}"
    digest = secrets_box.mac(ident.secret, "lianka:otp", f"{phone}.{code}")
    async with ident.redis.pipeline(transaction=True) as pipe:  # a new code starts with fresh counters
        pipe.delete(_otp_key(phone))
        pipe.hset(_otp_key(phone), mapping={"mac": digest, "attempts": 0})
        pipe.expire(_otp_key(phone), cfg.otp_ttl)
        await pipe.execute()
    await ident.sms.send(
        phone, f"【联卡 Lianka】您的登录验证码是 {code}，{cfg.otp_ttl // 60} 分钟内有效。 Your sign-in code: {code}"
    )


async def verify_otp(ident: Identity, phone_raw: str, code: str, ip: str) -> uuid.UUID:
    """The member id when ``code`` is the live code for the phone. Each code works once; each client
    address has ``otp_max_attempts`` guesses at it and all addresses together
    ``otp_max_attempts_global``, after which the code is burnt. Every refusal is the same 401."""
    cfg = ident.cfg
    phone = normalise_phone(phone_raw)
    key = _otp_key(phone)
    status, raw_mac, total = await ident.redis.eval(
        _OTP_GUESS, 1, key, _otp_address_field(ip), cfg.otp_max_attempts, cfg.otp_max_attempts_global
    )
    if int(status) != 2:
        raise InvalidCredentials("The code is wrong or has expired")
    expected = raw_mac.decode() if isinstance(raw_mac, bytes) else str(raw_mac)
    given = secrets_box.mac(ident.secret, "lianka:otp", f"{phone}.{code.strip()}")
    if not secrets_box.same(expected, given):
        if int(total) >= cfg.otp_max_attempts_global:
            await ident.redis.delete(key)
        raise InvalidCredentials("The code is wrong or has expired")
    if not await ident.redis.delete(key):  # a concurrent request used it first
        raise InvalidCredentials("The code is wrong or has expired")
    async with ident.db.uow(system=True) as uow:
        member_id = await uow.session.scalar(text("SELECT id FROM members WHERE phone = :p"), {"p": phone})
    if member_id is None:
        raise InvalidCredentials("The code is wrong or has expired")
    assert isinstance(member_id, uuid.UUID)
    return member_id


# --- portal: the member's own view --------------------------------------------------------------


async def enter_member_scope(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    """Let this transaction read the member's own rows across merchants (and nothing else)."""
    await uow.session.execute(text("SELECT set_config('app.member_id', :m, true)"), {"m": str(member_id)})


@dataclass(frozen=True)
class PortalMembership:
    merchant_id: uuid.UUID
    merchant_slug: str
    merchant_name: str
    joined_at: datetime


@dataclass(frozen=True)
class PortalView:
    member_id: uuid.UUID
    card_number: str
    phone_masked: str
    memberships: list[PortalMembership]


async def portal_view(ident: Identity, member_id: uuid.UUID) -> PortalView:
    async with ident.db.uow() as uow:
        await enter_member_scope(uow, member_id)
        m = (await uow.session.execute(text("SELECT id, card_number, phone FROM members"))).one()
        rows = (
            await uow.session.execute(
                text(
                    "SELECT mc.id, mc.slug, mc.name, ms.joined_at FROM memberships ms "
                    "JOIN merchants mc ON mc.id = ms.tenant_id ORDER BY ms.joined_at"
                )
            )
        ).all()
    return PortalView(
        m.id, m.card_number, mask_phone(m.phone), [PortalMembership(r.id, r.slug, r.name, r.joined_at) for r in rows]
    )


async def current_qr(ident: Identity, member_id: uuid.UUID) -> tuple[str, int]:
    async with ident.db.uow() as uow:
        await enter_member_scope(uow, member_id)
        row = (await uow.session.execute(text("SELECT card_number, qr_secret FROM members"))).one()
    now = time.time()
    return qr_token(row.card_number, bytes(row.qr_secret), now), QR_STEP - int(now) % QR_STEP


async def rotate_qr_secret(ident: Identity, member_id: uuid.UUID) -> None:
    """A new QR secret (e.g. after a lost phone): every QR code shown so far stops working."""
    async with ident.db.uow(system=True) as uow:
        await uow.session.execute(
            text("UPDATE members SET qr_secret = :q WHERE id = :m"), {"q": secrets.token_bytes(32), "m": member_id}
        )
        await uow.commit()


#: erased people's phones: +999 (a country code the ITU keeps unassigned) and 11 random digits —
#: still unique and E.164-shaped for the column, never a number anyone can receive a code on
ERASED_PHONE_PREFIX = "+999"


async def phone_matches(ident: Identity, member_id: uuid.UUID, typed: str) -> bool:
    """Whether ``typed`` is the member's own phone (erasure is confirmed by re-typing it)."""
    try:
        phone = normalise_phone(typed)
    except ValidationFailed:
        return False
    async with ident.db.uow() as uow:
        await enter_member_scope(uow, member_id)
        mine = await uow.session.scalar(text("SELECT phone FROM members"))
    return mine is not None and secrets.compare_digest(str(mine), phone)


async def erase_person(ident: Identity, member_id: uuid.UUID) -> None:
    """Erase the person everywhere (PIPL, decision 0029): the phone becomes a pseudonym, the QR
    secret a new one (every code shown so far stops working), every portal session is revoked. The
    row, its id and card number stay: the ledger's accounts keep the account, not the person. Once
    erased, again is a no-op."""
    async with ident.db.uow(system=True) as uow:
        erased = await uow.session.scalar(text("SELECT erased_at FROM members WHERE id = :m"), {"m": member_id})
        if erased is None:
            while True:
                pseudonym = ERASED_PHONE_PREFIX + f"{secrets.randbelow(10**11):011d}"
                done = await uow.session.execute(
                    text(
                        "UPDATE members SET phone = :p, qr_secret = :q, erased_at = now() WHERE id = :m "
                        "AND NOT EXISTS (SELECT 1 FROM members WHERE phone = :p)"
                    ),
                    {"p": pseudonym, "q": secrets.token_bytes(32), "m": member_id},
                )
                if getattr(done, "rowcount", 0):
                    break
            await uow.commit()
    await sessions.revoke_all_sessions(ident.db, "member", member_id)


async def is_erased(ident: Identity, member_id: uuid.UUID) -> bool:
    async with ident.db.uow() as uow:
        await enter_member_scope(uow, member_id)
        return await uow.session.scalar(text("SELECT erased_at FROM members")) is not None
