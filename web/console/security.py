"""Security of the console's HTML: the headers every page carries and the CSRF tokens of forms.

**Headers.** :func:`html_security_headers` is the one definition of what an HTML response carries
(a strict Content-Security-Policy — no inline script or style, nothing from another origin, no
framing — plus ``X-Frame-Options``, ``Referrer-Policy``, ``nosniff`` and ``no-store``).
:func:`html_security_middleware` applies it to every ``text/html`` response of the console's
router, error pages included; app-wide security headers can reuse the same function.

**CSRF.** Signed-in pages use the console session's token (``lianka.platform.identity.sessions``:
an HMAC of the session cookie, checked by the platform's guards — ``X-CSRF-Token`` from htmx, the
``_csrf`` field from plain forms). Forms shown *before* sign-in (sign-in itself, sign-up, setting a
password, the language) have no session yet, so they get a token bound to an anonymous cookie
(``lk_anon``, random, HttpOnly): another site can make a browser post a form, but it can neither
read that cookie nor the token in our page, so it cannot sign a victim into its own account
(login CSRF) or sign up in their name.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from lianka.platform.identity import secrets_box, sessions
from lianka.platform.identity.errors import CsrfFailed
from lianka.platform.identity.runtime import Identity

ANON_COOKIE = "lk_anon"
_ANON_PURPOSE = "lianka:form-csrf"


def content_security_policy(form_targets: tuple[str, ...] = ()) -> str:
    """The pages' policy; ``form_targets`` are other origins a form may lead to (browsers apply
    ``form-action`` to the redirect after a POST too: the billing page's forms go on to Stripe)."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "frame-ancestors 'none'",
            " ".join(["form-action 'self'", *form_targets]),
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()


def html_security_headers() -> dict[str, str]:
    """The headers of every HTML page (a fresh dict: callers may add to it)."""
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
        # pages show one merchant's data to one person: never kept by a shared cache or the back button
        "Cache-Control": "no-store",
    }


def html_security_middleware(app: ASGIApp) -> ASGIApp:
    """Adds :func:`html_security_headers` to ``text/html`` responses (pages and error pages)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if (headers.get("content-type") or "").startswith("text/html"):
                    own_policy = headers.get("content-security-policy")  # a page that needs more (billing)
                    for name, value in html_security_headers().items():
                        headers[name] = value
                    if own_policy and own_policy.startswith(CONTENT_SECURITY_POLICY.split(";", 1)[0]):
                        headers["Content-Security-Policy"] = own_policy
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


# --- CSRF tokens of forms -----------------------------------------------------------------------


def anon_token(ident: Identity, anon: str) -> str:
    return secrets_box.mac(ident.secret, _ANON_PURPOSE, anon)


def form_token(request: Request[Any, Any, Any], ident: Identity) -> tuple[str, Cookie | None]:
    """The CSRF token for this page's forms and htmx requests, and the anonymous cookie to set when
    the browser has none yet. Signed in: the session's token (what the platform's guards check)."""
    session = request.cookies.get(sessions.STAFF_COOKIE)
    if session:
        return sessions.csrf_token(ident.secret, session), None
    anon = request.cookies.get(ANON_COOKIE)
    cookie = None
    if not anon or len(anon) > 128:
        anon = secrets_box.new_token()
        cookie = Cookie(
            key=ANON_COOKIE, value=anon, httponly=True, samesite="lax", secure=ident.cfg.secure_cookies, path="/"
        )
    return anon_token(ident, anon), cookie


def check_public_form(request: Request[Any, Any, Any], ident: Identity, presented: str | None) -> None:
    """For a form posted without a session guard: the token must be the one we put in the page —
    bound to the anonymous cookie, or to the staff or member session cookie when signed in."""
    presented = presented or request.headers.get(sessions.CSRF_HEADER)
    session = request.cookies.get(sessions.STAFF_COOKIE)
    if session and sessions.csrf_ok(ident.secret, session, presented):
        return
    member = request.cookies.get(sessions.MEMBER_COOKIE)  # a member signed in to the portal
    if member and sessions.csrf_ok(ident.secret, member, presented):
        return
    anon = request.cookies.get(ANON_COOKIE)
    if anon and presented and secrets_box.same(anon_token(ident, anon), presented):
        return
    raise CsrfFailed()
