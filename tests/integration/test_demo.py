"""The demo seed (what `make run` shows a newcomer) on a database of its own: seeded once, complete."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from lianka.demo import ALLIANCE_DAYS, DEMO_MEMBERS, HISTORY_DAYS, HISTORY_SALES_PER_DAY, SHARED_MEMBERS, seed_if_empty
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
        engine = create_async_engine(demo_url)
        async with engine.connect() as conn:
            counts = {
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
        "memberships": len(DEMO_MEMBERS) + SHARED_MEMBERS,
        "sales": len(DEMO_MEMBERS) + 1 + HISTORY_DAYS * HISTORY_SALES_PER_DAY * 3,
        "top_ups": 1,
        "programme_versions": 1,
        "named": len(DEMO_MEMBERS),
        "alliance_partners": 2,
        "alliance_spokes": 2,
        "crossed": 2,
    }
