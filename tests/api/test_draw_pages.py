"""The lucky draw's pages: the console form (Marketing → Lucky draws) refuses a bad prize beside its
field and creates a good draw, the list shows stock left and draws; the member's portal page draws
once a day (a resent form replays the same result), in Simplified Chinese."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lianka.tenants.marketing import draws
from tests.api.test_console import sign_in_console
from tests.api.test_portal_referral import form_csrf, key_of

pytestmark = pytest.mark.integration


def local(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


async def test_console_creates_a_draw_and_the_member_draws_on_the_portal(
    client: Any, auth_kit: Any, tenant_factory: Any, db: Any
) -> None:
    tenant = await tenant_factory("一点茶")
    console = await sign_in_console(client, auth_kit, tenant)
    assert 'href="/console/draws"' in (await console.get("/console/draws")).text
    form = await console.get("/console/draws/new")
    assert form.status_code == 200 and 'name="prizes[0].chance_bp"' in form.text
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    body = {
        "name": "每日抽奖",
        "starts_at": local(now - timedelta(days=1)),
        "ends_at": local(now + timedelta(days=10)),
        "cost_points": "0",
        "budget": "",
        "prizes[0].name": "20 积分",
        "prizes[0].kind": "points",
        "prizes[0].chance_bp": "0",
        "prizes[0].stock": "3",
        "prizes[0].points": "20",
    }
    r = await console.post("/console/draws/", body)
    assert r.status_code == 400 and 'id="f-prizes[0].chance_bp-error"' in r.text, r.text
    assert "请输入 0.01 到 100 之间的中奖概率（百分比）。" in r.text
    assert await db_count(db, tenant) == 0
    r = await console.post("/console/draws/", body | {"prizes[0].chance_bp": "100"})
    assert r.status_code == 303 and r.headers["location"].startswith("/console/draws"), r.text
    listed = (await console.get("/console/draws")).text
    assert 'data-testid="stock-20 积分">3 / 3<' in listed and 'data-testid="draws-每日抽奖">0<' in listed
    draw_id = re.search(r"/draws/([0-9a-f-]{36})", listed)
    assert draw_id

    alice = await auth_kit.member(tenant)
    browser = {"Cookie": alice.headers["Cookie"]}
    slug = await slug_of(db, tenant)
    client.cookies.clear()
    home = await client.get(f"/m/{slug}", headers=alice.headers)  # the merchant page links to the open draw
    assert f'href="/m/{slug}/draws/{draw_id.group(1)}"' in home.text and "抽奖：每日抽奖" in home.text, home.text
    page = await client.get(f"/m/{slug}/draws/{draw_id.group(1)}", headers=alice.headers)
    assert page.status_code == 200 and "每天可免费抽奖一次。" in page.text, page.text
    action = f"/m/{slug}/draws/{draw_id.group(1)}/draw"
    form_data = {"_csrf": form_csrf(page.text, action), "_key": key_of(page.text, action)}
    first = await client.post(action, data=form_data, headers=browser)
    assert first.status_code == 200 and "恭喜您抽中：20 积分" in first.text, first.text
    again = await client.post(action, data=form_data, headers=browser)  # resent: the same result
    assert again.status_code == 200 and "恭喜您抽中：20 积分" in again.text
    assert "今天的免费抽奖机会已用完" in again.text and 'data-testid="draw"' not in again.text
    other_key = form_data | {"_key": "another-tap"}
    refused = await client.post(action, data=other_key, headers=browser)
    assert refused.status_code == 422 and "今天的免费抽奖机会已用完，明天再来吧！" in refused.text
    console = await sign_in_console(client, auth_kit, tenant)
    listed = (await console.get("/console/draws")).text
    assert 'data-testid="stock-20 积分">2 / 3<' in listed and 'data-testid="draws-每日抽奖">1<' in listed
    # switched off: the portal no longer links to it
    await draws.update_draw(db, tenant, uuid.UUID(draw_id.group(1)), draws.DrawPatch(active=False))
    client.cookies.clear()
    home = await client.get(f"/m/{slug}", headers=alice.headers)
    assert home.status_code == 200 and "/draws/" not in home.text


async def db_count(db: Any, tenant: Any) -> int:
    from sqlalchemy import text

    async with db.uow(tenant) as uow:
        return int(await uow.session.scalar(text("SELECT count(*) FROM lucky_draws")) or 0)


async def slug_of(db: Any, tenant: Any) -> str:
    from sqlalchemy import text

    async with db.uow(system=True) as uow:
        return str(await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant}))
