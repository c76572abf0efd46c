"""Public pages: the home page with the plans, and the language switch."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Template

from lianka.billing import domain as billing_domain
from lianka.billing import services as billing
from lianka.platform.identity.guards import IdentityService, public
from lianka.web.console import i18n
from lianka.web.console.i18n import NP_
from lianka.web.console.pages import HtmlRequest, form_data, form_text, go, identity, local_path, page
from lianka.web.console.security import check_public_form

#: the plans' names in the reader's language (billing keeps them as data, by code)
PLAN_NAMES = {
    "free": NP_("plan", "Free"),
    "shop": NP_("plan", "Shop"),
    "chain": NP_("plan", "Chain"),
    "alliance": NP_("plan", "Alliance"),
}


class PublicPages(Controller):
    guards = (public,)

    @get("/")
    async def home(self, request: HtmlRequest, ident: IdentityService) -> Template:
        """The plans are billing's own rows: what the home page offers is what Stripe will charge."""
        return await page(
            request,
            "public/home.html",
            plans=await billing.plans(ident.db),
            plan_names=PLAN_NAMES,
            trial_plan=billing_domain.TRIAL_PLAN,
            trial_days=billing_domain.TRIAL_DAYS,
        )

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
