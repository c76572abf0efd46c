"""What a paid member order hands to the part of Lianka that delivers what was bought.

Member payments (``billing/payments``) own orders, providers (Stripe Checkout, WeChat Pay) and the
exactly-once confirmation; what a confirmed order *delivers* belongs to the area that sells it: a
stored-value top-up credits the wallet, a paid membership starts a membership term. Each kind
registers one :data:`Fulfil` building block under its order kind; the payments area calls it once,
inside the transaction that marks the order paid, so the order is paid and delivered together or not
at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lianka.platform.db import UnitOfWork


@dataclass(frozen=True, slots=True)
class PaidOrder:
    """A member order the provider has confirmed, as the fulfilment sees it (tenant scope)."""

    tenant_id: uuid.UUID
    order_id: uuid.UUID
    member_id: uuid.UUID
    kind: str  # "top_up" | "membership"
    purpose: Mapping[str, Any]  # what was bought: {"plan": code} for a top-up, {"product": code} for a membership
    amount: int  # minor units actually paid
    currency: str
    provider: str  # "stripe" | "wechatpay" | "till"
    provider_ref: str  # the provider's payment id (idempotency anchor for the ledger entry)
    paid_at: datetime


Fulfil = Callable[[UnitOfWork, PaidOrder], Awaitable[None]]
"""A building block (takes the unit of work, never commits) that delivers a paid order exactly once:
it is called once per order, and must itself be safe to call again (post its ledger entry under the
key ``f"payment:{order_id}"``)."""
