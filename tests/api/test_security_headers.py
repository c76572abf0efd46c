"""Security headers on every response, the docs pages' own CSP, the metrics token, 404/405 problems
with request ids, and problem responses in the OpenAPI document."""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from lianka.platform.settings import Settings
from lianka.web.app import create_app

PROBLEM = "application/problem+json"

#: (method, path, expected status): JSON, problems, docs, schema, metrics, static files, 404, 405
ROUTES = [
    ("GET", "/healthz", 200),
    ("GET", "/api/v1/auth/me", 401),
    ("POST", "/api/v1/auth/token", 400),
    ("GET", "/schema", 200),
    ("GET", "/schema/swagger", 200),
    ("GET", "/schema/openapi.json", 200),
    ("GET", "/metrics", 200),
    ("GET", "/static/apidocs/swagger-init.js", 200),
    ("GET", "/api/v1/no-such-route", 404),
    ("GET", "/no-such-page", 404),
    ("DELETE", "/healthz", 405),
    ("PUT", "/api/v1/auth/me", 405),
]


@pytest.fixture
async def prod_client(settings: Settings) -> AsyncIterator[tuple[AsyncTestClient[Litestar], str]]:
    token = secrets.token_urlsafe(32)
    app = create_app(dataclasses.replace(settings, env="production", metrics_token=token))
    async with AsyncTestClient(app=app) as c:
        yield c, token


async def _send(client: AsyncTestClient[Litestar], method: str, path: str, **kw: Any) -> Any:
    return await client.request(method, path, **kw)


def _directives(csp: str) -> dict[str, str]:
    return {part.split()[0]: part.strip() for part in csp.split(";") if part.strip()}


@pytest.mark.parametrize(("method", "path", "status"), ROUTES)
async def test_every_response_carries_the_security_headers(
    client: AsyncTestClient[Litestar], method: str, path: str, status: int
) -> None:
    r = await _send(client, method, path, json={} if method == "POST" else None)
    assert r.status_code == status, r.text
    csp = _directives(r.headers["content-security-policy"])
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["default-src"] == "default-src 'none'"
    assert "unsafe-inline" not in csp.get("script-src", "")
    assert "unsafe-eval" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert len(r.headers["x-request-id"]) >= 8
    assert "strict-transport-security" not in r.headers  # development: plain HTTP on loopback


@pytest.mark.parametrize(("method", "path", "status"), ROUTES)
async def test_production_adds_hsts(
    prod_client: tuple[AsyncTestClient[Litestar], str], method: str, path: str, status: int
) -> None:
    client, token = prod_client
    r = await _send(
        client,
        method,
        path,
        json={} if method == "POST" else None,
        headers={"Authorization": f"Bearer {token}"} if path == "/metrics" else {},
    )
    assert r.status_code == status, r.text
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert r.headers["x-frame-options"] == "DENY"


async def test_api_answers_may_load_nothing(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/healthz", "/schema/openapi.json", "/metrics", "/api/v1/auth/me"):
        csp = _directives((await client.get(path)).headers["content-security-policy"])
        assert set(csp) == {"default-src", "frame-ancestors", "base-uri", "form-action"}, path


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger", "/schema/scalar"])
async def test_docs_pages_load_only_this_servers_files(client: AsyncTestClient[Litestar], page: str) -> None:
    """The viewers come from ``/static/apidocs`` (no CDN: the docs work offline) and start without an
    inline script, so the page's CSP can be ``script-src 'self'``."""
    r = await client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = _directives(r.headers["content-security-policy"])
    assert csp["script-src"] == "script-src 'self'"
    assert csp["connect-src"] == "connect-src 'self'"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text), "loads something from elsewhere"
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", r.text, re.S)
    assert scripts
    for attributes, body in scripts:
        assert not body.strip(), f"inline script on {page}"
        src = re.search(r'src="([^"]+)"', attributes)
        if src:
            asset = await client.get(src.group(1))
            assert asset.status_code == 200, src.group(1)
            assert "javascript" in asset.headers["content-type"]
    for href in re.findall(r'<link rel="stylesheet" href="([^"]+)"', r.text):
        css = await client.get(href)
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_swagger_has_no_inline_oauth_redirect_page(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/schema/swagger/oauth2-redirect.html")).status_code == 404


# --- /metrics ------------------------------------------------------------------------------------


async def test_metrics_are_open_in_development_without_a_token(client: AsyncTestClient[Litestar]) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 200 and "lianka_requests_total" in r.text


async def test_metrics_need_the_token_when_one_is_set(settings: Settings) -> None:
    token = secrets.token_urlsafe(32)
    app = create_app(dataclasses.replace(settings, metrics_token=token))
    async with AsyncTestClient(app=app) as c:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {token}"},
            {"Authorization": f"Bearer {token}x"},
        ):
            r = await c.get("/metrics", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["content-type"].startswith(PROBLEM)
            assert "lianka_" not in r.text
        r = await c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "lianka_requests_total" in r.text


async def test_production_metrics_without_a_token_refuse_everyone(settings: Settings) -> None:
    """Production settings cannot be loaded without a token; built by hand, the endpoint stays shut."""
    app = create_app(dataclasses.replace(settings, env="production", metrics_token=""))
    async with AsyncTestClient(app=app) as c:
        assert (await c.get("/metrics")).status_code == 401
        assert (await c.get("/metrics", headers={"Authorization": "Bearer "})).status_code == 401


# --- 404 and 405 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/no-such-route", 404),
        ("GET", "/nothing/here", 404),
        ("DELETE", "/healthz", 405),
        ("POST", "/schema/openapi.json", 405),
    ],
)
async def test_not_found_and_wrong_method_carry_the_request_id(
    client: AsyncTestClient[Litestar], method: str, path: str, status: int
) -> None:
    r = await client.request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["instance"] == path
    assert body["request_id"] == r.headers["x-request-id"]
    r = await client.request(method, path, headers={"X-Request-ID": "till-0042-retry"})
    assert r.json()["request_id"] == r.headers["x-request-id"] == "till-0042-retry"


async def test_wrong_method_says_what_is_allowed(client: AsyncTestClient[Litestar]) -> None:
    r = await client.delete("/healthz")
    assert r.status_code == 405
    assert "GET" in {m.strip() for m in r.headers["allow"].split(",")}
    r = await client.put("/api/v1/auth/token", json={})
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]


# --- problem responses in the OpenAPI document ---------------------------------------------------


async def test_every_operation_documents_its_problem_responses(client: AsyncTestClient[Litestar]) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    problem = doc["components"]["schemas"]["ProblemDetails"]
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= set(problem["required"])
    operations = [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]
    assert len(operations) > 50
    for method, path, op in operations:
        errors = {int(code): resp for code, resp in op["responses"].items() if int(code) >= 400}
        assert {400, 500} <= set(errors), (method, path, sorted(errors))
        for code, resp in errors.items():
            assert set(resp["content"]) == {PROBLEM}, (method, path, code)
            assert resp["content"][PROBLEM]["schema"]["$ref"] == "#/components/schemas/ProblemDetails"
    by_key = {(m, p): op for m, p, op in operations}
    signed_in = by_key[("get", "/api/v1/auth/me")]["responses"]
    assert {"401", "403"} <= set(signed_in)
    tenant_read = by_key[("get", "/api/v1/members/{member_id}")]["responses"]
    assert {"401", "403", "404"} <= set(tenant_read)
    sign_in = by_key[("post", "/api/v1/auth/token")]["responses"]
    assert {"401", "429"} <= set(sign_in)
    oauth_token = by_key[("post", "/oauth/token")]["responses"]
    assert set(oauth_token) == {"200", "400", "401", "500"}


async def test_documented_problem_shape_matches_a_real_problem(client: AsyncTestClient[Litestar]) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    required = set(doc["components"]["schemas"]["ProblemDetails"]["required"])
    for method, path in (
        ("GET", "/api/v1/auth/me"),
        ("GET", "/nope"),
        ("DELETE", "/healthz"),
        ("POST", "/oauth/token"),
    ):
        r = await client.request(method, path)
        assert required <= set(r.json()), (method, path, r.json())
