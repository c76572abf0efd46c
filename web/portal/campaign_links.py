"""The tracked link of a campaign message (``/m/<merchant>/go?k=…&m=…&s=…``): records that the
recipient opened it (the campaign's "opened" for SMS and e-mail) and sends the browser on to the
campaign's link. No sign-in: the HMAC-signed link is the authority; a bad one is a 404."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from lianka.platform.identity.guards import IdentityService, public
from lianka.tenants.marketing import campaigns


class CampaignLinkPages(Controller):
    path = "/m"
    guards = (public,)

    @get("/{merchant:str}/go", name="portal-campaign-link")
    async def follow(
        self,
        ident: IdentityService,
        merchant: FromPath[str],
        k: FromQuery[str] = "",
        m: FromQuery[str] = "",
        s: FromQuery[str] = "",
    ) -> Redirect:
        return Redirect(await campaigns.follow_click(ident.db, merchant, k, m, s), status_code=302)
