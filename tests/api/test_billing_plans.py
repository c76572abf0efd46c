"""Plan changes with proration, cancel at period end and undo, the billing e-mail and the invoices
list — through the real ``stripe`` SDK, the local stand-in and real webhooks (see test_billing)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from lianka.platform.identity.testing import AuthKit
from tests.api.test_billing import Kit, account_row, kit, settle, status_of, subscribe

pytestmark = pytest.mark.integration
__all__ = ["kit"]  # the module's stand-in and served app


async def subscribed(kit: Kit, staff_token: Any, tenant: uuid.UUID, plan: str) -> str:
    """A merchant that checked out ``plan`` and paid; its subscription id."""
    session_id, _ = await subscribe(kit, staff_token, tenant, plan)
    async with httpx.AsyncClient(base_url=kit.standin.public_base) as browser:
        assert (await browser.post(f"/checkout/{session_id}/pay")).status_code == 303
    await settle(kit.db)
    sub: str = kit.standin.sessions[session_id]["subscription"]
    return sub


async def test_an_upgrade_applies_at_once_and_invoices_the_difference(kit: Kit, tenant_factory, staff_token) -> None:
    t, other = await tenant_factory(), await tenant_factory()
    sub = await subscribed(kit, staff_token, t, "shop")
    other_sub = await subscribed(kit, staff_token, other, "shop")
    owner = await staff_token(t)
    r = await kit.http.post("/api/v1/billing/plan", json={"plan": "chain"}, headers=owner.headers)
    assert r.status_code == 200 and r.json() == {"change": "upgrade", "plan": "chain"}, r.text
    await settle(kit.db)
    body = await status_of(kit, staff_token, t)
    assert (body["status"], body["plan"]["code"]) == ("active", "chain")
    assert kit.standin.subscriptions[sub]["items"]["data"][0]["price"]["unit_amount"] == 59_900
    assert [p["behavior"] for p in kit.standin.prorations if p["subscription"] == sub] == ["always_invoice"]
    assert (await status_of(kit, staff_token, other))["plan"]["code"] == "shop"  # the other merchant: untouched
    assert kit.standin.subscriptions[other_sub]["items"]["data"][0]["price"]["unit_amount"] == 19_900
    # the invoices: the first month and the prorated difference, both from the webhooks
    invoices = (await kit.http.get("/api/v1/billing/invoices", headers=owner.headers)).json()
    assert len(invoices) == 2 and {i["status"] for i in invoices} == {"paid"}
    assert invoices[-1]["amount_due"] == 19_900 and 0 < invoices[0]["amount_due"] <= 40_000
    assert all(i["number"].startswith("STANDIN-") and i["hosted_invoice_url"] for i in invoices)
    same = await kit.http.post("/api/v1/billing/plan", json={"plan": "chain"}, headers=owner.headers)
    assert same.status_code == 422 and same.json()["type"].endswith("/billing-same-plan")
    others = (await kit.http.get("/api/v1/billing/invoices", headers=(await staff_token(other)).headers)).json()
    assert len(others) == 1


async def test_an_upgrade_whose_invoice_arrives_first_still_changes_the_plan(
    kit: Kit, tenant_factory, staff_token
) -> None:
    """Stripe sends the plan change and the proration's payment at once; delivered newest first (as two
    workers may apply them), the merchant still ends on the new plan, active, with both invoices."""
    t = await tenant_factory()
    await subscribed(kit, staff_token, t, "shop")
    owner = await staff_token(t)
    kit.standin.auto_deliver = False
    try:
        before = len(kit.standin.events)
        r = await kit.http.post("/api/v1/billing/plan", json={"plan": "chain"}, headers=owner.headers)
        assert r.status_code == 200, r.text
        sent = kit.standin.events[before:]
        assert [e["type"] for e in sent] == ["customer.subscription.updated", "invoice.paid"]
        for event in reversed(sent):  # the invoice first, then the (older) plan change
            assert await kit.standin.deliver(event) == 200
            await settle(kit.db)
    finally:
        kit.standin.auto_deliver = True
    body = await status_of(kit, staff_token, t)
    assert (body["status"], body["plan"]["code"]) == ("active", "chain")
    row = await account_row(kit.db, t)
    created = {e["type"]: datetime.fromtimestamp(e["created"], UTC) for e in sent}
    assert (row.state_at, row.subscription_at) == (created["invoice.paid"], created["customer.subscription.updated"])
    invoices = (await kit.http.get("/api/v1/billing/invoices", headers=owner.headers)).json()
    assert len(invoices) == 2 and {i["status"] for i in invoices} == {"paid"}


async def test_a_downgrade_that_does_not_fit_is_refused_before_stripe_is_called(
    kit: Kit, tenant_factory, staff_token, auth_kit: AuthKit
) -> None:
    t = await tenant_factory()
    sub = await subscribed(kit, staff_token, t, "chain")
    await auth_kit.branch(t, "D1")
    extra = await auth_kit.branch(t, "D2")
    owner = await staff_token(t)
    before = list(kit.standin.prorations)
    r = await kit.http.post("/api/v1/billing/plan", json={"plan": "shop"}, headers=owner.headers)
    assert r.status_code == 402, r.text
    body = r.json()
    assert (body["limit"], body["plan_value"], body["current"], body["plan"]) == ("branches", 1, 2, "shop")
    assert kit.standin.prorations == before  # Stripe was not asked
    async with kit.db.uow(t) as uow:
        await uow.session.execute(text("DELETE FROM branches WHERE id = :b"), {"b": extra})
        await uow.commit()
    r = await kit.http.post("/api/v1/billing/plan", json={"plan": "shop"}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["change"] == "downgrade"
    await settle(kit.db)
    assert (await status_of(kit, staff_token, t))["plan"]["code"] == "shop"
    assert [p["behavior"] for p in kit.standin.prorations if p["subscription"] == sub] == ["create_prorations"]
    free = await kit.http.post("/api/v1/billing/plan", json={"plan": "free"}, headers=owner.headers)
    assert free.status_code == 422  # stopping payment is a cancellation


async def test_cancel_at_period_end_and_undo(kit: Kit, tenant_factory, staff_token) -> None:
    t = await tenant_factory()
    owner = await staff_token(t)
    none_yet = await kit.http.post("/api/v1/billing/cancel", headers=owner.headers)
    assert none_yet.status_code == 422 and none_yet.json()["type"].endswith("/billing-no-subscription")
    sub = await subscribed(kit, staff_token, t, "shop")
    r = await kit.http.post("/api/v1/billing/cancel", headers=owner.headers)
    assert r.status_code == 200
    await settle(kit.db)
    body = await status_of(kit, staff_token, t)
    assert (body["status"], body["cancel_at_period_end"]) == ("active", True)  # nothing stops before the end
    assert kit.standin.subscriptions[sub]["cancel_at_period_end"] is True
    r = await kit.http.post("/api/v1/billing/resume", headers=owner.headers)
    assert r.status_code == 200
    await settle(kit.db)
    assert (await status_of(kit, staff_token, t))["cancel_at_period_end"] is False
    assert (await account_row(kit.db, t)).status == "active"


async def test_the_billing_email_is_stored_and_sent_to_the_stripe_customer(
    kit: Kit, tenant_factory, staff_token
) -> None:
    t = await tenant_factory()
    owner = await staff_token(t)
    r = await kit.http.put("/api/v1/billing/email", json={"email": "finance@shop.cn"}, headers=owner.headers)
    assert r.status_code == 200 and r.json() == {"email": "finance@shop.cn"}
    _, customer = await subscribe(kit, staff_token, t, "shop")
    assert kit.standin.customers[customer]["email"] == "finance@shop.cn"  # set when the customer is made
    r = await kit.http.put("/api/v1/billing/email", json={"email": "boss@shop.cn"}, headers=owner.headers)
    assert r.status_code == 200
    assert kit.standin.customers[customer]["email"] == "boss@shop.cn"
    bad = await kit.http.put("/api/v1/billing/email", json={"email": "not an address"}, headers=owner.headers)
    assert bad.status_code == 400
    assert (await account_row(kit.db, t)).billing_email == "boss@shop.cn"
    cashier = await staff_token(t, "admin")
    assert (
        await kit.http.put("/api/v1/billing/email", json={"email": "x@y.cn"}, headers=cashier.headers)
    ).status_code == 403


# --- the console's billing page --------------------------------------------------------------------


async def test_the_console_billing_page_subscribes_changes_plan_and_lists_invoices(
    kit: Kit, tenant_factory, auth_kit: AuthKit
) -> None:
    t = await tenant_factory()
    owner = await auth_kit.staff_session(t, "owner")
    headers = {**owner.headers, "Accept-Language": "en"}
    page = await kit.http.get("/console/billing", headers=headers)
    assert page.status_code == 200, page.text
    assert "Free trial of the Chain plan until" in page.text and 'data-limit="branches"' in page.text
    assert 'data-testid="subscribe-shop"' in page.text and "No invoices yet." in page.text
    # its forms lead on to the hosted checkout and portal (browsers check the redirect against form-action)
    assert f"form-action 'self' {kit.standin.public_base};" in page.headers["content-security-policy"]
    assert "script-src 'self';" in page.headers["content-security-policy"]
    r = await kit.http.post("/console/billing/subscribe", data={"plan": "shop"}, headers=headers)
    assert r.status_code == 303 and r.headers["location"].startswith(kit.standin.public_base + "/checkout/")
    async with httpx.AsyncClient(base_url=kit.standin.public_base) as browser:
        paid = await browser.post(r.headers["location"].removeprefix(kit.standin.public_base) + "/pay")
    assert paid.headers["location"].endswith("/console/billing?billing=subscribed")
    await settle(kit.db)
    page = await kit.http.get("/console/billing?billing=subscribed", headers=headers)
    assert "Active. The next payment is due on" in page.text and "STANDIN-" in page.text
    assert "the plan shows here in a moment" in page.text
    r = await kit.http.post("/console/billing/plan", data={"plan": "chain"}, headers=headers)
    assert (r.status_code, r.headers["location"]) == (303, "/console/billing?billing=plan-requested")
    await settle(kit.db)
    page = await kit.http.get("/console/billing", headers=headers)
    assert 'class="plan-card current" data-plan="chain"' in page.text
    bad = await kit.http.post("/console/billing/email", data={"email": "nope"}, headers=headers)
    assert bad.status_code == 400 and 'data-testid="billing-error"' in bad.text
    r = await kit.http.post("/console/billing/cancel", headers=headers)
    assert r.status_code == 303
    await settle(kit.db)
    page = await kit.http.get("/console/billing", headers=headers)
    assert "then canceled (you can still resume)" in page.text and 'data-testid="billing-resume"' in page.text
    zh = await kit.http.get("/console/billing", headers={**owner.headers, "Accept-Language": "zh-CN"})
    assert zh.status_code == 200 and "账单" in zh.text
    admin = await auth_kit.staff_session(t, "admin")
    assert (await kit.http.get("/console/billing", headers=admin.headers)).status_code == 403
