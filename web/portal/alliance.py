"""The member's alliance card (``/m/alliances``) with the per-partner recognition switch, and the
monthly value statements at a merchant (``/m/<merchant>/statements``, one page per month).

Each handler calls the use cases the JSON API calls (``recognition.my_cards`` / ``set_recognition``,
``member_statements.my_statements`` / ``my_statement``) for the signed-in member's own id only. The
switch is a plain form (it works without JavaScript) that comes back to the card with a flash line.
"""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from lianka.alliance.alliances import recognition
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires_member
from lianka.tenants.services import member_statements
from lianka.web.console.pages import HtmlRequest, form_data, form_text, go
from lianka.web.portal.pages import portal_page

MEMBER = requires_member()


class AlliancePages(Controller):
    path = "/m"
    guards = (MEMBER,)

    @get("/alliances")
    async def cards(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        cards = await recognition.my_cards(ident.db, principal.subject_id)
        return await portal_page(request, "portal/alliances.html", signed_in=True, cards=cards)

    @post("/alliances/{alliance_id:uuid}/partners/{merchant_id:uuid}")
    async def switch(
        self,
        request: HtmlRequest,
        alliance_id: FromPath[uuid.UUID],
        merchant_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Response[object]:
        """Let the partner recognise the card (``recognised=yes``) or not (``no``)."""
        form = await form_data(request)
        on = form_text(form, "recognised") == "yes"
        await recognition.set_recognition(ident.db, principal.subject_id, alliance_id, merchant_id, on)
        return go(request, f"/m/alliances#p-{merchant_id}", flash="recognition-on" if on else "recognition-off")

    @get("/{merchant:str}/statements")
    async def statements(
        self, request: HtmlRequest, merchant: FromPath[str], principal: CurrentPrincipal, ident: IdentityService
    ) -> Template:
        mine = await member_statements.my_statements(ident.db, merchant, principal.subject_id)
        facts = await member_statements.merchant_facts(ident.db, merchant, principal.subject_id)
        return await portal_page(request, "portal/statements.html", signed_in=True, statements=mine, merchant=facts)

    @get("/{merchant:str}/statements/{month:str}")
    async def statement(
        self,
        request: HtmlRequest,
        merchant: FromPath[str],
        month: FromPath[str],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Template:
        s = await member_statements.my_statement(ident.db, merchant, principal.subject_id, month)
        facts = await member_statements.merchant_facts(ident.db, merchant, principal.subject_id)
        return await portal_page(request, "portal/statement.html", signed_in=True, s=s, fig=s.figures, merchant=facts)
