"""What a portal page answers when something refuses (the API's errors, shown as pages): not signed
in, or the session ended → the portal's sign-in (``?next=`` brings the member back); anything else →
the portal's error page with the problem's status (an unknown merchant and another's alike: 404)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Template

from lianka.platform.errors import DomainError, Unauthorized
from lianka.platform.identity import sessions
from lianka.platform.identity.errors import SessionExpired
from lianka.platform.log import get_logger
from lianka.web.console import messages
from lianka.web.console.i18n import Language
from lianka.web.console.pages import go, language
from lianka.web.portal.pages import problem_text

log = get_logger(__name__)


def _error_page(request: Request[Any, Any, Any], status: int, message: str, lang: Language) -> Template:
    """Rendered without database look-ups: an error page must work when the database does not."""
    return Template(
        "portal/error.html",
        status_code=status,
        media_type="text/html",
        context={
            "lang": lang,
            "languages": {},
            "status": status,
            "message": message,
            "request_id": request.scope.get("state", {}).get("request_id", ""),
            "csrf": "",
            "lang_csrf": "",
            "signed_in": False,
            "flash": None,
            "merchant": None,
            "path": request.url.path,
        },
    )


def domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    lang = language(request)
    if isinstance(exc, Unauthorized):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        next_page = quote(target if request.method == "GET" else "/m", safe="/")
        delete = (sessions.MEMBER_COOKIE,) if isinstance(exc, SessionExpired) else ()
        return go(request, f"/m/sign-in?next={next_page}", delete=delete)
    return _error_page(request, exc.status, problem_text(exc, None, lang), lang)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500:
        return server_error(request, exc)
    lang = language(request)
    return _error_page(request, exc.status_code, messages.problem_text("", None, exc.status_code, lang), lang)


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled error on a portal page", exc_info=exc, path=request.url.path)
    lang = language(request)
    return _error_page(request, 500, lang.gettext(messages.SERVER_ERROR), lang)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error,
    HTTPException: http_error,
    Exception: server_error,
}
