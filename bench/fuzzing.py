"""Schemathesis over the whole OpenAPI document (issue 18): a test and benchmark helper, never imported
by the app (it needs the ``dev`` extra).

Every operation gets ``examples`` generated requests (Schemathesis' own strategies from the document,
positive and negative data), each sent as four callers — merchant A's owner, merchant B's owner, a
POS client of A (client credentials) and no one — through the in-process ASGI app, and each response
is checked by Schemathesis against the document: no 5xx, the status is documented, the body's media
type and shape are the documented ones (every 4xx/5xx is ``application/problem+json``). Generated
path parameters that name an object of merchant A (``member_id``, ``branch_id``, …) are also replaced
by the real id, so requests reach the handlers rather than stopping at "not found".

Generation is separate from sending: the cases are drawn with Hypothesis (``max_examples`` per
operation, no example database, so runs are reproducible from ``seed``) and then sent with the async
test client, so the same code serves ``tests/api/test_schemathesis.py`` (small budget) and
``python -m bench fuzz --examples N`` (large). See decision 0054.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import checks as st_checks
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode

from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit, Creds
from lianka.tenants.domain.programme import Programme, StoredValueConfig, StoredValuePlan, Tier
from lianka.tenants.models import Merchant
from lianka.tenants.services.programme import set_programme

#: Schemathesis' checks by name (it registers them lazily)
CHECKS = [
    getattr(st_checks, name)
    for name in (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
]

#: operations that end the caller's own credentials when they succeed: sent without credentials
#: only, so the callers stay signed in for the rest of the run (the hand-written walk covers them)
SELF_ENDING = {
    ("POST", "/api/v1/auth/revoke"),
    ("DELETE", "/api/v1/auth/session"),
    ("DELETE", "/api/v1/portal/session"),
    ("DELETE", "/api/v1/clients/{client_row_id}"),
    ("DELETE", "/api/v1/staff/{user_id}"),
}

#: ``(status, json body)`` of one request: ``send(method, url, json, headers)``
Send = Callable[[str, str, Any, dict[str, str]], Awaitable[tuple[int, Any]]]
#: ``(status, headers, body bytes)``: ``raw(method, url, headers, body)``
Raw = Callable[[str, str, dict[str, str], bytes | None], Awaitable[Any]]


@dataclass
class World:
    """The objects requests act on, and the callers that send them."""

    ids: dict[str, str]
    callers: dict[str, Creds | None]


@dataclass
class Report:
    operations: int = 0
    cases: int = 0
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    generating: float = 0.0  # seconds spent drawing cases
    sending: float = 0.0  # seconds spent sending them and checking the answers


async def build_world(db: Database, kit: AuthKit, send: Send) -> World:
    """Merchant A with a programme, a branch, a member, a cashier, a POS client, a coupon template,
    a reward and its redemption, a sale, an import and an alliance; merchant B with its owner."""
    tenants = []
    slug = ""
    for name in ("模糊测试甲", "模糊测试乙"):
        async with db.uow(system=True) as uow:
            m = Merchant(slug=f"fz-{uuid.uuid4().hex[:12]}", name=name)
            uow.session.add(m)
            await uow.commit()
            tenants.append(m.id)
            slug = slug or m.slug  # merchant A's, for the portal routes
    a, b = tenants
    branch = await kit.branch(a, "SH01")
    async with db.uow(a) as uow:
        await set_programme(
            uow,
            fuzz_programme(),
            effective_from=datetime.now(UTC) - timedelta(minutes=1),
        )
        await uow.commit()
    owner_a = await kit.staff(a, "owner")
    owner_b = await kit.staff(b, "owner")
    pos = await kit.pos(a, ["pos", "members:read", "reports:read", "admin"], branch=branch)
    member = await kit.member(a)
    cashier = await kit.staff(a, "cashier")
    ids: dict[str, str] = {
        "branch_id": str(branch),
        "member_id": str(member.subject_id),
        "merchant": slug,
        "merchant_id": str(a),
        "user_id": str(cashier.subject_id),
        "client_row_id": str(pos.subject_id),
        "entity_id": str(branch),
    }

    async def call(method: str, url: str, body: Any, creds: Creds = owner_a) -> dict[str, Any]:
        status, out = await send(method, "/api/v1" + url, body, {**creds.headers, "Idempotency-Key": uuid.uuid4().hex})
        if status >= 300:
            raise RuntimeError(f"setting up the fuzz world: {method} {url} answered {status}: {out}")
        return dict(out)

    await create_objects(call, ids, branch, pos)
    return World(ids, {"owner-a": owner_a, "owner-b": owner_b, "pos-a": pos, "anonymous": None})


def generate(operation: Any, examples: int, seed: int) -> list[Any]:
    """Up to ``examples`` Schemathesis cases of ``operation`` (positive and negative data)."""
    drawn: list[Any] = []
    strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | operation.as_strategy(
        generation_mode=GenerationMode.NEGATIVE
    )

    @hypothesis.settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.seed(seed)
    @given(strategy)
    def draw(case: Any) -> None:
        drawn.append(case)

    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        draw()
    return drawn


def _with_real_ids(case: Any, ids: dict[str, str]) -> Iterator[Any]:
    yield case
    params = case.path_parameters or {}
    known = {k: ids[k] for k in params if k in ids}
    if known:
        real = case.operation.Case(
            path_parameters={**params, **known},
            query=case.query,
            headers=case.headers,
            cookies=case.cookies,
            body=case.body,
            media_type=case.media_type,
        )
        yield real


def prepare(case: Any, headers: dict[str, str]) -> tuple[str, str, dict[str, str], bytes | None]:
    """The request ``case`` stands for, as (method, path with query, headers, body)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    kwargs.pop("timeout", None)
    kwargs.pop("allow_redirects", None)
    kwargs.pop("verify", None)
    prepared = requests.Request(**kwargs).prepare()
    url = str(prepared.url).removeprefix("http://testserver")
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    assert body is None or isinstance(body, bytes), "requests prepares a body as bytes"
    sent = {k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()}
    return str(prepared.method), url, sent, body


async def fuzz(
    doc: dict[str, Any],
    world: World,
    raw: Raw,
    *,
    examples: int,
    seed: int = 0,
    only: Callable[[str, str], bool] = lambda method, path: True,
) -> Report:
    """Generate and send the cases; ``raw`` returns an ``httpx.Response``."""
    schema = schemathesis.openapi.from_dict(doc)
    report = Report()
    seen: set[str] = set()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is invalid
        operation = result.ok()
        method, path = operation.method.upper(), operation.path
        if not only(method, path):
            continue
        report.operations += 1
        callers = {"anonymous": None} if (method, path) in SELF_ENDING else world.callers
        started = time.perf_counter()
        drawn_cases = generate(operation, examples, seed)
        report.generating += time.perf_counter() - started
        started = time.perf_counter()
        for drawn in drawn_cases:
            for case in _with_real_ids(drawn, world.ids):
                report.cases += 1
                for caller_name, creds in callers.items():
                    headers = {**(creds.headers if creds else {})}
                    if method != "GET":
                        headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
                    try:
                        m, url, sent_headers, body = prepare(case, headers)
                    except Exception as exc:
                        report.failures.append(f"{caller_name} {method} {path}: cannot encode: {exc!r}")
                        continue
                    response = await raw(m, url, sent_headers, body)
                    report.requests += 1
                    report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
                    try:
                        case.validate_response(response, checks=CHECKS)
                    except FailureGroup as exc:
                        key = f"{method}|{path}|{response.status_code}|{_first_line(exc)}"
                        if key in seen:
                            continue
                        seen.add(key)
                        report.failures.append(
                            f"{caller_name} {m} {url[:200]} -> {response.status_code}: {_describe(exc)}\n"
                            f"    body sent: {(body or b'')[:300]!r}\n    answer: {response.text[:300]}"
                        )
        report.sending += time.perf_counter() - started
    return report


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, Failure):
        return exc.title
    failures = getattr(exc, "exceptions", None)
    if failures:
        return ";".join(sorted(_first_line(f) for f in failures))
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _describe(exc: BaseException) -> str:
    failures = getattr(exc, "exceptions", None)
    if failures:
        return " | ".join(_describe(f) for f in failures)
    if isinstance(exc, Failure):
        return f"{exc.title}: {(exc.message or '')[:400]}"
    return str(exc)[:600]


Call = Callable[..., Awaitable[dict[str, Any]]]


async def create_objects(call: Call, ids: dict[str, str], branch: uuid.UUID, pos: Creds) -> None:
    """The objects the routes act on (a coupon template, a reward and its redemption, a sale, an import,
    an alliance), made through the API with ``call(method, url, body[, creds])`` and their ids put in
    ``ids`` — shared by the Schemathesis run and the edge-input walk (tests/api/test_fuzz_openapi.py)."""
    template = await call(
        "POST",
        "/coupon-templates",
        {"code": "ten", "name": "¥10", "kind": "fixed", "amount_off": 1000, "valid_days": 30},
    )
    ids["template_id"] = template["id"]
    reward = await call(
        "POST",
        "/rewards",
        {"code": "cup", "name": "杯", "kind": "gift", "points_cost": 1, "pickup_branch_id": str(branch)},
    )
    ids["reward_id"] = reward["id"]
    sale = await call("POST", "/pos/sales", {"amount": 10_000, "member_id": ids["member_id"]}, pos)
    ids["sale_id"] = sale["sale_id"]
    imported = await call("POST", "/members/imports", {"csv": "phone,name\n13900001111,王\n", "mode": "skip_invalid"})
    ids["import_id"] = imported["id"]
    redemption = await call("POST", f"/rewards/{reward['id']}/redemptions", {"member_id": ids["member_id"]})
    ids["redemption_id"] = redemption["id"]
    alliance = await call(
        "POST",
        "/alliances",
        {
            "code": f"fz-{uuid.uuid4().hex[:8]}",
            "name": "联盟",
            "terms": {
                "issue_price": "0.010",
                "reimbursement_price": "0.008",
                "member_value": "0.010",
                "earn_rate": "1",
            },
        },
    )
    ids["alliance_id"] = alliance["id"]


def fuzz_programme() -> Programme:
    """Two tiers and a stored-value plan: enough for the tier, plan and top-up routes to find something."""
    return Programme(
        tiers=[
            Tier(code="regular", name="普通", rank=0),
            Tier(code="gold", name="金卡", rank=1, threshold=1000),
        ],
        stored_value=StoredValueConfig(plans=[StoredValuePlan(code="100-110", name="储值", pay=10_000, get=11_000)]),
    )
