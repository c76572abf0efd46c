"""Referral (老带新) from the member portal: every member has an invitation code at each merchant
they belong to, and a link ``/join/<merchant>?ref=<code>`` (with its QR code) to share.

A friend joining through the link gets the inviter as their **referrer** (``member_profiles.
referrer_member_id``); the programme's referral rule then rewards the referrer on the friend's first
qualifying purchase at the till (``rules.on_referral``, called by the POS sale, exactly once per
friend) and the sign-up rules welcome the friend as any new member. A friend who becomes a
*prospect* (the join rule asks for a purchase) keeps the inviter in ``self_joins`` until the till
enrols them (:func:`link`, from ``self_join.take_prospect``).

Refused, without failing the join: a code that is unknown or malformed (the friend joins without a
referrer), a person who is already a member (nobody is "referred" afterwards — which is also what
makes A → B → A impossible through links), oneself, and any referrer whose own chain of referrers
leads back to the member (a loop; ``crm.update_profile`` refuses it for staff too).

Codes are 8 characters from 31 that are not easily confused (no 0/O, 1/I/L): random, so they say
nothing about the card number, and unique per merchant (an index; a collision draws again).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy.exc import IntegrityError

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.identity.members import mask_phone
from lianka.platform.identity.services import member_merchant
from lianka.tenants import queries
from lianka.tenants import referral_queries as q
from lianka.tenants.domain.programme import Programme, RuleKind
from lianka.tenants.models import Merchant
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services import crm
from lianka.tenants.services.programme import programme_at

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8


class Outcome(StrEnum):
    """What became of the invitation a join carried."""

    LINKED = "linked"  # the inviter is the referrer (a prospect's: once the till enrols them)
    UNKNOWN = "unknown"  # no member of this merchant has that code: joined without a referrer
    REFUSED = "refused"  # already a member, oneself, or a loop: joined (or signed in) without it


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(ref: str | None) -> str | None:
    """A code as typed or carried by a link (case and spaces forgiven); None when it cannot be one."""
    code = (ref or "").strip().upper().replace("-", "").replace(" ", "")
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


async def code_of(uow: UnitOfWork, member_id: uuid.UUID) -> str:
    """The member's code at this merchant, made the first time it is asked for (building block)."""
    await queries.ensure_profile(uow, member_id)
    found = await q.referral_code(uow, member_id)
    while found is None:
        try:
            async with uow.session.begin_nested():
                found = await q.set_referral_code(uow, member_id, new_code())
        except IntegrityError:  # another member drew the same code: draw again
            found = None
    return found


async def referrer_by_code(uow: UnitOfWork, ref: str | None) -> uuid.UUID | None:
    code = normalise(ref)
    return await q.member_by_referral_code(uow, code) if code else None


async def loop_or_self(uow: UnitOfWork, member_id: uuid.UUID, referrer: uuid.UUID) -> str | None:
    """Why ``referrer`` cannot be ``member_id``'s referrer (``self``, ``loop``), or None."""
    if referrer == member_id:
        return "self"
    chain = await q.referral_chain(uow, referrer)
    if member_id in chain or len(chain) >= q.MAX_CHAIN:
        return "loop"
    return None


async def link(uow: UnitOfWork, member_id: uuid.UUID, referrer: uuid.UUID | None) -> Outcome | None:
    """Building block, for a member who has just joined (inside the join's transaction): ``referrer``
    becomes their referrer unless that is refused. None when there is no referrer to link."""
    if referrer is None:
        return None
    if await loop_or_self(uow, member_id, referrer) or not await queries.is_member(uow, referrer):
        return Outcome.REFUSED
    await crm.update_profile(uow, member_id, {"referrer_member_id": referrer})
    return Outcome.LINKED


# --- the "Invite friends" page -----------------------------------------------------------------


@dataclass(frozen=True)
class Friend:
    """A friend as the inviter sees them: the phone masked, and where they are."""

    phone_masked: str
    joined_at: datetime
    #: ``waiting`` (a prospect: no purchase yet), ``joined`` (no purchase yet), ``bought``
    stage: str
    points: int = 0
    coupon_name: str | None = None


@dataclass(frozen=True)
class ReferralRule:
    points: int
    min_spend: int
    coupon_name: str | None


@dataclass(frozen=True)
class Invite:
    merchant_slug: str
    merchant_name: str
    currency: str
    code: str
    link: str
    friends: list[Friend]
    points_earned: int
    rules: list[ReferralRule] = field(default_factory=list)
    #: what a friend gets for joining (the sign-up rules' points)
    welcome_points: int = 0
    points_name: str = ""


def join_link(public_url: str, slug: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/join/{slug}?ref={code}"


async def _rules(uow: UnitOfWork, programme: Programme) -> list[ReferralRule]:
    out = []
    for r in programme.rules:
        if r.kind == RuleKind.REFERRAL and r.active:
            template = await coupon_svc.get_template_by_code(uow, r.coupon_template) if r.coupon_template else None
            out.append(ReferralRule(r.points, r.min_spend, template.name if template else None))
    return out


async def invite(db: Database, merchant_ref: str, member_id: uuid.UUID, public_url: str) -> Invite:
    """Read use case of the "Invite friends" page and ``GET /portal/merchants/<m>/referral``: the
    member's code and link, the friends who joined through it and what each earned the member.
    NotFound unless the member belongs to the merchant. Commits (the code is made on first look)."""
    tenant = await member_merchant(db, merchant_ref, member_id)
    async with db.uow(tenant) as uow:
        merchant = await uow.session.get(Merchant, tenant)
        assert merchant is not None
        code = await code_of(uow, member_id)
        awards = {a.referee: a for a in await q.referral_awards(uow, member_id)}
        friends = []
        for f in await q.friends(uow, member_id):
            award = awards.get(str(f.member_id))
            stage = "waiting" if f.prospect else ("bought" if f.purchase_count or award else "joined")
            friends.append(
                Friend(
                    mask_phone(f.phone or ""),
                    f.joined_at,
                    stage,
                    award.points if award else 0,
                    award.coupon_name if award else None,
                )
            )
        _, programme = await programme_at(uow)
        rules = await _rules(uow, programme)
        welcome = sum(r.points for r in programme.rules if r.kind == RuleKind.SIGNUP and r.active)
        await uow.commit()
    return Invite(
        merchant.slug,
        merchant.name,
        merchant.currency,
        code,
        join_link(public_url, merchant.slug, code),
        friends,
        sum(a.points for a in awards.values()),
        rules,
        welcome,
        programme.points.name,
    )


async def invitation(db: Database, tenant: uuid.UUID, ref: str) -> str | None:
    """Read use case of the join page: ``valid`` when ``ref`` is a member's code at this merchant,
    ``unknown`` when not (the page says the friend joins without a referrer), None without a code."""
    if not ref:
        return None
    async with db.uow(tenant) as uow:
        return "valid" if await referrer_by_code(uow, ref) is not None else "unknown"
