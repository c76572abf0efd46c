"""Which address a request is counted under: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text

from lianka.platform.settings import Settings, ip_networks
from lianka.web.api.cookies import forwarded_client
from lianka.web.app import create_app

PROXY = "192.0.2.10"
TRUSTED = ("192.0.2.0/28", "2001:db8::/32")
PASSWORD = "a long passphrase 42"


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.5", ["198.51.100.66"], "203.0.113.5"),  # untrusted peer: header ignored
        (PROXY, ["203.0.113.5"], "203.0.113.5"),  # one trusted proxy
        (PROXY, ["198.51.100.66, 203.0.113.5"], "203.0.113.5"),  # the client's own claim is left of it
        (PROXY, ["198.51.100.66, 203.0.113.5, 192.0.2.3"], "203.0.113.5"),  # two proxies in a row
        (PROXY, ["198.51.100.66", "203.0.113.5"], "203.0.113.5"),  # split over two header lines
        (PROXY, ["192.0.2.3, 192.0.2.4"], "192.0.2.3"),  # all trusted: the left-most
        (PROXY, [], PROXY),  # no header: the proxy itself
        (PROXY, ["not-an-ip, 192.0.2.4"], "192.0.2.4"),  # garbage ends the walk
        ("2001:db8::1", ["2001:0db8:0:0:0:0:0:2, 2606:4700::1111"], "2606:4700::1111"),
        ("testclient", ["203.0.113.5"], "testclient"),  # a peer that is no address
    ],
)
def test_right_most_untrusted_address(peer: str, header: list[str], expected: str) -> None:
    assert forwarded_client(peer, header, ip_networks(TRUSTED)) == expected


def _app(settings: Settings, trusted: tuple[str, ...]) -> Litestar:
    return create_app(dataclasses.replace(settings, trusted_proxies=trusted))


async def _recorded_ip(app: Litestar, owner_engine: Any, peer: str, forwarded: str) -> str:
    """Sign up and sign in from ``peer`` with ``X-Forwarded-For: forwarded``; the address the
    session was recorded with."""
    async with app.lifespan():
        # httpx types an ASGI app's scope as a plain dict, Litestar as TypedDicts: the same protocol
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://lianka.test") as c:
            email = f"ip-{uuid.uuid4().hex[:10]}@example.com"
            r = await c.post(
                "/api/v1/signup",
                json={
                    "merchant_name": "IP",
                    "slug": f"ip-{uuid.uuid4().hex[:10]}",
                    "email": email,
                    "password": PASSWORD,
                },
            )
            assert r.status_code == 201, r.text
            r = await c.post(
                "/api/v1/auth/session",
                json={"email": email, "password": PASSWORD},
                headers={"X-Forwarded-For": forwarded},
            )
            assert r.status_code == 200, r.text
            user_id = r.json()["user_id"]
    async with owner_engine.connect() as conn:
        ip = await conn.scalar(text("SELECT host(ip) FROM auth_sessions WHERE subject_id = :u"), {"u": user_id})
    return str(ip)


async def test_spoofed_header_from_an_untrusted_peer_is_ignored(settings, owner_engine) -> None:
    assert settings.trusted_proxies == ()  # the default trusts nobody, not even a local peer
    assert await _recorded_ip(_app(settings, ()), owner_engine, "127.0.0.1", "198.51.100.66") == "127.0.0.1"
    assert await _recorded_ip(_app(settings, TRUSTED), owner_engine, "203.0.113.7", "198.51.100.66") == "203.0.113.7"


async def test_a_trusted_proxy_names_the_client(settings, owner_engine) -> None:
    ip = await _recorded_ip(_app(settings, TRUSTED), owner_engine, PROXY, "198.51.100.66, 203.0.113.5")
    assert ip == "203.0.113.5"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_lianka_serve_does_not_let_uvicorn_believe_the_header(project_root) -> None:
    """The real server: a guesser who changes X-Forwarded-For on every request from a local peer is
    still one address (uvicorn's proxy headers would trust 127.0.0.1 by default and let it escape
    the lockout)."""
    port = _free_port()
    env = {**os.environ, "LIANKA_PORT": str(port), "LIANKA_TRUSTED_PROXIES": ""}
    env.pop("FORWARDED_ALLOW_IPS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lianka.cli", "serve"],
        cwd=project_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        email = f"serve-{uuid.uuid4().hex[:10]}@example.com"
        r = httpx.post(
            f"{base}/api/v1/signup",
            json={"merchant_name": "Serve", "slug": f"s-{uuid.uuid4().hex[:10]}", "email": email, "password": PASSWORD},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        assert "server" not in r.headers  # no "uvicorn" banner either
        statuses = []
        for i in range(6):
            r = httpx.post(
                f"{base}/api/v1/auth/token",
                json={"email": email, "password": "wrong password!"},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
                timeout=30,
            )
            statuses.append(r.status_code)
        assert statuses == [401] * 5 + [429]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
