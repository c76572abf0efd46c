"""Outbound webhooks (decision 0052) against a real local receiver: a sale's event is signed and
verifies; a rolled-back sale sends nothing; 5xx and timeouts are retried with back-off until success;
a 4xx is final and a redirect is not followed; replay resends the same event id; secrets are sealed
and rotate; production settings refuse private, loopback and link-local receivers at subscribe time
and at send time; another merchant sees nothing of them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.platform import metrics, secrets
from lianka.platform.db import Database
from lianka.platform.webhooks import domain, sender
from lianka.platform.webhooks import services as hooks
from lianka.platform.webhooks.errors import UnsafeWebhookURL
from lianka.tenants.services.programme import set_programme
from tests.api import webhook_receiver
from tests.api.test_pos import PROGRAMME

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[webhook_receiver.Receiver]:
    yield from webhook_receiver.running()


async def deliver_queued(db: Database, tenant: uuid.UUID) -> int:
    """What the worker does: every queued ``webhooks_deliver`` message through the real actor's handler
    (its own unit of work, committed like ``jobs.consumer`` does)."""
    from lianka.platform.jobs import HANDLERS
    from lianka.platform.webhooks import jobs

    assert jobs.webhooks_deliver is not None
    async with db.uow(tenant) as uow:
        rows = (
            await uow.session.execute(
                text("SELECT id, payload FROM outbox WHERE actor = 'webhooks_deliver' AND sent_at IS NULL ORDER BY id")
            )
        ).all()
        await uow.session.execute(
            text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids)"), {"ids": [r.id for r in rows]}
        )
        await uow.commit()
    for r in rows:
        async with db.uow(tenant) as uow:
            await HANDLERS["webhooks_deliver"](uow, **dict(r.payload))
            await uow.commit()
    return len(rows)


async def shop(db: Database, tenant: uuid.UUID, auth_kit: Any) -> dict[str, str]:
    branch = await auth_kit.branch(tenant, "SH01")
    async with db.uow(tenant) as uow:
        await set_programme(uow, PROGRAMME)
        await uow.commit()
    return dict((await auth_kit.pos(tenant, ["pos"], branch=branch)).headers)


async def test_a_sale_is_signed_logged_replayed_and_a_rolled_back_sale_sends_nothing(
    client: Any, db: Database, two_tenants: Any, staff_token: Any, auth_kit: Any, member_factory: Any,
    receiver: webhook_receiver.Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    a, b = two_tenants
    owner, other = (await staff_token(a)).headers, (await staff_token(b)).headers
    pos = await shop(db, a, auth_kit)
    member = str(await member_factory(a))

    r = await client.post(
        "/api/v1/webhooks/subscriptions", json={"url": receiver.url, "events": ["sale.recorded"]}, headers=owner
    )
    assert r.status_code == 201, r.text
    secret, sub = r.json()["secret"], r.json()["subscription"]
    assert secret.startswith("whsec_") and sub["events"] == ["sale.recorded"]
    listed = (await client.get("/api/v1/webhooks/subscriptions", headers=owner)).json()
    assert [s["id"] for s in listed] == [sub["id"]] and secret not in json.dumps(listed)
    async with db.uow(a) as uow:  # sealed at rest
        sealed = await uow.session.scalar(text("SELECT secret_sealed FROM webhook_subscriptions"))
    assert secret not in sealed and secrets.open_sealed(sealed) == secret
    assert (await client.get("/api/v1/webhooks/subscriptions", headers=other)).json() == []

    sale = await client.post(
        "/api/v1/pos/sales",
        json={"amount": 12_345, "member_id": member},
        headers={**pos, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert sale.status_code == 201, sale.text
    assert await deliver_queued(db, a) == 1
    (got,) = receiver.requests
    assert got.path == "/hooks/lianka"
    assert domain.verify(secret, got.headers["lianka-signature"], got.body, int(time.time()))
    assert not domain.verify(secret, got.headers["lianka-signature"], got.body + b" ", int(time.time()))
    assert not domain.verify("whsec_other", got.headers["lianka-signature"], got.body, int(time.time()))
    event = json.loads(got.body)
    assert event["type"] == "sale.recorded" and event["merchant"] == str(a)
    assert event["id"] == got.headers["lianka-event-id"]
    assert event["data"]["sale_id"] == sale.json()["sale_id"] and event["data"]["member_id"] == member
    assert event["data"]["amount"] == {"minor": 12_345, "currency": "CNY"}
    assert "phone" not in got.body.decode()

    (d,) = (await client.get("/api/v1/webhooks/deliveries", headers=owner)).json()
    assert d["status"] == "delivered" and d["attempts"] == 1 and d["event_id"] == event["id"]
    log = (await client.get(f"/api/v1/webhooks/deliveries/{d['id']}", headers=owner)).json()
    assert [(x["attempt"], x["status_code"], x["response_snippet"]) for x in log["attempts"]] == [
        (1, 200, "answer 200")
    ]
    # another merchant: nothing to see, nothing to replay
    assert (await client.get("/api/v1/webhooks/deliveries", headers=other)).json() == []
    assert (await client.get(f"/api/v1/webhooks/deliveries/{d['id']}", headers=other)).status_code == 404
    assert (await client.post(f"/api/v1/webhooks/deliveries/{d['id']}/replay", headers=other)).status_code == 404

    # a sale that fails after its event was written rolls back: no event, no delivery, nothing queued
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("after the webhook was emitted")

    monkeypatch.setattr(metrics, "count_sale", broken)  # the step after the sale's webhook
    failed = await client.post(
        "/api/v1/pos/sales",
        json={"amount": 777, "member_id": member},
        headers={**pos, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert failed.status_code == 500
    monkeypatch.undo()
    async with db.uow(a) as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM webhook_events")) == 1
    assert await deliver_queued(db, a) == 0 and len(receiver.requests) == 1

    # rotate: by default the old secret signs beside the new one for 24 hours
    for bad in ("-1", "169", "99999999999999999999", "x"):
        r = await client.post(
            f"/api/v1/webhooks/subscriptions/{sub['id']}/rotate-secret?overlap_hours={bad}", headers=owner
        )
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json"), bad
    r = await client.post(f"/api/v1/webhooks/subscriptions/{sub['id']}/rotate-secret", headers=owner)
    assert r.status_code == 200
    overlapping = r.json()["secret"]
    (listed_sub,) = (await client.get("/api/v1/webhooks/subscriptions", headers=owner)).json()
    until = datetime.fromisoformat(listed_sub["previous_secret_until"])
    assert timedelta(hours=23, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=24)
    r = await client.post(f"/api/v1/webhooks/subscriptions/{sub['id']}/test", headers=owner)
    assert await deliver_queued(db, a) == 1
    both = receiver.requests[-1]
    assert both.headers["lianka-signature"].count("v1=") == 2
    for key in (secret, overlapping):  # a receiver checking with either accepts it
        assert domain.verify(key, both.headers["lianka-signature"], both.body, int(time.time()))
    queued = await hooks.test_send(db, a, uuid.UUID(sub["id"]))  # once the overlap has passed: the new one only
    async with db.uow(a) as uow:
        assert await hooks.attempt(uow, queued.id, until + timedelta(seconds=1), DEV) == "delivered"
        await uow.commit()
    late = receiver.requests[-1]
    assert late.headers["lianka-signature"].count("v1=") == 1
    assert domain.verify(overlapping, late.headers["lianka-signature"], late.body, int(time.time()))
    assert not domain.verify(secret, late.headers["lianka-signature"], late.body, int(time.time()))
    async with db.uow(a) as uow:
        await uow.session.execute(text("UPDATE outbox SET sent_at = now() WHERE actor = 'webhooks_deliver'"))
        await uow.commit()

    # rotate because it leaked: the old secret stops signing at once; replay sends the same event (same
    # id, same body) again
    secret = overlapping
    r = await client.post(f"/api/v1/webhooks/subscriptions/{sub['id']}/rotate-secret?overlap_hours=0", headers=owner)
    assert r.status_code == 200
    new_secret = r.json()["secret"]
    assert new_secret != secret
    r = await client.post(f"/api/v1/webhooks/deliveries/{d['id']}/replay", headers=owner)
    assert r.status_code == 202, r.text
    assert r.json()["replay_of"] == d["id"] and r.json()["event_id"] == event["id"] and r.json()["id"] != d["id"]
    assert await deliver_queued(db, a) == 1
    again = receiver.requests[-1]
    assert again.body == got.body and again.headers["lianka-event-id"] == event["id"]
    assert again.headers["lianka-delivery-id"] != got.headers["lianka-delivery-id"]
    assert domain.verify(new_secret, again.headers["lianka-signature"], again.body, int(time.time()))
    assert not domain.verify(secret, again.headers["lianka-signature"], again.body, int(time.time()))

    # a test send reaches the subscription whatever it subscribed to
    r = await client.post(f"/api/v1/webhooks/subscriptions/{sub['id']}/test", headers=owner)
    assert r.status_code == 202 and r.json()["event_type"] == "webhook.test"
    assert await deliver_queued(db, a) == 1
    assert json.loads(receiver.requests[-1].body)["type"] == "webhook.test"


async def test_members_joining_and_permissions(
    client: Any, db: Database, two_tenants: Any, staff_token: Any, receiver: webhook_receiver.Receiver
) -> None:
    a, b = two_tenants
    owner = (await staff_token(a)).headers
    body = {"url": receiver.url, "events": ["member.joined", "sale.recorded"]}
    for role in ("cashier", "manager"):
        headers = (await staff_token(a, role)).headers
        assert (await client.post("/api/v1/webhooks/subscriptions", json=body, headers=headers)).status_code == 403
    analyst = (await staff_token(a, "analyst")).headers
    assert (await client.get("/api/v1/webhooks/subscriptions", headers=analyst)).status_code == 403
    r = await client.post("/api/v1/webhooks/subscriptions", json=body | {"events": ["sale.nope"]}, headers=owner)
    assert r.status_code == 400 and "webhook-unknown-event" in r.json()["type"]
    r = await client.post("/api/v1/webhooks/subscriptions", json=body | {"url": "ftp://127.0.0.1/x"}, headers=owner)
    assert r.status_code == 400 and r.json()["reason"] == "scheme", r.text
    r = await client.post("/api/v1/webhooks/subscriptions", json=body, headers=owner)
    assert r.status_code == 201, r.text
    # B's subscriptions, if any, are not A's: B subscribes too and hears nothing of A's member
    other = (await staff_token(b)).headers
    assert (await client.post("/api/v1/webhooks/subscriptions", json=body, headers=other)).status_code == 201
    phone = "139" + str(uuid.uuid4().int)[:8]
    r = await client.post("/api/v1/members", json={"phone": phone}, headers=owner)
    assert r.status_code == 201, r.text
    assert await deliver_queued(db, a) == 1 and await deliver_queued(db, b) == 0
    (got,) = receiver.requests
    event = json.loads(got.body)
    assert event["type"] == "member.joined" and event["merchant"] == str(a)
    assert event["data"]["member_id"] == r.json()["member_id"] and phone not in got.body.decode()
    # switched off: nothing more is written for it
    sub_id = (await client.get("/api/v1/webhooks/subscriptions", headers=owner)).json()[0]["id"]
    r = await client.patch(f"/api/v1/webhooks/subscriptions/{sub_id}", json={"active": False}, headers=owner)
    assert r.status_code == 200 and r.json()["active"] is False
    phone = "139" + str(uuid.uuid4().int)[:8]
    assert (await client.post("/api/v1/members", json={"phone": phone}, headers=owner)).status_code == 201
    assert await deliver_queued(db, a) == 0


async def _emit(db: Database, tenant: uuid.UUID, data: dict[str, Any] | None = None) -> None:
    async with db.uow(tenant) as uow:
        await hooks.emit(uow, "member.joined", data or {"member_id": str(uuid.uuid4()), "branch_id": None})
        await uow.commit()


async def _delivery(db: Database, tenant: uuid.UUID) -> Any:
    async with db.uow(tenant) as uow:
        return (
            await uow.session.execute(
                text(
                    "SELECT id, status, attempts, next_attempt_at, updated_at FROM webhook_deliveries ORDER BY created_at DESC"
                )
            )
        ).first()


async def _attempts(db: Database, tenant: uuid.UUID) -> list[tuple[int | None, str]]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.execute(
            text("SELECT status_code, error FROM webhook_attempts ORDER BY created_at, attempt")
        )
        return [(r.status_code, r.error) for r in rows]


DEV = sender.Policy(production=False)


async def test_5xx_and_timeouts_are_retried_with_back_off_until_delivered(
    db: Database, tenant_factory: Any, receiver: webhook_receiver.Receiver
) -> None:
    t = await tenant_factory()
    made = await hooks.subscribe(db, t, receiver.url, ["member.joined"], policy=DEV)
    receiver.statuses[:] = [503, 500]
    await _emit(db, t)
    before = datetime.now(UTC)
    assert await deliver_queued(db, t) == 1
    d = await _delivery(db, t)
    assert (d.status, d.attempts) == ("pending", 1)
    assert before + timedelta(seconds=14) <= d.next_attempt_at <= datetime.now(UTC) + timedelta(seconds=30)
    assert await hooks.tick(db, t, datetime.now(UTC)) == 0  # not yet due
    assert await hooks.tick(db, t, d.next_attempt_at) == 1
    assert await hooks.tick(db, t, d.next_attempt_at) == 0  # queued once
    assert await deliver_queued(db, t) == 1
    d2 = await _delivery(db, t)
    assert (d2.status, d2.attempts) == ("pending", 2)
    wait = d2.next_attempt_at - d2.updated_at
    assert timedelta(seconds=29) <= wait <= timedelta(seconds=61)  # doubled (with jitter in its upper half)
    assert await hooks.tick(db, t, d2.next_attempt_at) == 1
    assert await deliver_queued(db, t) == 1
    d3 = await _delivery(db, t)
    assert (d3.status, d3.attempts, d3.next_attempt_at) == ("delivered", 3, None)
    assert [code for code, _ in await _attempts(db, t)] == [503, 500, 200]
    bodies = {r.body for r in receiver.requests}
    assert len(receiver.requests) == 3 and len(bodies) == 1  # the same event each time
    for r in receiver.requests:
        assert domain.verify(made.secret, r.headers["lianka-signature"], r.body, int(time.time()))

    # a receiver that does not answer in time, and one that is not there: retried too
    slow = sender.Policy(production=False, timeout=0.3)
    receiver.delay = 1.0
    await _emit(db, t)
    async with db.uow(t) as uow:
        (new,) = (await uow.session.execute(text("SELECT id FROM webhook_deliveries WHERE status = 'pending'"))).all()
        assert await hooks.attempt(uow, new.id, datetime.now(UTC), slow) == "pending"
        await uow.commit()
    assert (await _attempts(db, t))[-1] == (None, "timeout")
    receiver.delay = 0.0
    await hooks.change(db, t, made.subscription.id, url="http://127.0.0.1:9/closed", policy=DEV)
    await _emit(db, t)
    async with db.uow(t) as uow:
        await uow.session.execute(text("UPDATE outbox SET sent_at = now() WHERE actor = 'webhooks_deliver'"))
        rows = (await uow.session.execute(text("SELECT id FROM webhook_deliveries WHERE attempts = 0"))).all()
        assert [await hooks.attempt(uow, r.id, datetime.now(UTC), DEV) for r in rows] == ["pending"]
        await uow.commit()
    code, error = (await _attempts(db, t))[-1]
    assert code is None and error == "ConnectError"


async def test_4xx_is_final_408_and_429_retry_and_redirects_are_not_followed(
    db: Database, tenant_factory: Any, receiver: webhook_receiver.Receiver
) -> None:
    t = await tenant_factory()
    await hooks.subscribe(db, t, receiver.url, ["member.joined"], policy=DEV)
    for status, outcome in ((400, "failed"), (410, "failed"), (302, "failed"), (408, "pending"), (429, "pending")):
        receiver.statuses[:] = [status]
        await _emit(db, t)
        assert await deliver_queued(db, t) == 1
        d = await _delivery(db, t)
        assert (d.status, d.attempts) == (outcome, 1), status
        assert (d.next_attempt_at is None) == (outcome == "failed")
    assert len(receiver.requests) == 5  # the 302 was not followed
    assert await hooks.tick(db, t, datetime.now(UTC) + timedelta(hours=1)) == 2  # only 408 and 429 come back


def _resolver(table: dict[str, list[str]]) -> sender.Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return list(table[host])

    return resolve


async def test_production_refuses_private_loopback_and_link_local_receivers(
    db: Database, tenant_factory: Any, receiver: webhook_receiver.Receiver
) -> None:
    t = await tenant_factory()
    names = {"internal.example": ["10.1.2.3"], "mixed.example": ["93.184.216.34", "192.168.0.7"],
             "public.example": ["93.184.216.34"]}  # fmt: skip
    prod = sender.Policy(production=True, resolver=_resolver(names))
    refused = {
        "https://10.0.0.8/hook": "private",
        "https://127.0.0.1/hook": "loopback",
        "https://[::1]/hook": "loopback",
        "https://[::ffff:10.0.0.1]/hook": "private",
        "https://169.254.169.254/latest/meta-data": "link-local",
        "https://internal.example/hook": "private",
        "https://mixed.example/hook": "private",
        "https://224.0.0.1/hook": "multicast",
        "https://0.0.0.0/hook": "unspecified",
        "http://public.example/hook": "scheme",  # https only in production
        "https://user:pw@public.example/hook": "host",
    }
    for url, reason in refused.items():
        with pytest.raises(UnsafeWebhookURL) as e:
            await hooks.subscribe(db, t, url, ["sale.recorded"], policy=prod)
        assert e.value.extra["reason"] == reason, url
    assert await hooks.list_subscriptions(db, t) == []

    # a public name at subscribe time that resolves to a private address at send time (DNS rebinding)
    made = await hooks.subscribe(db, t, "https://public.example/hook", ["member.joined"], policy=prod)
    await _emit(db, t)
    names["public.example"] = ["192.168.1.5"]
    async with db.uow(t) as uow:
        (d,) = (await uow.session.execute(text("SELECT id FROM webhook_deliveries"))).all()
        assert await hooks.attempt(uow, d.id, datetime.now(UTC), prod) == "failed"
        await uow.commit()
    assert await _attempts(db, t) == [(None, "refused: private")]
    assert made.subscription.url == "https://public.example/hook"

    # in development a loopback receiver is allowed, and the request goes to the address that was
    # checked (pinned), with the name in the Host header: this name exists only in the test resolver
    dev = sender.Policy(production=False, resolver=_resolver({"receiver.test": ["127.0.0.1"]}))
    port = receiver.server.server_address[1]
    result = await sender.post(f"http://receiver.test:{port}/pinned", {}, b"{}", dev)
    assert result.status == 200
    (got,) = receiver.requests
    assert got.path == "/pinned" and got.headers["host"] == f"receiver.test:{port}"
    refused_dev = await sender.post(f"http://10.0.0.8:{port}/x", {}, b"{}", dev)
    assert refused_dev.error == "refused: private" and len(receiver.requests) == 1


async def test_a_closed_month_is_announced_once(
    client: Any, db: Database, tenant_factory: Any, auth_kit: Any, staff_token: Any, member_factory: Any
) -> None:
    from lianka.tenants.domain.programme import BonusFunder
    from tests.api.settlement_kit import make_chain

    chain = await make_chain(client, db, tenant_factory, auth_kit, staff_token, BonusFunder.HQ)
    await chain.top_up(await member_factory(chain.tenant), "500", "A")  # October: the book's first month
    await hooks.subscribe(db, chain.tenant, "http://127.0.0.1:9/hooks", ["period.closed"], policy=DEV)
    done = await chain.close("2026-10")
    again = await chain.close("2026-10")  # a closed month closes again to the same statements: no new event
    assert done["checksum"] == again["checksum"]
    async with db.uow(chain.tenant) as uow:
        rows = (await uow.session.execute(text("SELECT type, data FROM webhook_events"))).all()
    assert [(r.type, r.data) for r in rows] == [
        ("period.closed", {"book": str(chain.tenant), "period": "2026-10", "checksum": done["checksum"]})
    ]


async def test_a_sale_that_moves_a_member_up_announces_the_tier(
    client: Any, db: Database, tenant_factory: Any, auth_kit: Any, member_factory: Any
) -> None:
    t = await tenant_factory()
    pos = await shop(db, t, auth_kit)
    member = str(await member_factory(t))
    await hooks.subscribe(db, t, "http://127.0.0.1:9/hooks", ["member.tier_changed"], policy=DEV)
    for amount in (1_000, 60_000):  # the second passes silver's ¥500 threshold
        sale = await client.post(
            "/api/v1/pos/sales",
            json={"amount": amount, "member_id": member},
            headers={**pos, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert sale.status_code == 201, sale.text
    assert sale.json()["tier_changed"] is True
    async with db.uow(t) as uow:
        rows = (await uow.session.execute(text("SELECT type, data FROM webhook_events"))).all()
    assert [(r.type, r.data) for r in rows] == [
        (
            "member.tier_changed",
            {
                "member_id": member,
                "tier": "silver",
                "previous_tier": "regular",
                "cause": "sale",
                "sale_id": sale.json()["sale_id"],
            },
        )
    ]


async def test_refunds_and_top_ups_are_announced(
    client: Any, db: Database, tenant_factory: Any, auth_kit: Any, member_factory: Any
) -> None:
    t = await tenant_factory()
    pos = await shop(db, t, auth_kit)
    member = str(await member_factory(t))
    await hooks.subscribe(db, t, "http://127.0.0.1:9/hooks", ["sale.refunded", "topup.recorded"], policy=DEV)

    async def post(url: str, body: dict[str, Any]) -> Any:
        r = await client.post(f"/api/v1/pos{url}", json=body, headers={**pos, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 201, r.text
        return r.json()

    top = await post("/top-ups", {"member_id": member, "plan": "1000-1100"})
    sale = await post("/sales", {"amount": 5_000, "member_id": member})
    refund = await post(f"/sales/{sale['sale_id']}/refunds", {})
    async with db.uow(t) as uow:
        rows = (await uow.session.execute(text("SELECT type, data FROM webhook_events ORDER BY created_at"))).all()
    (topped, refunded) = [(r.type, r.data) for r in rows]
    assert topped[0] == "topup.recorded" and topped[1]["member_id"] == member
    assert topped[1]["paid"] == {"minor": 100_000, "currency": "CNY"} and topped[1]["channel"] == "pos"
    assert top["member_id"] == member
    assert refunded[0] == "sale.refunded" and refunded[1]["sale_id"] == sale["sale_id"]
    assert refunded[1]["refund_id"] == refund["refund_id"] and refunded[1]["amount"]["minor"] == 5_000


async def _deliveries(db: Database, tenant: uuid.UUID) -> list[Any]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.execute(
            text("SELECT id, status, attempts, next_attempt_at FROM webhook_deliveries ORDER BY created_at, id")
        )
        return list(rows)


async def _try(db: Database, tenant: uuid.UUID, delivery_id: uuid.UUID, now: datetime) -> str | None:
    async with db.uow(tenant) as uow:
        out = await hooks.attempt(uow, delivery_id, now, DEV)
        await uow.commit()
        return out


async def test_a_failing_receiver_opens_the_breaker_one_probe_at_a_time_and_is_switched_off_after_days(
    db: Database, tenant_factory: Any, receiver: webhook_receiver.Receiver, staff_token: Any
) -> None:
    """Five attempts in a row without a 2xx open the subscription's breaker: its other deliveries wait
    (no POST, no attempt spent) and one probe every five minutes reaches the receiver; a 2xx closes it
    and the held deliveries are due at once. Three days of nothing but failures switch it off (audited);
    switching it on again starts with a closed breaker and makes what waited due. The owners are told by
    e-mail. A test send is the owner's own probe."""
    t = await tenant_factory()
    owner, cashier = await staff_token(t, "owner"), await staff_token(t, "cashier")
    made = await hooks.subscribe(db, t, receiver.url, ["member.joined"], policy=DEV)
    sub = made.subscription.id
    receiver.statuses[:] = [500] * 5 + [503]
    for _ in range(8):
        await _emit(db, t)
    ids = [d.id for d in await _deliveries(db, t)]
    t0 = datetime.now(UTC)
    assert [await _try(db, t, i, t0) for i in ids] == ["pending"] * 5 + [None] * 3
    assert len(receiver.requests) == 5  # the last three were held, not sent
    (state,) = [s for s in await hooks.list_subscriptions(db, t) if s.id == sub]
    assert state.consecutive_failures == 5 and state.failing_since is not None
    assert state.paused_until == t0 + domain.BREAKER_COOLDOWN
    held = {d.id: d for d in await _deliveries(db, t)}
    assert [held[i].attempts for i in ids[5:]] == [0, 0, 0]
    assert {held[i].next_attempt_at for i in ids[5:]} == {t0 + domain.BREAKER_COOLDOWN}

    # the cool-down over: one probe (503: open again), the next delivery is held again
    t1 = t0 + domain.BREAKER_COOLDOWN + timedelta(seconds=1)
    assert [await _try(db, t, i, t1) for i in ids[5:7]] == ["pending", None]
    assert len(receiver.requests) == 6
    # the next probe gets a 200: closed; the held delivery is due now
    t2 = t1 + domain.BREAKER_COOLDOWN + timedelta(seconds=1)
    assert await _try(db, t, ids[7], t2) == "delivered"
    (state,) = [s for s in await hooks.list_subscriptions(db, t) if s.id == sub]
    assert (state.consecutive_failures, state.failing_since, state.paused_until) == (0, None, None)
    now_due = {d.id: d for d in await _deliveries(db, t)}
    assert now_due[ids[6]].next_attempt_at <= t2  # due (held until the probe's cool-down ended)
    assert await _try(db, t, ids[6], t2) == "delivered"

    # days of failures: open, probes fail, and after three days it is switched off
    receiver.statuses[:] = [500] * 50
    for _ in range(domain.BREAKER_THRESHOLD + 2):
        await _emit(db, t)
    fresh = [d.id for d in await _deliveries(db, t) if d.attempts == 0 and d.status == "pending"]
    t3 = t2 + timedelta(minutes=1)
    for i in fresh[: domain.BREAKER_THRESHOLD]:
        assert await _try(db, t, i, t3) == "pending"
    test = await hooks.test_send(db, t, sub)  # the owner's test goes through the open breaker
    assert await _try(db, t, test.id, t3) == "pending"
    sent = len(receiver.requests)
    later = t3 + domain.SWITCH_OFF_AFTER - timedelta(minutes=1)
    assert await _try(db, t, fresh[-2], later) == "pending"  # a probe, still failing: not yet 3 days
    (state,) = [s for s in await hooks.list_subscriptions(db, t) if s.id == sub]
    assert state.active and state.switched_off_reason == ""
    end = later + domain.BREAKER_COOLDOWN + timedelta(seconds=1)  # the next probe, past three days
    assert await _try(db, t, fresh[-1], end) == "pending"
    assert len(receiver.requests) == sent + 2
    (state,) = [s for s in await hooks.list_subscriptions(db, t) if s.id == sub]
    assert not state.active and state.switched_off_reason == "failing"
    async with db.uow(t) as uow:
        audited = (
            await uow.session.execute(text("SELECT action, object_id FROM audit_log WHERE action LIKE 'webhook.%'"))
        ).all()
    assert [(a.action, a.object_id) for a in audited] == [("webhook.switched_off", str(sub))]
    assert await _try(db, t, fresh[0], end + timedelta(hours=1)) is None  # off: nothing is sent
    assert len(receiver.requests) == sent + 2

    async with db.uow(t) as uow:  # the owner (not the cashier) is told, with the page to switch it on
        mails = (
            (await uow.session.execute(text("SELECT payload FROM outbox WHERE actor = 'send_email' ORDER BY id")))
            .scalars()
            .all()
        )
        emails: dict[uuid.UUID, str] = dict(
            (await uow.session.execute(text("SELECT u.id, u.email FROM staff_users u"))).all()
        )
    assert [m["to"] for m in mails] == [emails[owner.subject_id]] and emails[cashier.subject_id] not in str(mails)
    assert receiver.url in mails[0]["body"] and "/console/settings/webhooks" in mails[0]["body"]

    waiting = [d.id for d in await _deliveries(db, t) if d.status == "pending"]
    async with db.uow(t) as uow:  # the tick claimed them while it was off: an attempt left them undated
        await uow.session.execute(text("UPDATE webhook_deliveries SET next_attempt_at = NULL WHERE status = 'pending'"))
        await uow.commit()
    back = await hooks.change(db, t, sub, active=True, policy=DEV)
    assert back.active and (back.consecutive_failures, back.paused_until, back.switched_off_reason) == (0, None, "")
    receiver.statuses[:] = []
    due = datetime.now(UTC) + timedelta(seconds=1)
    assert await hooks.tick(db, t, due) == len(waiting) > 0  # everything that waited goes out


async def _counts(db: Database, tenant: uuid.UUID) -> tuple[int, int, int, int]:
    """(events, deliveries, pending deliveries, attempts) the merchant holds."""
    async with db.uow(tenant) as uow:
        row = (
            await uow.session.execute(
                text(
                    "SELECT (SELECT count(*) FROM webhook_events), (SELECT count(*) FROM webhook_deliveries),"
                    " (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),"
                    " (SELECT count(*) FROM webhook_attempts)"
                )
            )
        ).one()
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


async def test_retention_forgets_finished_deliveries_keeps_pending_ones_and_other_merchants(
    db: Database, tenant_factory: Any, receiver: webhook_receiver.Receiver
) -> None:
    from lianka.platform import periodic

    t, u = await tenant_factory(), await tenant_factory()
    for shop_id in (t, u):
        await hooks.subscribe(db, shop_id, receiver.url, ["member.joined"], policy=DEV)
    for _ in range(3):
        await _emit(db, t)
    await _emit(db, u)
    assert await deliver_queued(db, t) == 3 and await deliver_queued(db, u) == 1
    receiver.statuses[:] = [503]
    await _emit(db, t)  # this one fails once and waits for its retry: pending
    assert await deliver_queued(db, t) == 1
    assert await _counts(db, t) == (4, 4, 1, 4)

    now = datetime.now(UTC)
    assert await hooks.prune(db, t, now) == 0  # everything is younger than 30 days
    assert await hooks.prune(db, t, now + timedelta(days=31)) == 3
    assert await _counts(db, t) == (1, 1, 1, 1)  # the pending delivery, its event and its attempt stay
    assert await _counts(db, u) == (1, 1, 0, 1)  # another merchant's are its own
    assert await hooks.prune(db, t, now + timedelta(days=31)) == 0  # nothing left to forget
    assert await hooks.prune(db, u, now + timedelta(days=2), days=1) == 1  # the setting, as a parameter
    assert await _counts(db, u) == (0, 0, 0, 0)

    # the app role still cannot delete the append-only tables itself, and the function needs a merchant
    async with db.uow(t) as uow:
        with pytest.raises(Exception, match="permission denied"):
            await uow.session.execute(text("DELETE FROM webhook_events"))
    async with db.uow(system=True) as uow:
        with pytest.raises(Exception, match="no merchant"):
            await uow.session.execute(text("SELECT lianka_webhook_prune(now())"))
    assert periodic.find("webhooks-prune").cron == "40 3 * * *"


async def test_a_sale_nobody_listens_to_costs_no_webhook_statement(
    client: Any, db: Database, tenant_factory: Any, auth_kit: Any, member_factory: Any,
    receiver: webhook_receiver.Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The sale's context read says which events are subscribed: a sale.recorded nobody wants makes no
    round trip to the webhook tables (``queries.emit`` is that round trip); once subscribed, the next
    sale's event is written and delivered."""
    from lianka.platform.webhooks import queries as hook_queries

    t = await tenant_factory()
    pos = await shop(db, t, auth_kit)
    member = str(await member_factory(t))
    trips: list[str] = []
    real_emit = hook_queries.emit

    async def counted(uow: Any, event_type: str, *args: Any, **kwargs: Any) -> Any:
        trips.append(event_type)
        return await real_emit(uow, event_type, *args, **kwargs)

    monkeypatch.setattr(hook_queries, "emit", counted)

    async def sell() -> None:
        r = await client.post(
            "/api/v1/pos/sales",
            json={"amount": 5_000, "member_id": member},
            headers={**pos, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 201, r.text

    await sell()  # no subscription at all
    await hooks.subscribe(db, t, receiver.url, ["member.joined"], policy=DEV)  # another event only
    await sell()
    assert trips == []
    await hooks.subscribe(db, t, receiver.url, ["sale.recorded"], policy=DEV)
    await sell()
    assert trips == ["sale.recorded"]
    assert await deliver_queued(db, t) == 1
    (got,) = receiver.requests
    assert json.loads(got.body)["type"] == "sale.recorded"
