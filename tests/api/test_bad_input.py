"""Input that used to answer 500 — found by fuzzing the OpenAPI document and by hand — is a 4xx
problem and changes nothing: invalid UTF-8 in a JSON body, NUL characters and lone surrogates
anywhere (body at any depth, form, query, path, header, HTTP Basic), integers beyond what a BIGINT
holds, JSON nested too deep, bodies too large. And a 500, when one happens, renders its traceback
off the event loop, so it never holds up other requests."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from litestar import Request, get, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from lianka.platform import log
from lianka.platform.identity.guards import public
from lianka.web.app import create_app
from tests.api.table_rows import row_counts

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}
INT_LIMIT = 2**63 - 1  # what a PostgreSQL BIGINT holds
MAX_DEPTH = 32  # how deep a JSON body may nest
Snapshot = Callable[[], Awaitable[dict[str, int]]]


@pytest.fixture
def rows(owner_engine) -> Snapshot:
    """Row counts of every table: "nothing written" means this is unchanged."""
    return lambda: row_counts(owner_engine)


@pytest.fixture
async def shop(tenant_factory, auth_kit, member_factory) -> dict[str, Any]:
    tenant = await tenant_factory("坏输入茶")
    branch = await auth_kit.branch(tenant, "SH01")
    member = await member_factory(tenant)
    return {
        "tenant": tenant,
        "branch": branch,
        "member": member,
        "owner": (await auth_kit.staff(tenant, "owner")).headers,
        "pos": (await auth_kit.pos(tenant, ["pos"], branch=branch)).headers,
    }


def refused(r: Any, status: int = 400, slug: str = "validation-failed") -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = dict(r.json())
    assert body["status"] == status and body["type"].endswith("/" + slug), body
    assert body["request_id"] == r.headers["x-request-id"]
    return body


# --- invalid UTF-8 in JSON bodies --------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/auth/token", "/api/v1/auth/session", "/api/v1/signup", "/api/v1/portal/otp"])
async def test_invalid_utf8_in_a_json_body_is_a_400(client, rows: Snapshot, url: str) -> None:
    before = await rows()
    for body in (
        b'{"email": "a\xff@example.com", "password": "x"}',  # a byte no UTF-8 text holds
        b'{"email": "\xed\xa0\x80@example.com", "password": "x"}',  # an encoded surrogate
        b'{"email": "a@example.com", "password": "\xc3\x28"}',  # a broken 2-byte sequence
        b'{"phone": "1380013\xff8000"}',
    ):
        refused(await client.post(url, content=body, headers=JSON))
    assert await rows() == before


async def test_a_body_is_checked_whatever_its_declared_type(client, shop) -> None:
    """The app takes JSON (and forms); a JSON body sent as text/plain meets the same rules."""
    r = await client.post(
        "/api/v1/pos/quote",
        content=b'{"amount": 1, "card": "\xff"}',
        headers={**shop["pos"], "content-type": "text/plain"},
    )
    refused(r)


# --- NUL and lone surrogates -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a\x00b@example.com", "\ud800@example.com", "\udfff"])
async def test_nul_and_lone_surrogates_in_json_strings(client, rows: Snapshot, value: str) -> None:
    before = await rows()
    for url in ("/api/v1/auth/token", "/api/v1/auth/session"):
        body = json.dumps({"email": value, "password": "long enough password"}).encode()  # \u0000, \ud800
        refused(await client.post(url, content=body, headers=JSON))
    signup = json.dumps(
        {
            "merchant_name": value,
            "slug": f"s-{uuid.uuid4().hex[:8]}",
            "email": "ok@example.com",
            "password": "long enough password",
        }
    ).encode()
    refused(await client.post("/api/v1/signup", content=signup, headers=JSON))
    assert await rows() == before


async def test_nul_deep_inside_a_body_or_in_a_key(client, shop, rows: Snapshot) -> None:
    url = f"/api/v1/members/{shop['member']}/profile"
    ok = await client.patch(url, json={"name": "张伟", "preferences": {"tea": ["oolong"]}}, headers=shop["owner"])
    assert ok.status_code == 200, ok.text
    before = await rows()
    for bad in (
        {"preferences": {"tea": [{"note": "x\x00"}]}},  # any depth
        {"preferences": {"te\x00a": 1}},  # an object key
        {"tags": ["vip", "\ud83d"]},  # half of an emoji's surrogate pair
        {"name": "a\x00b"},
        {"email": "a\x00@b.c"},
        {"address": "\x00"},
    ):
        # json.dumps escapes NUL and surrogates (\u0000, \ud83d), as a JavaScript client's JSON.stringify does
        r = await client.patch(url, content=json.dumps(bad).encode(), headers={**shop["owner"], **JSON})
        refused(r)
    assert await rows() == before
    profile = (await client.get(url, headers=shop["owner"])).json()
    assert (profile["name"], profile["preferences"]) == ("张伟", {"tea": ["oolong"]})


@pytest.mark.parametrize("query", ["q=a%00b", "tag=%00", "tier=%C3%28", "q=%ED%A0%80", "q=%FF", "stage=x&zz=%00"])
async def test_bad_text_in_a_query_string(client, shop, query: str) -> None:
    body = refused(await client.get(f"/api/v1/members?{query}", headers=shop["owner"]))
    assert body["field"] == "query"


async def test_bad_text_before_authentication(client) -> None:
    """The checks of query, path and headers run before the guards: no sign-in needed to be refused."""
    refused(await client.get("/api/v1/members?q=%00"))
    refused(await client.get("/api/v1/settlement/periods/2026-01%00"))
    refused(await client.get("/api/v1/auth/me", headers={"X-Merchant": "demo\x00tea"}))


async def test_bad_text_in_a_path_parameter(client, shop) -> None:
    for path in (
        "/api/v1/settlement/periods/2026-01%00",
        "/api/v1/settlement/periods/%C3%28",
        f"/api/v1/members/{shop['member']}/consent/sms%00",
    ):
        r = await client.request(
            "PUT" if "consent" in path else "GET", path, headers=shop["owner"], json={"granted": True}
        )
        assert refused(r)["field"] in ("path", "period", "channel")


@pytest.mark.parametrize("header", ["X-Merchant", "Idempotency-Key", "X-Request-ID", "Cookie"])
async def test_nul_in_a_header(client, shop, rows: Snapshot, header: str) -> None:
    before = await rows()
    headers = {**shop["pos"], header: "abc\x00def"}
    r = await client.post("/api/v1/pos/sales", json={"amount": 100}, headers=headers)
    refused(r)
    assert await rows() == before


# --- the OAuth token endpoint: form fields and HTTP Basic ----------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        "grant_type=client_credentials&client_id=lkc_%00&client_secret=x",
        "grant_type=client_credentials&client_id=%C3%28&client_secret=x",
        "grant_type=client_credentials&client_id=lkc&client_secret=%00",
        "grant_type=client_credentials&scope=pos%00",
    ],
)
async def test_bad_text_in_the_token_form(client, form: str) -> None:
    for url in ("/oauth/token", "/oauth/revoke"):
        r = await client.post(
            url, content=form + "&token=t", headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert refused(r)["field"] == "form"


@pytest.mark.parametrize(
    "credentials",
    [b"lkc_\x00:secret", b"lkc_%00:secret", b"lkc:sec%00ret", b"lkc_\xc3\x28:s", b"lkc_\xed\xa0\x80:s", b"lkc:%FF"],
)
async def test_malformed_basic_credentials(client, credentials: bytes) -> None:
    basic = base64.b64encode(credentials).decode()
    for url in ("/oauth/token", "/oauth/revoke"):
        r = await client.post(
            url, data={"grant_type": "client_credentials", "token": "t"}, headers={"Authorization": f"Basic {basic}"}
        )
        body = refused(r, 400, "oauth-invalid-request")
        assert body["error"] == "invalid_request"  # what OAuth client libraries read


async def test_basic_credentials_that_are_not_base64(client) -> None:
    r = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic é".encode("latin-1")},
    )
    refused(r, 400, "oauth-invalid-request")


async def test_a_real_client_still_gets_its_token(client, auth_kit, shop) -> None:
    """The checks refuse what no client can have, not the credentials we issue."""
    creds = await auth_kit.pos(shop["tenant"], ["pos"], branch=shop["branch"])
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
    r = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["access_token"]


# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "offset=99999999999999999999",
        "offset=-99999999999999999999",
        f"limit={INT_LIMIT + 1}",
        "offset=1e20",
        f"offset={-INT_LIMIT - 1}",
    ],
)
async def test_integer_query_parameters_beyond_64_bits(client, shop, query: str) -> None:
    body = refused(await client.get(f"/api/v1/members?{query}", headers=shop["owner"]))
    assert body["field"] in ("offset", "limit")


async def test_the_largest_bigint_is_the_endpoints_business(client, shop) -> None:
    """±(2**63-1) passes the edge; the endpoint bounds what it needs (the member list: offset ≤ 10**9)."""
    r = await client.get("/api/v1/members?offset=1000000000", headers=shop["owner"])
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get(f"/api/v1/members?offset={INT_LIMIT}", headers=shop["owner"])
    assert r.status_code == 400 and r.json()["field"] == "offset"
    refused(await client.get(f"/api/v1/members?offset={-INT_LIMIT}", headers=shop["owner"]))


async def test_a_digit_string_is_not_an_integer_parameter(client, shop) -> None:
    """Only integer parameters are bounded: a 28-digit search term (a payment id) is text."""
    r = await client.get("/api/v1/members?q=4200001234202611238765432101", headers=shop["owner"])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "number", [b"9223372036854775808", b"-9223372036854775808", b"99999999999999999999", b"1e19", b"-1.5e300"]
)
async def test_json_numbers_beyond_64_bits(client, shop, rows: Snapshot, number: bytes) -> None:
    before = await rows()
    for url, body in (
        ("/api/v1/pos/quote", b'{"amount": %s}'),
        ("/api/v1/pos/sales", b'{"amount": 100, "points": %s}'),
        (f"/api/v1/members/{shop['member']}/profile", b'{"preferences": {"n": [%s]}}'),
    ):
        headers = {**(shop["owner"] if "profile" in url else shop["pos"]), **JSON, "Idempotency-Key": uuid.uuid4().hex}
        r = await client.request("PATCH" if "profile" in url else "POST", url, content=body % number, headers=headers)
        refused(r)
    assert await rows() == before


# --- depth and size ----------------------------------------------------------------------------


def nested(levels: int) -> Any:
    doc: Any = "deep"
    for _ in range(levels):
        doc = {"k": doc}
    return doc


async def test_json_nested_thousands_deep(client, shop, rows: Snapshot) -> None:
    url = f"/api/v1/members/{shop['member']}/profile"
    before = await rows()
    deep = b'{"preferences": ' + b'{"k": ' * 5000 + b"1" + b"}" * 5000 + b"}"
    refused(await client.patch(url, content=deep, headers={**shop["owner"], **JSON}))
    refused(await client.patch(url, content=b"[" * 100_000 + b"]" * 100_000, headers={**shop["owner"], **JSON}))
    refused(await client.post("/api/v1/signup", content=b"[" * 5000 + b"]" * 5000, headers=JSON))  # no sign-in
    assert await rows() == before


async def test_the_depth_limit_is_exact(client, shop) -> None:
    """The body object is level 1: ``preferences`` may hold MAX_DEPTH - 1 levels, not one more."""
    url = f"/api/v1/members/{shop['member']}/profile"
    fits = await client.patch(url, json={"preferences": nested(MAX_DEPTH - 1)}, headers=shop["owner"])
    assert fits.status_code == 200, fits.text
    refused(await client.patch(url, json={"preferences": nested(MAX_DEPTH)}, headers=shop["owner"]))


async def test_an_oversized_body_is_a_413(client, shop, rows: Snapshot) -> None:
    before = await rows()
    big = b'{"amount": 1, "card": "' + b"9" * 10_000_001 + b'"}'
    refused(
        await client.post("/api/v1/pos/quote", content=big, headers={**shop["pos"], **JSON}), 413, "payload-too-large"
    )
    refused(await client.post("/api/v1/signup", content=big, headers=JSON), 413, "payload-too-large")
    assert await rows() == before


# --- the database's own refusal, for a field whose check was forgotten ----------------------------


async def test_a_value_the_database_cannot_store_is_a_400(settings, shop, db) -> None:
    """A route that forgot a length check, or text that came from elsewhere than the request (a file,
    say) with a NUL in it: PostgreSQL refuses to store it, the transaction rolls back, and the caller
    gets a 400 problem rather than a 500."""

    @post("/_test/rename-branch", guards=[public], status_code=200)
    async def rename(request: Request[Any, Any, Any], data: JSONBody[dict[str, str]]) -> None:
        name = data["name"].replace("<NUL>", "\x00")  # as if decoded from somewhere unchecked
        async with request.app.state.db.uow(uuid.UUID(data["tenant"])) as uow:
            await uow.session.execute(
                text("UPDATE branches SET name = :n WHERE id = :b"), {"n": name, "b": data["branch"]}
            )
            await uow.commit()

    app = create_app(settings)  # its own engine, on the client's loop
    app.register(rename)
    target = {"tenant": str(shop["tenant"]), "branch": str(shop["branch"])}
    async with AsyncTestClient(app=app) as client:
        for name in ("長" * 201, "SH<NUL>01"):  # branches.name is varchar(200)
            body = refused(await client.post("/_test/rename-branch", json={**target, "name": name}))
            assert "varchar" not in body["detail"]  # says what, not how it is stored
        async with db.uow(shop["tenant"]) as uow:
            assert (
                await uow.session.scalar(text("SELECT name FROM branches WHERE id = :b"), {"b": shop["branch"]})
                == "SH01"
            )
        ok = await client.post("/_test/rename-branch", json={**target, "name": "长" * 200})
        assert ok.status_code == 200, ok.text


# --- a 500 does not stall the server -------------------------------------------------------------


class _HeldFormatter(logging.Formatter):
    """Wraps the real formatter: notes the thread it runs on and holds until released."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner, self.entered, self.release = inner, threading.Event(), threading.Event()
        self.threads: list[int] = []

    def format(self, record: logging.LogRecord) -> str:
        self.threads.append(threading.get_ident())
        self.entered.set()
        self.release.wait(30)
        return self.inner.format(record)


async def test_a_500_renders_its_traceback_off_the_event_loop(settings) -> None:
    @get("/_test/boom", guards=[public], sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("boom: the details stay in the log")

    app = create_app(settings)
    app.register(boom)
    out = io.StringIO()
    sink = log.configure_logging(settings, stream=out)
    assert sink.formatter is not None
    held = _HeldFormatter(sink.formatter)
    sink.setFormatter(held)
    loop_thread = threading.get_ident()
    try:
        async with AsyncTestClient(app=app) as client:
            r = await client.get("/_test/boom", headers={"X-Request-ID": "boom-request-0001"})
            assert r.status_code == 500 and "details" not in r.text
            assert await asyncio.to_thread(held.entered.wait, 10), "the error was never logged"
            # the traceback is being rendered right now; the server answers regardless
            for _ in range(3):
                assert (await client.get("/healthz")).status_code == 200
            assert not held.release.is_set()
            held.release.set()
            await asyncio.to_thread(log.flush_logs)
    finally:
        held.release.set()
        log.configure_logging(settings)
    assert loop_thread not in held.threads
    written = out.getvalue()
    assert "RuntimeError" in written and "boom: the details stay in the log" in written
    assert "request_id=boom-request-0001" in written  # the request's context crossed the thread
