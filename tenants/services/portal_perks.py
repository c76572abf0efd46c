"""What the member portal's check-in, rewards, coupon centre and invitation pages read besides their
use cases (``checkin``, ``rewards``, ``coupon_centre``, ``referrals``): the merchant as the pages
show it, and the member's redemptions with the names of the reward and of the pickup branch."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lianka.platform.db import Database
from lianka.platform.identity.services import member_merchant
from lianka.tenants.catalogue import schemas
from lianka.tenants.models import Merchant
from lianka.tenants.services import branches, rewards
from lianka.tenants.services.member_portal import MerchantFacts
from lianka.tenants.services.programme import programme_at


@dataclass(frozen=True)
class MerchantPage:
    tenant: uuid.UUID
    merchant: MerchantFacts
    points_name: str


async def merchant_page(db: Database, merchant_ref: str, member_id: uuid.UUID) -> MerchantPage:
    """NotFound unless the member belongs to the merchant (another's is 404 like an unknown one)."""
    tenant = await member_merchant(db, merchant_ref, member_id)
    async with db.uow(tenant) as uow:
        m = await uow.session.get(Merchant, tenant)
        assert m is not None
        _, programme = await programme_at(uow)
    return MerchantPage(tenant, MerchantFacts(m.slug, m.name, m.currency, m.timezone), programme.points.name)


@dataclass(frozen=True)
class MyRedemption:
    redemption: schemas.RedemptionOut
    reward_name: str
    branch_name: str | None


async def my_redemptions(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> list[MyRedemption]:
    """The member's redemptions, newest first (the checked use case ``rewards.redemptions``)."""
    mine = await rewards.redemptions(db, tenant, member_id=member_id)
    names = {r.id: r.name for r in await rewards.list_rewards(db, tenant)}
    places = {b.id: b.name for b in await branches.branches(db, tenant)}
    return [
        MyRedemption(
            r, names.get(r.reward_id, r.reward_code), places.get(r.pickup_branch_id) if r.pickup_branch_id else None
        )
        for r in mine
    ]
