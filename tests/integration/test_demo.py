"""The demo seed (what `make run` shows a newcomer) on a database of its own: seeded once, complete."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from lianka.demo import (
    ALLIANCE_DAYS,
    DEMO_MEMBERS,
    HISTORY_DAYS,
    HISTORY_SALES_PER_DAY,
    MARKETING_MEMBERS,
    SHARED_MEMBERS,
    seed_if_empty,
)
from lianka.demo_shopper import shop_once
from lianka.platform.db import Database
from lianka.platform.migrate import upgrade
from lianka.platform.settings import Settings
from tests.conftest import _recreate_database

pytestmark = pytest.mark.integration


def test_demo_seeds_an_empty_database_once(settings: Settings) -> None:
    url = make_url(settings.database_url)
    demo_url = url.set(database=f"{url.database}_demo").render_as_string(hide_password=False)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    asyncio.run(_recreate_database(admin, f"{url.database}_demo"))
    upgrade(demo_url)
    demo = replace(settings, database_url=demo_url)

    async def run() -> tuple[str, str, dict[str, int]]:
        first = await seed_if_empty(demo)
        second = await seed_if_empty(demo)
        counts = await _walkthrough_audience(demo)
        engine = create_async_engine(demo_url)
        async with engine.connect() as conn:
            counts |= {
                t: int(await conn.scalar(text(f"SELECT count(*) FROM {t}")) or 0)
                for t in (
                    "merchants",
                    "branches",
                    "staff_users",
                    "api_clients",
                    "memberships",
                    "sales",
                    "top_ups",
                    "programme_versions",
                    "alliance_partners",
                    "alliance_spokes",
                    "report_daily",
                    "alliance_report_flows",
                )
            }
            named = await conn.scalar(text("SELECT count(*) FROM member_profiles WHERE name <> ''"))
            # flows both ways: each partner's points redeemed at the other
            crossed = await conn.scalar(
                text("SELECT count(DISTINCT issuer_id) FROM alliance_report_flows WHERE issuer_id <> redeemer_id")
            )
            counts["crossed"] = int(crossed or 0)
            counts["named"] = int(named or 0)
        await engine.dispose()
        return first, second, counts

    first, second, counts = asyncio.run(run())
    assert first.startswith("demo seeded")
    assert "already has data" in second
    # four weeks of history at demo-tea's three branches, rolled up for the dashboard (a row per day and branch)
    assert counts.pop("report_daily") >= HISTORY_DAYS * 3
    # three weeks of alliance points redeemed across the two partners, both ways, rolled up
    assert counts.pop("alliance_report_flows") >= ALLIANCE_DAYS
    assert counts == {
        "merchants": 2,
        "branches": 4,
        "staff_users": 2,
        "api_clients": 1,
        "memberships": len(DEMO_MEMBERS) + SHARED_MEMBERS + MARKETING_MEMBERS,
        # the demo shopper's three sales come after the seed's
        "sales": len(DEMO_MEMBERS) + 1 + HISTORY_DAYS * HISTORY_SALES_PER_DAY * 3 + MARKETING_MEMBERS + 3,
        "top_ups": 1,
        # the demo programme, then the same with the demo promotions (published after the seeded sales)
        "programme_versions": 2,
        "named": len(DEMO_MEMBERS) + MARKETING_MEMBERS,
        # the README walkthrough's segment: gold, SMS consent, points expiring this month
        "walkthrough_audience": MARKETING_MEMBERS,
        "shopper_sales": 3,
        "alliance_partners": 2,
        "alliance_spokes": 2,
        "crossed": 2,
    }


WALKTHROUGH = {
    "version": 1,
    "root": {
        "kind": "group",
        "op": "and",
        "conditions": [
            {"kind": "tier", "tiers": ["gold"]},
            {"kind": "points_expiring", "this_month": True},
            {"kind": "consent", "channel": "sms"},
        ],
    },
}


async def _walkthrough_audience(demo: Settings) -> dict[str, int]:
    """The segment the README's walkthrough builds, counted on the demo data; then the demo shopper."""
    from lianka.tenants.marketing import services as segments

    db = Database.from_settings(demo)
    try:
        async with db.uow(system=True) as uow:
            tea = await uow.session.scalar(text("SELECT id FROM merchants WHERE slug = 'demo-tea'"))
        preview = await segments.preview(db, tea, WALKTHROUGH)
        done = await shop_once(db, "demo-tea", 3)
        # the till prices with the demo promotions from now on: ¥120 at SH01 gets 满100减10
        from lianka.tenants.pos import sales, schemas

        async with db.uow(tea) as uow:
            branch = await uow.session.scalar(text("SELECT id FROM branches WHERE code = 'SH01'"))
        quote = await sales.quote(db, tea, schemas.Basket(amount=12_000), branch)
    finally:
        await db.dispose()
    assert [(a.code, a.discount) for a in quote.applied_promotions] == [("mj100", 1_000)] and quote.due == 11_000
    return {"walkthrough_audience": preview.count, "shopper_sales": len(done)}
