"""The member's card (``/m``): the card number and the rotating QR code the till scans (a
server-generated SVG, swapped by htmx when its step ends, with a countdown), the merchants the member
belongs to and those waiting for a qualifying purchase; and the member's page at one merchant
(``/m/<merchant>``: balances, tier, coupons, the paid membership with its value-back meter) with its history (``/m/<merchant>/history``) and its inbox of
messages (``/m/<merchant>/inbox``; the merchant page shows the unread count).

Each handler calls the use cases the JSON API calls (``members.portal_view``, ``members.current_qr``,
``member_portal.my_merchant``) for the signed-in member's own id only.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import Template

from lianka.billing.membership import products as membership_products
from lianka.billing.membership import terms as membership_terms
from lianka.billing.payments import services as payments
from lianka.platform.identity import members
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.platform.identity.services import member_merchant
from lianka.tenants.marketing import campaigns, draws
from lianka.tenants.services import member_portal, self_join
from lianka.web.console.member_texts import COUPON_STATUS, ORDER_STATUS, POINTS_KINDS, SALE_STATUS, SV_KINDS
from lianka.web.console.pages import HtmlRequest, language
from lianka.web.portal.pages import portal_page
from lianka.web.portal.qr import qr_svg

MEMBER = requires_member()


async def _qr_values(request: HtmlRequest, ident: IdentityService, principal: CurrentPrincipal) -> dict[str, Any]:
    token, expires_in = await members.current_qr(ident, principal.subject_id)
    lang = language(request)
    return {
        "qr_token": token,
        "qr_svg": qr_svg(token, title=lang.gettext("Your member code: show it at the till")),
        "expires_in": max(1, expires_in),
    }


class CardPages(Controller):
    path = "/m"
    guards = (MEMBER,)

    @get("/")
    async def card(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        view = await members.portal_view(ident, principal.subject_id)
        prospects = await self_join.my_prospects(ident.db, principal.subject_id)
        return await portal_page(
            request,
            "portal/card.html",
            signed_in=True,
            view=view,
            prospects=prospects,
            **await _qr_values(request, ident, principal),
        )

    @get("/qr")
    async def qr(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        """The QR fragment alone (htmx swaps it in before the shown code's step ends)."""
        return await portal_page(
            request, "portal/_qr.html", signed_in=True, **await _qr_values(request, ident, principal)
        )

    @get("/{merchant:str}")
    async def merchant(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        mine = await member_portal.my_merchant(ident.db, merchant, principal.subject_id)
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await portal_page(
            request,
            "portal/merchant.html",
            signed_in=True,
            mine=mine,
            merchant=mine.merchant,
            coupon_status=COUPON_STATUS,
            membership=await membership_terms.member_membership(ident.db, tenant, principal.subject_id),
            membership_products=await membership_products.list_products(ident.db, tenant, active=True),
            unread=await campaigns.unread(ident.db, tenant, principal.subject_id),
            open_draws=await draws.open_draws(ident.db, tenant),
        )

    @get("/{merchant:str}/inbox")
    async def inbox(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        """The merchant's messages to the member (campaigns on the portal channel), newest first."""
        mine = await member_portal.my_merchant(ident.db, merchant, principal.subject_id)
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        items = await campaigns.inbox(ident.db, tenant, principal.subject_id)
        return await portal_page(
            request, "portal/inbox.html", signed_in=True, merchant=mine.merchant, items=items, opened=None
        )

    @get("/{merchant:str}/inbox/{campaign_id:uuid}")
    async def message(
        self,
        request: HtmlRequest,
        merchant: FromPath[str],
        campaign_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Template:
        """One message; opening it marks it read (the campaign's "opened")."""
        mine = await member_portal.my_merchant(ident.db, merchant, principal.subject_id)
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        await campaigns.open_message(ident.db, tenant, campaign_id, principal.subject_id)
        items = [
            i for i in await campaigns.inbox(ident.db, tenant, principal.subject_id) if i.campaign_id == campaign_id
        ]
        return await portal_page(
            request, "portal/inbox.html", signed_in=True, merchant=mine.merchant, items=items, opened=campaign_id
        )

    @get("/{merchant:str}/history")
    async def history(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        mine = await member_portal.my_merchant(ident.db, merchant, principal.subject_id)
        tenant = await member_merchant(ident.db, merchant, principal.subject_id)
        return await portal_page(
            request,
            "portal/history.html",
            signed_in=True,
            mine=mine,
            merchant=mine.merchant,
            payments=await payments.member_history(ident.db, tenant, principal.subject_id),
            order_status=ORDER_STATUS,
            points_kinds=POINTS_KINDS,
            sv_kinds=SV_KINDS,
            sale_status=SALE_STATUS,
        )
