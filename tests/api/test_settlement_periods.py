"""Which months may be closed (issue 11): not the current month, a future one or one before the book
(422, nothing written) — through the chain and alliance endpoints, queued or not, and the command
line; months close in order, and a book's first close folds the months before it, so an entry dated
in them later is a late item of the next open month instead of lost in a month nobody closes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.settlement.domain import next_period, period_of
from lianka.platform.db import Database
from lianka.tenants.domain.programme import BonusFunder
from tests.api.settlement_kit import Chain, World, make_chain, make_world

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"


def this_month(tz: str = "Asia/Shanghai") -> str:
    return period_of(datetime.now(UTC), tz)


def refused_months() -> list[tuple[str, str]]:
    return [
        (this_month(), "period-not-ended"),
        (next_period(this_month()), "period-not-ended"),
        ("2099-01", "period-not-ended"),
        ("1999-01", "period-before-book"),
        ("2026-09", "period-before-book"),
    ]  # the books below start in October 2026


@pytest.fixture
async def chain(client, db: Database, tenant_factory, auth_kit, staff_token, member_factory) -> Chain:
    c = await make_chain(client, db, tenant_factory, auth_kit, staff_token, BonusFunder.HQ)
    await c.top_up(await member_factory(c.tenant), "500", "A")  # October: the book's first month
    return c


async def written(db: Database, book: uuid.UUID) -> dict[str, int]:
    """What a close writes in a book: runs, statements, period states, queued closes, fee entries."""
    async with db.uow(book) as uow:
        return {
            table: int(await uow.session.scalar(text(f"SELECT count(*) FROM {table} WHERE {where}")))
            for table, where in (
                ("settlement_runs", "true"),
                ("settlement_statements", "true"),
                ("ledger_periods", "true"),
                ("outbox", "actor = 'close_period'"),
                ("ledger_entries", "kind = 'alliance_monthly_fee'"),
            )
        }


async def alliance_close(w: World, period: str) -> Any:
    return await w.client.post(
        f"/api/v1/alliances/{w.alliance}/settlement/periods/{period}/close", headers=w.partners["O"].owner
    )


def assert_problem(r: Any, slug: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM and r.json()["type"].endswith(f"/{slug}"), r.text


@pytest.mark.parametrize("wait", ["true", "false"])
async def test_chain_close_refuses_months_not_ended_and_before_the_book(chain: Chain, db: Database, wait: str) -> None:
    before = await written(db, chain.tenant)
    for period, slug in refused_months():
        r = await chain.client.post(f"/api/v1/settlement/periods/{period}/close?wait={wait}", headers=chain.owner)
        assert_problem(r, slug)
        assert period in r.json()["detail"]
    assert await written(db, chain.tenant) == before  # nothing closed, nothing queued, no period touched
    done = await chain.close("2026-10")  # an ended month of the book closes as before
    assert {s["code"]: s["net"] for s in done["statements"] if s["entity_kind"] == "branch"}["A"] == -50_000


@pytest.fixture
async def world(client, db: Database, tenant_factory, auth_kit, staff_token, member_factory) -> World:
    w = await make_world(client, db, tenant_factory, auth_kit, staff_token)
    await w.found({"code": f"fees-{uuid.uuid4().hex[:8]}", "name": "收费联盟", "terms": {"fee_monthly": 5_000}})
    await w.earn("P", "P1", await member_factory(w.partners["P"].tenant), 10_000)
    return w


async def test_alliance_close_refuses_months_not_ended_and_before_the_book(world: World, db: Database) -> None:
    book = uuid.UUID(world.alliance)
    before = await written(db, book)
    for period, slug in refused_months():
        assert_problem(await alliance_close(world, period), slug)
    assert await written(db, book) == before  # no monthly fee booked either
    out = await world.close("2026-10")
    assert {s["name"]: s["net"] for s in out["statements"] if s["entity_kind"] == "partner"}["Partner P"] == -5_100


async def test_alliance_months_are_those_of_its_time_zone(
    client, db: Database, tenant_factory, auth_kit, staff_token, member_factory
) -> None:
    """An alliance in Pago Pago (UTC−11) closes a month only once it is over there."""
    w = await make_world(client, db, tenant_factory, auth_kit, staff_token)
    await w.found({"code": f"pago-{uuid.uuid4().hex[:8]}", "name": "太平洋联盟", "timezone": "Pacific/Pago_Pago"})
    here = this_month("Pacific/Pago_Pago")
    assert_problem(r := await alliance_close(w, here), "period-not-ended")
    assert "(Pacific/Pago_Pago)" in r.json()["detail"]


async def test_months_close_in_order_and_a_first_close_folds_earlier_ones(
    chain: Chain, db: Database, member_factory
) -> None:
    x = await member_factory(chain.tenant)
    await chain.top_up(x, "500", "B", at="2026-08-10T12:00:00+08:00")  # the book now starts in August
    first = await chain.close("2026-10")  # its first close: August and September fold into the opening
    nets = {s["code"]: s for s in first["statements"]}
    assert (nets["B"]["opening"], nets["A"]["net"]) == (-50_000, -50_000)
    for period in ("2026-08", "2026-09"):  # October is closed: earlier months may not be closed after it
        r = await chain.client.post(f"/api/v1/settlement/periods/{period}/close?wait=true", headers=chain.owner)
        assert_problem(r, "period-out-of-order")
        assert "2026-10 is already closed" in r.json()["detail"]
        folded = (await chain.client.get(f"/api/v1/settlement/periods/{period}", headers=chain.owner)).json()
        assert (folded["status"], folded["statements"]) == ("closed", [])  # closed with October, not "open"
    # an offline till sends an August top-up now: it is a late item of November, not lost in August
    await chain.top_up(x, "500", "C", at="2026-08-20T09:30:00+08:00")
    nov = {s["code"]: s for s in (await chain.close("2026-11"))["statements"]}
    assert nov["C"]["net"] == nov["C"]["late"] == -50_000
    assert [i["belongs_to"] for i in nov["C"]["late_items"]] == ["2026-08"]


async def test_a_month_may_not_be_skipped(
    client, db: Database, tenant_factory, auth_kit, staff_token, member_factory
) -> None:
    c = await make_chain(client, db, tenant_factory, auth_kit, staff_token, BonusFunder.HQ)
    await c.top_up(await member_factory(c.tenant), "500", "A", at="2026-08-10T12:00:00+08:00")
    await c.close("2026-08")
    r = await c.client.post("/api/v1/settlement/periods/2026-10/close?wait=true", headers=c.owner)
    assert_problem(r, "period-out-of-order")
    assert "close 2026-09 first" in r.json()["detail"]
    await c.close("2026-09")
    await c.close("2026-10")
    again = await c.close("2026-08")  # a closed month closes again to the same statements, in any order
    assert again["status"] == "closed"


async def test_the_command_line_refuses_with_the_reason(chain: Chain, db: Database, project_root) -> None:
    async with db.uow(system=True) as uow:
        slug = await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :m"), {"m": chain.tenant})
    before = await written(db, chain.tenant)
    for period, reason in ((this_month(), "has not ended"), ("1999-01", "before the book")):
        argv = [
            sys.executable,
            "-m",
            "lianka.cli",
            "settlement",
            "close",
            "--scope",
            f"chain:{slug}",
            "--period",
            period,
        ]
        proc = await asyncio.to_thread(
            subprocess.run,
            argv,
            cwd=project_root,
            capture_output=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert proc.returncode == 1, proc.stdout.decode()[-2000:] + proc.stderr.decode()[-2000:]
        err = proc.stderr.decode()
        assert reason in err and period in err and "Traceback" not in err, err
    assert await written(db, chain.tenant) == before
