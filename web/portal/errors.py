"""What a portal page answers when something refuses (the API's errors, shown as pages): not signed
in, or the session ended → the portal's sign-in (``?next=`` brings the member back); anything else →
the portal's error page with the problem's status (an unknown merchant and another's alike: 404)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.response import Template

from lianka.platform.errors import DomainError, Unauthorized
from lianka.platform.identity import sessions
from lianka.web.console.errors import exception_handlers, sign_in_redirect
from lianka.web.console.i18n import Language
from lianka.web.console.pages import language
from lianka.web.portal.pages import problem_text


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
        return sign_in_redirect(request, exc, sign_in="/m/sign-in", home="/m", cookie=sessions.MEMBER_COOKIE)
    return _error_page(request, exc.status, problem_text(exc, None, lang), lang)


EXCEPTION_HANDLERS = exception_handlers(_error_page, domain_error, "portal")
