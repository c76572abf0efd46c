"""Join posters (入会海报): the merchant's join link and each branch's, each with its QR code and a
printable poster to download (PNG and PDF, made by the server: ``tenants.services.join_poster``).
A branch's link makes the branch the member's join branch. Read-only: whoever may see the branches
may print their posters."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get
from litestar.params import FromQuery
from litestar.response import Template

from lianka.platform.errors import NotFound
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.principal import Principal
from lianka.platform.identity.runtime import Identity
from lianka.tenants.services import join_poster
from lianka.web.console.nav import MENU
from lianka.web.console.pages import HtmlRequest, language, page
from lianka.web.portal.qr import qr_svg

READ = requires(*MENU["join"].permissions)
#: what a poster says under the code: for the merchant's customers, in both languages whoever prints it
CAPTION = "扫码入会 · Scan to join"
KINDS = {"png": "image/png", "pdf": "application/pdf"}


def _branch(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("branch not found", field="branch") from None


class JoinPosterPages(Controller):
    path = "/console/join-posters"
    guards = (READ,)

    @get("/")
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        links = await join_poster.join_links(ident.db, principal.tenant, ident.cfg.public_url)
        lang = language(request)
        codes = {x.url: qr_svg(x.url, title=lang.gettext("QR code of the join link")) for x in links.links}
        return await page(
            request, "console/join_posters/index.html", principal=principal, active="join", links=links, codes=codes
        )

    @get("/poster.png")
    async def poster_png(
        self, principal: CurrentPrincipal, ident: IdentityService, branch: FromQuery[str | None] = None
    ) -> Response[bytes]:
        """The poster of the merchant's link, or of ``branch``'s (its id), as a PNG download."""
        return await _poster("png", principal, ident, branch)

    @get("/poster.pdf")
    async def poster_pdf(
        self, principal: CurrentPrincipal, ident: IdentityService, branch: FromQuery[str | None] = None
    ) -> Response[bytes]:
        """The same poster as an A4 PDF."""
        return await _poster("pdf", principal, ident, branch)


async def _poster(kind: str, principal: Principal, ident: Identity, branch: str | None) -> Response[bytes]:
    links = await join_poster.join_links(ident.db, principal.tenant, ident.cfg.public_url)
    link = links.link(_branch(branch))
    render = join_poster.poster_png if kind == "png" else join_poster.poster_pdf
    body = render(links.merchant_name, link.branch_name, link.url, CAPTION)
    name = f"join-{links.merchant_slug}{'-' + link.branch_code if link.branch_code else ''}.{kind}"
    return Response(
        body,
        media_type=KINDS[kind],
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
