"""The POST of one webhook attempt: resolve the receiver's name, refuse unsafe addresses, connect to
the address that was checked (pinned: no second lookup can swap it), send, never follow a redirect.

Name resolution happens here at send time as well as at subscribe time, because a name's addresses
change (DNS rebinding: public when subscribed, 10.0.0.5 today). The HTTP request goes to the IP
itself with the original ``Host`` header and, for https, the original name for SNI and certificate
checks (httpcore's ``sni_hostname`` extension).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from lianka.platform.webhooks import domain

#: name, port → the addresses it resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Policy:
    """``production``: https only and no loopback receivers; development and tests may post to a local
    receiver. ``resolver`` and ``transport`` are the seams a test may set (a name that resolves to a
    private address; never the checks themselves)."""

    production: bool
    resolver: Resolver = system_resolver
    transport: httpx.AsyncBaseTransport | None = field(default=None)
    timeout: float = domain.TIMEOUT_SECONDS


@dataclass(frozen=True)
class Result:
    status: int | None
    duration_ms: int
    error: str
    snippet: str


async def check(url: str, policy: Policy) -> tuple[str, str, int, str]:
    """(scheme, host, port, address to connect to), or :class:`domain.UnsafeURL`."""
    scheme, host, port = domain.parse_url(url, production=policy.production)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        try:
            addresses = await policy.resolver(host, port)
        except OSError as e:
            raise domain.UnsafeURL("unresolved") from e
    else:
        addresses = [str(literal)]
    return scheme, host, port, domain.pick_address(addresses, allow_loopback=not policy.production)


def _pinned(url: str, address: str) -> str:
    return str(httpx.URL(url).copy_with(host=address))


async def post(url: str, headers: dict[str, str], body: bytes, policy: Policy) -> Result:
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port, address = await check(url, policy)
    except domain.UnsafeURL as e:
        return Result(None, took(), f"refused: {e.reason}", "")
    default_port = 443 if scheme == "https" else 80
    host_header = host if port == default_port else f"{host}:{port}"
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    async with httpx.AsyncClient(
        transport=policy.transport, follow_redirects=False, trust_env=False, timeout=policy.timeout
    ) as client:
        request = client.build_request(
            "POST", _pinned(url, address), content=body, headers={**headers, "Host": host_header}, extensions=extensions
        )
        try:
            response = await client.send(request, stream=True)
            try:
                head = b""  # only the start of the answer is read: a receiver cannot make us buffer megabytes
                async for chunk in response.aiter_bytes():
                    head += chunk
                    if len(head) >= domain.SNIPPET_CHARS * 4:
                        break
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            return Result(None, took(), "timeout", "")
        except httpx.HTTPError as e:
            return Result(None, took(), f"{type(e).__name__}"[:200], "")
        snippet = head.decode("utf-8", "replace")[: domain.SNIPPET_CHARS]
        return Result(response.status_code, took(), "", snippet)
