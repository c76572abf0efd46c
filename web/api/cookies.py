"""Session cookies for the console and the portal, and who is calling (the client address)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie

from lianka.platform.identity import sessions
from lianka.platform.identity.errors import JsonRequired
from lianka.platform.identity.runtime import Identity
from lianka.platform.settings import IpNetwork, ip_networks


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The caller's address, for lockouts, rate limits and session records.

    The TCP peer, unless the peer is one of ``LIANKA_TRUSTED_PROXIES``: then ``X-Forwarded-For`` is
    read from the right, skipping trusted proxies, and the first address that is not one of them is
    the client (anything to its left was written by the client and proves nothing). With no trusted
    proxies — the default — the header is ignored, so nobody can choose the address they are
    counted under. uvicorn's own proxy-header handling is off (``lianka serve``) for the same reason.
    """
    peer = request.client.host if request.client else "unknown"
    trusted = ip_networks(request.app.state.settings.trusted_proxies)
    if not trusted:
        return peer
    forwarded = (value.decode("latin-1") for name, value in request.scope["headers"] if name == b"x-forwarded-for")
    return forwarded_client(peer, forwarded, trusted)


def forwarded_client(peer: str, forwarded_for: Iterable[str], trusted: Sequence[IpNetwork]) -> str:
    """The right-most address of ``peer`` ← ``X-Forwarded-For`` hops that is not a trusted proxy
    (every header line in order, each a comma-separated list). A hop that is not an IP address ends
    the walk at the last address vouched for; if every hop is trusted, the left-most is the client."""

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not is_trusted(peer):
        return peer
    hops = [hop.strip() for line in forwarded_for for hop in line.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:
            return client
        if not is_trusted(client):
            return client
    return client


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
        Cookie(
            key=sessions.CSRF_COOKIE,
            value=sessions.csrf_token(ident.secret, token),
            max_age=max_age,
            httponly=False,
            samesite="strict",
            secure=secure,
            path="/",
        ),
    ]


def clear_cookies(response: Response[Any], *names: str) -> None:
    for name in (*names, sessions.CSRF_COOKIE):
        response.delete_cookie(name, path="/")
