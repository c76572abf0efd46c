"""What the member portal's pages read about one merchant the member belongs to, in that merchant's
scope and for the signed-in member's own id only.

The balances page and the history page read the CRM's member detail (``crm.detail``: balances,
pending points with their unlock dates, the next expiry, tier progress, coupons, purchases and the
points history) — the rules are the merchant's view's, never a second implementation — plus the
programme's names for the codes (points, tiers). Whether the member belongs to the merchant is
checked first (``platform.identity.services.member_merchant``): another merchant is 404 like an
unknown one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lianka.platform.db import Database
from lianka.platform.identity.services import member_merchant
from lianka.tenants.domain.programme import Tier
from lianka.tenants.models import Merchant
from lianka.tenants.services import crm
from lianka.tenants.services.programme import programme_at


@dataclass(frozen=True)
class MerchantFacts:
    slug: str
    name: str
    currency: str
    timezone: str


@dataclass(frozen=True)
class MyMerchant:
    """The member's page at one merchant."""

    merchant: MerchantFacts
    detail: dict[str, Any]
    points_name: str
    tiers: list[Tier]

    def tier_name(self, code: str | None) -> str | None:
        return next((t.name for t in self.tiers if t.code == code), None)

    @property
    def next_tier(self) -> Tier | None:
        progress = self.detail["tier"]["progress"]
        return next((t for t in self.tiers if progress and t.code == progress["tier"]), None)

    @property
    def coupons(self) -> dict[str, list[dict[str, Any]]]:
        """The member's coupons as a wallet shows them: ``valid`` (usable now), ``used``, ``expired``
        (past their end, or void)."""
        now = datetime.now(UTC)
        out: dict[str, list[dict[str, Any]]] = {"valid": [], "used": [], "expired": []}
        for c in self.detail["coupons"]:
            if c["status"] == "redeemed":
                out["used"].append(c)
            elif c["status"] == "issued" and (c["valid_until"] is None or c["valid_until"] > now):
                out["valid"].append(c)
            else:
                out["expired"].append(c)
        return out

    @property
    def progress_percent(self) -> int:
        """How far to the next tier, 0-100 (for the progress bar; whole percent, shown only)."""
        progress = self.detail["tier"]["progress"]
        if not progress or not progress["threshold"]:
            return 0
        return min(100, 100 * int(progress["have"]) // int(progress["threshold"]))


async def my_merchant(db: Database, merchant_ref: str, member_id: uuid.UUID) -> MyMerchant:
    """Read use case of ``/m/<merchant>`` and its history: NotFound unless the member belongs there.
    Commits because the first look at a member creates their profile row (as ``crm.member_detail``)."""
    tenant = await member_merchant(db, merchant_ref, member_id)
    async with db.uow(tenant) as uow:
        merchant = await uow.session.get(Merchant, tenant)
        assert merchant is not None
        detail = await crm.detail(uow, member_id)
        _, programme = await programme_at(uow)
        await uow.commit()
    return MyMerchant(
        MerchantFacts(merchant.slug, merchant.name, merchant.currency, merchant.timezone),
        detail,
        programme.points.name,
        programme.tiers_by_rank(),
    )
