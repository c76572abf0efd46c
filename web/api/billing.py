"""Billing: the merchant's plan and subscription, Stripe Checkout and the customer portal, and the
Stripe webhook endpoint (public: its authentication is the signature)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import JSONBody

from lianka.billing import domain
from lianka.billing import services as svc
from lianka.billing.domain import COUNTED, Plan
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, public, requires
from lianka.platform.identity.permissions import Permission
from lianka.platform.settings import Settings
from lianka.web.billing_gate import PLAN_CHANGE


class LimitsOut(msgspec.Struct):
    branches: int | None
    members: int | None
    staff_seats: int | None
    messages_per_month: int | None
    alliance_membership: bool


class PlanOut(msgspec.Struct):
    code: str
    name: str
    price_minor: int
    currency: str
    limits: LimitsOut


class SubscriptionOut(msgspec.Struct):
    plan: PlanOut
    #: the plan whose limits apply now (the free plan once canceled)
    effective_plan: str
    status: str
    trial_ends_at: datetime
    grace_until: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    has_stripe_customer: bool


class CheckoutBody(msgspec.Struct, forbid_unknown_fields=True):
    plan: str


class RedirectOut(msgspec.Struct):
    url: str


class PlanChangeBody(msgspec.Struct, forbid_unknown_fields=True):
    plan: str


class PlanChangeOut(msgspec.Struct):
    #: ``upgrade`` (the difference is invoiced now) or ``downgrade`` (credited on the next invoice)
    change: str
    plan: str


class CancelOut(msgspec.Struct):
    #: what was asked of Stripe; the subscription shows it once Stripe's event has arrived
    cancel_at_period_end: bool


class EmailBody(msgspec.Struct, forbid_unknown_fields=True):
    email: str


class EmailOut(msgspec.Struct):
    email: str | None


class InvoiceOut(msgspec.Struct):
    id: str
    number: str | None
    amount_due: int
    amount_paid: int
    currency: str
    status: str
    hosted_invoice_url: str | None
    period_start: datetime | None
    period_end: datetime | None
    created: datetime


class UsageLine(msgspec.Struct):
    limit: str
    used: int
    #: the plan's value; ``None`` is unlimited
    allowed: int | None


class UsageOut(msgspec.Struct):
    plan: str
    lines: list[UsageLine]
    alliance_membership: bool
    #: limits the merchant is over now: its next configuration write is refused
    over: list[str]


class WebhookAck(msgspec.Struct):
    received: bool
    duplicate: bool


def _plan(p: Plan) -> PlanOut:
    lim = p.limits
    limits = LimitsOut(lim.branches, lim.members, lim.staff_seats, lim.messages_per_month, lim.alliance_membership)
    return PlanOut(p.code, p.name, p.price_minor, p.currency, limits)


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class BillingController(Controller):
    path = "/billing"
    tags = ("billing",)

    @get("/plans", guards=[requires(Permission.MERCHANT_READ)], summary="The plans, their prices and limits")
    async def list_plans(self, ident: IdentityService) -> list[PlanOut]:
        return [_plan(p) for p in await svc.plans(ident.db)]

    @get("/subscription", guards=[requires(Permission.MERCHANT_READ)], summary="The merchant's plan and status")
    async def show(self, principal: CurrentPrincipal, ident: IdentityService) -> SubscriptionOut:
        """A merchant seen for the first time starts its 14-day trial of a paid plan, counted from
        its sign-up."""
        s = await svc.subscription(ident.db, principal.tenant)
        a = s.account
        return SubscriptionOut(
            _plan(s.plan),
            s.effective.code,
            a.status.value,
            a.trial_ends_at,
            a.grace_until,
            a.current_period_end,
            a.cancel_at_period_end,
            a.stripe_customer_id is not None,
        )

    @post(
        "/checkout",
        status_code=200,
        guards=[requires(Permission.BILLING_MANAGE)],
        summary="Start a Stripe Checkout for a plan; answers the URL to send the owner to",
    )
    async def checkout(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CheckoutBody],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> RedirectOut:
        settings = _settings(request)
        back = settings.identity.public_url
        url = await svc.start_checkout(
            ident.db,
            settings,
            principal.tenant,
            data.plan,
            success_url=f"{back}/console/billing?billing=subscribed",
            cancel_url=f"{back}/console/billing?billing=canceled",
        )
        return RedirectOut(url)

    @post(
        "/portal",
        status_code=200,
        guards=[requires(Permission.BILLING_MANAGE)],
        summary="Open Stripe's customer portal (card, invoices, cancellation); answers its URL",
    )
    async def portal(
        self, request: Request[Any, Any, Any], principal: CurrentPrincipal, ident: IdentityService
    ) -> RedirectOut:
        settings = _settings(request)
        return RedirectOut(
            await svc.open_portal(
                ident.db, settings, principal.tenant, return_url=f"{settings.identity.public_url}/console/billing"
            )
        )

    @post(
        "/plan",
        status_code=200,
        guards=[requires(Permission.BILLING_MANAGE)],
        opt={PLAN_CHANGE: True},
        summary="Change the live subscription's plan at once, with proration (a downgrade must fit the new plan)",
    )
    async def change_plan(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PlanChangeBody],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> PlanChangeOut:
        change = await svc.change_plan(ident.db, _settings(request), principal.tenant, data.plan)
        return PlanChangeOut(change.value, data.plan)

    @post(
        "/cancel",
        status_code=200,
        guards=[requires(Permission.BILLING_MANAGE)],
        summary="Cancel at the end of the paid period (everything works until then)",
    )
    async def cancel(
        self, request: Request[Any, Any, Any], principal: CurrentPrincipal, ident: IdentityService
    ) -> CancelOut:
        await svc.set_cancel_at_period_end(ident.db, _settings(request), principal.tenant, cancel=True)
        return CancelOut(True)

    @post(
        "/resume",
        status_code=200,
        guards=[requires(Permission.BILLING_MANAGE)],
        summary="Undo a cancellation at period end",
    )
    async def resume(
        self, request: Request[Any, Any, Any], principal: CurrentPrincipal, ident: IdentityService
    ) -> CancelOut:
        await svc.set_cancel_at_period_end(ident.db, _settings(request), principal.tenant, cancel=False)
        return CancelOut(False)

    @put(
        "/email",
        guards=[requires(Permission.BILLING_MANAGE)],
        summary="Where Stripe sends invoices and receipts (also set on the Stripe customer); empty clears it",
    )
    async def set_email(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[EmailBody],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> EmailOut:
        return EmailOut(await svc.set_billing_email(ident.db, _settings(request), principal.tenant, data.email))

    @get("/invoices", guards=[requires(Permission.BILLING_MANAGE)], summary="The subscription's invoices, newest first")
    async def invoices(self, principal: CurrentPrincipal, ident: IdentityService) -> list[InvoiceOut]:
        o = await svc.overview(ident.db, principal.tenant)
        return [
            InvoiceOut(
                i.stripe_invoice_id,
                i.number,
                i.amount_due,
                i.amount_paid,
                i.currency,
                i.status,
                i.hosted_invoice_url,
                i.period_start,
                i.period_end,
                i.created,
            )
            for i in o.invoices
        ]

    @get("/usage", guards=[requires(Permission.MERCHANT_READ)], summary="What the merchant uses against each limit")
    async def usage(self, principal: CurrentPrincipal, ident: IdentityService) -> UsageOut:
        o = await svc.overview(ident.db, principal.tenant)
        plan = o.subscription.effective
        lines = [
            UsageLine(lim.value, o.usage.of(lim), allowed)
            for lim in COUNTED
            if not isinstance(allowed := domain.allowed(plan.limits, lim), bool)
        ]
        return UsageOut(plan.code, lines, plan.limits.alliance_membership, [lim.value for lim in o.over])


class BillingWebhooksController(Controller):
    path = "/billing/webhooks"
    tags = ("billing",)

    @post("/stripe", status_code=200, guards=[public], summary="Stripe's webhook deliveries (signed)")
    async def stripe_webhook(self, request: Request[Any, Any, Any], ident: IdentityService) -> WebhookAck:
        """Verified with the endpoint's signing secret (``Stripe-Signature``, 5 minutes' tolerance),
        stored once by event id and answered at once; the event is applied by a job. A delivery that
        fails verification is recorded and refused with a 400 problem ``webhook-signature-invalid``."""
        payload = await request.body()
        done = await svc.receive_stripe_webhook(
            ident.db, _settings(request), payload, request.headers.get("stripe-signature")
        )
        return WebhookAck(received=True, duplicate=done.duplicate)
