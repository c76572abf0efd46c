"""Session cookies for the console and the portal."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie

from lianka.platform.identity import sessions
from lianka.platform.identity.errors import JsonRequired
from lianka.platform.identity.runtime import Identity


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def require_json(request: Request[Any, Any, Any]) -> None:
    if (request.headers.get("content-type") or "").split(";")[0].strip().lower() != "application/json":
        raise JsonRequired()


def user_agent(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("user-agent", "")[:400]


def session_cookies(ident: Identity, name: str, token: str, max_age: int) -> list[Cookie]:
    """The HttpOnly session cookie plus a readable CSRF cookie (double submit for page scripts)."""
    secure = ident.cfg.secure_cookies
    return [
        Cookie(key=name, value=token, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/"),
        Cookie(key=sessions.CSRF_COOKIE, value=sessions.csrf_token(ident.secret, token), max_age=max_age,
               httponly=False, samesite="strict", secure=secure, path="/"),
    ]


def clear_cookies(response: Response[Any], *names: str) -> None:
    for name in (*names, sessions.CSRF_COOKIE):
        response.delete_cookie(name, path="/")
