"""Rendering a console page: the context every template gets, redirects that work with htmx, forms
and their inline errors.

A controller copies this pattern::

    @get("/console/branches", guards=[requires(*MENU["branches"].permissions)])
    async def index(self, request: HtmlRequest, principal: CurrentPrincipal, ident: IdentityService) -> Template:
        rows = await branches_svc.branches(ident.db, principal.tenant, principal.branch_ids)  # one use case
        return await page(request, "console/branches/index.html", principal=principal, active="branches",
                          branches=rows)

and on a form post calls the use case in ``try``/``except DomainError`` and renders the form again
with ``errors=form_errors(exc, lang, FIELDS)`` and the problem's status: the messages appear beside
their fields (htmx swaps the form; without JavaScript the whole page comes back).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar.datastructures import Cookie, FormMultiDict
from litestar.response import Template

from lianka.platform.errors import DomainError
from lianka.platform.identity.principal import Principal
from lianka.platform.identity.runtime import Identity
from lianka.platform.identity.services import staff_merchants
from lianka.tenants.services.onboarding import merchant_profile
from lianka.web.console import i18n, messages
from lianka.web.console.nav import menu_for
from lianka.web.console.security import form_token

HtmlRequest = Request[Any, Any, Any]
FLASH_COOKIE = "lk_flash"


def language(request: HtmlRequest) -> i18n.Language:
    return i18n.negotiate(request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"))


def is_htmx(request: HtmlRequest) -> bool:
    return request.headers.get("hx-request") == "true"


def identity(request: HtmlRequest) -> Identity:
    ident: Identity = request.app.state.identity
    return ident


async def page(
    request: HtmlRequest,
    template: str,
    *,
    principal: Principal | None = None,
    status: int = 200,
    active: str | None = None,
    headers: dict[str, str] | None = None,
    cookies: list[Cookie] | None = None,
    **values: Any,
) -> Template:
    """A page (or, for an htmx request, a fragment: ``template`` decides) with the common context:
    ``lang``, ``csrf`` (the token forms and htmx send), ``principal``, ``merchant`` (its name,
    currency and time zone, used by the ``money`` and ``localtime`` filters), ``merchants`` (the
    switcher), ``menu`` and ``active``, ``flash`` and ``languages``."""
    ident = identity(request)
    lang = language(request)
    csrf, anon_cookie = form_token(request, ident)
    merchant = merchants = None
    if principal is not None and principal.is_staff:
        merchants = await staff_merchants(ident.db, principal.subject_id)
        if principal.tenant_id is not None:
            merchant = await merchant_profile(ident.db, principal.tenant_id)
    out_cookies = list(cookies or [])
    if anon_cookie is not None:
        out_cookies.append(anon_cookie)
    flash = messages.flash_text(request.cookies.get(FLASH_COOKIE), lang)
    if flash is not None:
        out_cookies.append(Cookie(key=FLASH_COOKIE, value="", max_age=0, path="/"))
    context = {
        "lang": lang,
        "languages": i18n.LANGUAGES,
        "csrf": csrf,
        "principal": principal,
        "merchant": merchant,
        "merchants": merchants or [],
        "menu": menu_for(principal),
        "active": active,
        "flash": flash,
        "oidc_enabled": bool(ident.cfg.oidc_issuer),
        "path": request.url.path,
        **values,
    }
    return Template(
        template,
        context=context,
        status_code=status,
        headers=headers or {},
        cookies=out_cookies,
        media_type="text/html",
    )


def go(
    request: HtmlRequest,
    url: str,
    *,
    flash: str | None = None,
    cookies: list[Cookie] | None = None,
    delete: Collection[str] = (),
) -> Response[Any]:
    """Send the browser to ``url``: 303 See Other (post/redirect/get), or for htmx an
    ``HX-Redirect`` (a 303 would be followed by the XHR and its page swapped into a fragment)."""
    if is_htmx(request):
        response: Response[Any] = Response(b"", status_code=200, headers={"HX-Redirect": url}, media_type="text/html")
    else:
        response = Response(b"", status_code=303, headers={"Location": url}, media_type="text/html")
    for cookie in cookies or []:
        response.set_cookie(cookie)
    for name in delete:
        response.delete_cookie(name, path="/")
    if flash is not None:
        response.set_cookie(Cookie(key=FLASH_COOKIE, value=flash, max_age=60, httponly=True, samesite="lax", path="/"))
    return response


def local_path(value: str | None, default: str) -> str:
    """``value`` when it is a path on this site, else ``default`` (no open redirects)."""
    if not value or "\\" in value or any(ord(c) < 32 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or value.startswith("//"):
        return default
    return value


# --- forms --------------------------------------------------------------------------------------


async def form_data(request: HtmlRequest) -> FormMultiDict:
    form: FormMultiDict = await request.form()
    return form


async def panel_page(
    request: HtmlRequest,
    area: str,
    *,
    principal: Principal,
    flash: str | None = None,
    whole: str = "index.html",
    **values: Any,
) -> Template:
    """An area's page (``console/<area>/<whole>``), or for htmx only its panel
    (``console/<area>/_panel.html``), with the area active in the menu and ``flash`` shown in the
    panel — how every list-and-form page of the console answers."""
    template = f"console/{area}/" + ("_panel.html" if is_htmx(request) else whole)
    return await page(
        request,
        template,
        principal=principal,
        active=values.pop("active", area),
        panel_flash=messages.flash_text(flash, language(request)),
        **values,
    )


def form_text(form: FormMultiDict, name: str, *, strip: bool = True) -> str:
    """A text field ('' when absent or not text). NUL characters never get here: the edge refuses
    them in every form body and query string (``web/strict.py``)."""
    value = form.get(name)
    value = value if isinstance(value, str) else ""
    return value.strip() if strip else value


@dataclass
class FormErrors:
    """What a form shows after a refused post: one message per field, and the rest on top."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


def form_errors(exc: DomainError, lang: i18n.Language, fields: Collection[str]) -> FormErrors:
    """The problem ``exc`` answers (its ``type``, ``field`` and ``errors``), in the reader's language,
    placed beside the form's ``fields`` where it names one of them."""
    errors = FormErrors()
    named = [str(exc.extra["field"])] if exc.extra.get("field") else []
    for item in exc.extra.get("errors") or []:
        if isinstance(item, dict) and (item.get("field") or item.get("key")):
            named.append(str(item.get("field") or item.get("key")))
    message = messages.problem_text(exc.type_slug, named[0] if named else None, exc.status, lang)
    placed = False
    for name in named:
        if name in fields:
            errors.fields.setdefault(name, messages.problem_text(exc.type_slug, name, exc.status, lang))
            placed = True
    if not placed:
        errors.general.append(message)
    return errors
