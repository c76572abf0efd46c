"""The member's lucky-draw page at one merchant (``/m/<merchant>/draws/<id>``, 抽奖): the prizes and
their chances, a button to draw, and the result. The handlers call the use cases the JSON routes call
(``draws.portal_view`` / ``draws.draw``) for the signed-in member, after ``portal_perks.merchant_page``
checked the membership. The draw carries an Idempotency-Key made when the page is shown (a hidden
field): a double tap or a resent form draws once and shows the same result."""

from __future__ import annotations

import secrets
import uuid

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import DomainError
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.tenants.marketing import draws
from lianka.tenants.services import portal_perks
from lianka.web.console.i18n import N_
from lianka.web.console.pages import HtmlRequest, form_data, form_text, language
from lianka.web.portal.pages import portal_page, problem_text

#: the member's words for a refusal (problem type → text)
REFUSALS = {
    "lucky-draw-closed": N_("This lucky draw is not open."),
    "lucky-draw-already-drawn-today": N_("You have used today's free draw. Come back tomorrow!"),
    "insufficient-points": N_("You do not have enough points for a draw."),
}
#: why the member cannot draw now (``draws.PortalDraw.reason``)
REASONS = {
    "closed": N_("This lucky draw is not open."),
    "drawn_today": N_("You have used today's free draw. Come back tomorrow!"),
    "not_enough_points": N_("You do not have enough points for a draw."),
}


class DrawPages(Controller):
    path = "/m"
    guards = (requires_member(),)

    async def _page(
        self,
        request: HtmlRequest,
        mp: portal_perks.MerchantPage,
        draw_id: uuid.UUID,
        member_id: uuid.UUID,
        ident: IdentityService,
        *,
        result: draws.DrawResult | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        view = await draws.portal_view(ident.db, mp.tenant, draw_id, member_id)
        return await portal_page(
            request,
            "portal/draw.html",
            signed_in=True,
            status=status,
            merchant=mp.merchant,
            points_name=mp.points_name,
            view=view,
            key=secrets.token_urlsafe(24),
            reasons=REASONS,
            result=result,
            error=error,
        )

    @get("/{merchant:str}/draws/{draw_id:uuid}")
    async def show(
        self,
        request: HtmlRequest,
        merchant: FromPath[str],
        draw_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Template:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        return await self._page(request, mp, draw_id, principal.subject_id, ident)

    @post("/{merchant:str}/draws/{draw_id:uuid}/draw", status_code=200)
    async def draw(
        self,
        request: HtmlRequest,
        merchant: FromPath[str],
        draw_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Template:
        mp = await portal_perks.merchant_page(ident.db, merchant, principal.subject_id)
        form = await form_data(request)
        try:
            result, _ = await draws.draw(
                ident.db, mp.tenant, draw_id, principal.subject_id, form_text(form, "_key")[:200]
            )
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                raise
            lang = language(request)
            text = REFUSALS.get(exc.type_slug)
            error = lang.gettext(text) if text else problem_text(exc, None, lang)
            return await self._page(request, mp, draw_id, principal.subject_id, ident, error=error, status=exc.status)
        return await self._page(request, mp, draw_id, principal.subject_id, ident, result=result)
