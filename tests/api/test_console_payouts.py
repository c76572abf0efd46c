"""The payouts panel of the console's settlement month (a closed October: A owes HQ ¥500, HQ owes B
¥200 and C ¥100; no branch is connected to Stripe, so every line goes in the bank file): "pay all
owed" queues the sending and the panel follows its progress; an operator marks bank lines; the
branches page says how each branch is paid; an analyst sees but cannot pay."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import text

from lianka.billing.payouts import services
from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder
from tests.api.settlement_kit import make_chain
from tests.api.test_console import sign_in_console

pytestmark = pytest.mark.integration
PERIOD = "2026-10"
HTMX = {"HX-Request": "true"}


def lines(html: str) -> dict[str, tuple[str, str, str]]:
    """The payouts table: branch code -> (status, method, direction)."""
    found = re.findall(r'<tr data-payee="(\w+)" data-status="(\w+)" data-method="(\w*)" data-direction="(\w+)"', html)
    return {code: (status, method, direction) for code, status, method, direction in found}


async def queued_sends(db: Database, tenant: uuid.UUID) -> list[dict[str, str]]:
    async with db.uow(tenant) as uow:
        rows = await uow.session.execute(text("SELECT payload FROM outbox WHERE actor = 'payouts_send' ORDER BY id"))
        return [dict(r.payload) for r in rows]


async def test_pay_all_owed_then_mark_the_bank_lines(
    client, db, tenant_factory, auth_kit, staff_token, member_factory
) -> None:
    chain = await make_chain(client, db, tenant_factory, auth_kit, staff_token, BonusFunder.HQ)
    member = await member_factory(chain.tenant)
    await chain.top_up(member, "500", "A")
    await chain.spend(member, 20_000, "B")
    await chain.spend(member, 10_000, "C")
    await chain.close(PERIOD)

    owner = await sign_in_console(client, auth_kit, chain.tenant, "owner")
    month = await owner.get(f"/console/settlement/{PERIOD}")
    assert month.status_code == 200 and f'hx-get="/console/settlement/{PERIOD}/payouts"' in month.text
    panel = await owner.get(f"/console/settlement/{PERIOD}/payouts", headers=HTMX)
    assert 'data-testid="no-payouts"' in panel.text and 'data-testid="pay-all"' in panel.text
    assert "<html" not in panel.text  # htmx gets the panel only

    ran = await owner.post(f"/console/settlement/{PERIOD}/payouts/run", {}, htmx=True)
    assert ran.status_code == 200, ran.text
    assert lines(ran.text) == {
        "A": ("pending", "bank", "collection"),
        "B": ("pending", "bank", "payout"),
        "C": ("pending", "bank", "payout"),
    }
    assert "¥500.00" in ran.text and "¥200.00" in ran.text
    assert await queued_sends(db, chain.tenant) == [{"book": str(chain.tenant), "period": PERIOD}]
    assert await services.send_pending(db, None, chain.tenant, PERIOD) == 0  # nothing for Stripe here
    again = await owner.post(f"/console/settlement/{PERIOD}/payouts/run", {}, htmx=True)
    assert len(lines(again.text)) == 3 and 'hx-trigger="every 1s"' not in again.text  # all sent: no polling

    a = next(p for p in await services.list_payouts(db, chain.tenant, PERIOD) if p.code == "A")
    marked = await owner.post(f"/console/settlement/{PERIOD}/payouts/{a.id}/mark", {"status": "paid"}, htmx=True)
    assert lines(marked.text)["A"] == ("paid", "bank", "collection")
    refused = await owner.post(f"/console/settlement/{PERIOD}/payouts/{a.id}/retry", {}, htmx=True)
    assert refused.status_code == 409 and "只有失败或被退回的付款可以重试" in refused.text
    assert (await services.get(db, chain.tenant, a.id)).attempt == 1

    csv_file = await owner.get(f"/console/settlement/{PERIOD}/payouts/bank-file")
    assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
    assert [row.split(",")[2] for row in csv_file.content.decode("utf-8-sig").splitlines()[1:]] == ["pay", "pay"]

    branches = await owner.get("/console/branches")
    assert branches.status_code == 200
    assert re.findall(r'data-testid="payout-connection-(\w+)" data-connection="(\w+)"', branches.text) == [
        ("A", "none"),
        ("B", "none"),
        ("C", "none"),
    ]

    analyst = await sign_in_console(client, auth_kit, chain.tenant, "analyst")
    seen = await analyst.get(f"/console/settlement/{PERIOD}/payouts")
    assert seen.status_code == 200 and "mark-paid-B" not in seen.text and len(lines(seen.text)) == 3
    b = next(p for p in await services.list_payouts(db, chain.tenant, PERIOD) if p.code == "B")
    denied = await analyst.post(f"/console/settlement/{PERIOD}/payouts/{b.id}/mark", {"status": "paid"})
    assert denied.status_code == 403
    assert (await services.get(db, chain.tenant, b.id)).status == "pending"

    other = await make_chain(client, db, tenant_factory, auth_kit, staff_token, BonusFunder.HQ, name="别家")
    stranger = await sign_in_console(client, auth_kit, other.tenant, "owner")
    theirs = await stranger.post(f"/console/settlement/{PERIOD}/payouts/{b.id}/mark", {"status": "paid"})
    assert theirs.status_code == 404
    assert (await services.get(db, chain.tenant, b.id)).status == "pending"
