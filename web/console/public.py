"""Public pages: the home page with the plans, and the language switch."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Template

from lianka.platform.identity.guards import public
from lianka.web.console import i18n
from lianka.web.console.i18n import N_
from lianka.web.console.pages import HtmlRequest, form_data, form_text, go, identity, local_path, page
from lianka.web.console.security import check_public_form


@dataclass(frozen=True)
class Plan:
    name: str
    #: price per month in fen (a static table until billing exists)
    monthly: int
    branches: str
    members: str
    alliance: bool


PLANS = (
    Plan(N_("Starter"), 0, N_("1 branch"), N_("Up to 500 members"), alliance=False),
    Plan(N_("Growth"), 29900, N_("Up to 5 branches"), N_("Up to 20,000 members"), alliance=False),
    Plan(N_("Chain"), 99900, N_("Unlimited branches"), N_("Unlimited members"), alliance=True),
)


class PublicPages(Controller):
    guards = (public,)

    @get("/")
    async def home(self, request: HtmlRequest) -> Template:
        return await page(request, "public/home.html", plans=PLANS)

    @post("/lang", status_code=303)
    async def switch_language(self, request: HtmlRequest) -> Response[bytes]:
        """Remember the reader's language for a year (a preference, not a secret: readable is fine)."""
        form = await form_data(request)
        check_public_form(request, identity(request), form_text(form, "_csrf"))
        tag = form_text(form, "lang")
        back = local_path(form_text(form, "next"), "/")
        if tag not in i18n.LANGUAGES:
            return go(request, back)
        cookie = Cookie(
            key=i18n.LANG_COOKIE,
            value=tag,
            max_age=365 * 24 * 3600,
            samesite="lax",
            path="/",
            secure=identity(request).cfg.secure_cookies,
        )
        return go(request, back, cookies=[cookie])
