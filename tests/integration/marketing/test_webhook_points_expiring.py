"""The ``points.expiring`` webhook: written when the points-expiry reminder fires, once per member and
expiry date (however many points-expiry automations the merchant has, however often the job runs),
with the points still expiring that day — and nothing at a merchant without a subscriber."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.webhooks import sender
from lianka.platform.webhooks import services as hooks
from lianka.tenants.marketing import automations as auto

from . import kit

pytestmark = pytest.mark.integration
NOW = kit.NOW


async def _events(db: Database, tenant: Any) -> list[dict[str, Any]]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.execute(text("SELECT type, data FROM webhook_events ORDER BY created_at"))
        return [{"type": r.type, **r.data} for r in rows]


async def test_points_expiring_is_announced_once_per_member_and_date(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    t, quiet = await tenant_factory(), await tenant_factory()
    await hooks.subscribe(
        db, t, "http://127.0.0.1:9/hooks", ["points.expiring"], policy=sender.Policy(production=False)
    )
    # a second points-expiry automation of the merchant's own, besides the default reminder
    made = auto.AutomationIn(name="到期再提醒", trigger="points_expiring", channel="portal", template="{name}", days=30)
    await auto.create(db, t, made, now=NOW - timedelta(days=1))
    members = []
    for tenant in (t, quiet):
        m = await member_factory(tenant)
        await kit.profile(db, tenant, m, joined=NOW - timedelta(days=400), branch=None, name="小王")
        await kit.points(db, tenant, m, 30, expiring=True)
        members.append(m)
    for _ in range(2):
        await auto.run(db, t, NOW, auto.TIME_TRIGGERS)
        await auto.run(db, quiet, NOW, auto.TIME_TRIGGERS)
    (event,) = await _events(db, t)
    assert event["type"] == "points.expiring" and event["member_id"] == str(members[0])
    assert event["points"] == 30 and len(event["expires_on"]) == 10
    assert set(event) == {"type", "member_id", "points", "expires_on"}  # no name, no phone
    assert await _events(db, quiet) == []
    async with db.uow(t) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM outbox WHERE actor = 'webhooks_deliver'")) == 1
