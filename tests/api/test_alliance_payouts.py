"""An alliance's payouts through the API (issue 15 §3, decision 0035 "Alliance books"), with the real
``stripe`` SDK against the local stand-in: P issues 10,000 points (owes the operator ¥100.00), Q
accepts 6,000 (owed ¥48.00) and R 4,000 (owed ¥32.00). The operator onboards Q and R to Stripe
Connect and gives P's bank account; paying the closed October transfers to Q and R and lists P's
collection in the bank file. R's first transfer fails and is retried once; Stripe's events settle
them. A partner can neither pay nor see another partner's line."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import uvicorn

from lianka.billing import services as billing
from lianka.billing.stripe_standin import StripeStandin
from lianka.platform.db import Database
from lianka.platform.settings import Settings
from lianka.web.app import create_app
from tests.api.settlement_kit import World, make_world

pytestmark = pytest.mark.integration
SECRET_KEY = "sk_test_apayouts_" + uuid.uuid4().hex
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


@pytest.fixture(scope="module")
async def api(kit: Kit) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the installation's Stripe being the stand-in, served by uvicorn in the tests' loop
    (the stand-in answers from that loop too)."""
    app = create_app(kit.settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done()
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        yield http
    server.should_exit = True
    await task


async def deliver(kit: Kit, event: dict[str, Any]) -> str:
    """A signed delivery through the billing inbox, then its processing (as the job does)."""
    payload, signature = kit.standin.signed(event)
    received = await billing.receive_stripe_webhook(kit.db, kit.settings, payload, signature)
    async with kit.db.uow(system=True) as uow:
        status = await billing.process_event_recording_failure(uow, received.row_id)
        await uow.commit()
    return status


def last(kit: Kit, type_: str) -> dict[str, Any]:
    return [e for e in kit.standin.events if e["type"] == type_][-1]


@pytest.fixture
async def october(api, client, db, tenant_factory, auth_kit, staff_token, member_factory) -> World:
    world = await make_world(client, db, tenant_factory, auth_kit, staff_token)
    world.client = api  # the same calls, to the app that talks to the Stripe stand-in
    x = await member_factory(world.partners["P"].tenant)
    await world.earn("P", "P1", x, 1_000_000)
    await world.redeem("Q", "Q1", x, 6_000)
    await world.redeem("R", "R1", x, 4_000)
    await world.close(PERIOD)
    return world


def by_partner(world: World, payouts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    letter = {str(p.tenant): name for name, p in world.partners.items()}
    return {letter[p["entity_id"]]: p for p in payouts}


async def onboard(kit: Kit, world: World, letter: str) -> str:
    base = f"/api/v1/alliances/{world.alliance}/settlement"
    link = await world.call(
        "POST",
        f"{base}/payees/{world.partners[letter].tenant}/onboarding-link",
        world.partners["O"].owner,
        {"return_url": "http://x/back", "refresh_url": "http://x/back"},
    )
    acct: str = link["url"].rsplit("/", 1)[1]
    assert acct.startswith("acct_")
    updated = next(e for e in kit.standin.complete_onboarding(acct) if e["type"] == "account.updated")
    assert await deliver(kit, updated) == "processed"
    return acct


async def test_the_operator_pays_its_partners_and_retries_without_paying_twice(kit: Kit, october: World) -> None:
    w = october
    o, p, q = w.partners["O"].owner, w.partners["P"].owner, w.partners["Q"].owner
    base = f"/api/v1/alliances/{w.alliance}/settlement"
    url = f"{base}/periods/{PERIOD}/payouts"

    payees = await w.call("GET", f"{base}/payees", o)
    assert sorted(x["name"] for x in payees) == ["Partner P", "Partner Q", "Partner R"]  # the operator is no payee
    acct_q, acct_r = await onboard(kit, w, "Q"), await onboard(kit, w, "R")
    bank = {"account_name": "P 公司", "bank_name": "工商银行", "account_number": "6222 0212 3456 7890"}
    mine = await w.call("PUT", f"{base}/payees/{w.partners['P'].tenant}/bank", o, bank)
    assert mine["bank_account_masked"] == "************7890"
    connections = {x["name"]: x["connection"] for x in await w.call("GET", f"{base}/payees", o)}
    assert connections == {"Partner P": "none", "Partner Q": "connected", "Partner R": "connected"}

    # a partner can neither run, onboard, give bank details nor see the others
    await w.call("POST", f"{url}/run?wait=true", q, expect=403)
    await w.call(
        "POST",
        f"{base}/payees/{w.partners['R'].tenant}/onboarding-link",
        q,
        {"return_url": "http://x/b", "refresh_url": "http://x/b"},
        expect=403,
    )
    await w.call("PUT", f"{base}/payees/{w.partners['Q'].tenant}/bank", q, bank, expect=403)
    assert (await w.call("GET", url, o))["payouts"] == []

    kit.standin.fail_next_transfer(acct_r)
    ran = await w.call("POST", f"{url}/run?wait=true", o)
    rows = by_partner(w, ran["payouts"])
    assert (ran["total"], ran["sent"]) == (3, 3)
    assert {k: (v["direction"], v["amount_minor"], v["method"], v["status"]) for k, v in rows.items()} == {
        "P": ("collection", 10_000, "bank", "pending"),
        "Q": ("payout", 4_800, "stripe", "pending"),
        "R": ("payout", 3_200, "stripe", "failed"),
    }
    assert all(v["entity_kind"] == "partner" for v in rows.values())
    transfer_q = kit.standin.connect.transfers[rows["Q"]["stripe_transfer_id"]]
    assert (transfer_q["destination"], transfer_q["amount"]) == (acct_q, 4_800)
    assert transfer_q["metadata"]["tenant_id"] == w.alliance  # the alliance's book
    assert transfer_q["transfer_group"] == f"{PERIOD}:{w.alliance}"

    # Stripe says Q's transfer is made: paid
    assert await deliver(kit, last(kit, "transfer.created")) == "processed"
    assert (await w.call("GET", f"{base}/payouts/{rows['Q']['id']}", o))["status"] == "paid"

    # R's failed transfer is tried again, once; a second retry while it is under way is refused
    r_id = rows["R"]["id"]
    await w.call("POST", f"{base}/payouts/{r_id}/retry", q, expect=403)
    retried = await w.call("POST", f"{base}/payouts/{r_id}/retry", o)
    assert (retried["attempt"], retried["status"], retried["method"]) == (2, "pending", "stripe")
    refused = await w.call("POST", f"{base}/payouts/{r_id}/retry", o, expect=409)
    assert refused["type"].endswith("payout-not-retryable")
    assert await deliver(kit, last(kit, "transfer.created")) == "processed"
    to_r = [t for t in kit.standin.connect.transfers.values() if t["destination"] == acct_r]
    assert [(t["amount"], t["metadata"]["attempt"]) for t in to_r] == [(3_200, "2")]

    # running again pays nothing new
    transfers = len(kit.standin.connect.transfers)
    again = by_partner(w, (await w.call("POST", f"{url}/run?wait=true", o))["payouts"])
    assert len(kit.standin.connect.transfers) == transfers
    assert {k: (v["status"], v["attempt"]) for k, v in again.items()} == {
        "P": ("pending", 1),
        "Q": ("paid", 1),
        "R": ("paid", 2),
    }

    # the bank file has P's collection; the operator marks it received (a partner may not)
    f = await w.client.get(f"{url}/bank-file", headers=o)
    assert f.status_code == 200 and f.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(f.content.decode("utf-8-sig"))))[1:]
    assert [(r[2], r[10]) for r in lines] == [("collect", "10000")]
    assert (await w.client.get(f"{url}/bank-file", headers=p)).status_code == 403
    p_id = rows["P"]["id"]
    await w.call("POST", f"{base}/payouts/{p_id}/mark", p, {"status": "paid"}, expect=403)
    marked = await w.call("POST", f"{base}/payouts/{p_id}/mark", o, {"status": "paid"})
    assert marked["status"] == "paid"

    # a partner sees its own line and payee row, never another partner's
    seen = await w.call("GET", url, q)
    assert [(x["entity_id"], x["status"]) for x in seen["payouts"]] == [(str(w.partners["Q"].tenant), "paid")]
    assert (seen["total"], seen["sent"]) == (1, 1)
    await w.call("GET", f"{base}/payouts/{r_id}", q, expect=404)
    assert [x["name"] for x in await w.call("GET", f"{base}/payees", q)] == ["Partner Q"]
    theirs = await w.call("GET", url, p)
    assert [x["direction"] for x in theirs["payouts"]] == ["collection"]


async def test_strangers_and_open_months(
    kit: Kit, october: World, client, db, tenant_factory, auth_kit, staff_token
) -> None:
    w = october
    o = w.partners["O"].owner
    base = f"/api/v1/alliances/{w.alliance}/settlement"
    stranger = (await staff_token(await tenant_factory("Outsider"), "owner")).headers
    await w.call("GET", f"{base}/periods/{PERIOD}/payouts", stranger, expect=404)
    await w.call("POST", f"{base}/periods/{PERIOD}/payouts/run?wait=true", stranger, expect=404)
    await w.call("GET", f"{base}/payees", stranger, expect=404)
    cashier = (await staff_token(w.partners["O"].tenant, "cashier")).headers
    await w.call("GET", f"{base}/periods/{PERIOD}/payouts", cashier, expect=403)
    # a month that is not closed cannot be paid
    await w.call("POST", f"{base}/periods/2026-11/payouts/run?wait=true", o, expect=404)
    # another book's payout is not the alliance's (RLS)
    ran = await w.call("POST", f"{base}/periods/{PERIOD}/payouts/run", o, expect=202)
    assert ran["total"] == 3
    other = await make_world(client, db, tenant_factory, auth_kit, staff_token)
    one = ran["payouts"][0]["id"]
    await w.call(
        "POST",
        f"/api/v1/alliances/{other.alliance}/settlement/payouts/{one}/mark",
        other.partners["O"].owner,
        {"status": "paid"},
        expect=404,
    )
