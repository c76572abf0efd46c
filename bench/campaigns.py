"""Campaign sends at volume (issue 16): a merchant with N members (default 200,000), all of them
consenting, a segment of everyone, and a campaign with a 10 % holdout.

Starting the campaign (``campaigns.send``: freeze the audience, check the plan, write one
``campaign_messages`` row per recipient and one outbox row per due message) is timed through the
application's RLS-bound role, and compared with a raw ``INSERT … SELECT`` of the same number of
outbox rows from the snapshot (the floor for "one queued message per recipient") in the same run.
Peak Python memory (``tracemalloc``) of the send is measured for 20,000 members and for N: flat,
because member ids never pass through Python.

``python -m bench campaigns --members 50000`` (or ``BENCH_CAMPAIGN_MEMBERS``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import tracemalloc
import uuid

import asyncpg
from rich.table import Table
from sqlalchemy import text

from bench.common import bench_database, console
from lianka.billing import services as billing
from lianka.platform.db import Database, asyncpg_params
from lianka.tenants.marketing import campaigns
from lianka.tenants.marketing import services as segments

SMALL = 20_000
EVERYONE = {"version": 1, "root": {"kind": "group", "op": "and", "conditions": []}}


def members_wanted() -> int:
    args = sys.argv
    if "--members" in args:
        return int(args[args.index("--members") + 1])
    return int(os.environ.get("BENCH_CAMPAIGN_MEMBERS", "200000"))


_MEMBERS = """
WITH m AS (
    INSERT INTO members (id, phone, card_number, qr_secret)
    SELECT gen_random_uuid(), '+86' || $2 || lpad(i::text, 8, '0'), ($3::bigint + i)::text, '\\x00'::bytea
    FROM generate_series(1, $1) i RETURNING id
)
INSERT INTO memberships (tenant_id, member_id) SELECT $4, id FROM m
"""
_PROFILES = """
INSERT INTO member_profiles (tenant_id, member_id, name, consent)
SELECT $1, member_id, 'm', '{"sms": {"granted": true}, "portal": {"granted": true}}'::jsonb
FROM memberships WHERE tenant_id = $1
"""
_PLAN = """
INSERT INTO billing_plans (code, name, price_minor, currency, max_branches, max_members, max_staff_seats,
                           messages_per_month, alliance_membership, sort)
VALUES ('bench-unlimited', 'Bench', 0, 'CNY', NULL, NULL, NULL, NULL, true, 99) ON CONFLICT DO NOTHING
"""
_BASELINE = """
INSERT INTO outbox (tenant_id, queue, actor, payload)
SELECT tenant_id, 'bench', 'bench_baseline',
       jsonb_build_object('campaign_id', CAST($2 AS text), 'member_id', CAST(member_id AS text))
FROM audience_snapshot_members WHERE snapshot_id = $1 AND NOT holdout
"""


async def merchant(url: str, db: Database, n: int, prefix: str, cards: int) -> tuple[uuid.UUID, uuid.UUID]:
    """A merchant with ``n`` consenting members on an unlimited plan, a segment and a campaign."""
    tenant = uuid.uuid4()
    conn = await asyncpg.connect(**asyncpg_params(url))
    try:
        await conn.execute("INSERT INTO merchants (id, slug, name) VALUES ($1, $2, 'Bench 活动')", tenant,
                           f"bench-camp-{prefix}")  # fmt: skip
        await conn.execute(_MEMBERS, n, prefix, cards, tenant)
        await conn.execute(_PROFILES, tenant)
        await conn.execute(_PLAN)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    async with db.uow(tenant) as uow:
        await billing.ensure_account(uow, tenant)
        await uow.session.execute(text("UPDATE billing_accounts SET plan = 'bench-unlimited', status = 'active'"))
        await uow.commit()
    seg = await segments.create_segment(db, tenant, "everyone", EVERYONE)
    spec = campaigns.CampaignIn(name="bench", segment_id=seg.id, channel="portal", template_a="{name}", holdout_pct=10)
    return tenant, (await campaigns.create_campaign(db, tenant, spec)).id


async def timed_send(db: Database, tenant: uuid.UUID, campaign: uuid.UUID) -> tuple[float, int, int]:
    """(seconds, recipients, peak traced Python bytes) of one campaign start."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    t = time.perf_counter()
    c = await campaigns.send(db, tenant, campaign)
    seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, c.recipients, peak


async def baseline(url: str, db: Database, tenant: uuid.UUID, campaign: uuid.UUID) -> tuple[float, int]:
    c = await campaigns.get_campaign(db, tenant, campaign)
    conn = await asyncpg.connect(**asyncpg_params(url))
    try:
        t = time.perf_counter()
        status = await conn.execute(_BASELINE, c.snapshot_id, str(campaign))
        return time.perf_counter() - t, int(status.split()[-1])
    finally:
        await conn.close()


async def main_async(url: str, db: Database, n: int) -> None:
    t0 = time.perf_counter()
    small = await merchant(url, db, min(SMALL, n), "137", 300_000_000_000)
    big = await merchant(url, db, n, "138", 400_000_000_000)
    console.print(f"  data: {min(SMALL, n) + n:,} members in {time.perf_counter() - t0:.1f} s")
    await timed_send(db, *small)  # warm up (imports, plans, pools)
    small2 = await merchant(url, db, min(SMALL, n), "136", 500_000_000_000)
    s_sec, s_n, s_peak = await timed_send(db, *small2)
    b_sec, b_n, b_peak = await timed_send(db, *big)
    raw_sec, raw_n = await baseline(url, db, *big)
    table = Table(title=f"campaign start: {n:,} members, 10 % holdout, portal channel")
    for col in ("what", "members", "messages queued", "seconds", "messages / s", "peak Python memory"):
        table.add_column(col)
    table.add_row("campaigns.send", f"{min(SMALL, n):,}", f"{s_n:,}", f"{s_sec:.2f}", f"{s_n / s_sec:,.0f}",
                  f"{s_peak / 2**20:.1f} MiB")  # fmt: skip
    table.add_row("campaigns.send", f"{n:,}", f"{b_n:,}", f"{b_sec:.2f}", f"{b_n / b_sec:,.0f}",
                  f"{b_peak / 2**20:.1f} MiB")  # fmt: skip
    table.add_row("raw INSERT … SELECT into outbox", f"{n:,}", f"{raw_n:,}", f"{raw_sec:.2f}",
                  f"{raw_n / raw_sec:,.0f}", "—")  # fmt: skip
    console.print(table)
    console.print(
        f"  send vs raw baseline: {(b_n / b_sec) / (raw_n / raw_sec):.2f} of the raw rate (the send also freezes "
        f"the snapshot and writes the per-recipient rows); memory {n // min(SMALL, n)}× the members: "
        f"{b_peak / max(s_peak, 1):.2f}× the peak"
    )
    await db.dispose()


def run() -> None:
    n = members_wanted()
    with bench_database("lianka_bench_campaigns") as s:
        console.print(f"[bold]campaigns[/bold]: database {s.database_url.split('?')[0]}")
        asyncio.run(main_async(s.database_url, Database.from_settings(s), n))


if __name__ == "__main__":
    run()
