"""One-time codes for *joining* a merchant from its join link (the portal's self-join).

Sign-in codes (:func:`lianka.platform.identity.members.request_otp`) reach only phones that belong
to a member; a join code must reach a phone that is nobody's yet. Everything else is the sign-in
code's contract, with the same limits (per client address, a resend pause and an hourly ceiling per
phone) and the same atomic count-before-compare guess script — plus a lockout: after
``otp_max_attempts`` wrong join codes in a row (any address) the phone may neither ask for nor use a
join code for ``lockout_seconds``. Sign-in keeps its own rule (one address cannot lock a member out
of their account), so a stranger guessing at a join can delay a join, never a member's sign-in
(decision 0027).

Keys and MACs have their own purpose, so a join code never signs anyone in and a sign-in code never
joins.
"""

from __future__ import annotations

import hashlib
import secrets

from lianka.platform.errors import RateLimited
from lianka.platform.identity import secrets_box
from lianka.platform.identity.errors import InvalidCredentials
from lianka.platform.identity.members import _OTP_GUESS, _otp_address_field, normalise_phone
from lianka.platform.identity.runtime import Identity

_PURPOSE = "lianka:join-otp"
#: the rate-limit and lockout counters (hashed subjects, see ``ratelimit.Limiter``)
IP_KIND, RESEND_KIND, HOUR_KIND, WRONG_KIND = "join-ip", "join-resend", "join-hour", "join-wrong"


def _key(phone: str) -> str:
    return "lk:otpj:" + hashlib.sha256(phone.encode()).hexdigest()[:32]


async def _refuse_if_locked(ident: Identity, phone: str) -> None:
    if await ident.limiter.count(WRONG_KIND, phone) >= ident.cfg.otp_max_attempts:
        raise RateLimited(
            "Too many wrong codes for this phone; try again later",
            retry_after=await ident.limiter.retry_after(WRONG_KIND, phone),
        )


async def request_join_code(ident: Identity, phone_raw: str, ip: str) -> str:
    """Text a 6-digit join code to ``phone_raw`` (any valid phone); returns the phone in E.164."""
    cfg = ident.cfg
    phone = normalise_phone(phone_raw)
    await _refuse_if_locked(ident, phone)
    if await ident.limiter.hit(IP_KIND, ip, 3600) > 20:
        raise RateLimited(
            "Too many codes requested from this address", retry_after=await ident.limiter.retry_after(IP_KIND, ip)
        )
    if await ident.limiter.count(RESEND_KIND, phone) > 0:
        raise RateLimited(
            "Wait before asking for another code", retry_after=await ident.limiter.retry_after(RESEND_KIND, phone)
        )
    if await ident.limiter.hit(HOUR_KIND, phone, 3600) > cfg.otp_per_hour:
        raise RateLimited(
            "Too many codes for this phone; try again later",
            retry_after=await ident.limiter.retry_after(HOUR_KIND, phone),
        )
    await ident.limiter.hit(RESEND_KIND, phone, cfg.otp_resend_seconds)
    code = f"{secrets.randbelow(1_000_000):06d}"
    digest = secrets_box.mac(ident.secret, _PURPOSE, f"{phone}.{code}")
    async with ident.redis.pipeline(transaction=True) as pipe:  # a new code starts with fresh counters
        pipe.delete(_key(phone))
        pipe.hset(_key(phone), mapping={"mac": digest, "attempts": 0})
        pipe.expire(_key(phone), cfg.otp_ttl)
        await pipe.execute()
    await ident.sms.send(
        phone, f"【联卡 Lianka】您的入会验证码是 {code}，{cfg.otp_ttl // 60} 分钟内有效。 Your join code: {code}"
    )
    return phone


async def verify_join_code(ident: Identity, phone_raw: str, code: str, ip: str) -> str:
    """The phone (E.164) when ``code`` is its live join code; the code then works no more. A wrong
    code is a 401; the ``otp_max_attempts``-th wrong one in a row locks the phone (429) for
    ``lockout_seconds`` and burns the live code."""
    cfg = ident.cfg
    phone = normalise_phone(phone_raw)
    await _refuse_if_locked(ident, phone)
    key = _key(phone)
    status, raw_mac, total = await ident.redis.eval(
        _OTP_GUESS, 1, key, _otp_address_field(ip), cfg.otp_max_attempts, cfg.otp_max_attempts_global
    )
    given = secrets_box.mac(ident.secret, _PURPOSE, f"{phone}.{code.strip()}")
    expected = raw_mac.decode() if isinstance(raw_mac, bytes) else str(raw_mac)
    if int(status) != 2 or not secrets_box.same(expected, given):
        if await ident.limiter.hit(WRONG_KIND, phone, cfg.lockout_seconds) >= cfg.otp_max_attempts:
            await ident.redis.delete(key)
            raise RateLimited(
                "Too many wrong codes for this phone; try again later",
                retry_after=await ident.limiter.retry_after(WRONG_KIND, phone),
            )
        if int(status) == 2 and int(total) >= cfg.otp_max_attempts_global:
            await ident.redis.delete(key)
        raise InvalidCredentials("The code is wrong or has expired")
    if not await ident.redis.delete(key):  # a concurrent request used it first
        raise InvalidCredentials("The code is wrong or has expired")
    await ident.limiter.reset(WRONG_KIND, phone)
    return phone
