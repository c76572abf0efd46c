"""The demo shopper (development only): rings up sales for random demo members through the real
sale service, so a campaign's results page fills while ``make run`` runs (issue 16's "Done when").

Members who were sent a campaign message in the last week are likelier to come back (``RETURN_BIAS``)
and bring the campaign's coupon when they hold one — a crude customer, but it makes the uplift and
the coupons redeemed on the results page move. ``lianka demo shop`` rings up a few sales once;
``lianka run`` starts ``lianka demo shop --every 60`` beside the web process (``--no-shopper`` turns
it off). It never runs in production, and tests do not start it.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.errors import DomainError

#: the chance a sale is a recently messaged member's (when there are any)
RETURN_BIAS = 0.6

_MERCHANT = text("SELECT id FROM merchants WHERE slug = :slug")
_BRANCHES = text("SELECT id FROM branches ORDER BY code")
_MEMBERS = text("SELECT member_id FROM memberships ORDER BY member_id")
_MESSAGED = text(
    """
SELECT cm.member_id, coalesce(c.code, '')
FROM campaign_messages cm
LEFT JOIN coupons c ON c.tenant_id = cm.tenant_id AND c.id = cm.coupon_id AND c.status = 'issued'
WHERE cm.status IN ('sent', 'delivered') AND cm.sent_at > :since
ORDER BY cm.member_id
"""
)


@dataclass(frozen=True)
class DemoSale:
    member_id: uuid.UUID
    amount: int
    coupon: str
    messaged: bool


async def shop_once(db: Database, slug: str = "demo-tea", sales: int = 5, rng: random.Random | None = None,
                    now: datetime | None = None) -> list[DemoSale]:  # fmt: skip
    """Ring up ``sales`` sales for the merchant's members (the coupon of a recent campaign when the
    member holds it); returns what was rung up."""
    from lianka.tenants.pos import sales as pos
    from lianka.tenants.pos import schemas

    rng = rng or random.Random()
    now = now or datetime.now(UTC)
    async with db.uow(system=True) as uow:
        tenant = await uow.session.scalar(_MERCHANT, {"slug": slug})
    if tenant is None:
        raise ValueError(f"no merchant {slug!r}")
    async with db.uow(tenant) as uow:
        branches = list((await uow.session.scalars(_BRANCHES)).all())
        members = list((await uow.session.scalars(_MEMBERS)).all())
        messaged = [
            (m, str(code)) for m, code in await uow.session.execute(_MESSAGED, {"since": now - timedelta(days=7)})
        ]
    if not branches or not members:
        return []
    out = []
    for _ in range(sales):
        touched = bool(messaged) and rng.random() < RETURN_BIAS
        member, coupon = rng.choice(messaged) if touched else (rng.choice(members), "")
        amount = rng.randrange(30, 150) * 100
        basket = schemas.Basket(amount=amount, member_id=member, coupons=[coupon] if coupon else [])
        key = f"demo-shop-{uuid.uuid4().hex}"
        try:
            await pos.sale(db, tenant, basket, key, rng.choice(branches))
        except DomainError:  # the coupon was used already, or does not apply: buy without it
            coupon = ""
            await pos.sale(db, tenant, schemas.Basket(amount=amount, member_id=member), key + "-plain",
                           rng.choice(branches))  # fmt: skip
        if coupon:
            messaged = [(m, c) for m, c in messaged if c != coupon] + [(member, "")]
        out.append(DemoSale(member, amount, coupon, touched))
    return out
