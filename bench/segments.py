"""Segment counts at volume (issue 16): a merchant with N members (default 1,000,000), their
profiles, RFM scores and two sales each, generated set-based (``generate_series``) as the owner.

The benchmark counts one segment of five conditions — tier, SMS consent, RFM recency, join
branch and spend in the last 90 days — twice in the same run, both through the application's
RLS-bound role in a tenant unit of work: the query ``tenants/marketing/queries.py`` compiles
from the rule document, and the same count written by hand in SQL. It prints both medians and
their ratio (target: compiled ≤ 1.5 × hand-written), and checks the two counts agree.

``python -m bench segments --members 200000`` (or ``BENCH_SEGMENT_MEMBERS``) for a smaller run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from rich.table import Table
from sqlalchemy import text

from bench.common import bench_database, console
from lianka.platform.db import Database, asyncpg_params
from lianka.tenants.marketing import domain
from lianka.tenants.marketing import queries as q
from lianka.tenants.marketing import services as svc

REPEATS = 5
NOW = datetime.now(UTC)


def members_wanted() -> int:
    args = sys.argv
    if "--members" in args:
        return int(args[args.index("--members") + 1])
    return int(os.environ.get("BENCH_SEGMENT_MEMBERS", "1000000"))


_GENERATE = [
    # members and their enrolment at one of four branches, joined over the last ~3 years
    """INSERT INTO members (id, phone, card_number, qr_secret)
       SELECT gen_random_uuid(), '+86139' || lpad(i::text, 8, '0'), (100000000000 + i)::text, '\\x00'::bytea
       FROM generate_series(1, $1) i""",  # $1 members
    """INSERT INTO memberships (tenant_id, member_id, branch_id, joined_at)
       SELECT $1, m.id, ($2::uuid[])[1 + (c % 4)], $3::timestamptz - ((c % 1000) || ' days')::interval
       FROM (SELECT id, card_number::bigint AS c FROM members) m""",
    """INSERT INTO member_profiles (tenant_id, member_id, tier_code, tags, birthday, last_purchase_at, consent)
       SELECT $1, m.id, (ARRAY['bronze', 'silver', 'gold', 'platinum'])[1 + (c % 4)],
              CASE WHEN c % 10 = 0 THEN ARRAY['vip'] ELSE '{}' END, date '1980-01-01' + (c % 9000)::int,
              $3::timestamptz - ((c % 400) || ' days')::interval,
              CASE WHEN c % 3 = 0 THEN '{}'::jsonb ELSE '{"sms": {"granted": true}}'::jsonb END
       FROM (SELECT id, card_number::bigint AS c FROM members) m WHERE $2::uuid[] IS NOT NULL""",
    # two sales each: one recent-ish, one older; amounts spread so the spend condition splits them
    """INSERT INTO sales (tenant_id, member_id, branch_id, business_time, currency, gross, due, qualifying_spend,
                          programme_version)
       SELECT $1, m.id, ($2::uuid[])[1 + ((c + k) % 4)],
              $3::timestamptz - (((c * 7 + k * 131) % 365) || ' days')::interval, 'CNY',
              1000 + (c * 37 + k) % 20000, 1000 + (c * 37 + k) % 20000, 1000 + (c * 37 + k) % 20000, 1
       FROM (SELECT id, card_number::bigint AS c FROM members) m CROSS JOIN generate_series(0, 1) k""",
]

RULES = {
    "version": 1,
    "root": {
        "kind": "group",
        "op": "and",
        "conditions": [
            {"kind": "tier", "tiers": ["gold", "platinum"]},
            {"kind": "consent", "channel": "sms"},
            {"kind": "rfm", "score": "recency", "min": 3},
            {"kind": "branch", "branches": []},  # filled with two branches
            {"kind": "spend", "days": 90, "min": 10000},
        ],
    },
}

HAND_WRITTEN = text(
    """
SELECT count(*)
FROM memberships ms
JOIN member_profiles p ON p.tenant_id = ms.tenant_id AND p.member_id = ms.member_id
JOIN member_rfm r ON r.tenant_id = ms.tenant_id AND r.member_id = ms.member_id
JOIN (SELECT member_id FROM sales
      WHERE business_time >= :since AND status <> 'refunded' AND member_id IS NOT NULL
      GROUP BY member_id HAVING sum(qualifying_spend) >= 10000) s ON s.member_id = ms.member_id
WHERE p.erased_at IS NULL AND p.tier_code IN ('gold', 'platinum') AND p.consent -> 'sms' ->> 'granted' = 'true'
  AND r.recency >= 3 AND ms.branch_id = ANY(:branches)
"""
)


async def generate(url: str, n: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    conn = await asyncpg.connect(**asyncpg_params(url))
    try:
        tenant = uuid.uuid4()
        await conn.execute("INSERT INTO merchants (id, slug, name) VALUES ($1, 'bench-seg', 'Bench 人群')", tenant)
        branches = [
            await conn.fetchval(
                "INSERT INTO branches (tenant_id, code, name) VALUES ($1, $2, $2) RETURNING id", tenant, f"B{i}"
            )
            for i in range(4)
        ]
        for i, sql in enumerate(_GENERATE):
            t = time.perf_counter()
            await conn.execute(sql, n) if i == 0 else await conn.execute(sql, tenant, branches, NOW)
            console.print(f"  generated step {i + 1}/{len(_GENERATE)} in {time.perf_counter() - t:.1f} s")
        await conn.execute("ANALYZE")
        return tenant, branches
    finally:
        await conn.close()


async def main_async(url: str, db: Database, n: int) -> None:
    t0 = time.perf_counter()
    tenant, branches = await generate(url, n)
    t = time.perf_counter()
    scored = await svc.rfm_scores(db, tenant, NOW)
    console.print(
        f"  data: {n:,} members in {t - t0:.1f} s; RFM job scored {scored:,} in {time.perf_counter() - t:.1f} s"
    )
    async with asyncpg.create_pool(**asyncpg_params(url), min_size=1, max_size=1) as pool, pool.acquire() as conn:
        await conn.execute("ANALYZE member_rfm")
    doc = RULES | {}
    doc["root"]["conditions"][3]["branches"] = [str(b) for b in branches[1:3]]  # type: ignore[index]
    rules = domain.decode(doc)

    async def compiled() -> int:
        async with db.uow(tenant) as uow:
            return await q.count(uow, rules, q.Clock(NOW, NOW.date()))

    async def hand() -> int:
        async with db.uow(tenant) as uow:
            params = {"since": NOW - timedelta(days=90), "branches": branches[1:3]}
            return int(await uow.session.scalar(HAND_WRITTEN, params) or 0)

    results: dict[str, tuple[int, list[float]]] = {}
    for name, fn in (("hand-written SQL", hand), ("compiled segment", compiled)):
        await fn()  # warm the cache and the plan
        times = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            found = await fn()
            times.append(time.perf_counter() - t)
        results[name] = (found, times)
    (hc, ht), (cc, ct) = results["hand-written SQL"], results["compiled segment"]
    table = Table(title=f"segment count over {n:,} members, 5 conditions (median of {REPEATS})")
    for col in ("query", "members matched", "median ms", "ratio to hand-written"):
        table.add_column(col)
    hm, cm = statistics.median(ht) * 1000, statistics.median(ct) * 1000
    table.add_row("hand-written SQL", f"{hc:,}", f"{hm:.1f}", "1.00")
    table.add_row("compiled segment", f"{cc:,}", f"{cm:.1f}", f"{cm / hm:.2f}")
    console.print(table)
    console.print(f"  counts agree: {hc == cc}; target ratio ≤ 1.5: {'met' if cm / hm <= 1.5 else 'NOT met'}")
    await db.dispose()


def run() -> None:
    n = members_wanted()
    with bench_database("lianka_bench_segments") as s:
        console.print(f"[bold]segments[/bold]: database {s.database_url.split('?')[0]}")
        asyncio.run(main_async(s.database_url, Database.from_settings(s), n))


if __name__ == "__main__":
    run()
