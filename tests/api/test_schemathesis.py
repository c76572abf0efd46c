"""Schemathesis over every operation of the OpenAPI document, as merchant A's owner, merchant B's
owner, A's POS client and no one: no 5xx, and every response as documented (status, media type —
problems are ``application/problem+json`` — and body shape). A small budget per operation here;
``python -m bench fuzz --examples N`` runs the same with a large one. The hand-written walk of edge
inputs (``test_fuzz_openapi.py``) complements it. See ``bench/fuzzing.py`` and decision 0054.
"""

from __future__ import annotations

import http.cookiejar
import os
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from bench.fuzzing import World, build_world, fuzz
from lianka.platform.identity.testing import AuthKit

pytestmark = pytest.mark.integration

#: examples per operation (each sent as four callers, and again with real ids in the path)
EXAMPLES = int(os.environ.get("LIANKA_FUZZ_EXAMPLES", "2"))


@pytest.fixture
async def world(client: AsyncTestClient[Litestar], auth_kit: AuthKit, db: Any) -> World:
    async def send(method: str, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        r = await client.request(method, url, json=body, headers=headers)
        return r.status_code, r.json()

    return await build_world(db, auth_kit, send)


@pytest.mark.timeout(600)
async def test_every_operation_answers_as_documented(client: AsyncTestClient[Litestar], world: World) -> None:
    client.cookies.clear()  # each request carries its caller's credentials and nothing else
    client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    doc = (await client.get("/schema/openapi.json")).json()

    async def raw(method: str, url: str, headers: dict[str, str], body: bytes | None) -> httpx.Response:
        return await client.request(method, url, headers=headers, content=body)

    report = await fuzz(doc, world, raw, examples=EXAMPLES, seed=18)
    print(
        f"fuzz: {report.operations} operations, {report.cases} cases, {report.requests} requests; drawing {report.generating:.0f}s, sending {report.sending:.0f}s"
    )
    assert report.operations >= 90, "the run missed most of the document"
    assert report.requests >= report.operations * 4
    assert not report.failures, f"{len(report.failures)} failures:\n" + "\n".join(report.failures[:80])
    # requests reached the handlers: some succeeded, and not everything was refused at the door
    assert sum(n for s, n in report.statuses.items() if s < 300) > report.operations


async def test_what_the_first_runs_found_is_documented(
    client: AsyncTestClient[Litestar], staff_token: Any, tenant_factory: Any
) -> None:
    """The document as the first Schemathesis runs corrected it (decision 0054)."""
    paths = (await client.get("/schema/openapi.json")).json()["paths"]

    def responses(path: str, verb: str) -> dict[str, Any]:
        return dict(paths[path][verb]["responses"])

    for path in (
        "/api/v1/members/export.csv",
        "/api/v1/portal/data.csv",
        "/api/v1/settlement/periods/{period}/payouts/bank-file",
        "/api/v1/alliances/{alliance_id}/settlement/periods/{period}/payouts/bank-file",
    ):
        assert list(responses(path, "get")["200"]["content"]) == ["text/csv"], path
    assert "401" in responses("/api/v1/auth/password", "post")
    assert "401" in responses("/api/v1/signup/verify-email", "post")
    for path in ("/api/v1/auth/oidc/login", "/api/v1/auth/oidc/callback"):
        assert {"302", "404"} <= set(responses(path, "get")), path
        assert "200" not in responses(path, "get"), path

    owner = await staff_token(await tenant_factory(), "owner")
    r = await client.get("/api/v1/members/export.csv", headers=owner.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"  # once, not twice
