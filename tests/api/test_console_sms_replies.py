"""The console's SMS replies page (decision 0045): newest first, 50 a page, filtered by the action a
reply took, phones masked, times in the merchant's zone; another merchant's replies never show, and a
cashier (no campaigns:read) is refused."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.test_console import sign_in_console

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 December in Shanghai


async def _replies(owner_engine: Any, tenant: uuid.UUID, n: int, *, action: str, content: str, start: int) -> None:
    async with owner_engine.begin() as conn:
        for i in range(n):
            await conn.execute(
                text(
                    "INSERT INTO sms_replies (tenant_id, provider, reply_id, phone, content, action, payload, "
                    "received_at) VALUES (:t, 'aliyun', :r, :p, :c, :a, CAST(:payload AS jsonb), :at)"
                ),
                {"t": tenant, "r": uuid.uuid4().hex, "p": f"+86139{start + i:08d}", "c": f"{content}{start + i}",
                 "a": action, "payload": json.dumps({}), "at": AT - timedelta(minutes=start + i)},
            )  # fmt: skip


async def test_replies_are_listed_masked_filtered_and_paged(
    client: Any, auth_kit: Any, tenant_factory: Any, owner_engine: Any
) -> None:
    mine, other = await tenant_factory("回复商户"), await tenant_factory("别家")
    await _replies(owner_engine, mine, 3, action="unsubscribe", content="TD#", start=0)
    await _replies(owner_engine, mine, 52, action="stored", content="请问营业时间#", start=3)
    await _replies(owner_engine, other, 1, action="stored", content="别家的回复#", start=90)

    console = await sign_in_console(client, auth_kit, mine)
    first = await console.get("/console/messaging/replies")
    assert first.status_code == 200
    html = first.text
    assert html.count('<tr data-action="') == 50
    assert 'data-testid="pager"' in html and 'href="?action=&amp;n=2"' in html
    assert "TD#0" in html and "+8613900000000" not in html and "+86139****0000" in html
    assert "<td>2026年12月1日 00:30:00</td>" in html  # the merchant's zone (Shanghai), not UTC's 30 November
    assert "别家的回复" not in html
    second = (await console.get("/console/messaging/replies?n=2")).text
    assert second.count('<tr data-action="') == 5 and "请问营业时间#54" in second
    past = (await console.get("/console/messaging/replies?n=9")).text  # past the end: the last page
    assert past.count('<tr data-action="') == 5

    only = (await console.get("/console/messaging/replies?action=unsubscribe")).text
    assert only.count('<tr data-action="unsubscribe"') == 3 and 'data-action="stored"' not in only
    stored = (await console.get("/console/messaging/replies?action=stored&n=2")).text
    assert stored.count('<tr data-action="stored"') == 2
    odd = (await console.get("/console/messaging/replies?action=nonsense")).text  # unknown: all of them
    assert odd.count('<tr data-action="') == 50

    theirs = await sign_in_console(client, auth_kit, other)
    page = (await theirs.get("/console/messaging/replies")).text
    assert page.count('<tr data-action="') == 1 and "TD#0" not in page

    cashier = await sign_in_console(client, auth_kit, mine, "cashier")
    assert (await cashier.get("/console/messaging/replies")).status_code == 403
