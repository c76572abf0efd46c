"""The daily metered-usage report: messages sent and active members go to Stripe's billing meter
events once per merchant, meter and day, however often the job runs (stand-in, real SDK)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

import lianka.billing.jobs as billing_jobs
from lianka.billing.queries import MESSAGE_ACTORS
from lianka.platform import periodic
from lianka.platform.identity.testing import AuthKit
from tests.api.test_billing import Kit, kit, subscribe

pytestmark = pytest.mark.integration
__all__ = ["kit"]


async def test_usage_is_reported_once_per_merchant_meter_and_day(
    kit: Kit, tenant_factory, staff_token, auth_kit: AuthKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(billing_jobs, "get_settings", lambda: kit.settings)
    t, other = await tenant_factory(), await tenant_factory()
    _, customer = await subscribe(kit, staff_token, t, "shop")
    _, other_customer = await subscribe(kit, staff_token, other, "shop")
    async with kit.db.uow(t) as uow:  # three messages queued today by the (future) marketing engine
        for _ in range(3):
            await uow.session.execute(
                text("INSERT INTO outbox (tenant_id, actor, sent_at) VALUES (:t, :a, now())"),
                {"t": t, "a": MESSAGE_ACTORS[0]},
            )
        await uow.commit()
    branch = await auth_kit.branch(t, "U1")
    till = await auth_kit.pos(t, ("pos",), branch=branch)
    for phone in ("13800138111", "13800138112"):
        r = await kit.http.post(
            "/api/v1/pos/sales",
            json={"amount": 12_000, "join_phone": phone},
            headers={**till.headers, "Idempotency-Key": phone},
        )
        assert r.status_code in (200, 201), r.text
    job = periodic.find("billing-usage")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    report = await periodic.run(job, kit.db, as_of=tomorrow, merchant=t)
    assert report.total == 2 and not report.failed  # two meters sent
    mine = {
        e["event_name"]: e for e in kit.standin.meter_events.values() if e["payload"]["stripe_customer_id"] == customer
    }
    assert {k: int(v["payload"]["value"]) for k, v in mine.items()} == {
        "lianka_messages_sent": 3,
        "lianka_active_members": 2,
    }
    today = (tomorrow - timedelta(days=1)).astimezone().date()
    assert all(e["identifier"].startswith(f"lianka-usage-{t}-") for e in mine.values())
    count = len(kit.standin.meter_events)
    again = await periodic.run(job, kit.db, as_of=tomorrow, merchant=t)
    assert again.total == 0 and len(kit.standin.meter_events) == count  # a rerun reports nothing
    # a crash after Stripe's answer and before the mark: the rerun sends the same identifiers again
    async with kit.db.uow(t) as uow:
        await uow.session.execute(
            text("UPDATE billing_usage_reports SET reported_at = NULL WHERE tenant_id = :t"), {"t": t}
        )
        rows: Any = (
            await uow.session.execute(
                text("SELECT meter, day, value FROM billing_usage_reports WHERE tenant_id = :t"), {"t": t}
            )
        ).all()
        await uow.commit()
    assert sorted((r.meter, r.value) for r in rows) == [("active_members", 2), ("messages_sent", 3)]
    assert {r.day for r in rows} <= {today, today + timedelta(days=1), today - timedelta(days=1)}
    await periodic.run(job, kit.db, as_of=tomorrow, merchant=t)
    assert len(kit.standin.meter_events) == count  # Stripe deduplicates by identifier
    # the other merchant is reported on its own, with its own zeros
    await periodic.run(job, kit.db, as_of=tomorrow, merchant=other)
    theirs = [e for e in kit.standin.meter_events.values() if e["payload"]["stripe_customer_id"] == other_customer]
    assert sorted(int(e["payload"]["value"]) for e in theirs) == [0, 0]


def test_the_job_is_registered_like_the_clock() -> None:
    from lianka.platform.scheduler import REGISTRY

    assert {"billing-clock", "billing-usage"} <= set(REGISTRY)
    assert periodic.find("billing-usage").cron == "20 1 * * *"
