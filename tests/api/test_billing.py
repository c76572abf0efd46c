"""Billing through the real ``stripe`` SDK, a local Stripe stand-in and real webhooks: the stand-in
and the Lianka app are both served on free ports, the stand-in POSTs signed events to the app, the
app stores them and queues a job, and a real dramatiq worker applies them (PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import httpx
import pytest
import uvicorn
from sqlalchemy import text

import lianka.billing.jobs  # noqa: F401 - registers the actor
from lianka.billing import services
from lianka.billing.stripe_standin import StripeStandin
from lianka.platform.db import Database
from lianka.platform.jobs import get_broker
from lianka.platform.outbox import relay_once
from lianka.platform.settings import Settings
from lianka.web.app import create_app

pytestmark = pytest.mark.integration
SECRET_KEY = "sk_test_standin_" + uuid.uuid4().hex
WEBHOOK_SECRET = "whsec_" + uuid.uuid4().hex
broker = get_broker()


@dataclass
class Kit:
    standin: StripeStandin
    http: httpx.AsyncClient
    settings: Settings
    db: Database


@pytest.fixture(scope="module")
async def kit(settings: Settings, db: Database) -> AsyncIterator[Kit]:
    standin = StripeStandin(api_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET)
    async with standin.serve() as stripe_url:
        app_settings = replace(
            settings, stripe_api_base=stripe_url, stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET
        )
        server = uvicorn.Server(uvicorn.Config(create_app(app_settings), host="127.0.0.1", port=0, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        standin.webhook_url = f"{base}/api/v1/billing/webhooks/stripe"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield Kit(standin, http, app_settings, db)
        server.should_exit = True
        await task


def _work_until_idle() -> None:
    worker = dramatiq.Worker(broker, queues={services.QUEUE}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join(services.QUEUE, timeout=60_000)
        worker.join()
    finally:
        worker.stop()


async def settle(db: Database) -> None:
    """Relay the outbox and let a real worker apply what the webhooks stored."""
    while await relay_once(db, broker, batch_size=100):
        pass
    await asyncio.to_thread(_work_until_idle)


async def account_row(db: Database, tenant: uuid.UUID) -> Any:
    async with db.uow(tenant) as uow:
        return (
            await uow.session.execute(text("SELECT * FROM billing_accounts WHERE tenant_id = :t"), {"t": tenant})
        ).one()


async def event_row(db: Database, event_id: str) -> Any:
    async with db.uow(system=True) as uow:
        return (
            await uow.session.execute(text("SELECT * FROM billing_events WHERE event_id = :e"), {"e": event_id})
        ).one()


async def subscribe(kit: Kit, staff_token, tenant: uuid.UUID, plan: str = "shop") -> tuple[str, str]:
    """Owner starts a checkout through the API; returns (checkout session id, customer id)."""
    owner = await staff_token(tenant)
    r = await kit.http.post("/api/v1/billing/checkout", json={"plan": plan}, headers=owner.headers)
    assert r.status_code == 200, r.text
    session_id = r.json()["url"].rsplit("/", 1)[1]
    return session_id, kit.standin.sessions[session_id]["customer"]


async def status_of(kit: Kit, staff_token, tenant: uuid.UUID) -> dict[str, Any]:
    r = await kit.http.get("/api/v1/billing/subscription", headers=(await staff_token(tenant)).headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# --- plans, trial, checkout -----------------------------------------------------------------------


async def test_a_new_merchant_is_on_a_fourteen_day_trial_of_a_paid_plan(kit: Kit, tenant_factory, staff_token) -> None:
    t = await tenant_factory()
    body = await status_of(kit, staff_token, t)
    assert body["status"] == "trialing"
    assert body["plan"]["price_minor"] > 0 and body["plan"]["currency"] == "CNY"
    row = await account_row(kit.db, t)
    async with kit.db.uow(system=True) as uow:
        signed_up = await uow.session.scalar(text("SELECT created_at FROM merchants WHERE id = :t"), {"t": t})
    assert row.trial_ends_at == signed_up + timedelta(days=14)
    plans = (await kit.http.get("/api/v1/billing/plans", headers=(await staff_token(t)).headers)).json()
    # the catalogue first, in its order; tests elsewhere add plans of their own (sort 99) to the same
    # table, and two test processes do not run the files in one fixed order
    assert [p["code"] for p in plans][:4] == ["free", "shop", "chain", "alliance"]
    assert [p["limits"]["alliance_membership"] for p in plans][:4] == [False, False, False, True]


async def test_checkout_creates_one_customer_and_a_session_through_the_sdk(
    kit: Kit, tenant_factory, staff_token
) -> None:
    t = await tenant_factory()
    first, customer = await subscribe(kit, staff_token, t, "chain")
    second, again = await subscribe(kit, staff_token, t, "chain")
    assert customer == again and first != second  # the customer is created once
    session = kit.standin.sessions[first]
    assert session["mode"] == "subscription" and session["client_reference_id"] == str(t)
    assert session["_subscription_data"]["metadata"] == {"tenant_id": str(t), "plan": "chain"}
    price = session["_line_items"][0]["price_data"]
    assert (price["currency"], price["unit_amount"], price["recurring"]["interval"]) == ("cny", "59900", "month")
    assert kit.standin.customers[customer]["metadata"] == {"tenant_id": str(t)}
    assert (await account_row(kit.db, t)).stripe_customer_id == customer
    owner = await staff_token(t)
    free = await kit.http.post("/api/v1/billing/checkout", json={"plan": "free"}, headers=owner.headers)
    unknown = await kit.http.post("/api/v1/billing/checkout", json={"plan": "gold"}, headers=owner.headers)
    assert (free.status_code, free.json()["type"].rsplit("/", 1)[1]) == (422, "plan-not-purchasable")
    assert unknown.status_code == 400
    portal = await kit.http.post("/api/v1/billing/portal", headers=owner.headers)
    assert portal.status_code == 200 and portal.json()["url"].startswith(kit.standin.public_base + "/portal/")


async def test_checkout_for_a_plan_that_would_not_fit_is_refused_before_stripe(
    kit: Kit, tenant_factory, staff_token, auth_kit
) -> None:
    t = await tenant_factory()
    for _ in range(2):  # the Shop plan allows one branch
        await auth_kit.branch(t)
    owner = await staff_token(t)
    customers = len(kit.standin.customers)
    r = await kit.http.post("/api/v1/billing/checkout", json={"plan": "shop"}, headers=owner.headers)
    assert r.status_code == 402, r.text
    body = r.json()
    assert body["type"].endswith("/plan-limit-reached") and body["limit"] == "branches"
    assert len(kit.standin.customers) == customers  # Stripe was never called
    async with kit.db.uow(t) as uow:
        customer = await uow.session.scalar(
            text("SELECT stripe_customer_id FROM billing_accounts WHERE tenant_id = :t"), {"t": t}
        )
    assert customer is None


async def test_checkout_needs_the_billing_permission(kit: Kit, tenant_factory, staff_token) -> None:
    t = await tenant_factory()
    for role in ("admin", "manager", "cashier"):
        r = await kit.http.post(
            "/api/v1/billing/checkout", json={"plan": "shop"}, headers=(await staff_token(t, role)).headers
        )
        assert r.status_code == 403, role
    assert not [c for c in kit.standin.customers.values() if c["metadata"].get("tenant_id") == str(t)]


# --- the state machine, through real webhooks ------------------------------------------------------


async def test_every_transition_through_webhooks(kit: Kit, tenant_factory, staff_token) -> None:
    t = await tenant_factory()
    session_id, _ = await subscribe(kit, staff_token, t, "shop")
    # the hosted page's Pay button (the stand-in redirects to our success URL and sends the events)
    async with httpx.AsyncClient(base_url=kit.standin.public_base) as browser:
        paid = await browser.post(f"/checkout/{session_id}/pay")
    assert paid.status_code == 303 and "billing=subscribed" in paid.headers["location"]
    await settle(kit.db)
    body = await status_of(kit, staff_token, t)
    assert (body["status"], body["plan"]["code"]) == ("active", "shop")  # trialing → active
    sub = kit.standin.sessions[session_id]["subscription"]
    assert (await account_row(kit.db, t)).stripe_subscription_id == sub

    await kit.standin.deliver_all(kit.standin.fail_payment(sub))
    await settle(kit.db)
    row = await account_row(kit.db, t)
    assert row.status == "past_due"  # active → past_due, with 7 days' grace
    assert row.grace_until == row.past_due_since + timedelta(days=7)

    await kit.standin.deliver_all(kit.standin.pay(sub))
    await settle(kit.db)
    assert (await account_row(kit.db, t)).status == "active"  # past_due → active

    await kit.standin.deliver_all(kit.standin.fail_payment(sub))
    await settle(kit.db)
    row = await account_row(kit.db, t)
    # past_due → restricted: the clock, run as of the end of the grace (as `lianka jobs run` would)
    assert await services.run_clock(kit.db, t, row.grace_until - timedelta(seconds=1)) == 0
    assert await services.run_clock(kit.db, t, row.grace_until) == 1
    assert (await status_of(kit, staff_token, t))["status"] == "restricted"

    await kit.standin.deliver_all(kit.standin.fail_payment(sub))  # Stripe retries and fails again
    await settle(kit.db)
    assert (await account_row(kit.db, t)).status == "restricted"

    await kit.standin.deliver_all(kit.standin.cancel(sub))
    await settle(kit.db)
    body = await status_of(kit, staff_token, t)
    assert (body["status"], body["effective_plan"]) == ("canceled", "free")  # restricted → canceled


async def test_the_clock_job_ends_an_unpaid_trial(kit: Kit, tenant_factory) -> None:
    from lianka.platform import periodic

    t = await tenant_factory()
    job = periodic.find("billing-clock")
    async with kit.db.uow(system=True) as uow:
        signed_up = await uow.session.scalar(text("SELECT created_at FROM merchants WHERE id = :t"), {"t": t})
    report = await periodic.run(job, kit.db, as_of=signed_up + timedelta(days=14), merchant=t)
    assert report.total == 1 and not report.failed
    row = await account_row(kit.db, t)
    assert row.status == "past_due" and row.grace_until == signed_up + timedelta(days=21)
    again = await periodic.run(job, kit.db, as_of=signed_up + timedelta(days=14), merchant=t)
    assert again.total == 0  # idempotent
    await periodic.run(job, kit.db, as_of=signed_up + timedelta(days=21), merchant=t)
    assert (await account_row(kit.db, t)).status == "restricted"


# --- the webhook inbox ---------------------------------------------------------------------------


async def test_a_webhook_delivered_twice_is_stored_and_applied_once(kit: Kit, tenant_factory, staff_token) -> None:
    t = await tenant_factory()
    session_id, _ = await subscribe(kit, staff_token, t)
    kit.standin.auto_deliver = False
    events = kit.standin.complete_checkout(session_id)
    for event in events:
        assert await kit.standin.deliver(event) == 200
        assert await kit.standin.deliver(event) == 200  # Stripe retried (our 2xx was lost)
    await settle(kit.db)
    for event in events:
        assert await kit.standin.deliver(event) == 200  # a replay after processing
    await settle(kit.db)
    sub_created = next(e for e in events if e["type"] == "customer.subscription.created")
    row = await event_row(kit.db, sub_created["id"])
    assert (row.status, row.deliveries, row.attempts) == ("processed", 3, 1)
    async with kit.db.uow(system=True) as uow:
        stored = await uow.session.scalar(
            text("SELECT count(*) FROM billing_events WHERE event_id = ANY(:ids)"), {"ids": [e["id"] for e in events]}
        )
    assert stored == len(events)
    checkout_done = await event_row(kit.db, next(e["id"] for e in events if e["type"] == "checkout.session.completed"))
    assert checkout_done.status == "ignored"  # not a subscription event: recorded, changes nothing
    assert (await account_row(kit.db, t)).status == "active"


async def test_out_of_order_events_never_go_backwards(kit: Kit, tenant_factory, staff_token) -> None:
    t = await tenant_factory()
    session_id, _ = await subscribe(kit, staff_token, t)
    kit.standin.auto_deliver = False
    first = kit.standin.complete_checkout(session_id)
    sub = kit.standin.sessions[session_id]["subscription"]
    failed = kit.standin.fail_payment(sub)
    paid = kit.standin.pay(sub)
    # the newest first: paid (active), then the older failure, then the oldest checkout events
    await kit.standin.deliver_all(paid)
    await settle(kit.db)
    await kit.standin.deliver_all(list(reversed(failed)) + list(reversed(first)))
    await settle(kit.db)
    row = await account_row(kit.db, t)
    assert row.status == "active"
    assert row.state_at == datetime.fromtimestamp(max(e["created"] for e in paid), UTC)
    stale = await event_row(kit.db, failed[0]["id"])
    assert (stale.status, stale.reason) == ("ignored", "older than the state already applied")


async def test_a_bad_signature_is_refused_recorded_and_changes_nothing(kit: Kit, tenant_factory, staff_token) -> None:
    t = await tenant_factory()
    session_id, _ = await subscribe(kit, staff_token, t)
    kit.standin.auto_deliver = False
    events = kit.standin.complete_checkout(session_id)
    async with kit.db.uow(system=True) as uow:
        refused_before = await uow.session.scalar(text("SELECT count(*) FROM billing_events WHERE status = 'refused'"))
    payload, good = kit.standin.signed(events[1])
    forged = kit.standin.signed(events[1], secret="whsec_not_ours")[1]
    stale = kit.standin.signed(events[1], timestamp=int(datetime.now(UTC).timestamp()) - 3600)[1]
    tampered = payload.replace(b'"active"', b'"canceled"')
    for body, signature in ((payload, forged), (payload, stale), (tampered, good), (payload, None)):
        headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": signature} if signature else {})
        r = await kit.http.post("/api/v1/billing/webhooks/stripe", content=body, headers=headers)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/webhook-signature-invalid")
    async with kit.db.uow(system=True) as uow:
        refused = await uow.session.scalar(text("SELECT count(*) FROM billing_events WHERE status = 'refused'"))
        stored = await uow.session.scalar(
            text("SELECT count(*) FROM billing_events WHERE event_id = :e"), {"e": events[1]["id"]}
        )
    assert refused == refused_before + 4 and stored == 0
    await settle(kit.db)
    assert (await account_row(kit.db, t)).status == "trialing"


async def test_an_event_for_another_merchants_object_is_ignored_and_recorded(
    kit: Kit, tenant_factory, staff_token
) -> None:
    a, b = await tenant_factory(), await tenant_factory()
    session_a, _ = await subscribe(kit, staff_token, a)
    session_b, customer_b = await subscribe(kit, staff_token, b)
    kit.standin.auto_deliver = False
    events = kit.standin.complete_checkout(session_a)
    created = next(e for e in events if e["type"] == "customer.subscription.created")
    # the same subscription event, but on merchant B's customer while naming merchant A
    crossed = {
        **created,
        "id": "evt_crossed_" + uuid.uuid4().hex,
        "data": {"object": {**created["data"]["object"], "customer": customer_b}},
    }
    stranger = {
        **created,
        "id": "evt_stranger_" + uuid.uuid4().hex,
        "data": {"object": {**created["data"]["object"], "customer": "cus_not_ours"}},
    }
    assert await kit.standin.deliver(crossed) == 200
    assert await kit.standin.deliver(stranger) == 200
    await settle(kit.db)
    for event in (crossed, stranger):
        row = await event_row(kit.db, event["id"])
        assert row.status == "ignored" and row.tenant_id is None and row.reason
    assert (await account_row(kit.db, a)).status == "trialing"
    assert (await account_row(kit.db, b)).status == "trialing"
    assert (await account_row(kit.db, b)).stripe_subscription_id is None
    assert kit.standin.sessions[session_b]["status"] == "open"  # B's own checkout is untouched


async def test_a_failed_event_is_listed_and_reprocessed(kit: Kit, tenant_factory, staff_token, monkeypatch) -> None:
    t = await tenant_factory()
    session_id, _ = await subscribe(kit, staff_token, t)
    kit.standin.auto_deliver = False
    events = kit.standin.complete_checkout(session_id)
    created = next(e for e in events if e["type"] == "customer.subscription.created")
    assert await kit.standin.deliver(created) == 200
    async with kit.db.uow(system=True) as uow:
        row_id = await uow.session.scalar(
            text("SELECT id FROM billing_events WHERE event_id = :e"), {"e": created["id"]}
        )
        # break the stored payload the way a bug in our mapping would: processing raises
        await uow.session.execute(
            text("UPDATE billing_events SET payload = jsonb_set(payload, '{created}', '\"not a time\"') WHERE id = :i"),
            {"i": row_id},
        )
        await uow.commit()
    original = services.process_event

    async def broken(uow, row, *, retry=False):
        raise RuntimeError("mapping bug")

    monkeypatch.setattr(services, "process_event", broken)
    async with kit.db.uow(system=True) as uow:
        assert await services.process_event_recording_failure(uow, row_id) == "failed"
        await uow.commit()
    failed = await services.list_events(kit.db, failed_only=True)
    assert row_id in [r.id for r in failed] and all(r.status == "failed" for r in failed)
    monkeypatch.setattr(services, "process_event", original)
    async with kit.db.uow(system=True) as uow:  # the fix: the payload is whole again
        await uow.session.execute(
            text(
                "UPDATE billing_events SET payload = jsonb_set(payload, '{created}', CAST(:c AS jsonb)) WHERE id = :i"
            ),
            {"i": row_id, "c": str(created["created"])},
        )
        await uow.commit()
    again = await services.reprocess(kit.db, row_id)
    assert again.status == "processed" and again.attempts == 2
    assert (await account_row(kit.db, t)).status == "active"


async def test_webhook_route_is_public_and_the_others_are_guarded(security_matrix, two_tenants) -> None:
    a, b = two_tenants
    await security_matrix.check(
        "GET", "/api/v1/billing/subscription", tenant=a, other=b, other_tenant_status=None, members_too=True
    )


async def test_without_stripe_settings_billing_answers_a_clear_problem(client, tenant_factory, staff_token) -> None:
    """The default app (no LIANKA_STRIPE_* set): a 409 ``billing-not-configured``, never a 5xx."""
    t = await tenant_factory()
    owner = await staff_token(t)
    for path, body in (("/api/v1/billing/checkout", {"plan": "shop"}), ("/api/v1/billing/webhooks/stripe", {})):
        r = await client.post(path, json=body, headers=owner.headers)
        assert r.status_code == 409, r.text
        assert r.json()["type"].endswith("/billing-not-configured")
