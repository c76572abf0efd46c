"""The owner's billing page: the plan and what its status means, usage against each limit, plan
cards to subscribe (Stripe Checkout, when there is no subscription yet) or to change plan at once,
Stripe's customer portal (card, invoices), the invoices Stripe reported, the billing e-mail, and
cancel at period end / resume.

Guarded by ``billing:manage`` (owners). Each form calls one use case of ``billing.services``; a
refusal (no Stripe configured, a downgrade that does not fit, …) re-renders the page with the
problem's message instead of an error page. What the subscription becomes is learnt from Stripe's
webhooks, so after a change the page says "requested" and shows the new plan once the event is in.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import Template

from lianka.billing import domain
from lianka.billing import services as billing
from lianka.billing.domain import COUNTED, Status
from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.principal import Principal
from lianka.platform.settings import Settings
from lianka.web.console import messages
from lianka.web.console.i18n import N_, NP_
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, form_data, form_text, go, language, page
from lianka.web.console.public import PLAN_NAMES
from lianka.web.console.security import content_security_policy

MANAGE = requires(*MENU["billing"].permissions)
PATH = "/console/billing"

#: what each status means, in words (the page fills in the dates)
STATUS_TEXT = {
    Status.TRIALING: N_("Free trial of the %(plan)s plan until %(date)s. Subscribe before then to keep it."),
    Status.ACTIVE: N_("Active. The next payment is due on %(date)s."),
    Status.PAST_DUE: N_(
        "The last payment failed. Everything keeps working until %(date)s; after that, set-up and "
        "marketing changes pause until it is paid."
    ),
    Status.RESTRICTED: N_(
        "Restricted: the payment is overdue, so set-up and marketing changes are paused. The till, the "
        "member portal, reports and exports work as usual. Pay or choose a plan to lift it."
    ),
    Status.CANCELED: N_("Canceled. The free plan's limits apply; subscribe to a plan to get more."),
}
CANCELING = N_("Active until %(date)s, then canceled (you can still resume).")
STATUS_LABELS = {
    Status.TRIALING: N_("Trial"),
    Status.ACTIVE: NP_("subscription", "Active"),
    Status.PAST_DUE: N_("Payment failed"),
    Status.RESTRICTED: N_("Restricted"),
    Status.CANCELED: N_("Canceled"),
}
LIMIT_LABELS = {
    "branches": N_("Branches"),
    "members": N_("Members"),
    "staff_seats": N_("Staff seats"),
    "messages_per_month": N_("Messages this month"),
}
#: what the page says after an action (flash keys in the query string: never text)
NOTICES = {
    "subscribed": N_("Thank you: the payment is being confirmed, the plan shows here in a moment."),
    "canceled": N_("Checkout was cancelled; nothing was charged."),
    "plan-requested": N_("Plan change requested: it applies as soon as Stripe confirms (a moment)."),
    "cancel-requested": N_("The subscription will end with the paid period."),
    "resume-requested": N_("The subscription continues."),
    "email-saved": N_("Billing e-mail saved."),
}


#: where Stripe's hosted checkout and customer portal live
STRIPE_PAGES = ("https://checkout.stripe.com", "https://billing.stripe.com")


def stripe_origins(settings: Settings) -> tuple[str, ...]:
    """Where the page's forms may lead (Checkout, the portal): Stripe's, or the stand-in's origin."""
    if settings.stripe_api_base:
        parts = urlsplit(settings.stripe_api_base)
        return (f"{parts.scheme}://{parts.netloc}",)
    return STRIPE_PAGES


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class BillingPages(Controller):
    path = PATH

    async def _page(
        self,
        request: HtmlRequest,
        principal: Principal,
        ident: IdentityService,
        *,
        notice: str | None = None,
        error: DomainError | None = None,
        email: str | None = None,
    ) -> Template:
        o = await billing.overview(ident.db, principal.tenant)
        lang = language(request)
        a = o.subscription.account
        effective = o.subscription.effective
        when = {
            Status.TRIALING: a.trial_ends_at,
            Status.ACTIVE: a.current_period_end,
            Status.PAST_DUE: a.grace_until,
        }.get(a.status)
        usage = [
            {
                "key": lim.value,
                "label": LIMIT_LABELS[lim.value],
                "used": o.usage.of(lim),
                "allowed": allowed,
                "over": lim in o.over,
            }
            for lim in COUNTED
            if not isinstance(allowed := domain.allowed(effective.limits, lim), bool)
        ]
        live = a.stripe_subscription_id is not None and a.status is not Status.CANCELED
        csp = content_security_policy(stripe_origins(_settings(request)))
        return await page(
            request,
            "console/billing/index.html",
            principal=principal,
            active="billing",
            headers={"Content-Security-Policy": csp},
            status=error.status if error is not None else 200,
            o=o,
            account=a,
            status_label=STATUS_LABELS[a.status],
            status_text=CANCELING if a.cancel_at_period_end and live else STATUS_TEXT[a.status],
            when=when,
            usage=usage,
            live=live,
            plan_names=PLAN_NAMES,
            notice=NOTICES.get(notice or ""),
            error=(
                messages.plan_problem_text(error, lang)
                if error is not None and error.type_slug in messages.PLAN_PROBLEMS
                else messages.problem_text(error.type_slug, None, error.status, lang)
                if error is not None
                else None
            ),
            email=o.billing_email if email is None else email,
        )

    @get("/", guards=[MANAGE])
    async def index(
        self,
        request: HtmlRequest,
        principal: CurrentPrincipal,
        ident: IdentityService,
        billing_notice: Annotated[str | None, QueryParameter(name="billing")] = None,
    ) -> Template:
        return await self._page(request, principal, ident, notice=billing_notice)

    @post("/subscribe", guards=[MANAGE])
    async def subscribe(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        """No subscription yet: off to Stripe's hosted checkout (it comes back to this page)."""
        plan = form_text(await form_data(request), "plan")
        back = _settings(request).identity.public_url + PATH
        try:
            url = await billing.start_checkout(
                ident.db,
                _settings(request),
                principal.tenant,
                plan,
                success_url=f"{back}?billing=subscribed",
                cancel_url=f"{back}?billing=canceled",
            )
        except DomainError as exc:
            return await self._page(request, principal, ident, error=exc)
        return go(request, url)

    @post("/plan", guards=[MANAGE])
    async def change_plan(
        self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        plan = form_text(await form_data(request), "plan")
        try:
            await billing.change_plan(ident.db, _settings(request), principal.tenant, plan)
        except DomainError as exc:
            return await self._page(request, principal, ident, error=exc)
        return go(request, f"{PATH}?billing=plan-requested")

    @post("/portal", guards=[MANAGE])
    async def portal(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        """Stripe's customer portal: the card and the invoices' PDFs."""
        back = _settings(request).identity.public_url + PATH
        try:
            url = await billing.open_portal(ident.db, _settings(request), principal.tenant, return_url=back)
        except DomainError as exc:
            return await self._page(request, principal, ident, error=exc)
        return go(request, url)

    @post("/cancel", guards=[MANAGE])
    async def cancel(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        return await self._cancel(request, principal, ident, cancel=True)

    @post("/resume", guards=[MANAGE])
    async def resume(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        return await self._cancel(request, principal, ident, cancel=False)

    async def _cancel(
        self, request: HtmlRequest, principal: Principal, ident: IdentityService, *, cancel: bool
    ) -> Response[Any]:
        try:
            await billing.set_cancel_at_period_end(ident.db, _settings(request), principal.tenant, cancel=cancel)
        except DomainError as exc:
            return await self._page(request, principal, ident, error=exc)
        return go(request, f"{PATH}?billing={'cancel' if cancel else 'resume'}-requested")

    @post("/email", guards=[MANAGE])
    async def email(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Response[Any]:
        value = form_text(await form_data(request), "email")
        try:
            await billing.set_billing_email(ident.db, _settings(request), principal.tenant, value)
        except DomainError as exc:
            return await self._page(request, principal, ident, error=exc, email=value)
        return go(request, f"{PATH}?billing=email-saved")
