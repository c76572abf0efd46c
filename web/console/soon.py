"""Pages of the menu that are not built yet: "coming soon", behind the guard the page will have."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import Template

from lianka.platform.errors import NotFound
from lianka.platform.identity.errors import InsufficientPermission, MerchantRequired
from lianka.platform.identity.guards import CurrentPrincipal, requires_staff
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, page


class ComingSoonPages(Controller):
    path = "/console/soon"

    @get("/{key:str}", guards=[requires_staff()])
    async def soon(self, request: HtmlRequest, principal: CurrentPrincipal, key: FromPath[str]) -> Template:
        item = MENU.get(key)
        if item is None or item.path is not None:
            raise NotFound()
        if principal.tenant_id is None:
            raise MerchantRequired()
        if not principal.has(*item.permissions):
            raise InsufficientPermission(required=[p.value for p in item.permissions if not principal.has(p)])
        return await page(request, "console/soon.html", principal=principal, active=key, item=item)
