"""Settlement payouts (issue 15 §3) through the real ``stripe`` SDK against the local stand-in: a chain
closes October with two branches owed (B, C) and one owing (A); B and C are onboarded to Stripe
Connect, so they are paid by transfer and A's collection goes in the bank file. Stripe's events
come through the billing inbox (signed, stored, processed); duplicates, out-of-order events and
another merchant's objects change nothing; a failed payout is retried and pays once."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from lianka.alliance.settlement import scopes
from lianka.billing import services as billing
from lianka.billing.payouts import bankfile, connect, services
from lianka.billing.payouts.errors import PayoutNotBank, PayoutNotRetryable
from lianka.billing.payouts.queries import PayoutRow
from lianka.billing.stripe_standin import StripeStandin
from lianka.platform import audit
from lianka.platform.db import Database
from lianka.platform.errors import NotFound
from lianka.platform.settings import Settings
from lianka.tenants.domain.programme import BonusFunder
from tests.api.settlement_kit import Chain, make_chain

pytestmark = pytest.mark.integration
SECRET_KEY = "sk_test_payouts_" + uuid.uuid4().hex
WEBHOOK_SECRET = "whsec_" + uuid.uuid4().hex
PERIOD = "2026-10"


@dataclass
class Kit:
    standin: StripeStandin
    settings: Settings
    db: Database


@pytest.fixture(scope="module")
async def kit(settings: Settings, db: Database) -> AsyncIterator[Kit]:
    standin = StripeStandin(api_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, auto_deliver=False)
    async with standin.serve() as stripe_url:
        yield Kit(
            standin,
            replace(
                settings, stripe_api_base=stripe_url, stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET
            ),
            db,
        )


async def deliver(kit: Kit, event: dict[str, Any]) -> str:
    """A signed delivery through the billing inbox, then its processing (as the job does)."""
    payload, signature = kit.standin.signed(event)
    received = await billing.receive_stripe_webhook(kit.db, kit.settings, payload, signature)
    async with kit.db.uow(system=True) as uow:
        status = await billing.process_event_recording_failure(uow, received.row_id)
        await uow.commit()
    return status


def of_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


async def october(
    client: AsyncTestClient[Litestar], db: Database, tenant_factory, auth_kit, staff_token, member_factory
) -> Chain:
    """A (top-up of ¥500: owes HQ ¥500), B (spent ¥200: owed) and C (spent ¥100: owed); closed."""
    chain = await make_chain(client, db, tenant_factory, auth_kit, staff_token, BonusFunder.HQ)
    member = await member_factory(chain.tenant)
    await chain.top_up(member, "500", "A")
    await chain.spend(member, 20_000, "B")
    await chain.spend(member, 10_000, "C")
    await chain.close(PERIOD)
    return chain


async def onboard(kit: Kit, chain: Chain, code: str) -> str:
    url = await connect.onboarding_link(
        kit.db, kit.settings, chain.tenant, chain.branches[code], return_url="http://x/back", refresh_url="http://x/r"
    )
    acct = url.rsplit("/", 1)[1]
    assert acct.startswith("acct_")
    assert await deliver(kit, of_type(kit.standin.complete_onboarding(acct), "account.updated")[0]) == "processed"
    return acct


def by_code(rows: list[PayoutRow]) -> dict[str, PayoutRow]:
    return {p.code: p for p in rows}


@pytest.fixture
def chain_of(client, db, tenant_factory, auth_kit, staff_token, member_factory):
    async def make() -> Chain:
        return await october(client, db, tenant_factory, auth_kit, staff_token, member_factory)

    return make


async def test_a_closed_month_pays_the_owed_by_transfer_and_collects_by_bank_file(kit: Kit, chain_of) -> None:
    chain = await chain_of()
    acct_b, acct_c = await onboard(kit, chain, "B"), await onboard(kit, chain, "C")
    payees = {p.code: p for p in await connect.payees(kit.db, chain.tenant)}
    assert (payees["A"].connection, payees["B"].connection, payees["C"].connection) == (
        "none",
        "connected",
        "connected",
    )
    await connect.set_bank_details(kit.db, chain.tenant, chain.branches["A"], "上海A店", "工商银行", "6222021234567890")
    scope = await scopes.chain_scope(kit.db, chain.tenant)
    transfers_before = len(kit.standin.connect.transfers)

    first = await services.run(kit.db, kit.settings, scope, PERIOD)
    rows = by_code(first.payouts)
    assert first.created == 3 and set(rows) == {"A", "B", "C"}
    a, b, c = rows["A"], rows["B"], rows["C"]
    assert (a.direction, a.amount_minor, a.method, a.status) == ("collection", 50_000, "bank", "pending")
    assert (b.direction, b.amount_minor, b.method, b.status) == ("payout", 20_000, "stripe", "pending")
    assert (c.direction, c.amount_minor, c.method, c.status) == ("payout", 10_000, "stripe", "pending")
    made = [kit.standin.connect.transfers[p.stripe_transfer_id or ""] for p in (b, c)]
    assert [(t["destination"], t["amount"], t["currency"]) for t in made] == [
        (acct_b, 20_000, "cny"),
        (acct_c, 10_000, "cny"),
    ]
    assert made[0]["transfer_group"] == f"{PERIOD}:{chain.tenant}"
    assert made[0]["metadata"] == {
        "tenant_id": str(chain.tenant),
        "payout_id": str(b.id),
        "attempt": "1",
        "period": PERIOD,
    }
    assert f"lianka-payout-{b.id}-1" in kit.standin._idempotent

    # Stripe says the transfers happened: paid; the same event again changes nothing
    created_events = [e for e in kit.standin.events if e["type"] == "transfer.created"][-2:]
    assert [await deliver(kit, e) for e in created_events] == ["processed", "processed"]
    payload, signature = kit.standin.signed(created_events[0])
    assert (await billing.receive_stripe_webhook(kit.db, kit.settings, payload, signature)).duplicate
    rows = by_code(await services.list_payouts(kit.db, chain.tenant, PERIOD))
    assert (rows["A"].status, rows["B"].status, rows["C"].status) == ("pending", "paid", "paid")

    # a second run makes and sends nothing
    again = await services.run(kit.db, kit.settings, scope, PERIOD)
    assert again.created == 0 and len(kit.standin.connect.transfers) == transfers_before + 2

    # the bank file: A's collection, UTF-8 with BOM, yuan as text and fen, masked account, reference
    body = await bankfile.bank_file(
        kit.db, chain.tenant, PERIOD, scope.hub_name, merchant=chain.tenant, actor=audit.operator("test")
    )
    assert body.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert lines[0] == bankfile.COLUMNS
    assert lines[1:] == [
        [str(a.id), PERIOD, "collect", "A A", scope.hub_name, "A", "上海A店", "工商银行", "************7890",
         "500.00", "50000", "CNY", "1"]
    ]  # fmt: skip

    # the operator marks the collection received; again is a no-op; a Stripe payout is not theirs to mark
    assert (await services.mark(kit.db, chain.tenant, a.id, "paid")).status == "paid"
    assert (await services.mark(kit.db, chain.tenant, a.id, "paid")).status == "paid"
    with pytest.raises(PayoutNotBank):
        await services.mark(kit.db, chain.tenant, b.id, "returned")
    body = await bankfile.bank_file(
        kit.db, chain.tenant, PERIOD, scope.hub_name, merchant=chain.tenant, actor=audit.operator("test")
    )
    assert len(list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))) == 1  # nothing left to do


async def test_a_failed_payout_is_retried_and_pays_once(kit: Kit, chain_of) -> None:
    chain = await chain_of()
    acct_b = await onboard(kit, chain, "B")
    scope = await scopes.chain_scope(kit.db, chain.tenant)
    # an older account.updated (before onboarding finished) arriving late changes nothing
    done = [e for e in of_type(kit.standin.events, "account.updated") if e["data"]["object"]["id"] == acct_b][-1]
    stale = {**done, "id": "evt_" + uuid.uuid4().hex, "created": done["created"] - 60}
    stale["data"] = {"object": {**done["data"]["object"], "payouts_enabled": False, "details_submitted": False}}
    assert await deliver(kit, stale) == "ignored"
    assert next(p for p in await connect.payees(kit.db, chain.tenant) if p.code == "B").connection == "connected"
    kit.standin.fail_next_transfer(acct_b)

    rows = by_code((await services.run(kit.db, kit.settings, scope, PERIOD)).payouts)
    b = rows["B"]
    assert (b.status, b.attempt, b.stripe_transfer_id) == ("failed", 1, None)
    assert b.reason is not None and "Insufficient funds" in b.reason
    assert rows["C"].method == "bank"  # C never onboarded

    with pytest.raises(PayoutNotRetryable):  # a pending payout is never retried
        await services.retry(kit.db, kit.settings, scope, rows["C"].id, actor=audit.operator("test"))
    retried = await services.retry(kit.db, kit.settings, scope, b.id, actor=audit.operator("test"))
    assert (retried.status, retried.attempt, retried.method) == ("pending", 2, "stripe")
    with pytest.raises(PayoutNotRetryable):  # a double retry is refused: attempt 2 is under way
        await services.retry(kit.db, kit.settings, scope, b.id, actor=audit.operator("test"))
    to_b = [t for t in kit.standin.connect.transfers.values() if t["destination"] == acct_b]
    assert [(t["amount"], t["metadata"]["attempt"]) for t in to_b] == [(20_000, "2")]

    created = of_type(kit.standin.events, "transfer.created")[-1]
    reversed_events = kit.standin.reverse_transfer(to_b[0]["id"])
    # out of order: the reversal arrives first, then the creation — still returned
    assert await deliver(kit, reversed_events[0]) == "processed"
    assert await deliver(kit, created) == "ignored"
    assert (await services.get(kit.db, chain.tenant, b.id)).status == "returned"

    third = await services.retry(kit.db, kit.settings, scope, b.id, actor=audit.operator("test"))
    assert third.attempt == 3
    assert await deliver(kit, of_type(kit.standin.events, "transfer.created")[-1]) == "processed"
    assert (await services.get(kit.db, chain.tenant, b.id)).status == "paid"
    with pytest.raises(PayoutNotRetryable):
        await services.retry(kit.db, kit.settings, scope, b.id, actor=audit.operator("test"))
    live = [t for t in kit.standin.connect.transfers.values() if t["destination"] == acct_b and not t["reversed"]]
    assert [t["amount"] for t in live] == [20_000]  # paid exactly once

    # the branch's own bank payout failing is shown on the payee; the payout stays paid
    assert await deliver(kit, kit.standin.fail_bank_payout(acct_b)[0]) == "processed"
    payee = next(p for p in await connect.payees(kit.db, chain.tenant) if p.code == "B")
    assert payee.problem is not None and "closed" in payee.problem
    assert (await services.get(kit.db, chain.tenant, b.id)).status == "paid"


async def test_two_merchants_never_touch_each_others_payouts(kit: Kit, chain_of) -> None:
    one, two = await chain_of(), await chain_of()
    await onboard(kit, one, "B")
    await services.run(kit.db, kit.settings, await scopes.chain_scope(kit.db, one.tenant), PERIOD)
    await services.run(kit.db, kit.settings, await scopes.chain_scope(kit.db, two.tenant), PERIOD)
    b_one = by_code(await services.list_payouts(kit.db, one.tenant, PERIOD))["B"]
    b_two = by_code(await services.list_payouts(kit.db, two.tenant, PERIOD))["B"]

    # one's transfer event, rewritten to name merchant two (and two's payout): found nowhere, ignored
    event = of_type(kit.standin.events, "transfer.created")[-1]
    forged = {**event, "id": "evt_" + uuid.uuid4().hex, "data": {"object": {**event["data"]["object"]}}}
    forged["data"]["object"]["metadata"] = {**event["data"]["object"]["metadata"], "tenant_id": str(two.tenant)}
    assert await deliver(kit, forged) == "ignored"
    forged2 = {**forged, "id": "evt_" + uuid.uuid4().hex}
    forged2["data"] = {
        "object": {
            **forged["data"]["object"],
            "metadata": {**forged["data"]["object"]["metadata"], "payout_id": str(b_two.id)},
        }
    }
    assert await deliver(kit, forged2) == "ignored"  # two's B attempt is a bank line: not this transfer's
    assert (await services.get(kit.db, two.tenant, b_two.id)).status == "pending"
    assert (await services.get(kit.db, one.tenant, b_one.id)).status == "pending"
    with pytest.raises(NotFound):
        await services.get(kit.db, two.tenant, b_one.id)
    with pytest.raises(NotFound):
        await services.mark(kit.db, two.tenant, b_one.id, "paid")
    assert len(await services.list_payouts(kit.db, two.tenant, PERIOD)) == 3


async def test_the_api_lists_runs_and_serves_the_bank_file(kit: Kit, chain_of, client, staff_token) -> None:
    chain = await chain_of()
    url = f"/api/v1/settlement/periods/{PERIOD}/payouts"
    r = await client.post(f"{url}/run?wait=true", headers=chain.owner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["sent"]) == (3, 3)
    assert sorted((p["code"], p["direction"], p["method"]) for p in body["payouts"]) == [
        ("A", "collection", "bank"),
        ("B", "payout", "bank"),
        ("C", "payout", "bank"),
    ]
    f = await client.get(f"{url}/bank-file", headers=chain.owner)
    assert f.status_code == 200 and f.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(f.content.decode("utf-8-sig"))))
    assert [(r[2], r[10]) for r in rows[1:]] == [("collect", "50000"), ("pay", "20000"), ("pay", "10000")]
    b = next(p for p in body["payouts"] if p["code"] == "B")
    r = await client.post(
        f"/api/v1/settlement/payouts/{b['id']}/mark", json={"status": "returned"}, headers=chain.owner
    )
    assert r.status_code == 200 and r.json()["status"] == "returned"
    r = await client.post(f"/api/v1/settlement/payouts/{b['id']}/retry", headers=chain.owner)
    assert r.status_code == 200 and (r.json()["attempt"], r.json()["status"]) == (2, "pending")
    r = await client.post(f"/api/v1/settlement/payouts/{b['id']}/retry", headers=chain.owner)
    assert r.status_code == 409 and r.json()["type"].endswith("payout-not-retryable")
    other = await staff_token((await chain_of()).tenant)
    r = await client.post(f"/api/v1/settlement/payouts/{b['id']}/mark", json={"status": "paid"}, headers=other.headers)
    assert r.status_code == 404
    r = await client.get(url, headers=(await staff_token(chain.tenant, "cashier")).headers)
    assert r.status_code == 403

    # payees: bank details shown back masked; another merchant's branch is unknown; no Stripe here
    payee = f"/api/v1/settlement/payees/{chain.branches['B']}"
    bank = {"account_name": "徐汇店", "bank_name": "招商银行", "account_number": "6214 8301 2345 6789"}
    r = await client.put(f"{payee}/bank", json=bank, headers=chain.owner)
    assert r.status_code == 200 and r.json()["bank_account_masked"] == "************6789", r.text
    r = await client.put(f"{payee}/bank", json=bank, headers=other.headers)
    assert r.status_code == 404
    r = await client.put(f"{payee}/bank", json={**bank, "account_number": "12ab"}, headers=chain.owner)
    assert r.status_code == 400
    listed = (await client.get("/api/v1/settlement/payees", headers=chain.owner)).json()
    assert [(p["code"], p["connection"], p["bank_account_masked"]) for p in listed] == [
        ("A", "none", ""),
        ("B", "none", "************6789"),
        ("C", "none", ""),
    ]
    links = {"return_url": "http://x/back", "refresh_url": "http://x/back"}
    r = await client.post(f"{payee}/onboarding-link", json=links, headers=chain.owner)
    assert r.status_code == 409 and r.json()["type"].endswith("billing-not-configured")


async def test_payout_routes_refuse_who_may_not(kit: Kit, chain_of, client, security_matrix) -> None:
    chain, other = await chain_of(), await chain_of()
    url = f"/api/v1/settlement/periods/{PERIOD}/payouts"
    assert (await client.post(f"{url}/run?wait=true", headers=chain.owner)).status_code == 200
    b = by_code(await services.list_payouts(kit.db, chain.tenant, PERIOD))["B"]

    async def snapshot() -> list[tuple[str, str, int]]:
        return [(p.code, p.status, p.attempt) for p in await services.list_payouts(kit.db, chain.tenant, PERIOD)]

    for action, body in (("mark", {"status": "paid"}), ("retry", None)):
        await security_matrix.check(
            "POST",
            f"/api/v1/settlement/payouts/{b.id}/{action}",
            json=body,
            tenant=chain.tenant,
            other=other.tenant,
            snapshot=snapshot,
            denied_roles=["cashier", "analyst"],
            denied_scopes=[["pos"]],
            missing_url=f"/api/v1/settlement/payouts/{uuid.uuid4()}/{action}",
        )
    await security_matrix.check(
        "POST",
        f"{url}/run",
        tenant=chain.tenant,
        other=other.tenant,
        snapshot=snapshot,
        denied_roles=["cashier", "analyst"],
        denied_scopes=[["pos"]],
        other_tenant_status=None,
    )
    for read in (url, f"{url}/bank-file", "/api/v1/settlement/payees"):
        await security_matrix.check(
            "GET", read, tenant=chain.tenant, other=other.tenant, denied_roles=["cashier"], other_tenant_status=None
        )


async def test_the_command_line_runs_lists_and_marks(kit: Kit, chain_of, tmp_path) -> None:
    import asyncio

    from sqlalchemy import text
    from typer.testing import CliRunner

    from lianka.cli import app as cli_app

    chain = await chain_of()
    async with kit.db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :m"), {"m": chain.tenant})
    runner = CliRunner()

    async def cli(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, cli_app, list(args), env={"COLUMNS": "250"})

    out = tmp_path / "bank.csv"
    ran = await cli("payouts", "run", "--scope", f"chain:{slug}", "--period", PERIOD, "--bank-file", str(out))
    assert ran.exit_code == 0, ran.output
    assert "3 new" in ran.output and "¥500.00" in ran.output
    assert out.read_bytes().startswith("\ufeff".encode()) and len(out.read_text("utf-8-sig").splitlines()) == 4
    a = by_code(await services.list_payouts(kit.db, chain.tenant, PERIOD))["A"]
    marked = await cli("payouts", "mark", "--scope", f"chain:{slug}", str(a.id), "paid", "--note", "received")
    assert marked.exit_code == 0, marked.output
    assert (await services.get(kit.db, chain.tenant, a.id)).status == "paid"
    refused = await cli("payouts", "retry", "--scope", f"chain:{slug}", str(a.id))
    assert refused.exit_code == 1 and "failed or returned" in refused.output
    listed = await cli("payouts", "list", "--scope", f"chain:{slug}", "--period", PERIOD)
    assert listed.exit_code == 0 and listed.output.count("pending") == 2 and "paid" in listed.output


async def test_two_retries_at_once_make_one_attempt(kit: Kit, chain_of) -> None:
    import asyncio

    chain = await chain_of()
    acct_b = await onboard(kit, chain, "B")
    scope = await scopes.chain_scope(kit.db, chain.tenant)
    kit.standin.fail_next_transfer(acct_b)
    b = by_code((await services.run(kit.db, kit.settings, scope, PERIOD)).payouts)["B"]
    assert b.status == "failed"

    both = await asyncio.gather(
        services.retry(kit.db, kit.settings, scope, b.id, actor=audit.operator("one")),
        services.retry(kit.db, kit.settings, scope, b.id, actor=audit.operator("two")),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in both) == ["PayoutNotRetryable", "PayoutRow"]
    to_b = [t for t in kit.standin.connect.transfers.values() if t["destination"] == acct_b]
    assert [(t["amount"], t["metadata"]["attempt"]) for t in to_b] == [(20_000, "2")]
    assert (await services.get(kit.db, chain.tenant, b.id)).attempt == 2
    async with kit.db.uow(chain.tenant) as uow:  # the refused retry left no audit row (decision 0051)
        audited = (
            await uow.session.execute(text("SELECT object_id, details FROM audit_log WHERE action = 'payout.retried'"))
        ).all()
    assert [(r.object_id, r.details["attempt"]) for r in audited] == [(str(b.id), 2)]
