"""A local stand-in for the slice of Stripe's REST API that Lianka's billing calls through the real
``stripe`` SDK, and for Stripe's signed webhooks — so tests and local runs never leave the machine.

Why not ``localstripe`` (decision 0031): it has no Checkout Sessions, no customer-portal sessions and
no Prices (only the legacy Plans), keeps one global store that it pickles to ``/tmp``, and is GPL-3.
What Lianka calls is small, so this stand-in speaks exactly that, in Stripe's shapes:

* ``POST/GET /v1/customers[/{id}]``
* ``POST/GET /v1/checkout/sessions[/{id}]`` (mode ``subscription``, ``line_items[].price_data``)
* ``GET/POST/DELETE /v1/subscriptions/{id}`` (retrieve; update: ``cancel_at_period_end``, a plan
  change as ``items[0][id]`` + ``items[0][price_data]`` with ``proration_behavior``; cancel)
* ``POST /v1/customers/{id}`` (``email``), ``GET /v1/invoices/{id}``
* ``POST /v1/billing_portal/sessions``
* Connect (accounts, account links, transfers and reversals): ``connect.py``
* member payments (``payments.py``): sessions in ``mode=payment``, ``GET /v1/payment_intents/{id}``,
  ``POST/GET /v1/refunds``
* ``POST /v1/billing/meter_events`` (metered usage; a repeated ``identifier`` is not counted twice)
* Stripe's error body (``{"error": {"type", "code", "message"}}``), bearer-key authentication and
  ``Idempotency-Key`` (the same key answers the first response again).

What a person does on Stripe's hosted pages is simulated by methods (and, to click through locally,
by ``GET /checkout/{id}`` with a *Pay* button): :meth:`StripeStandin.complete_checkout`,
:meth:`fail_payment`, :meth:`pay`, :meth:`cancel`. Each makes the events Stripe would
(``checkout.session.completed``, ``customer.subscription.*``, ``invoice.paid`` /
``invoice.payment_failed``) with strictly increasing ``created`` seconds, and — unless
``auto_deliver`` is off — POSTs them to the webhook URL signed like Stripe
(``Stripe-Signature: t=<created>,v1=<HMAC-SHA256 of "t.payload" with the secret>``). Tests may hold
them and :meth:`deliver` them in any order, any number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import httpx
from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect

from lianka.billing.stripe_standin.connect import ConnectMixin, connect_routes

if TYPE_CHECKING:
    from lianka.billing.stripe_standin.payments import Payments

Obj = dict[str, Any]
MONTH_SECONDS = 30 * 86_400


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header Stripe sends for ``payload``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def unflatten(pairs: list[tuple[str, str]]) -> Obj:
    """Stripe's form encoding (``a[b][0][c]=v``) back into nested dicts and lists."""
    root: Obj = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for here, nxt in zip(parts, [*parts[1:], None], strict=True):
            if nxt is None:
                node[here] = value
            else:
                node = node.setdefault(here, {})
    unflattened: Obj = _lists(root)
    return unflattened


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        fixed = {k: _lists(v) for k, v in node.items()}
        if fixed and all(k.isdigit() for k in fixed):
            return [fixed[k] for k in sorted(fixed, key=int)]
        return fixed
    return node


class StripeError(Exception):
    def __init__(self, status: int, message: str, code: str = "", type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.type = status, message, code, type_


@dataclass
class Delivery:
    event: Obj
    status: int


@dataclass
class StripeStandin(ConnectMixin):
    api_key: str
    webhook_secret: str
    webhook_url: str = ""
    #: the address the hosted pages (checkout, portal) are served from; set by :meth:`serve`
    public_base: str = "http://127.0.0.1"
    auto_deliver: bool = True
    customers: dict[str, Obj] = field(default_factory=dict)
    sessions: dict[str, Obj] = field(default_factory=dict)
    subscriptions: dict[str, Obj] = field(default_factory=dict)
    invoices: dict[str, Obj] = field(default_factory=dict)
    meter_events: dict[str, Obj] = field(default_factory=dict)
    products: dict[str, Obj] = field(default_factory=dict)
    portal_sessions: dict[str, Obj] = field(default_factory=dict)
    events: list[Obj] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: every price change: subscription, old and new unit amount, proration behaviour
    prorations: list[Obj] = field(default_factory=list)
    #: where ``lianka run``'s stand-in keeps its objects between restarts (``None``: memory only)
    state_file: Path | None = None
    _idempotent: dict[str, tuple[int, Obj]] = field(default_factory=dict)
    _clock: int = 0
    payments: Payments = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from lianka.billing.stripe_standin.payments import Payments

        self.payments = Payments(self)

    # --- state across restarts (``lianka run``) --------------------------------------------------------

    _STATE = ("customers", "sessions", "subscriptions", "invoices", "meter_events", "products", "portal_sessions")

    def load(self) -> None:
        """The objects saved by an earlier run, if any (a merchant's Stripe customer survives a restart)."""
        if self.state_file is None or not self.state_file.exists():
            return
        saved = json.loads(self.state_file.read_text())
        for name in self._STATE:
            getattr(self, name).update(saved.get(name, {}))
        self._clock = int(saved.get("clock", 0))

    def save(self) -> None:
        if self.state_file is None:
            return
        state = {name: getattr(self, name) for name in self._STATE} | {"clock": self._clock}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)

    # --- ids and time ------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(12)}"

    def now(self) -> int:
        """Seconds, strictly increasing from call to call (events never share a ``created``)."""
        self._clock = max(int(time.time()), self._clock + 1)
        return self._clock

    # --- the REST API ------------------------------------------------------------------------------

    def create_customer(self, params: Obj) -> Obj:
        cid = self._id("cus")
        self.customers[cid] = {
            "id": cid,
            "object": "customer",
            "created": self.now(),
            "email": params.get("email"),
            "name": params.get("name"),
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "livemode": False,
        }
        return self.customers[cid]

    def create_checkout_session(self, params: Obj) -> Obj:
        if params.get("mode") == "payment":
            return self.payments.create_session(params)
        if params.get("mode") != "subscription":
            raise StripeError(400, "Only mode=subscription is supported by the stand-in", "parameter_invalid")
        customer = params.get("customer")
        if customer not in self.customers:
            raise StripeError(400, f"No such customer: '{customer}'", "resource_missing")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise StripeError(400, "line_items is required", "parameter_missing")
        for item in items:
            price = item.get("price_data") or {}
            if not price.get("currency") or not str(price.get("unit_amount", "")).isdigit():
                raise StripeError(400, "line_items[].price_data needs currency and unit_amount", "parameter_invalid")
        for url in ("success_url", "cancel_url"):
            if not params.get(url):
                raise StripeError(400, f"{url} is required", "parameter_missing")
        sid = self._id("cs_test")
        self.sessions[sid] = {
            "id": sid,
            "object": "checkout.session",
            "created": self.now(),
            "mode": "subscription",
            "status": "open",
            "payment_status": "unpaid",
            "customer": customer,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "subscription": None,
            "url": f"{self.public_base}/checkout/{sid}",
            "livemode": False,
            "_line_items": items,
            "_subscription_data": params.get("subscription_data", {}),
        }
        return self.sessions[sid]

    def create_portal_session(self, params: Obj) -> Obj:
        customer = params.get("customer")
        if customer not in self.customers:
            raise StripeError(400, f"No such customer: '{customer}'", "resource_missing")
        pid = self._id("bps")
        self.portal_sessions[pid] = {
            "id": pid,
            "object": "billing_portal.session",
            "created": self.now(),
            "customer": customer,
            "return_url": params.get("return_url"),
            "url": f"{self.public_base}/portal/{pid}",
            "livemode": False,
        }
        return self.portal_sessions[pid]

    def update_customer(self, cid: str, params: Obj) -> Obj:
        if cid not in self.customers:
            raise StripeError(404, f"No such customer: '{cid}'", "resource_missing")
        customer = self.customers[cid]
        for key in ("email", "name", "description"):
            if key in params:
                customer[key] = params[key] or None
        if "metadata" in params:
            customer["metadata"] = {**customer["metadata"], **params["metadata"]}
        return customer

    def update_subscription(self, sub_id: str, params: Obj) -> Obj:
        """``cancel_at_period_end``, ``metadata``, and a plan change: ``items[0][id]`` with a new
        ``price_data`` (the stand-in keeps one item). ``proration_behavior``: ``always_invoice``
        invoices (and collects) the prorated difference at once, ``create_prorations`` leaves it for
        the next invoice, ``none`` prorates nothing — as Stripe does."""
        sub = self._subscription(sub_id)
        if sub["status"] == "canceled":
            raise StripeError(
                400, "A canceled subscription can only update its cancellation_details", "resource_missing"
            )
        if "cancel_at_period_end" in params:
            sub["cancel_at_period_end"] = params["cancel_at_period_end"] in ("true", True)
        if "metadata" in params:
            sub["metadata"] = {**sub["metadata"], **params["metadata"]}
        proration: Obj | None = None
        items = params.get("items")
        if items:
            proration = self._change_price(sub, items, str(params.get("proration_behavior", "create_prorations")))
        self._emit("customer.subscription.updated", sub)
        if proration is not None:
            self._invoice(sub, paid=True, amount=proration["amount"], reason="subscription_update")
        return sub

    def _change_price(self, sub: Obj, items: Any, behavior: str) -> Obj | None:
        if behavior not in ("always_invoice", "create_prorations", "none"):
            raise StripeError(400, f"Invalid proration_behavior: {behavior}", "parameter_invalid")
        if not isinstance(items, list) or len(items) != 1:
            raise StripeError(400, "The stand-in changes exactly one item", "parameter_invalid")
        item = sub["items"]["data"][0]
        change = items[0]
        if change.get("id") != item["id"]:
            raise StripeError(400, f"No such subscription item: '{change.get('id')}'", "resource_missing")
        price = change.get("price_data") or {}
        if not price.get("currency") or not str(price.get("unit_amount", "")).isdigit() or not price.get("product"):
            raise StripeError(400, "items[].price_data needs currency, unit_amount and product", "parameter_invalid")
        old = int(item["price"]["unit_amount"])
        new = int(price["unit_amount"])
        item["price"] = {
            "id": self._id("price"),
            "object": "price",
            "currency": price["currency"],
            "unit_amount": new,
            "product": price["product"],
            "recurring": {"interval": price.get("recurring", {}).get("interval", "month")},
        }
        start, end = int(item["current_period_start"]), int(item["current_period_end"])
        left = max(0, end - self.now())
        self.prorations.append({"subscription": sub["id"], "from": old, "to": new, "behavior": behavior})
        if behavior != "always_invoice" or new <= old:
            return None
        # the unused part of the period at the new price less the old (integer fen, rounded down)
        return {"amount": (new - old) * left // max(1, end - start)}

    def record_meter_event(self, params: Obj) -> Obj:
        """``/v1/billing/meter_events``: a usage value for a customer; the same ``identifier`` is
        one event (Stripe deduplicates on it), so a retry is never counted twice."""
        name = params.get("event_name")
        payload = params.get("payload") or {}
        if not name or not payload.get("stripe_customer_id") or not str(payload.get("value", "")).isdigit():
            raise StripeError(
                400, "event_name, payload[stripe_customer_id] and payload[value] are required", "parameter_missing"
            )
        if payload["stripe_customer_id"] not in self.customers:
            raise StripeError(400, f"No such customer: '{payload['stripe_customer_id']}'", "resource_missing")
        identifier = str(params.get("identifier") or self._id("mev"))
        if identifier not in self.meter_events:
            self.meter_events[identifier] = {
                "object": "billing.meter_event",
                "event_name": name,
                "identifier": identifier,
                "payload": {"stripe_customer_id": payload["stripe_customer_id"], "value": payload["value"]},
                "timestamp": int(params.get("timestamp") or self.now()),
                "created": self.now(),
                "livemode": False,
            }
        return self.meter_events[identifier]

    def _subscription(self, sub_id: str) -> Obj:
        if sub_id not in self.subscriptions:
            raise StripeError(404, f"No such subscription: '{sub_id}'", "resource_missing")
        return self.subscriptions[sub_id]

    def _product(self, price: Obj) -> str:
        """The product of a checkout's ``price_data``: ``product``, or one made from ``product_data``."""
        if price.get("product"):
            return str(price["product"])
        pid = self._id("prod")
        self.products[pid] = {"id": pid, "object": "product", **(price.get("product_data") or {})}
        return pid

    # --- what a person does on Stripe's pages (and Stripe's own billing runs) -----------------------

    def complete_checkout(self, session_id: str, *, pay: bool = True) -> list[Obj]:
        """The customer paid on the hosted page: a subscription, its first invoice, the events."""
        session = self.sessions[session_id]
        if session["mode"] == "payment":
            return self.payments.complete(session_id, pay=pay)
        if session["status"] != "open":
            raise StripeError(400, "This Checkout Session is no longer open", "checkout_session_not_open")
        start = len(self.events)
        created = self.now()
        item = session["_line_items"][0]
        price = item["price_data"]
        sub_id = self._id("sub")
        sub = {
            "id": sub_id,
            "object": "subscription",
            "created": created,
            "customer": session["customer"],
            "status": "active" if pay else "incomplete",
            "cancel_at_period_end": False,
            "canceled_at": None,
            "metadata": dict(session["_subscription_data"].get("metadata", {})),
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self._id("si"),
                        "object": "subscription_item",
                        "quantity": int(item.get("quantity", 1)),
                        "current_period_start": created,
                        "current_period_end": created + MONTH_SECONDS,
                        "price": {
                            "id": self._id("price"),
                            "object": "price",
                            "currency": price["currency"],
                            "unit_amount": int(price["unit_amount"]),
                            "product": self._product(price),
                            "recurring": {"interval": price.get("recurring", {}).get("interval", "month")},
                        },
                    }
                ],
            },
            "livemode": False,
        }
        self.subscriptions[sub_id] = sub
        session.update(status="complete", payment_status="paid" if pay else "unpaid", subscription=sub_id)
        self._emit("checkout.session.completed", session)
        self._emit("customer.subscription.created", sub)
        self._invoice(sub, paid=pay)
        return self.events[start:]

    def pay(self, sub_id: str) -> list[Obj]:
        """The next invoice (or a retry) is paid."""
        sub, start = self._subscription(sub_id), len(self.events)
        self._invoice(sub, paid=True)
        if sub["status"] != "active":
            sub["status"] = "active"
            self._emit("customer.subscription.updated", sub)
        return self.events[start:]

    def fail_payment(self, sub_id: str) -> list[Obj]:
        """A renewal's payment fails: the invoice fails and the subscription goes past due."""
        sub, start = self._subscription(sub_id), len(self.events)
        self._invoice(sub, paid=False)
        if sub["status"] != "past_due":
            sub["status"] = "past_due"
            self._emit("customer.subscription.updated", sub)
        return self.events[start:]

    def cancel(self, sub_id: str) -> list[Obj]:
        sub, start = self._subscription(sub_id), len(self.events)
        sub.update(status="canceled", canceled_at=self.now())
        self._emit("customer.subscription.deleted", sub)
        return self.events[start:]

    def _invoice(self, sub: Obj, *, paid: bool, amount: int | None = None, reason: str = "subscription_cycle") -> Obj:
        iid = self._id("in")
        item = sub["items"]["data"][0]
        price = item["price"]
        due = int(price["unit_amount"]) if amount is None else amount
        invoice = {
            "id": iid,
            "object": "invoice",
            "number": f"STANDIN-{len(self.invoices) + 1:04d}",
            "created": self.now(),
            "customer": sub["customer"],
            "currency": price["currency"],
            "amount_due": due,
            "amount_paid": due if paid else 0,
            "status": "paid" if paid else "open",
            "billing_reason": reason,
            "hosted_invoice_url": f"{self.public_base}/invoices/{iid}",
            "period_start": item["current_period_start"],
            "period_end": item["current_period_end"],
            "attempted": True,
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": sub["id"], "metadata": dict(sub["metadata"])},
            },
            "livemode": False,
        }
        self.invoices[iid] = invoice
        self._emit("invoice.paid" if paid else "invoice.payment_failed", invoice)
        return invoice

    # --- events and their delivery -----------------------------------------------------------------

    def _emit(self, type_: str, obj: Obj) -> Obj:
        snapshot = json.loads(json.dumps({k: v for k, v in obj.items() if not k.startswith("_")}))
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": self.now(),
            "type": type_,
            "data": {"object": snapshot},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
        }
        self.events.append(event)
        return event

    def signed(self, event: Obj, *, secret: str | None = None, timestamp: int | None = None) -> tuple[bytes, str]:
        """The body and ``Stripe-Signature`` header of a delivery of ``event``."""
        payload = json.dumps(event, indent=2).encode()
        return payload, sign(payload, secret or self.webhook_secret, timestamp or int(time.time()))

    async def deliver(self, event: Obj, *, secret: str | None = None) -> int:
        """POST ``event`` to the webhook URL, signed; the HTTP status our endpoint answered."""
        if not self.webhook_url:
            raise RuntimeError("the stand-in has no webhook URL to deliver to")
        payload, signature = self.signed(event, secret=secret)
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                self.webhook_url,
                content=payload,
                headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature},
            )
        self.deliveries.append(Delivery(event, response.status_code))
        return response.status_code

    async def deliver_all(self, events: list[Obj]) -> list[int]:
        return [await self.deliver(e) for e in events]

    async def _after(self, events: list[Obj]) -> None:
        if self.auto_deliver and self.webhook_url:
            await self.deliver_all(events)

    # --- HTTP ----------------------------------------------------------------------------------------

    def app(self) -> Litestar:
        return build_app(self)

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve the stand-in on ``host:port`` (0: a free port) in this event loop; yields its base URL."""
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(self.app(), host=host, port=port, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        bound = server.servers[0].sockets[0].getsockname()[1]
        self.public_base = f"http://{host}:{bound}"
        try:
            yield self.public_base
        finally:
            server.should_exit = True
            await task


def _error(exc: StripeError) -> Response[Obj]:
    body = {"error": {"type": exc.type, "code": exc.code or None, "message": exc.message}}
    return Response(body, status_code=exc.status)


async def _params(request: Request[Any, Any, Any]) -> Obj:
    raw = (await request.body()).decode()
    return unflatten(parse_qsl(raw, keep_blank_values=True))


def _public(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def build_app(standin: StripeStandin) -> Litestar:
    """The stand-in's HTTP face (a Litestar app, served by uvicorn)."""

    def authorised(request: Request[Any, Any, Any]) -> None:
        if request.headers.get("authorization", "") != f"Bearer {standin.api_key}":
            raise StripeError(401, "Invalid API Key provided", "api_key_invalid")

    async def call(request: Request[Any, Any, Any], work: Any) -> Response[Obj]:
        standin.requests.append((request.method, request.url.path))
        try:
            authorised(request)
            key = request.headers.get("idempotency-key")
            if key and request.method == "POST" and key in standin._idempotent:
                status, body = standin._idempotent[key]
                return Response(body, status_code=status, headers={"Idempotent-Replayed": "true"})
            params = await _params(request) if request.method == "POST" else {}
            body = _public(work(params))
            if key and request.method == "POST":
                standin._idempotent[key] = (200, body)
            if request.method != "GET":
                standin.save()
            return Response(body, status_code=200)
        except StripeError as exc:
            return _error(exc)

    def found(table: dict[str, Obj], name: str, oid: str) -> Obj:
        if oid not in table:
            raise StripeError(404, f"No such {name}: '{oid}'", "resource_missing")
        return table[oid]

    @post("/v1/customers")
    async def customers_create(request: Request[Any, Any, Any]) -> Response[Obj]:
        return await call(request, standin.create_customer)

    @get("/v1/customers/{oid:str}")
    async def customers_get(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        return await call(request, lambda _: found(standin.customers, "customer", oid))

    @post("/v1/customers/{oid:str}")
    async def customers_update(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        return await call(request, lambda params: standin.update_customer(oid, params))

    @get("/v1/invoices/{oid:str}")
    async def invoices_get(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        return await call(request, lambda _: found(standin.invoices, "invoice", oid))

    @post("/v1/billing/meter_events")
    async def meter_events_create(request: Request[Any, Any, Any]) -> Response[Obj]:
        return await call(request, standin.record_meter_event)

    @post("/v1/checkout/sessions")
    async def sessions_create(request: Request[Any, Any, Any]) -> Response[Obj]:
        return await call(request, standin.create_checkout_session)

    @get("/v1/checkout/sessions/{oid:str}")
    async def sessions_get(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        return await call(request, lambda _: found(standin.sessions, "checkout.session", oid))

    @post("/v1/billing_portal/sessions")
    async def portal_create(request: Request[Any, Any, Any]) -> Response[Obj]:
        return await call(request, standin.create_portal_session)

    @get("/v1/subscriptions/{oid:str}")
    async def subscriptions_get(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        return await call(request, lambda _: found(standin.subscriptions, "subscription", oid))

    @post("/v1/subscriptions/{oid:str}")
    async def subscriptions_update(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        before = len(standin.events)
        response = await call(request, lambda params: standin.update_subscription(oid, params))
        await standin._after(standin.events[before:] if response.status_code == 200 else [])
        return response

    @delete("/v1/subscriptions/{oid:str}", status_code=200)
    async def subscriptions_cancel(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        events: list[Obj] = []

        def cancel(_: Obj) -> Obj:
            events.extend(standin.cancel(oid))
            return standin.subscriptions[oid]

        response = await call(request, cancel)
        await standin._after(events)
        return response

    # the hosted checkout page, to click through locally
    @get("/checkout/{oid:str}", media_type="text/html")
    async def checkout_page(oid: FromPath[str]) -> Response[str]:
        session = standin.sessions.get(oid)
        if session is None:
            return Response("No such Checkout Session", status_code=404, media_type="text/plain")
        price = session["_line_items"][0]["price_data"]
        name = html.escape(str(price.get("product_data", {}).get("name", "")))
        amount = f"{int(price['unit_amount']) / 100:.2f} {str(price['currency']).upper()}"  # display only
        per = "" if session["mode"] == "payment" else " / month"
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Stripe stand-in checkout</title></head><body>"
            f"<h1>{name}</h1><p>{html.escape(amount)}{per} (local Stripe stand-in: no money moves)</p>"
            f"<form method='post' action='/checkout/{html.escape(oid)}/pay'><button>Pay</button></form>"
            f"<p><a href='{html.escape(session['cancel_url'])}'>Cancel</a></p></body></html>"
        )
        return Response(page, media_type="text/html")

    @get("/invoices/{oid:str}", media_type="text/html")
    async def invoice_page(oid: FromPath[str]) -> Response[str]:
        invoice = standin.invoices.get(oid)
        if invoice is None:
            return Response("No such invoice", status_code=404, media_type="text/plain")
        amount = f"{int(invoice['amount_due']) / 100:.2f} {str(invoice['currency']).upper()}"  # display only
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Invoice</title></head><body>"
            f"<h1>Invoice {html.escape(str(invoice['number']))}</h1><p>{html.escape(amount)} — "
            f"{html.escape(str(invoice['status']))} (local Stripe stand-in)</p></body></html>"
        )
        return Response(page, media_type="text/html")

    @get("/portal/{oid:str}", media_type="text/html")
    async def portal_page(oid: FromPath[str]) -> Response[str]:
        session = standin.portal_sessions.get(oid)
        if session is None:
            return Response("No such portal session", status_code=404, media_type="text/plain")
        rows = "".join(
            f"<li><a href='{html.escape(i['hosted_invoice_url'])}'>{html.escape(str(i['number']))}</a> "
            f"{int(i['amount_due']) / 100:.2f} {html.escape(str(i['currency']).upper())} {html.escape(str(i['status']))}</li>"
            for i in standin.invoices.values()
            if i["customer"] == session["customer"]
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Billing portal</title></head><body>"
            "<h1>Billing portal (local Stripe stand-in)</h1><p>Card: 4242 (test)</p>"
            f"<ul>{rows}</ul><p><a href='{html.escape(str(session['return_url'] or '/'))}'>Return</a></p></body></html>"
        )
        return Response(page, media_type="text/html")

    @post("/checkout/{oid:str}/pay")
    async def checkout_pay(oid: FromPath[str]) -> Response[Any]:
        try:
            events = standin.complete_checkout(oid)
        except (KeyError, StripeError):
            return Response("This Checkout Session cannot be paid", status_code=400, media_type="text/plain")
        standin.save()
        await standin._after(events)
        return Redirect(standin.sessions[oid]["success_url"], status_code=303)

    from lianka.billing.stripe_standin import payments

    return Litestar(
        route_handlers=[
            *payments.routes(standin, call, found),
            customers_create,
            customers_get,
            customers_update,
            invoices_get,
            meter_events_create,
            invoice_page,
            portal_page,
            sessions_create,
            sessions_get,
            portal_create,
            subscriptions_get,
            subscriptions_update,
            subscriptions_cancel,
            checkout_page,
            checkout_pay,
            *connect_routes(standin, call),
        ],
        state=State({"standin": standin}),
        debug=False,
        openapi_config=None,
    )
