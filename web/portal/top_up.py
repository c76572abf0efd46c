"""The member tops up stored value online (``/m/<merchant>/top-up``): the plans on sale, a *Pay*
button per plan that creates the order and sends the member to the provider's page, and the
"paying…" page the provider sends the member back to (``/m/<merchant>/top-up/<order>``), which asks
the provider while the order is pending and shows the credit once it is paid (htmx polls it).

Each handler calls the use cases the JSON API calls (``payments.services.start_top_up``,
``get_order``, ``reconcile``) for the signed-in member's own id.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from lianka.billing.membership import terms as membership_terms
from lianka.billing.payments import services as payments
from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.platform.settings import Settings
from lianka.tenants.services import portal_perks
from lianka.web.console.i18n import N_
from lianka.web.console.member_texts import ORDER_STATUS
from lianka.web.console.pages import HtmlRequest, form_data, form_text, go, is_htmx, language
from lianka.web.portal.pages import portal_page, problem_text

MEMBER = requires_member()
REFUSALS: dict[str, str] = {
    "payments-not-configured": N_("This shop does not take online payments yet."),
    "payment-provider-failed": N_("The payment could not be started. Please try again later."),
}


def refusal_text(request: HtmlRequest, exc: DomainError) -> str:
    lang = language(request)
    text = REFUSALS.get(exc.type_slug)
    return lang.gettext(text) if text else problem_text(exc, None, lang)


def to_provider(slug: str, order_id: uuid.UUID) -> Response[Any]:
    """To our own "paying…" page, which sends the browser on: the CSP's ``form-action 'self'``
    forbids a form whose answer redirects to another site (the provider's page)."""
    return Redirect(f"/m/{slug}/top-up/{order_id}?pay=1", status_code=303)


async def _ordering(
    request: HtmlRequest, merchant: str, principal: CurrentPrincipal, ident: IdentityService, field: str
) -> tuple[portal_perks.MerchantPage, str, str]:
    """What every *Pay* form starts from: the member's merchant, what was chosen (the form's
    ``field``), and the "paying…" page the provider sends the member back to."""
    mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
    form = await form_data(request)
    back = f"{ident.cfg.public_url}/m/{mp.merchant.slug}/top-up/{{order_id}}"
    return mp, form_text(form, field)[:40], back


def _settings(request: HtmlRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class TopUpPages(Controller):
    path = "/m/{merchant:str}/top-up"
    guards = (MEMBER,)

    async def _page(
        self,
        request: HtmlRequest,
        merchant: str,
        principal: CurrentPrincipal,
        ident: IdentityService,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        offer = await payments.top_up_offer(ident.db, mp.tenant, principal.subject_id)
        return await portal_page(
            request, "portal/top_up.html", signed_in=True, status=status, merchant=mp.merchant, offer=offer, error=error
        )

    @get("/")
    async def plans(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        return await self._page(request, merchant, principal, ident)

    @post("/")
    async def pay(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        """Create the order and send the member to the provider's page (303)."""
        mp, chosen, back = await _ordering(request, merchant, principal, ident, "plan")
        try:
            started = await payments.start_top_up(
                ident.db, _settings(request), mp.tenant, principal.subject_id, chosen, return_url=back
            )
        except DomainError as exc:
            if exc.status == 404 and exc.extra.get("field") != "plan":
                raise
            error = refusal_text(request, exc)
            return await self._page(request, merchant, principal, ident, error=error, status=exc.status)
        return to_provider(mp.merchant.slug, started.order_id)

    @get("/{order_id:uuid}")
    async def paying(
        self,
        request: HtmlRequest,
        merchant: FromPath[str],
        order_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Template:
        """The order's state; while pending the provider is asked, and htmx asks again every 2 s.
        Right after *Pay* (``?pay=1``) it sends the browser on to the provider's page instead."""
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        order = await payments.get_order(ident.db, mp.tenant, order_id, principal.subject_id)
        go_to = (order.result or {}).get("redirect_url") if request.query_params.get("pay") == "1" else None
        if order.status != "pending":
            go_to = None
        elif go_to is None:
            with contextlib.suppress(DomainError):  # the provider unreachable: still "waiting"; htmx asks again
                order = await payments.reconcile(ident.db, _settings(request), mp.tenant, order_id)
        offer = await payments.top_up_offer(ident.db, mp.tenant, principal.subject_id)
        return await portal_page(
            request,
            "portal/_paying.html" if is_htmx(request) else "portal/paying.html",
            signed_in=True,
            merchant=mp.merchant,
            order=order,
            offer=offer,
            order_status=ORDER_STATUS,
            go_to=go_to,
        )


class MembershipBuyPages(Controller):
    """*Buy* on a membership product (the portal's merchant page): the order for the product's price,
    then the same "paying…" page as a top-up; the term starts when the provider confirms."""

    path = "/m/{merchant:str}/membership"
    guards = (MEMBER,)

    @post("/buy")
    async def buy(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Response[Any]:
        mp, chosen, back = await _ordering(request, merchant, principal, ident, "product")
        try:
            started = await membership_terms.start_online_purchase(
                ident.db, _settings(request), mp.tenant, principal.subject_id, chosen, return_url=back
            )
        except DomainError as exc:
            if exc.status in (401, 403):
                raise
            flash = {"payments-not-configured": "pay-not-configured", "not-found": "product-gone"}
            return go(request, f"/m/{mp.merchant.slug}", flash=flash.get(exc.type_slug, "pay-failed"))
        return to_provider(mp.merchant.slug, started.order_id)
