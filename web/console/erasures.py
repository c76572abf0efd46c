"""Erasure requests (PIPL, decision 0029): the members who asked this merchant — or every merchant —
to erase their personal data, when they asked and when it was done. Guarded like the member export
(``members:read`` and ``members:export``): both show personal data's fate. Reads the use case the
portal's erasure records into (``member_privacy.merchant_erasures``)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from lianka.platform.identity.guards import CurrentPrincipal, IdentityService
from lianka.tenants.services import member_privacy
from lianka.web.console.members import EXPORT, READ
from lianka.web.console.pages import HtmlRequest, page


class ErasurePages(Controller):
    path = "/console/members/erasures"
    guards = (READ, EXPORT)

    @get("/")
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        rows = await member_privacy.merchant_erasures(ident.db, principal.tenant)
        return await page(request, "console/members/erasures.html", principal=principal, active="members", rows=rows)
