"""The stand-in's payment side: Checkout Sessions in ``mode=payment``, PaymentIntents, Refunds and
their events (``checkout.session.completed``, ``payment_intent.succeeded``, ``charge.refunded``),
for member payments (decision 0033). Kept apart from the subscription side in ``__init__``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

if TYPE_CHECKING:
    from lianka.billing.stripe_standin import StripeStandin

Obj = dict[str, Any]

PAYMENT_METHODS = {"card", "alipay", "wechat_pay"}


@dataclass
class Payments:
    stripe: StripeStandin
    intents: dict[str, Obj] = field(default_factory=dict)
    refunds: dict[str, Obj] = field(default_factory=dict)
    #: what a new refund is: "succeeded", or "pending" (finished later by :meth:`settle_refund`)
    refund_status: str = "succeeded"

    def create_session(self, params: Obj) -> Obj:
        from lianka.billing.stripe_standin import StripeError

        items = params.get("line_items")
        if not isinstance(items, list) or len(items) != 1:
            raise StripeError(400, "line_items needs exactly one item in the stand-in", "parameter_invalid")
        price = items[0].get("price_data") or {}
        if not price.get("currency") or not str(price.get("unit_amount", "")).isdigit():
            raise StripeError(400, "line_items[].price_data needs currency and unit_amount", "parameter_invalid")
        methods = params.get("payment_method_types") or ["card"]
        if not set(methods) <= PAYMENT_METHODS:
            raise StripeError(400, f"payment_method_types {methods} not supported", "parameter_invalid")
        for url in ("success_url", "cancel_url"):
            if not params.get(url):
                raise StripeError(400, f"{url} is required", "parameter_missing")
        s = self.stripe
        sid = s._id("cs_test")
        amount = int(price["unit_amount"]) * int(items[0].get("quantity", 1))
        s.sessions[sid] = {
            "id": sid,
            "object": "checkout.session",
            "created": s.now(),
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": amount,
            "currency": price["currency"],
            "customer": params.get("customer"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "payment_method_types": methods,
            "payment_intent": None,
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "url": f"{s.public_base}/checkout/{sid}",
            "livemode": False,
            "_line_items": items,
            "_payment_intent_data": params.get("payment_intent_data", {}),
        }
        return s.sessions[sid]

    def complete(self, session_id: str, *, pay: bool = True) -> list[Obj]:
        """The member paid on the hosted page: a PaymentIntent and the events Stripe sends."""
        from lianka.billing.stripe_standin import StripeError

        s = self.stripe
        session = s.sessions[session_id]
        if session["status"] != "open":
            raise StripeError(400, "This Checkout Session is no longer open", "checkout_session_not_open")
        start = len(s.events)
        if not pay:
            session.update(status="expired")
            s._emit("checkout.session.expired", session)
            return s.events[start:]
        pid = s._id("pi")
        intent = {
            "id": pid,
            "object": "payment_intent",
            "created": s.now(),
            "amount": session["amount_total"],
            "amount_received": session["amount_total"],
            "currency": session["currency"],
            "status": "succeeded",
            "metadata": dict(session["_payment_intent_data"].get("metadata", {})),
            "latest_charge": s._id("ch"),
            "livemode": False,
        }
        self.intents[pid] = intent
        session.update(status="complete", payment_status="paid", payment_intent=pid)
        s._emit("checkout.session.completed", session)
        s._emit("payment_intent.succeeded", intent)
        return s.events[start:]

    def refund(self, params: Obj) -> Obj:
        from lianka.billing.stripe_standin import StripeError

        pid = params.get("payment_intent")
        intent = self.intents.get(str(pid))
        if intent is None:
            raise StripeError(400, f"No such payment_intent: '{pid}'", "resource_missing")
        refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == pid)
        amount = int(params.get("amount") or intent["amount_received"] - refunded)
        if amount <= 0 or refunded + amount > intent["amount_received"]:
            raise StripeError(400, "Refund amount is greater than the unrefunded amount", "amount_too_large")
        s = self.stripe
        rid = s._id("re")
        self.refunds[rid] = {
            "id": rid,
            "object": "refund",
            "created": s.now(),
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": pid,
            "charge": intent["latest_charge"],
            "status": self.refund_status,
            "metadata": params.get("metadata", {}),
        }
        s._emit(
            "charge.refunded",
            {
                "id": intent["latest_charge"],
                "object": "charge",
                "payment_intent": pid,
                "amount_refunded": refunded + amount,
                "metadata": intent["metadata"],
            },
        )
        return self.refunds[rid]

    def settle_refund(self, rid: str, status: str = "succeeded") -> list[Obj]:
        """A pending refund ends (``succeeded`` or ``failed``): the ``refund.updated`` (or
        ``refund.failed``) event Stripe sends."""
        refund = self.refunds[rid]
        refund["status"] = status
        if status == "failed":
            refund["failure_reason"] = "expired_or_canceled_card"
        start = len(self.stripe.events)
        self.stripe._emit("refund.failed" if status == "failed" else "refund.updated", refund)
        return self.stripe.events[start:]


def routes(standin: StripeStandin, call: Any, found: Any) -> list[Any]:
    """The payment routes, sharing the stand-in's authentication, idempotency and error handling."""
    pay = standin.payments

    @get("/v1/payment_intents/{oid:str}")
    async def intents_get(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        response: Response[Obj] = await call(request, lambda _: found(pay.intents, "payment_intent", oid))
        return response

    @post("/v1/refunds")
    async def refunds_create(request: Request[Any, Any, Any]) -> Response[Obj]:
        before = len(standin.events)
        response: Response[Obj] = await call(request, pay.refund)
        await standin._after(standin.events[before:])
        return response

    @get("/v1/refunds/{oid:str}")
    async def refunds_get(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        response: Response[Obj] = await call(request, lambda _: found(pay.refunds, "refund", oid))
        return response

    return [intents_get, refunds_create, refunds_get]
