"""The coupon centre (领券中心) of the member portal: the coupon templates a merchant marks
``claimable``, listed for a member with the stock left and how many more they may hold, and claimed
by the member themselves.

A claim is an ordinary issue (``coupons.issue``: active, not expired, one unit of stock taken
atomically, the per-member limit under its lock), exactly once under the member's Idempotency-Key
(a double tap books one coupon). A template that is not claimable is a 404 to a member, as an
unknown one: the centre offers only what the merchant chose to offer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec

from lianka.platform import idempotency
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound
from lianka.tenants import referral_queries
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import coupon_admin, coupons, rules


class Offer(msgspec.Struct):
    """A claimable template as one member sees it."""

    template: schemas.TemplateOut
    #: coupons of this template the member holds (any status; the per-member limit counts them all)
    held: int
    #: how many more the member may claim (None: no limit)
    left_for_member: int | None
    can_claim: bool
    #: why not: "" (they can), "sold-out", "limit-reached"
    reason: str


async def offers(db: Database, tenant: uuid.UUID, member_id: uuid.UUID, *, now: datetime | None = None) -> list[Offer]:
    """Read use case: the active, unexpired claimable templates, oldest first, as ``member_id`` sees them."""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        await rules.require_member(uow, member_id)
        held = await referral_queries.coupons_held(uow, member_id)
        out = []
        for t in await coupons.list_templates(uow, active=True):
            if not t.claimable or (t.valid_until is not None and t.valid_until <= now):
                continue
            mine = held.get(t.id, 0)
            left = None if t.per_member_limit is None else max(t.per_member_limit - mine, 0)
            sold_out = t.stock_total is not None and t.issued_count >= t.stock_total
            reason = "sold-out" if sold_out else ("limit-reached" if left == 0 else "")
            out.append(Offer(coupon_admin.template_out(t), mine, left, not reason, reason))
        return out


async def claim(
    db: Database,
    tenant: uuid.UUID,
    template_id: uuid.UUID,
    member_id: uuid.UUID,
    key: str,
    *,
    now: datetime | None = None,
) -> tuple[schemas.CouponOut, bool]:
    """Use case: the member claims one coupon of a claimable template, exactly once under ``key``.
    Returns (coupon, replayed); refusals are the issue rules' (sold out, limit reached, inactive)."""

    async def work(uow: UnitOfWork) -> schemas.CouponOut:
        t = await coupons.get_template(uow, template_id)
        if not t.claimable:
            raise NotFound("coupon template not found")
        await rules.require_member(uow, member_id)
        c = await coupons.issue(uow, t.id, member_id, source="portal", now=now or datetime.now(UTC))
        await uow.session.refresh(c)
        return coupon_admin.coupon_out(c, t)

    return await idempotency.once(
        db, tenant, "coupons.claim", key, (str(template_id), str(member_id)), schemas.CouponOut, work
    )
