"""Business metrics on ``/metrics`` (decision 0049): real sales, top-ups and a refused webhook through
the API, then a scrape — each counter moved by exactly what was committed; a replay and a rolled-back
sale move nothing; the outbox gauges show the unsent rows."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.identity import members
from lianka.platform.metrics import exported_names
from lianka.platform.outbox import enqueue
from lianka.platform.settings import Settings
from lianka.tenants.marketing import campaigns
from lianka.tenants.marketing import services as segments
from lianka.tenants.pos import queries as pos_queries
from lianka.tenants.services.programme import set_programme
from lianka.web import app as web_app
from lianka.web.app import create_app
from tests.api.test_portal_inbox import EVERYONE
from tests.api.test_portal_pages import a_phone, shop
from tests.api.test_pos import PROGRAMME

pytestmark = pytest.mark.integration


def _samples(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


class Scrape:
    def __init__(self, client: AsyncTestClient[Litestar]) -> None:
        self.client = client
        self.last: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    async def take(self) -> Scrape:
        r = await self.client.get("/metrics")
        assert r.status_code == 200, r.text
        self.last = _samples(r.text)
        return self

    def value(self, name: str, **labels: str) -> float:
        return self.last.get((name, frozenset(labels.items())), 0.0)


async def _delta(
    scrape: Scrape, before: dict[str, float], keys: dict[str, tuple[str, dict[str, str]]]
) -> dict[str, float]:
    await scrape.take()
    return {k: scrape.value(name, **labels) - before[k] for k, (name, labels) in keys.items()}


KEYS = {
    "sales_member": ("lianka_sales_total", {"currency": "CNY", "member": "yes"}),
    "sales_guest": ("lianka_sales_total", {"currency": "CNY", "member": "no"}),
    "sales_fen": ("lianka_sales_amount_minor_total", {"currency": "CNY"}),
    "earned": ("lianka_points_credited_total", {"kind": "points_earned"}),
    "redeemed": ("lianka_points_debited_total", {"kind": "points_redeemed"}),
    "top_ups": ("lianka_top_ups_total", {"currency": "CNY", "scope": "pos"}),
    "top_up_fen": ("lianka_top_ups_amount_minor_total", {"currency": "CNY", "scope": "pos"}),
    "rejected": ("lianka_webhooks_rejected_total", {"provider": "stripe"}),
}


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(replace(settings, stripe_webhook_secret="whsec_" + "k" * 32))


async def test_counters_move_by_exactly_what_was_committed(
    app: Litestar, db: Database, tenant_factory, auth_kit, member_factory, monkeypatch
) -> None:
    tenant = await tenant_factory("度量茶")
    branch = await auth_kit.branch(tenant, "SH01")
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME)
        await uow.commit()
    pos = await auth_kit.pos(tenant, ["pos"], branch=branch)
    member = str(await member_factory(tenant))

    async with AsyncTestClient(app=app) as client:

        async def post(url: str, body: dict[str, Any], key: str | None = None) -> Any:
            headers = {**pos.headers, "Idempotency-Key": key or uuid.uuid4().hex}
            return await client.post(f"/api/v1/pos{url}", json=body, headers=headers)

        scrape = await Scrape(client).take()
        before = {k: scrape.value(name, **labels) for k, (name, labels) in KEYS.items()}

        # a member's ¥200.00 sale earns 200 points; its replay (same key) is not a second sale
        key = uuid.uuid4().hex
        first = await post("/sales", {"amount": 20_000, "member_id": member}, key=key)
        assert first.status_code == 201, first.text
        again = await post("/sales", {"amount": 20_000, "member_id": member}, key=key)
        assert again.status_code == 200 and again.json()["sale_id"] == first.json()["sale_id"]
        # ¥4.00 paid partly with 100 points (¥1.00): the ¥3.00 still due earns 3; a guest's ¥12.34
        paid = await post("/sales", {"amount": 400, "member_id": member, "points": 100})
        assert paid.status_code == 201, paid.text
        assert paid.json()["quote"]["points_earned"] == 3
        guest = await post("/sales", {"amount": 1_234})
        assert guest.status_code == 201, guest.text
        # a stored-value plan: pay ¥1000, get ¥1100
        top = await post("/top-ups", {"member_id": member, "plan": "1000-1100"})
        assert top.status_code == 201, top.text

        assert await _delta(scrape, before, KEYS) == {
            "sales_member": 2,
            "sales_guest": 1,
            "sales_fen": 20_000 + 400 + 1_234,
            "earned": 200 + 3,
            "redeemed": 100,
            "top_ups": 1,
            "top_up_fen": 100_000,
            "rejected": 0,
        }

        # a sale that fails after its ledger entries were posted rolls back: nothing counts
        before = {k: scrape.value(name, **labels) for k, (name, labels) in KEYS.items()}

        async def broken(*_: object, **__: object) -> None:
            raise RuntimeError("the sale row could not be written")

        monkeypatch.setattr(pos_queries, "insert_member_sale", broken)
        failed = await post("/sales", {"amount": 50_000, "member_id": member, "points": 100})
        assert failed.status_code == 500
        monkeypatch.undo()
        async with db.uow(tenant) as uow:
            count = await uow.session.scalar(text("SELECT count(*) FROM sales WHERE gross = 50000"))
        assert count == 0
        assert set((await _delta(scrape, before, KEYS)).values()) == {0}

        # a Stripe delivery with a forged signature is refused and counted
        r = await client.post(
            "/api/v1/billing/webhooks/stripe",
            content=b'{"id": "evt_forged"}',
            headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"},
        )
        assert r.status_code == 400
        assert (await _delta(scrape, before, KEYS))["rejected"] == 1

        # the names the dashboards and alerts are checked against (tests/unit/test_observability_as_code.py)
        # are exactly what /metrics shows; marketing messages and outbound webhooks are counted by the
        # worker, not seen here
        scraped = {name for name, _ in scrape.last if name.startswith("lianka_") and not name.endswith("_created")}
        worker = {"lianka_messages_total", "lianka_webhook_deliveries_total"}
        assert scraped - worker == exported_names() - worker
        assert {"lianka_messages", "lianka_webhook_deliveries"} <= {family.name for family in REGISTRY.collect()}


async def test_outbox_gauges_are_computed_at_scrape_time(app: Litestar, db: Database, tenant_factory) -> None:
    tenant = await tenant_factory()
    web_app.OUTBOX_GAUGES._last.at = float("-inf")  # whatever an earlier scrape cached
    async with AsyncTestClient(app=app) as client:
        scrape = await Scrape(client).take()
        depth = scrape.value("lianka_outbox_depth")
        async with db.uow(tenant) as uow:
            for n in range(3):
                await enqueue(uow, "nobody_consumes_this", queue="metrics_test", n=n)
            await uow.commit()
        async with db.uow(system=True) as uow:
            await uow.session.execute(
                text("UPDATE outbox SET created_at = now() - interval '90 seconds' WHERE queue = 'metrics_test'")
            )
            await uow.commit()
        try:
            await scrape.take()  # cached: the same numbers within a few seconds
            assert scrape.value("lianka_outbox_depth") == depth
            web_app.OUTBOX_GAUGES._last.at = float("-inf")
            await scrape.take()
            assert scrape.value("lianka_outbox_depth") == depth + 3
            assert scrape.value("lianka_outbox_oldest_age_seconds") >= 90
        finally:
            async with db.uow(system=True) as uow:
                await uow.session.execute(text("UPDATE outbox SET sent_at = now() WHERE queue = 'metrics_test'"))
                await uow.commit()


def _messages(channel: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("lianka_messages_total", {"channel": channel, "outcome": outcome}) or 0.0


async def test_marketing_deliveries_are_counted_once(db: Database, auth_kit, tenant_factory) -> None:
    s = await shop(db, auth_kit, tenant_factory)
    member = (await members.enrol_member(auth_kit.ident, s["tenant"], a_phone())).member.member_id
    async with db.uow(s["tenant"]) as uow:
        await uow.session.execute(
            text(
                "INSERT INTO member_profiles (tenant_id, member_id, email, consent) VALUES (:t, :m, 'a@example.com', "
                '\'{"email": {"granted": true}}\')'
            ),
            {"t": s["tenant"], "m": member},
        )
        await uow.commit()
    seg = await segments.create_segment(db, s["tenant"], "全部", EVERYONE)
    before = {key: _messages(*key) for key in (("portal", "delivered"), ("email", "sent"))}
    for channel, outcome in (("portal", "delivered"), ("email", "sent")):
        spec = campaigns.CampaignIn(
            name=channel, segment_id=seg.id, channel=channel, subject="会员日", template_a="九折"
        )
        c = await campaigns.create_campaign(db, s["tenant"], spec)
        await campaigns.send(db, s["tenant"], c.id)
        assert await campaigns.deliver_one(db, s["tenant"], c.id, member) == outcome
        assert await campaigns.deliver_one(db, s["tenant"], c.id, member) == outcome  # a redelivery: no-op
    assert {key: _messages(*key) - value for key, value in before.items()} == {
        ("portal", "delivered"): 1,
        ("email", "sent"): 1,
    }
