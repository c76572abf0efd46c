"""Stripe Checkout in ``mode=payment`` (card, Alipay, WeChat Pay) through the real ``stripe`` SDK.

The Checkout Session and its PaymentIntent carry ``metadata`` naming the merchant and the order;
confirmation arrives as ``checkout.session.completed`` / ``payment_intent.succeeded`` through
billing's existing webhook endpoint and inbox (:mod:`lianka.billing.payments.events`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

from lianka.billing.payments.errors import NotificationInvalid, ProviderFailed
from lianka.billing.payments.providers import OrderRequest, Outcome, RefundState, RefundStatus, Started

PAYMENT_METHODS = ["card", "alipay", "wechat_pay"]


def metadata(tenant: uuid.UUID, order_id: uuid.UUID) -> dict[str, str]:
    return {"lianka_tenant": str(tenant), "lianka_order": str(order_id)}


class StripePayments:
    name = "stripe"

    def __init__(self, secret_key: str, api_base: str = "", webhook_secret: str = "") -> None:
        base: Any = {"api": api_base.rstrip("/")} if api_base else None
        self._client = stripe.StripeClient(
            secret_key, base_addresses=base, http_client=stripe.HTTPXClient(), max_network_retries=2
        )
        self._webhook_secret = webhook_secret

    async def create(self, request: OrderRequest) -> Started:
        meta = metadata(request.tenant_id, request.order_id)
        try:
            params: Any = {
                "mode": "payment",
                "payment_method_types": PAYMENT_METHODS,
                "payment_method_options": {"wechat_pay": {"client": "web"}},
                "client_reference_id": str(request.order_id),
                "success_url": request.return_url,
                "cancel_url": request.return_url,
                "metadata": meta,
                "payment_intent_data": {"metadata": meta},
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": request.currency.lower(),
                            "unit_amount": request.amount,
                            "product_data": {"name": request.description},
                        },
                    }
                ],
            }
            session = await self._client.v1.checkout.sessions.create_async(
                params=params, options={"idempotency_key": f"lianka-order-{request.order_id}"}
            )
        except stripe.StripeError as exc:
            raise ProviderFailed(f"Stripe: {exc.user_message or exc}") from None
        return Started(session.id, session.url)

    async def query(self, order_id: uuid.UUID, checkout_ref: str | None) -> Outcome:
        if checkout_ref is None:
            return Outcome(order_id, "pending")
        try:
            session = await self._client.v1.checkout.sessions.retrieve_async(checkout_ref)
        except stripe.StripeError as exc:
            raise ProviderFailed(f"Stripe: {exc.user_message or exc}") from None
        return session_outcome(session.to_dict(), order_id)

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
    ) -> RefundState:
        try:
            refund = await self._client.v1.refunds.create_async(
                params={
                    "payment_intent": provider_ref,
                    "amount": amount,
                    "metadata": {**metadata(tenant_id, order_id), "lianka_refund": str(refund_id)},
                },
                options={"idempotency_key": f"lianka-refund-{refund_id}"},
            )
        except stripe.StripeError as exc:
            raise ProviderFailed(f"Stripe: {exc.user_message or exc}") from None
        state = refund_state(refund.to_dict())
        if state.status == "failed":
            raise ProviderFailed(f"Stripe refund {refund.id} is {refund.status}")
        return state

    async def refund_status(self, refund_id: uuid.UUID, provider_ref: str) -> RefundState:
        try:
            refund = await self._client.v1.refunds.retrieve_async(provider_ref)
        except stripe.StripeError as exc:
            raise ProviderFailed(f"Stripe: {exc.user_message or exc}") from None
        return refund_state(refund.to_dict())

    async def verify(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        try:
            event = stripe.Webhook.construct_event(body, headers.get("stripe-signature"), self._webhook_secret)
        except (stripe.SignatureVerificationError, ValueError):
            raise NotificationInvalid() from None
        verified: dict[str, Any] = event.to_dict()
        return verified


def session_outcome(session: Mapping[str, Any], order_id: uuid.UUID) -> Outcome:
    meta = session.get("metadata") or {}
    tenant = meta.get("lianka_tenant")
    if session.get("payment_status") == "paid":
        return Outcome(
            order_id,
            "paid",
            provider_ref=str(session.get("payment_intent") or session.get("id")),
            amount=_int(session.get("amount_total")),
            currency=str(session.get("currency") or "").upper() or None,
            paid_at=datetime.now(UTC),
            tenant_ref=tenant,
        )
    if session.get("status") == "expired":
        return Outcome(order_id, "expired", tenant_ref=tenant)
    return Outcome(order_id, "pending", tenant_ref=tenant)


_REFUND_STATES: dict[str, RefundStatus] = {"succeeded": "succeeded", "pending": "pending", "requires_action": "pending"}


def refund_state(refund: Mapping[str, Any]) -> RefundState:
    """A Stripe Refund: succeeded, pending (or waiting on the customer), else failed / canceled."""
    raw = str(refund.get("status") or "")
    status = _REFUND_STATES.get(raw, "failed")
    reason = (
        None if status != "failed" else f"Stripe: refund {raw} ({refund.get('failure_reason') or 'no reason given'})"
    )
    return RefundState(str(refund.get("id") or ""), status, reason)


def event_outcome(event: Mapping[str, Any]) -> Outcome | None:
    """A member-payment outcome from a Stripe event, or None when the event is not about one (a
    subscription's checkout, say)."""
    obj = (event.get("data") or {}).get("object") or {}
    meta = obj.get("metadata") or {}
    try:
        order_id = uuid.UUID(str(meta.get("lianka_order")))
    except ValueError:
        return None
    kind = event.get("type")
    created = datetime.fromtimestamp(int(event.get("created") or 0), UTC)
    if kind in {"checkout.session.completed", "checkout.session.async_payment_succeeded"}:
        found = session_outcome(obj, order_id)
        return Outcome(
            order_id, found.state, found.provider_ref, found.amount, found.currency, created, found.tenant_ref
        )
    if kind == "checkout.session.expired":
        return Outcome(order_id, "expired", tenant_ref=meta.get("lianka_tenant"))
    if kind == "payment_intent.succeeded":
        return Outcome(
            order_id,
            "paid",
            provider_ref=str(obj.get("id")),
            amount=_int(obj.get("amount_received", obj.get("amount"))),
            currency=str(obj.get("currency") or "").upper() or None,
            paid_at=created,
            tenant_ref=meta.get("lianka_tenant"),
        )
    if kind == "payment_intent.payment_failed":
        return Outcome(order_id, "failed", tenant_ref=meta.get("lianka_tenant"))
    return Outcome(order_id, "pending", tenant_ref=meta.get("lianka_tenant"))  # e.g. charge.refunded: nothing to do


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None
