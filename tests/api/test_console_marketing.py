"""The console's marketing pages: the segment rule builder (add condition and group, the live count,
the refusal beside the field, save), the list with counts, the RFM badge on the member detail, and
the SMS/e-mail provider page (the secret shown masked). Under 营销/Marketing in the menu."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from lianka.tenants.marketing import services as svc
from tests.api.test_console import Client, sign_in_console

pytestmark = pytest.mark.integration


def count_of(html: str) -> str:
    found = re.search(r'data-count="([0-9]*)"', html)
    assert found, html[:2000]
    return found.group(1)


async def _members(db: Any, tenant: Any, member_factory: Any) -> list[Any]:
    ms = [await member_factory(tenant) for _ in range(3)]
    async with db.uow(tenant) as uow:
        for i, m in enumerate(ms):
            await uow.session.execute(
                text("INSERT INTO member_profiles (tenant_id, member_id, tier_code, consent) VALUES (:t, :m, :tier, "
                     "CAST(:c AS jsonb))"),
                {"t": tenant, "m": m, "tier": "gold" if i == 0 else "silver",
                 "c": '{"sms": {"granted": true}}' if i < 2 else "{}"},
            )  # fmt: skip
        await uow.commit()
    return ms


async def test_rule_builder_counts_as_you_edit_and_saves(
    client: Client, auth_kit: Any, tenant_factory: Any, member_factory: Any, db: Any
) -> None:
    t = await tenant_factory()
    await _members(db, t, member_factory)
    console = await sign_in_console(client, auth_kit, t)
    menu = (await console.get("/console/segments")).text
    assert "Segments" in menu or "人群" in menu
    page = await console.get("/console/segments/new")
    assert page.status_code == 200, page.text
    assert count_of(page.text) == "2"  # the new segment starts with "consented to SMS"

    base = {"nodes": ["r", "r.0"], "r.kind": "group", "r.op": "and", "r.0.kind": "consent", "r.0.channel": "sms",
            "r.0.granted": "true", "name": "Gold SMS"}  # fmt: skip
    r = await console.post("/console/segments/build", {**base, "action": "add-condition:r"}, htmx=True)
    assert r.status_code == 200 and 'data-node="r.1"' in r.text and count_of(r.text) == "2"
    r = await console.post("/console/segments/build", {**base, "action": "add-group:r"}, htmx=True)
    assert 'data-node="r.1"' in r.text and 'data-node="r.1.0"' in r.text

    gold = {**base, "nodes": ["r", "r.0", "r.1"], "r.1.kind": "tier", "r.1.tiers": "gold"}
    r = await console.post("/console/segments/build", gold, htmx=True)
    assert count_of(r.text) == "1"
    r = await console.post("/console/segments/build", {**gold, "r.op": "or"}, htmx=True)
    assert count_of(r.text) == "2"
    bad = {**gold, "r.1.kind": "rfm", "r.1.score": "recency", "r.1.min": "x"}
    r = await console.post("/console/segments/build", bad, htmx=True)
    assert count_of(r.text) == "" and 'data-testid="rule-error"' in r.text
    assert re.search(r'data-node="r\.1" data-invalid="true"', r.text)
    r = await console.post("/console/segments/build", {**gold, "action": "remove:r.1"}, htmx=True)
    assert 'data-node="r.1"' not in r.text and count_of(r.text) == "2"

    r = await console.post("/console/segments/save", gold, htmx=True)
    assert (
        r.status_code in (200, 303) and r.headers.get("hx-redirect", r.headers.get("location")) == "/console/segments"
    )
    [saved] = await svc.list_segments(db, t)
    assert (saved.name, saved.last_count) == ("Gold SMS", 1)
    listing = (await console.get("/console/segments")).text
    assert 'data-segment="Gold SMS"' in listing
    r = await console.post("/console/segments/save", gold, htmx=True)  # the same name again
    assert r.status_code == 409


async def test_analyst_sees_segments_but_cannot_save(client: Client, auth_kit: Any, tenant_factory: Any) -> None:
    t = await tenant_factory()
    console = await sign_in_console(client, auth_kit, t, "analyst")
    assert (await console.get("/console/segments")).status_code == 200
    assert 'data-testid="add-segment"' not in (await console.get("/console/segments")).text
    r = await console.post("/console/segments/save", {"nodes": ["r"], "r.kind": "group", "name": "x"}, htmx=True)
    assert r.status_code == 403
    assert (await console.get("/console/messaging")).status_code == 403


async def test_member_detail_shows_the_rfm_badge(
    client: Client, auth_kit: Any, tenant_factory: Any, member_factory: Any, db: Any
) -> None:
    t = await tenant_factory()
    [m, *_] = await _members(db, t, member_factory)
    async with db.uow(t) as uow:
        await uow.session.execute(
            text("INSERT INTO member_rfm (tenant_id, member_id, recency, frequency, monetary, last_purchase_at, "
                 "purchases, spend, computed_at) VALUES (:t, :m, 5, 3, 4, now(), 3, 900, now())"),
            {"t": t, "m": m},
        )  # fmt: skip
        await uow.commit()
    console = await sign_in_console(client, auth_kit, t)
    page = (await console.get(f"/console/members/{m}")).text
    assert 'data-testid="member-rfm"' in page
    assert re.findall(r'data-rfm="(\w+)">(\w+)<', page) == [("recency", "R5"), ("frequency", "F3"), ("monetary", "M4")]


async def test_provider_page_masks_the_secret(client: Client, auth_kit: Any, tenant_factory: Any) -> None:
    t = await tenant_factory()
    console = await sign_in_console(client, auth_kit, t)
    assert (await console.get("/console/messaging")).status_code == 200
    secret = "TencentKey-" + datetime.now(UTC).strftime("%H%M%S%f")
    form = {"provider": "tencent", "secret_id": "AKID1", "sdk_app_id": "1400", "sign_name": "链卡", "template_id": "7",
            "secret": secret}  # fmt: skip
    r = await console.post("/console/messaging/sms", form)
    assert r.status_code == 303, r.text
    page = (await console.get("/console/messaging")).text
    assert secret not in page and f"••••{secret[-4:]}" in page and "AKID1" in page
    r = await console.post("/console/messaging/sms", {**form, "sdk_app_id": "", "secret": ""})
    assert r.status_code == 400 and "aria-invalid" in r.text
