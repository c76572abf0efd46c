"""Every time a till or the console sends is bounded: year 9999, year 1, a time UTC cannot hold, a
time before 2000 or more than a day ahead is a 400 ``validation-failed`` naming the field, and
nothing is written — never a 500 from an overflow half-way through a sale."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from lianka.platform.db import Database
from lianka.tenants.domain.programme import EarningRule, Programme, RuleKind, StoredValueConfig, StoredValuePlan
from tests.api.shop import PROBLEM, Shop, make_shop

pytestmark = pytest.mark.integration

PROGRAMME = Programme(
    stored_value=StoredValueConfig(plans=[StoredValuePlan(code="500", name="储值500", pay=50_000, get=55_000)]),
    rules=[
        EarningRule(code="review", kind=RuleKind.REVIEW, points=5),
        EarningRule(code="share", kind=RuleKind.CUSTOM, event="share", points=5),
    ],
)

BAD_TIMES = [
    "9999-12-31T23:59:59+00:00",
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:30:00+01:00",
    "1999-12-31T23:59:59+00:00",
    "2026-11-20T10:00:00",
]
#: tables a refused request must leave as they were
TABLES = ("sales", "refunds", "top_ups", "ledger_entries", "idempotency_keys", "coupon_templates", "programme_versions")


@pytest.fixture
async def shop(client, auth_kit, db: Database, tenant_factory) -> Shop:
    shop = await make_shop(client, auth_kit, db, tenant_factory)
    await shop.programme(PROGRAMME, since=datetime.now(UTC) - timedelta(hours=1))
    return shop


async def _counts(shop: Shop) -> dict[str, int]:
    return {t: int(await shop.scalar(f"SELECT count(*) FROM {t}")) for t in TABLES}


async def _requests(shop: Shop, when: str) -> list[tuple[str, str, Any, str]]:
    """(method, url, body, the field the problem must name) for every route that takes a time."""
    member = str((await shop.kit.member(shop.tenant)).subject_id)
    sh01 = str(shop.sh01)
    sale = await shop.ok(
        "POST",
        "/pos/sales",
        json={"amount": 1_000, "member_id": member, "branch_id": sh01},
        status=201,
        idempotent=True,
    )
    template = {"code": "c1", "name": "¥10", "kind": "fixed", "amount_off": 1_000, "valid_days": 30}
    return [
        (
            "POST",
            "/pos/quote",
            {"amount": 100, "member_id": member, "branch_id": sh01, "business_time": when},
            "business_time",
        ),
        (
            "POST",
            "/pos/sales",
            {"amount": 100, "member_id": member, "branch_id": sh01, "business_time": when},
            "business_time",
        ),
        (
            "POST",
            "/pos/top-ups",
            {"member_id": member, "plan": "500", "branch_id": sh01, "business_time": when},
            "business_time",
        ),
        (
            "POST",
            "/pos/stored-value/refunds",
            {"member_id": member, "branch_id": sh01, "business_time": when},
            "business_time",
        ),
        ("POST", f"/pos/sales/{sale['sale_id']}/refunds", {"business_time": when}, "business_time"),
        ("POST", "/reviews", {"member_id": member, "reference": "r1", "business_time": when}, "business_time"),
        ("POST", "/events", {"member_id": member, "event": "share", "business_time": when}, "business_time"),
        ("POST", "/coupon-templates", {**template, "valid_until": when}, "valid_until"),
        ("POST", "/coupon-templates", {**template, "valid_from": when}, "valid_from"),
        ("PUT", f"/programme/points?effective_from={quote(when)}", {"earn_per_major": "2"}, "effective_from"),
    ]


@pytest.mark.parametrize("when", BAD_TIMES)
async def test_out_of_range_times_are_a_400_naming_the_field(shop: Shop, when: str) -> None:
    requests = await _requests(shop, when)
    before = await _counts(shop)
    for method, url, body, field in requests:
        r = await shop.call(method, url, json=body, idempotent=True)
        assert r.status_code == 400, (url, body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        problem = r.json()
        assert (problem["type"].split("/")[-1], problem["field"]) == ("validation-failed", field), (url, problem)
    assert await _counts(shop) == before


@pytest.mark.parametrize("when", BAD_TIMES)
async def test_an_offline_batch_reports_the_bad_time_per_item(shop: Shop, when: str) -> None:
    member = str((await shop.kit.member(shop.tenant)).subject_id)
    items = [
        {
            "key": "ok",
            "sale": {
                "amount": 100,
                "member_id": member,
                "branch_id": str(shop.sh01),
                "business_time": "2026-11-20T10:00:00+08:00",
            },
        },
        {
            "key": "bad",
            "sale": {"amount": 100, "member_id": member, "branch_id": str(shop.sh01), "business_time": when},
        },
    ]
    r = await shop.call("POST", "/pos/offline-batch", json={"items": items})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["created"], out["errors"]) == (1, 1)
    problem = out["results"][1]["problem"]
    assert (problem["status"], problem["field"]) == (400, "business_time")
    assert await shop.scalar("SELECT count(*) FROM sales") == 1


async def test_times_at_the_edges_are_accepted(shop: Shop) -> None:
    member = str((await shop.kit.member(shop.tenant)).subject_id)
    sh01 = str(shop.sh01)
    old = "2000-01-01T00:00:00+00:00"
    soon = (datetime.now(UTC) + timedelta(hours=23)).isoformat()
    for when in (old, soon):
        await shop.ok(
            "POST",
            "/pos/sales",
            json={"amount": 100, "member_id": member, "branch_id": sh01, "business_time": when},
            status=201,
            idempotent=True,
        )
    await shop.ok(
        "POST",
        "/pos/top-ups",
        json={"member_id": member, "plan": "500", "branch_id": sh01, "business_time": soon},
        status=201,
        idempotent=True,
    )
    later = (datetime.now(UTC) + timedelta(days=365 * 73)).isoformat()
    await shop.ok(
        "POST",
        "/coupon-templates",
        json={"code": "c1", "name": "¥10", "kind": "fixed", "amount_off": 1_000, "valid_until": later},
        status=201,
    )
    await shop.ok("PUT", f"/programme/points?effective_from={quote(later)}", json={"earn_per_major": "2"})


async def test_a_refund_cannot_be_dated_before_its_sale(shop: Shop) -> None:
    sale = await shop.ok(
        "POST",
        "/pos/sales",
        json={"amount": 1_000, "branch_id": str(shop.sh01), "business_time": "2026-11-20T10:00:00+08:00"},
        status=201,
        idempotent=True,
    )
    r = await shop.call(
        "POST",
        f"/pos/sales/{sale['sale_id']}/refunds",
        json={"business_time": "2026-11-20T09:59:59+08:00"},
        idempotent=True,
    )
    assert (r.status_code, r.json()["field"]) == (400, "business_time")
    r = await shop.call(
        "POST",
        f"/pos/sales/{sale['sale_id']}/refunds",
        json={"business_time": "2026-11-20T10:00:00+08:00"},
        key=uuid.uuid4().hex,
    )
    assert r.status_code == 201, r.text
