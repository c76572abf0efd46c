"""The payment-provider interface and what crosses it (decision 0033).

A provider creates a payment for an order (a page to redirect to, or the parameters a WeChat
JSAPI/H5 client needs), answers the reconciliation poll, refunds, and verifies and parses its own
notifications. Confirmation itself (marking paid and delivering) is the payments services' job, the
same whichever provider confirmed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

State = Literal["paid", "pending", "failed", "expired"]
RefundStatus = Literal["succeeded", "pending", "failed"]


@dataclass(frozen=True)
class RefundState:
    """What the provider says of one refund: its reference and whether the money is back yet
    (``pending``: accepted, the bank still working — a notification or the poll finishes it)."""

    provider_ref: str
    status: RefundStatus
    reason: str | None = None


@dataclass(frozen=True)
class Started:
    """A payment created at the provider: its reference (session / prepay id), where to send the
    member, or the parameters for the client."""

    checkout_ref: str
    redirect_url: str | None
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What the provider says about one order (the poll's answer or a parsed notification)."""

    order_id: uuid.UUID
    state: State
    provider_ref: str | None = None
    amount: int | None = None
    currency: str | None = None
    paid_at: datetime | None = None
    #: the merchant the provider's object names (metadata / the notification's URL)
    tenant_ref: str | None = None


@dataclass(frozen=True)
class OrderRequest:
    tenant_id: uuid.UUID
    order_id: uuid.UUID
    amount: int
    currency: str
    description: str
    return_url: str
    notify_url: str
    channel: str = "h5"  # WeChat Pay: "h5" | "jsapi"
    openid: str | None = None
    client_ip: str = "127.0.0.1"


class Provider(Protocol):
    name: str

    async def create(self, request: OrderRequest) -> Started: ...

    async def query(self, order_id: uuid.UUID, checkout_ref: str | None) -> Outcome: ...

    async def refund(
        self,
        order_id: uuid.UUID,
        provider_ref: str,
        *,
        refund_id: uuid.UUID,
        amount: int,
        total: int,
        currency: str,
        tenant_id: uuid.UUID,
    ) -> RefundState: ...

    async def refund_status(self, refund_id: uuid.UUID, provider_ref: str) -> RefundState: ...

    async def verify(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]: ...
