"""Health, readiness, metrics, OpenAPI, request ids and RFC 9457 problems."""

from __future__ import annotations

import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from lianka.platform.errors import NotFound, RuleViolation

PROBLEM = "application/problem+json"


class Payload(msgspec.Struct):
    amount: int
    note: str = ""


@get("/api/v1/_test/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("secret internal detail: password=hunter2")


@get("/api/v1/_test/rule", sync_to_thread=False)
def rule() -> None:
    raise RuleViolation("not enough points", balance=10, required=20)


@get("/api/v1/_test/missing", sync_to_thread=False)
def missing() -> None:
    raise NotFound("member not found")


@post("/api/v1/_test/echo", sync_to_thread=False)
def echo(data: JSONBody[Payload]) -> Payload:
    return data


@pytest.fixture
def app(fresh_app: Litestar) -> Litestar:
    for handler in (boom, rule, missing, echo):
        fresh_app.register(handler)
    return fresh_app


async def test_healthz_and_readyz(client: AsyncTestClient[Litestar]) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_readyz_reports_a_dead_dependency(client: AsyncTestClient[Litestar], app: Litestar) -> None:
    from redis.asyncio import Redis

    app.state.redis = Redis.from_url("unix:///nonexistent/redis.sock")
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["redis"].startswith("error")
    assert r.json()["checks"]["database"] == "ok"


async def test_metrics_are_prometheus_text(client: AsyncTestClient[Litestar]) -> None:
    await client.get("/api/v1/_test/missing")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert "lianka_requests_total" in r.text


async def test_openapi_schema_and_ui(client: AsyncTestClient[Litestar]) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert r.json()["info"]["title"] == "Lianka API"
    ui = await client.get("/schema")
    assert ui.status_code == 200
    assert "<html" in ui.text.lower()


async def test_request_id_is_generated_or_echoed(client: AsyncTestClient[Litestar]) -> None:
    r = await client.get("/healthz")
    assert len(r.headers["x-request-id"]) == 32
    r = await client.get("/healthz", headers={"X-Request-ID": "pos-terminal-0042"})
    assert r.headers["x-request-id"] == "pos-terminal-0042"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces\n"})
    assert r.headers["x-request-id"] != "bad id with spaces\n"


async def test_domain_error_is_a_problem(client: AsyncTestClient[Litestar]) -> None:
    r = await client.get("/api/v1/_test/rule", headers={"X-Request-ID": "req-12345678"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/rule-violation")
    assert body["detail"] == "not enough points"
    assert body["balance"] == 10
    assert body["required"] == 20
    assert body["request_id"] == "req-12345678"
    assert body["instance"] == "/api/v1/_test/rule"


async def test_unknown_route_and_not_found_are_problems(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/api/v1/nope", "/api/v1/_test/missing"):
        r = await client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["type"].endswith("/not-found")


async def test_wrong_method_is_a_problem(client: AsyncTestClient[Litestar]) -> None:
    r = await client.delete("/healthz")
    assert r.status_code == 405
    assert r.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "12"},
        {"amount": 1.5},
        {},
        {"amount": 10, "note": 5},
        "not json",
    ],
)
async def test_validation_errors_are_problems(client: AsyncTestClient[Litestar], body: object) -> None:
    r = await client.post("/api/v1/_test/echo", json=body)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith("/validation-failed")


async def test_valid_body_passes(client: AsyncTestClient[Litestar]) -> None:
    r = await client.post("/api/v1/_test/echo", json={"amount": 1234, "note": "ok"})
    assert r.status_code == 201
    assert r.json() == {"amount": 1234, "note": "ok"}


async def test_500_does_not_leak_internals(client: AsyncTestClient[Litestar]) -> None:
    r = await client.get("/api/v1/_test/boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "hunter2" not in r.text
    assert "RuntimeError" not in r.text
    assert "Traceback" not in r.text
    assert r.json()["type"].endswith("/internal-error")
