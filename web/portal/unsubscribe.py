"""Unsubscribe (退订) from a marketing message: ``/m/<merchant>/unsubscribe?m=…&c=…&s=…`` withdraws
that channel's consent at once — GET (the link in the message) and POST (RFC 8058 one-click, which
mail clients send for ``List-Unsubscribe-Post``). No sign-in: the signed link is the authority
(``tenants/marketing/unsubscribe.py``); a bad link is a 404."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from lianka.platform.identity.guards import IdentityService, public
from lianka.tenants.marketing import unsubscribe
from lianka.web.console.pages import HtmlRequest
from lianka.web.portal.pages import portal_page


class UnsubscribePages(Controller):
    path = "/m"
    guards = (public,)

    async def _withdraw(
        self, request: HtmlRequest, ident: IdentityService, merchant: str, m: str, c: str, s: str
    ) -> Template:
        done = await unsubscribe.withdraw(ident.db, merchant, m, c, s)
        return await portal_page(request, "portal/unsubscribed.html", channel=done.channel, merchant_name=done.merchant)

    @get("/{merchant:str}/unsubscribe", name="portal-unsubscribe")
    async def by_link(
        self,
        request: HtmlRequest,
        ident: IdentityService,
        merchant: FromPath[str],
        m: FromQuery[str] = "",
        c: FromQuery[str] = "",
        s: FromQuery[str] = "",
    ) -> Template:
        return await self._withdraw(request, ident, merchant, m, c, s)

    @post("/{merchant:str}/unsubscribe", status_code=200, name="portal-unsubscribe-one-click")
    async def one_click(
        self,
        request: HtmlRequest,
        ident: IdentityService,
        merchant: FromPath[str],
        m: FromQuery[str] = "",
        c: FromQuery[str] = "",
        s: FromQuery[str] = "",
    ) -> Template:
        return await self._withdraw(request, ident, merchant, m, c, s)
