"""Stored-value top-ups paid online: the ``top_up`` fulfilment, booked exactly like a till top-up
(``tenants/pos/stored_value.book_top_up``) with payment method ``online``, at the merchant's branch
coded ``ONLINE`` when it has one, else at HQ (no clearing: HQ took the money itself)."""

from __future__ import annotations

from datetime import UTC, datetime

from lianka.billing.payments import queries as q
from lianka.billing.payments.contract import PaidOrder
from lianka.billing.payments.registry import register
from lianka.platform.db import UnitOfWork
from lianka.tenants.pos.stored_value import book_top_up

KIND = "top_up"
SCOPE = "payments"


async def fulfil_top_up(uow: UnitOfWork, order: PaidOrder) -> None:
    await book_top_up(
        uow,
        member_id=order.member_id,
        plan_code=str(order.purpose["plan"]),
        branch_id=await q.online_branch(uow),
        payment_method="online",
        entry_key=f"payment:{order.order_id}",
        scope=SCOPE,
        business_time=min(order.paid_at, datetime.now(UTC)),  # never ahead of the clock the ledger reads
        refs={"order": str(order.order_id), "provider": order.provider, "provider_ref": order.provider_ref},
    )


register(KIND, fulfil_top_up)
