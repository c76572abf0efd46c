"""What a console page answers when something refuses: the same errors as the API (its guards and
use cases raise them), shown as pages instead of ``application/problem+json``.

- not signed in, or the session ended → the sign-in page (``?next=`` brings the reader back);
- staff of several merchants who has not chosen one → the merchant chooser;
- a merchant the reader no longer works for (the ``lk_merchant`` cookie) → the chooser, cookie gone;
- a role that may not (403), an id that is unknown or another merchant's (404), any other problem
  → an error page with the problem's status; for htmx the message goes to the page's flash area.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Template

from lianka.billing.errors import UPGRADE_PATH
from lianka.platform.errors import DomainError, Unauthorized
from lianka.platform.identity import sessions
from lianka.platform.identity.errors import MerchantNotFound, MerchantRequired, SessionExpired
from lianka.platform.identity.guards import MERCHANT_COOKIE
from lianka.platform.log import get_logger
from lianka.web.console import messages
from lianka.web.console.i18n import Language
from lianka.web.console.pages import go, is_htmx, language

log = get_logger(__name__)


def _error_page(
    request: Request[Any, Any, Any], status: int, message: str, lang: Language, upgrade_url: str | None = None
) -> Template:
    """Rendered without database look-ups: an error page must work when the database does not."""
    template = "errors/_alert.html" if is_htmx(request) else "errors/error.html"
    headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"} if is_htmx(request) else {}
    rid = request.scope.get("state", {}).get("request_id", "")
    return Template(
        template,
        status_code=status,
        headers=headers,
        media_type="text/html",
        context={
            "lang": lang,
            "status": status,
            "message": message,
            "upgrade_url": upgrade_url,
            "request_id": rid,
            "principal": None,
            "merchant": None,
            "merchants": [],
            "menu": [],
            "active": None,
            "flash": None,
            "csrf": "",
            "languages": {},
            "oidc_enabled": False,
            "path": request.url.path,
        },
    )


def sign_in_redirect(
    request: Request[Any, Any, Any], exc: Unauthorized, *, sign_in: str, home: str, cookie: str
) -> Response[Any]:
    """Not signed in, or the session ended: to ``sign_in`` with ``?next=`` this page (a form's target
    is not a page to come back to: ``home`` instead); an ended session's cookie goes."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    next_page = quote(target if request.method == "GET" else home, safe="/")
    delete = (cookie,) if isinstance(exc, SessionExpired) else ()
    return go(request, f"{sign_in}?next={next_page}", delete=delete)


def domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    lang = language(request)
    if isinstance(exc, Unauthorized):
        return sign_in_redirect(request, exc, sign_in="/sign-in", home="/console", cookie=sessions.STAFF_COOKIE)
    if isinstance(exc, MerchantRequired):
        return go(request, "/console/merchants")
    if isinstance(exc, MerchantNotFound) and request.cookies.get(MERCHANT_COOKIE):
        return go(request, "/console/merchants", flash="not-a-merchant", delete=(MERCHANT_COOKIE,))
    if exc.type_slug in messages.PLAN_PROBLEMS:
        # the subscription refused a set-up change: a banner with the way out (the billing page)
        return _error_page(request, exc.status, messages.plan_problem_text(exc, lang), lang, UPGRADE_PATH)
    return _error_page(request, exc.status, messages.problem_text(exc.type_slug, None, exc.status, lang), lang)


ErrorPage = Callable[[Request[Any, Any, Any], int, str, Language], Response[Any]]


def exception_handlers(
    error_page: ErrorPage, domain_error: Callable[[Request[Any, Any, Any], DomainError], Response[Any]], area: str
) -> dict[Any, Any]:
    """One area's handlers: its own answer to a ``DomainError``; HTTP errors and anything unexpected
    shown on its error page in the reader's language (a 500 says nothing of internals; the log has
    the traceback)."""

    def server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        log.error(f"unhandled error on a {area} page", exc_info=exc, path=request.url.path)
        lang = language(request)
        return error_page(request, 500, lang.gettext(messages.SERVER_ERROR), lang)

    def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        if exc.status_code >= 500:
            return server_error(request, exc)
        lang = language(request)
        return error_page(request, exc.status_code, messages.problem_text("", None, exc.status_code, lang), lang)

    return {DomainError: domain_error, HTTPException: http_error, Exception: server_error}


EXCEPTION_HANDLERS = exception_handlers(_error_page, domain_error, "console")
