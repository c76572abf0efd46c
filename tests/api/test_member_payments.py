"""Member payments end to end: the real ``stripe`` SDK against the Stripe stand-in and the real
``wechatpayv3`` SDK against the WeChat Pay stand-in, both served on free ports, the Lianka app served
too (the stand-ins POST signed notifications to it), and a real dramatiq worker processing the inbox.
Per provider: happy path, duplicate, out of order, bad signature, another merchant's order, storm."""

from __future__ import annotations

import asyncio
import re
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
from lianka.billing import services as billing
from lianka.billing.membership import products as membership_products
from lianka.billing.membership import schemas as membership_schemas
from lianka.billing.membership import terms as membership_terms
from lianka.billing.payments import services as pay
from lianka.billing.stripe_standin import StripeStandin
from lianka.billing.wechatpay_standin import WeChatPayStandin
from lianka.platform.db import Database
from lianka.platform.errors import DomainError, NotFound
from lianka.platform.identity.sessions import STAFF_COOKIE
from lianka.platform.identity.testing import AuthKit
from lianka.platform.jobs import get_broker
from lianka.platform.outbox import relay_once
from lianka.platform.settings import Settings
from lianka.tenants.domain.programme import Programme, StoredValueConfig, StoredValuePlan
from lianka.tenants.services import accounts
from lianka.tenants.services.programme import set_programme
from lianka.web.app import create_app
from tests.api.test_console import csrf_of

pytestmark = pytest.mark.integration
SECRET_KEY = "sk_test_standin_" + uuid.uuid4().hex
WEBHOOK_SECRET = "whsec_" + uuid.uuid4().hex
PLAN = StoredValuePlan(code="300", name="储值300送30", pay=30_000, get=33_000)
broker = get_broker()


@dataclass
class Kit:
    stripe: StripeStandin
    wechat: WeChatPayStandin
    http: httpx.AsyncClient
    settings: Settings
    db: Database


@pytest.fixture(scope="module")
async def kit(settings: Settings, db: Database) -> AsyncIterator[Kit]:
    stripe = StripeStandin(api_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET)
    wechat = WeChatPayStandin()
    async with stripe.serve() as stripe_url, wechat.serve() as wechat_url:
        base_settings = replace(
            settings,
            stripe_api_base=stripe_url,
            stripe_secret_key=SECRET_KEY,
            stripe_webhook_secret=WEBHOOK_SECRET,
            wechatpay_api_base=wechat_url,
        )
        app = create_app(base_settings)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        app_settings = replace(base_settings, identity=replace(base_settings.identity, public_url=base))
        app.state.settings = app_settings  # the notify URL names the port only known now
        stripe.webhook_url = f"{base}/api/v1/billing/webhooks/stripe"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield Kit(stripe, wechat, http, app_settings, db)
        server.should_exit = True
        await task


def _work_until_idle() -> None:
    worker = dramatiq.Worker(broker, queues={billing.QUEUE}, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        broker.join(billing.QUEUE, timeout=60_000)
        worker.join()
    finally:
        worker.stop()


async def settle(db: Database) -> None:
    while await relay_once(db, broker, batch_size=100):
        pass
    await asyncio.to_thread(_work_until_idle)


async def shop(kit: Kit, tenant_factory: Any, auth_kit: AuthKit, *, wechat: bool) -> tuple[uuid.UUID, uuid.UUID]:
    """A merchant with a stored-value plan (on WeChat Pay, or on the installation's Stripe) and a member."""
    tenant = await tenant_factory()
    async with kit.db.uow(tenant) as uow:
        await set_programme(
            uow,
            Programme(stored_value=StoredValueConfig(plans=[PLAN])),
            effective_from=datetime.now(UTC) - timedelta(days=1),
        )
        await uow.commit()
    if wechat:
        creds = kit.wechat.new_merchant()
        await pay.save_credentials(
            kit.db,
            kit.settings,
            tenant,
            "wechatpay",
            {
                "mchid": creds.mchid,
                "serial_no": creds.serial_no,
                "private_key": creds.private_key,
                "apiv3_key": creds.apiv3_key,
                "appid": creds.appid,
            },
        )
    member = await auth_kit.member(tenant)
    assert member.subject_id is not None
    return tenant, member.subject_id


async def balances(kit: Kit, tenant: uuid.UUID, member: uuid.UUID) -> tuple[int, int]:
    async with kit.db.uow(tenant) as uow:
        b = await accounts.balances(uow, member, datetime.now(UTC))
    return b.sv_principal, b.sv_bonus


async def top_up_entries(kit: Kit, tenant: uuid.UUID) -> int:
    async with kit.db.uow(tenant) as uow:
        n = await uow.session.scalar(
            text("SELECT count(*) FROM ledger_entries WHERE kind = 'stored_value_top_up' AND tenant_id = :t"),
            {"t": tenant},
        )
    return int(n or 0)


async def order_status(kit: Kit, tenant: uuid.UUID, order_id: uuid.UUID) -> str:
    return (await pay.get_order(kit.db, tenant, order_id)).status


async def start(kit: Kit, tenant: uuid.UUID, member: uuid.UUID) -> pay.PaymentStart:
    return await pay.start_top_up(kit.db, kit.settings, tenant, member, PLAN.code, return_url="http://back/{order_id}")


# --- Stripe Checkout (payment mode) -----------------------------------------------------------------


async def test_stripe_top_up_is_credited_once_whatever_the_order_of_events(kit: Kit, tenant_factory, auth_kit) -> None:
    tenant, member = await shop(kit, tenant_factory, auth_kit, wechat=False)
    started = await start(kit, tenant, member)
    assert started.provider == "stripe" and started.redirect_url is not None
    session_id = started.redirect_url.rsplit("/", 1)[1]
    session = kit.stripe.sessions[session_id]
    assert session["mode"] == "payment" and session["payment_method_types"] == ["card", "alipay", "wechat_pay"]
    assert session["metadata"] == {"lianka_tenant": str(tenant), "lianka_order": str(started.order_id)}
    assert session["amount_total"] == PLAN.pay
    # the member pays on the hosted page; the stand-in sends checkout.session.completed + payment_intent.succeeded
    async with httpx.AsyncClient(base_url=kit.stripe.public_base) as browser:
        paid = await browser.post(f"/checkout/{session_id}/pay")
    assert paid.status_code == 303 and paid.headers["location"] == f"http://back/{started.order_id}"
    await settle(kit.db)
    assert await balances(kit, tenant, member) == (30_000, 3_000)
    assert await order_status(kit, tenant, started.order_id) == "paid"
    # duplicates and the reverse order change nothing; so does a poll
    events = [
        d.event
        for d in kit.stripe.deliveries
        if d.event["data"]["object"].get("metadata", {}).get("lianka_order") == str(started.order_id)
    ]
    assert {e["type"] for e in events} == {"checkout.session.completed", "payment_intent.succeeded"}
    assert await kit.stripe.deliver_all(list(reversed(events)) * 2) == [200] * 4
    await settle(kit.db)
    await pay.reconcile(kit.db, kit.settings, tenant, started.order_id)
    assert await balances(kit, tenant, member) == (30_000, 3_000)
    assert await top_up_entries(kit, tenant) == 1

    # a refund of part of the unused principal goes back through Stripe, the bonus forfeited in proportion
    done = await pay.refund_order(kit.db, kit.settings, tenant, started.order_id, key="r1", amount=10_000)
    assert (done.refund.status, done.refund.amount, done.refund.bonus_forfeited) == ("succeeded", 10_000, 1_000)
    again = await pay.refund_order(kit.db, kit.settings, tenant, started.order_id, key="r1", amount=10_000)
    assert again.replayed and again.refund.id == done.refund.id
    assert [
        r["amount"] for r in kit.stripe.payments.refunds.values() if r["payment_intent"] == session["payment_intent"]
    ] == [10_000]
    assert await balances(kit, tenant, member) == (20_000, 2_000)
    assert await order_status(kit, tenant, started.order_id) == "partially_refunded"


async def test_stripe_event_with_bad_signature_is_refused(kit: Kit) -> None:
    event = {
        "id": "evt_forged_" + uuid.uuid4().hex,
        "type": "payment_intent.succeeded",
        "created": 1,
        "data": {"object": {}},
    }
    assert await kit.stripe.deliver(event, secret="whsec_wrong") == 400
    async with kit.db.uow(system=True) as uow:
        refused = await uow.session.scalar(
            text("SELECT count(*) FROM billing_events WHERE provider = 'stripe' AND status = 'refused'")
        )
    assert refused and refused >= 1


async def test_stripe_event_naming_another_merchants_order_changes_nothing(kit: Kit, tenant_factory, auth_kit) -> None:
    a, member_a = await shop(kit, tenant_factory, auth_kit, wechat=False)
    b, _ = await shop(kit, tenant_factory, auth_kit, wechat=False)
    started = await start(kit, a, member_a)
    session_id = (started.redirect_url or "").rsplit("/", 1)[1]
    kit.stripe.auto_deliver = False
    try:
        events = kit.stripe.complete_checkout(session_id)
    finally:
        kit.stripe.auto_deliver = True
    forged = [
        {
            **e,
            "id": e["id"] + "_b",
            "data": {
                "object": {
                    **e["data"]["object"],
                    "metadata": {"lianka_tenant": str(b), "lianka_order": str(started.order_id)},
                }
            },
        }
        for e in events
    ]
    assert await kit.stripe.deliver_all(forged) == [200, 200]
    await settle(kit.db)
    assert await balances(kit, a, member_a) == (0, 0)
    assert await order_status(kit, a, started.order_id) == "pending"
    async with kit.db.uow(system=True) as uow:
        reasons = (
            await uow.session.scalars(
                text("SELECT reason FROM billing_events WHERE event_id = ANY(:e)"), {"e": [e["id"] for e in forged]}
            )
        ).all()
    assert all(r and "is not merchant" in r for r in reasons)
    # the genuine events then credit A once
    assert await kit.stripe.deliver_all(events) == [200, 200]
    await settle(kit.db)
    assert await balances(kit, a, member_a) == (30_000, 3_000)


# --- WeChat Pay v3 -------------------------------------------------------------------------------------


async def test_wechatpay_h5_top_up_notification_poll_and_refund(kit: Kit, tenant_factory, auth_kit) -> None:
    tenant, member = await shop(kit, tenant_factory, auth_kit, wechat=True)
    view = await pay.credentials_view(kit.db, tenant)
    assert view.provider == "wechatpay" and len(view.hints["apiv3_key"]) == 5  # "…" and the last four
    async with kit.db.uow(tenant) as uow:
        raw = await uow.session.scalar(
            text("SELECT secret FROM payment_credentials WHERE tenant_id = :t"), {"t": tenant}
        )
    assert b"PRIVATE KEY" not in bytes(raw)  # encrypted at rest

    started = await start(kit, tenant, member)
    assert started.provider == "wechatpay" and started.redirect_url is not None
    assert ("POST", "/v3/pay/transactions/h5", 200) in kit.wechat.requests
    # the member pays on the H5 page: the stand-in notifies, we answer SUCCESS after storing it
    async with httpx.AsyncClient() as browser:
        page = await browser.get(started.redirect_url)
        assert page.status_code == 200
        mchid, no = started.redirect_url.split("/h5/", 1)[1].split("?", 1)[0].split("/")
        paid = await browser.post(
            f"{kit.wechat.public_base}/h5/{mchid}/{no}/pay", data={"redirect_url": "http://back/x"}
        )
    assert paid.status_code == 303
    note, status = kit.wechat.sent[-1]
    assert status == 200
    await settle(kit.db)
    assert await balances(kit, tenant, member) == (30_000, 3_000)
    # a duplicate notification and the poll change nothing
    assert await kit.wechat.notify(note) == 200
    assert (await pay.reconcile(kit.db, kit.settings, tenant, started.order_id)).status == "paid"
    await settle(kit.db)
    assert await balances(kit, tenant, member) == (30_000, 3_000)
    assert await top_up_entries(kit, tenant) == 1
    # refund of all the unused principal: WeChat Pay refunds, the whole bonus is forfeited
    done = await pay.refund_order(kit.db, kit.settings, tenant, started.order_id, key="all")
    assert (done.refund.amount, done.refund.bonus_forfeited, done.order.status) == (30_000, 3_000, "refunded")
    assert [r["amount"]["refund"] for r in kit.wechat.refunds.values() if r["out_trade_no"] == no] == [30_000]
    assert await balances(kit, tenant, member) == (0, 0)


async def test_wechatpay_poll_credits_without_a_notification(kit: Kit, tenant_factory, auth_kit) -> None:
    tenant, member = await shop(kit, tenant_factory, auth_kit, wechat=True)
    started = await start(kit, tenant, member)
    mchid = next(m for (m, no) in kit.wechat.transactions if no == started.order_id.hex)
    kit.wechat.pay(mchid, started.order_id.hex)  # paid, but the notification is lost
    assert await pay.reconcile_pending(kit.db, kit.settings, tenant, datetime.now(UTC)) == 0  # too recent to poll
    assert await pay.reconcile_pending(kit.db, kit.settings, tenant, datetime.now(UTC) + timedelta(minutes=6)) == 1
    assert await balances(kit, tenant, member) == (30_000, 3_000)


async def test_wechatpay_bad_signature_and_another_merchants_order(kit: Kit, tenant_factory, auth_kit) -> None:
    a, member_a = await shop(kit, tenant_factory, auth_kit, wechat=True)
    b, _ = await shop(kit, tenant_factory, auth_kit, wechat=True)
    started = await start(kit, a, member_a)
    mchid = next(m for (m, no) in kit.wechat.transactions if no == started.order_id.hex)
    tx = kit.wechat.transactions[(mchid, started.order_id.hex)]
    kit.wechat.pay(mchid, started.order_id.hex)
    # signed with a key that is not the platform's: refused, recorded
    from cryptography.hazmat.primitives.asymmetric import rsa

    forged = kit.wechat.notification(mchid, tx, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert await kit.wechat.notify(forged) == 400
    # a genuine notification of A's order sent to B's endpoint: B cannot decrypt it (A's APIv3 key)
    genuine = kit.wechat.notification(mchid, tx)
    to_b = replace(genuine, url=genuine.url.replace(str(a), str(b)))
    assert await kit.wechat.notify(to_b) == 400
    await settle(kit.db)
    assert await balances(kit, a, member_a) == (0, 0)
    async with kit.db.uow(system=True) as uow:
        refused = await uow.session.scalar(
            text(
                "SELECT count(*) FROM billing_events WHERE provider = 'wechatpay' AND status = 'refused' AND reason LIKE :m"
            ),
            {"m": f"merchant {b}%"},
        )
    assert refused == 1
    assert await kit.wechat.notify(genuine) == 200
    await settle(kit.db)
    assert await balances(kit, a, member_a) == (30_000, 3_000)
    # row-level security: B's transactions see none of A's orders or credentials, and cannot write them
    async with kit.db.uow(b) as uow:
        seen = await uow.session.scalar(
            text("SELECT count(*) FROM payment_orders WHERE id = :o"), {"o": started.order_id}
        )
        creds = await uow.session.scalar(
            text("SELECT count(*) FROM payment_credentials WHERE tenant_id = :a"), {"a": a}
        )
        moved = await uow.session.execute(
            text("UPDATE payment_orders SET status = 'refunded' WHERE id = :o"), {"o": started.order_id}
        )
    assert (seen, creds, getattr(moved, "rowcount", None)) == (0, 0, 0)
    with pytest.raises(NotFound):
        await pay.get_order(kit.db, b, started.order_id)


async def test_notification_storm_and_polls_credit_once(kit: Kit, tenant_factory, auth_kit) -> None:
    tenant, member = await shop(kit, tenant_factory, auth_kit, wechat=True)
    started = await start(kit, tenant, member)
    mchid = next(m for (m, no) in kit.wechat.transactions if no == started.order_id.hex)
    note = kit.wechat.pay(mchid, started.order_id.hex)
    other = kit.wechat.notification(mchid, kit.wechat.transactions[(mchid, started.order_id.hex)])  # a second id

    async def poll() -> str:
        return (await pay.reconcile(kit.db, kit.settings, tenant, started.order_id)).status

    results = await asyncio.gather(
        *(kit.wechat.notify(note if i % 2 else other) for i in range(50)), *(poll() for _ in range(10))
    )
    assert results[:50] == [200] * 50 and set(results[50:]) == {"paid"}
    await settle(kit.db)
    assert await balances(kit, tenant, member) == (30_000, 3_000)
    assert await top_up_entries(kit, tenant) == 1
    async with kit.db.uow(system=True) as uow:
        stored = await uow.session.scalar(
            text("SELECT count(*) FROM billing_events WHERE provider = 'wechatpay' AND tenant_id = :t"), {"t": tenant}
        )
    assert stored == 2  # one row per notification id, however often it came


# --- the API ---------------------------------------------------------------------------------------------


async def test_portal_top_up_and_staff_refund_through_the_api(kit: Kit, tenant_factory, auth_kit) -> None:
    tenant, _ = await shop(kit, tenant_factory, auth_kit, wechat=False)
    member = await auth_kit.member(tenant)
    assert member.subject_id is not None
    owner = await auth_kit.staff(tenant, "owner")
    url = f"/api/v1/portal/merchants/{tenant}/payments"
    bad = await kit.http.post(f"{url}/top-up", json={"plan": "nope"}, headers=member.headers)
    assert bad.status_code == 404 and bad.headers["content-type"].startswith("application/problem+json")
    r = await kit.http.post(f"{url}/top-up", json={"plan": PLAN.code}, headers=member.headers)
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    assert r.json()["redirect_url"].startswith(kit.stripe.public_base)
    pending = await kit.http.get(f"{url}/{order_id}", headers=member.headers)
    assert pending.json()["status"] == "pending"
    async with httpx.AsyncClient(base_url=kit.stripe.public_base) as browser:
        await browser.post(f"/checkout/{r.json()['redirect_url'].rsplit('/', 1)[1]}/pay")
    await settle(kit.db)
    assert (await kit.http.get(f"{url}/{order_id}", headers=member.headers)).json()["status"] == "paid"
    too_much = await kit.http.post(
        f"/api/v1/payments/orders/{order_id}/refund",
        json={"amount": 99_999},
        headers={**owner.headers, "Idempotency-Key": "k1"},
    )
    assert too_much.status_code == 422 and too_much.json()["type"].endswith("/refund-too-large")
    ok = await kit.http.post(
        f"/api/v1/payments/orders/{order_id}/refund", json={}, headers={**owner.headers, "Idempotency-Key": "k2"}
    )
    assert ok.status_code == 201, ok.text
    history = (await kit.http.get(f"/api/v1/payments/members/{member.subject_id}", headers=owner.headers)).json()
    assert [(h["status"], [x["amount"] for x in h["refunds"]]) for h in history] == [("refunded", [30_000])]
    # another merchant's staff sees a 404 for this order
    other = await tenant_factory()
    stranger = await auth_kit.staff(other, "owner")
    r404 = await kit.http.post(
        f"/api/v1/payments/orders/{order_id}/refund", json={}, headers={**stranger.headers, "Idempotency-Key": "k3"}
    )
    assert r404.status_code == 404
    creds = await kit.http.put(
        "/api/v1/payments/credentials", json={"provider": "wechatpay", "mchid": "1"}, headers=owner.headers
    )
    assert creds.status_code == 400 and creds.json()["type"].endswith("/bad-payment-credentials")


# --- the pages -------------------------------------------------------------------------------------------


async def test_portal_top_up_pages_and_console_refund(kit: Kit, tenant_factory, auth_kit) -> None:
    """The member clicks through: plans → Pay → the stand-in's page → back to "paying…" → credited;
    the history lists the payment; the owner sets WeChat Pay credentials (shown back as last 4 only)
    and refunds the payment from the member's page."""
    tenant, _ = await shop(kit, tenant_factory, auth_kit, wechat=False)
    member = await auth_kit.member(tenant)
    async with kit.db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant})
    cookie = {"Cookie": member.headers["Cookie"]}
    page = await kit.http.get(f"/m/{slug}/top-up", headers=cookie)
    assert page.status_code == 200 and 'data-testid="pay-300"' in page.text
    csrf = csrf_of(page.text)
    go = await kit.http.post(f"/m/{slug}/top-up", data={"plan": "300", "_csrf": csrf}, headers=cookie)
    assert go.status_code == 303 and go.headers["location"].startswith(f"/m/{slug}/top-up/")
    onward = await kit.http.get(go.headers["location"], headers=cookie)  # sends the browser to the provider
    found = re.search(r'data-testid="go-pay"', onward.text) and re.search(r'url=(http[^"]+)"', onward.text)
    assert found and found.group(1).startswith(kit.stripe.public_base + "/checkout/")
    async with httpx.AsyncClient() as browser:
        back = await browser.post(found.group(1) + "/pay")
    assert back.status_code == 303
    paying_url = "/" + back.headers["location"].split("/", 3)[3]  # the app's public URL, then this path
    assert paying_url.startswith(f"/m/{slug}/top-up/")
    await settle(kit.db)
    paid = await kit.http.get(paying_url, headers=cookie)
    assert 'data-testid="paid"' in paid.text and "¥330.00" in paid.text
    history = await kit.http.get(f"/m/{slug}/history", headers=cookie)
    assert 'data-testid="payments"' in history.text and 'data-status="paid"' in history.text
    refused = await kit.http.post(f"/m/{slug}/top-up", data={"plan": "nope", "_csrf": csrf}, headers=cookie)
    assert refused.status_code == 404 and 'data-testid="error"' in refused.text

    staff = await auth_kit.staff_session(tenant, "owner")
    assert staff.token
    console = {"Cookie": f"{STAFF_COOKIE}={staff.token}"}
    token = staff.headers["X-CSRF-Token"]
    creds = kit.wechat.new_merchant()
    form = {"provider": "wechatpay", "mchid": creds.mchid, "serial_no": creds.serial_no, "appid": creds.appid}
    bad = await kit.http.post("/console/settings/payments", data={**form, "_csrf": token}, headers=console)
    assert bad.status_code == 400 and "aria-invalid" in bad.text
    full = {**form, "private_key": creds.private_key, "apiv3_key": creds.apiv3_key, "_csrf": token}
    saved = await kit.http.post("/console/settings/payments", data=full, headers=console)
    assert saved.status_code == 200, saved.text
    assert creds.apiv3_key not in saved.text and creds.serial_no not in saved.text
    assert f"…{creds.apiv3_key[-4:]}" in saved.text and "BEGIN PRIVATE KEY" not in saved.text

    assert member.subject_id is not None
    detail = await kit.http.get(f"/console/members/{member.subject_id}", headers=console)
    assert 'data-testid="refund-order"' in detail.text
    order_id = re.search(r'data-order="([0-9a-f-]+)"', detail.text)
    assert order_id
    refund = await kit.http.post(
        f"/console/members/{member.subject_id}/payments/{order_id.group(1)}/refund",
        data={"_key": "once", "_csrf": token},
        headers=console,
    )
    assert refund.status_code == 303
    assert await balances(kit, tenant, member.subject_id) == (0, 0)
    # refunded through Stripe, which took the payment, though the merchant has since chosen WeChat Pay
    intent = (await pay.get_order(kit.db, tenant, uuid.UUID(order_id.group(1)))).provider_ref
    assert [r["amount"] for r in kit.stripe.payments.refunds.values() if r["payment_intent"] == intent] == [30_000]
    assert (await pay.get_order(kit.db, tenant, uuid.UUID(order_id.group(1)))).status == "refunded"


# --- a paid membership bought online (the "membership" order kind) ------------------------------------


async def test_membership_bought_online_starts_once_and_its_refund_goes_back_through_the_provider(
    kit: Kit, tenant_factory, auth_kit
) -> None:
    tenant, member = await shop(kit, tenant_factory, auth_kit, wechat=True)
    await membership_products.create_product(
        kit.db, tenant, membership_schemas.ProductIn(code="plus", name="PLUS", period="yearly", price=12_000)
    )
    started = await membership_terms.start_online_purchase(
        kit.db, kit.settings, tenant, member, "plus", return_url="http://back/{order_id}"
    )
    assert started.provider == "wechatpay"
    assert (await pay.get_order(kit.db, tenant, started.order_id)).amount == 12_000  # the product's price now
    mchid = next(m for (m, no) in kit.wechat.transactions if no == started.order_id.hex)
    note = kit.wechat.pay(mchid, started.order_id.hex)
    # the notification twice, and the poll: one term
    assert await kit.wechat.notify(note) == 200
    assert await kit.wechat.notify(note) == 200
    assert (await pay.reconcile(kit.db, kit.settings, tenant, started.order_id)).status == "paid"
    await settle(kit.db)
    mine = await membership_terms.member_membership(kit.db, tenant, member)
    assert mine.current is not None and (mine.current.source, mine.current.price) == ("wechatpay", 12_000)
    async with kit.db.uow(tenant) as uow:
        terms_count = await uow.session.scalar(
            text("SELECT count(*) FROM membership_terms WHERE member_id = :m"), {"m": member}
        )
    assert terms_count == 1
    # unused whole months back through WeChat Pay, once under the same key
    out, _ = await membership_terms.refund_at_till(
        kit.db, kit.settings, tenant, mine.current.term_id, membership_schemas.RefundIn(), "refund-1"
    )
    assert 0 < out.refunded < 12_000
    again, replayed = await membership_terms.refund_at_till(
        kit.db, kit.settings, tenant, mine.current.term_id, membership_schemas.RefundIn(), "refund-1"
    )
    assert replayed and again.refunded == out.refunded
    no = started.order_id.hex
    assert [r["amount"]["refund"] for r in kit.wechat.refunds.values() if r["out_trade_no"] == no] == [out.refunded]
    order = await pay.get_order(kit.db, tenant, started.order_id)
    assert (order.status, order.refunded_amount) == ("partially_refunded", out.refunded)


# --- refunds the provider finishes later (PROCESSING / pending) -----------------------------------------


async def paid_wechat_top_up(
    kit: Kit, tenant_factory: Any, auth_kit: AuthKit
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]:
    tenant, member = await shop(kit, tenant_factory, auth_kit, wechat=True)
    started = await start(kit, tenant, member)
    mchid = next(m for (m, no) in kit.wechat.transactions if no == started.order_id.hex)
    assert await kit.wechat.notify(kit.wechat.pay(mchid, started.order_id.hex)) == 200
    await settle(kit.db)
    assert await balances(kit, tenant, member) == (30_000, 3_000)
    return tenant, member, started.order_id, mchid


async def refund_row(kit: Kit, tenant: uuid.UUID, refund_id: uuid.UUID) -> tuple[str, int]:
    async with kit.db.uow(tenant) as uow:
        row = (
            await uow.session.execute(
                text(
                    "SELECT status, (SELECT refunded_amount FROM payment_orders o WHERE o.id = r.order_id) AS done "
                    "FROM payment_refunds r WHERE id = :id"
                ),
                {"id": refund_id},
            )
        ).one()
    return str(row.status), int(row.done)


async def test_wechatpay_refund_in_progress_ends_by_its_notification_once(kit: Kit, tenant_factory, auth_kit) -> None:
    tenant, member, order_id, mchid = await paid_wechat_top_up(kit, tenant_factory, auth_kit)
    kit.wechat.refund_status = "PROCESSING"
    try:
        done = await pay.refund_order(kit.db, kit.settings, tenant, order_id, key="slow", amount=10_000)
    finally:
        kit.wechat.refund_status = "SUCCESS"
    # accepted, not finished: pending, the principal held back from the member meanwhile
    assert done.refund.status == "pending" and done.refund.provider_ref
    assert await balances(kit, tenant, member) == (20_000, 2_000)
    with pytest.raises(DomainError) as busy:
        await pay.refund_order(kit.db, kit.settings, tenant, order_id, key="other", amount=1_000)
    assert busy.value.type_slug == "refund-in-progress"
    # WeChat Pay's REFUND.SUCCESS, delivered twice: recorded once
    note = kit.wechat.settle_refund(mchid, done.refund.id.hex, "SUCCESS")
    assert await kit.wechat.notify(note) == 200 and await kit.wechat.notify(note) == 200
    await settle(kit.db)
    assert await refund_row(kit, tenant, done.refund.id) == ("succeeded", 10_000)
    assert await balances(kit, tenant, member) == (20_000, 2_000)


async def test_wechatpay_refund_that_fails_later_gives_the_member_the_money_back(
    kit: Kit, tenant_factory, auth_kit
) -> None:
    tenant, member, order_id, mchid = await paid_wechat_top_up(kit, tenant_factory, auth_kit)
    kit.wechat.refund_status = "PROCESSING"
    try:
        done = await pay.refund_order(kit.db, kit.settings, tenant, order_id, key="bad", amount=30_000)
    finally:
        kit.wechat.refund_status = "SUCCESS"
    assert await balances(kit, tenant, member) == (0, 0)
    # the bank refuses (ABNORMAL): found by the poll before any notification, then the notification
    kit.wechat.settle_refund(mchid, done.refund.id.hex, "ABNORMAL")
    later = datetime.now(UTC) + timedelta(minutes=6)
    assert await pay.reconcile_refunds(kit.db, kit.settings, tenant, later) == 1
    assert await pay.reconcile_refunds(kit.db, kit.settings, tenant, later) == 0  # nothing left in flight
    assert await refund_row(kit, tenant, done.refund.id) == ("failed", 0)
    assert await balances(kit, tenant, member) == (30_000, 3_000)  # principal and bonus back, exactly once
    assert await order_status(kit, tenant, order_id) == "paid"
    note = kit.wechat.settle_refund(mchid, done.refund.id.hex, "ABNORMAL")
    assert await kit.wechat.notify(note) == 200
    await settle(kit.db)
    assert await balances(kit, tenant, member) == (30_000, 3_000)


async def test_stripe_pending_refund_ends_by_refund_updated_or_the_poll(kit: Kit, tenant_factory, auth_kit) -> None:
    tenant, member = await shop(kit, tenant_factory, auth_kit, wechat=False)
    started = await start(kit, tenant, member)
    session_id = started.redirect_url.rsplit("/", 1)[1] if started.redirect_url else ""
    async with httpx.AsyncClient(base_url=kit.stripe.public_base) as browser:
        assert (await browser.post(f"/checkout/{session_id}/pay")).status_code == 303
    await settle(kit.db)
    kit.stripe.payments.refund_status = "pending"
    try:
        first = await pay.refund_order(kit.db, kit.settings, tenant, started.order_id, key="p1", amount=10_000)
    finally:
        kit.stripe.payments.refund_status = "succeeded"
    assert first.refund.status == "pending"
    # refund.updated (succeeded), twice
    events = kit.stripe.payments.settle_refund(str(first.refund.provider_ref), "succeeded")
    assert await kit.stripe.deliver_all(events * 2) == [200, 200]
    await settle(kit.db)
    assert await refund_row(kit, tenant, first.refund.id) == ("succeeded", 10_000)
    # a second one fails at Stripe; its refund.failed is lost, the poll finds it
    kit.stripe.payments.refund_status = "pending"
    try:
        second = await pay.refund_order(kit.db, kit.settings, tenant, started.order_id, key="p2", amount=10_000)
    finally:
        kit.stripe.payments.refund_status = "succeeded"
    kit.stripe.auto_deliver = False
    try:
        kit.stripe.payments.settle_refund(str(second.refund.provider_ref), "failed")
    finally:
        kit.stripe.auto_deliver = True
    later = datetime.now(UTC) + timedelta(minutes=6)
    assert await pay.reconcile_refunds(kit.db, kit.settings, tenant, later) == 1
    assert await refund_row(kit, tenant, second.refund.id) == ("failed", 10_000)
    assert await balances(kit, tenant, member) == (20_000, 2_000)  # only the first refund stands
