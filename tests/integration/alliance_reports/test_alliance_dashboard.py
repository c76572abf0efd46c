"""The alliance dashboard's figures against an independent computation from the alliance's journal
(raw rows folded in Python): two partners and the operator earning and redeeming each other's points,
an expiry with breakage returned to the issuers, a refunded (reversed) redemption; a partner sees its
own view only; two alliances don't leak; the rollup tick is idempotent and a crash before the mark
moves leaves the rollups and the mark as they were."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from lianka.alliance.alliances import membership as alliances
from lianka.alliance.alliances import till
from lianka.alliance.alliances.domain import BreakagePolicy, Terms
from lianka.alliance.alliances.errors import NotAPartner
from lianka.alliance.ledger import services as ledger
from lianka.alliance.ledger.jobs import expire_book
from lianka.alliance.reports import dashboard, rollups
from lianka.alliance.reports import queries as q
from lianka.alliance.reports.queries import FIGURES
from lianka.platform.db import Database
from lianka.platform.money import largest_remainder
from lianka.tenants.domain.programme import ExpiryKind, ExpiryPolicy
from lianka.tenants.reports.domain import PeriodKind

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
D1 = datetime(2026, 10, 3, 2, tzinfo=UTC)
D2 = datetime(2026, 10, 5, 3, tzinfo=UTC)
D2_LATE = datetime(2026, 10, 5, 16, 30, tzinfo=UTC)  # 10-06 00:30 local
D3 = datetime(2026, 10, 9, 4, tzinfo=UTC)
EXPIRE_AT = datetime(2026, 12, 20, tzinfo=UTC)
NOW = datetime(2027, 1, 2, tzinfo=UTC)
ALL = dashboard.Request(PeriodKind.CUSTOM, date(2026, 10, 1), date(2026, 12, 31))
TERMS = Terms(
    fee_per_transaction=7,
    expiry=ExpiryPolicy(kind=ExpiryKind.ROLLING_MONTHS, months=1),
    breakage=BreakagePolicy.ISSUERS,
    credit_limit=50_000,
)


@dataclass
class World:
    alliance: uuid.UUID
    operator: uuid.UUID
    p1: uuid.UUID
    p2: uuid.UUID
    branches: dict[uuid.UUID, uuid.UUID]
    m1: uuid.UUID
    m2: uuid.UUID


async def _branch(db: Database, tenant: uuid.UUID, code: str) -> uuid.UUID:
    async with db.uow(tenant) as uow:
        found: uuid.UUID = await uow.session.scalar(
            text("INSERT INTO branches (tenant_id, code, name) VALUES (:t, :c, :c) RETURNING id"),
            {"t": tenant, "c": code},
        )
        await uow.commit()
    return found


async def _alliance(db: Database, operator: uuid.UUID, partners: list[uuid.UUID], terms: Terms) -> uuid.UUID:
    a = await alliances.create(db, operator, code=f"r-{uuid.uuid4().hex[:10]}", name="报表联盟", terms=terms)
    for p in partners:
        code, _ = await alliances.invite(db, operator, a.id)
        await alliances.accept(db, p, code)
    return a.id


async def earn(db: Database, w: World, who: uuid.UUID, member: uuid.UUID, amount: int, at: datetime) -> None:
    await till.earn(
        db, who, w.alliance, member_id=member, amount=amount, branch_id=w.branches[who], key=uuid.uuid4().hex,
        business_time=at,
    )  # fmt: skip


async def redeem(db: Database, w: World, who: uuid.UUID, member: uuid.UUID, points: int, at: datetime) -> str:
    out, _ = await till.redeem(
        db, who, w.alliance, member_id=member, points=points, branch_id=w.branches[who], key=uuid.uuid4().hex,
        business_time=at,
    )  # fmt: skip
    return str(out["entry_id"])


async def world(db: Database, tenant_factory: Any, member_factory: Any) -> World:
    """The operator and two partners; m1 (a member of P1 and of P2: shared) and m2 (P2's)."""
    operator, p1, p2 = [await tenant_factory(n, timezone="Asia/Shanghai") for n in ("运营方", "甲", "乙")]
    branches = {t: await _branch(db, t, "B1") for t in (operator, p1, p2)}
    a = await _alliance(db, operator, [p1, p2], TERMS)
    phone = f"+86137{uuid.uuid4().int % 10**8:08d}"
    m1 = await member_factory(p1, phone)
    await member_factory(p2, phone)
    m2 = await member_factory(p2)
    w = World(a, operator, p1, p2, branches, m1, m2)
    await earn(db, w, p1, m1, 50_000, D1)  # 500 of P1's
    await earn(db, w, p2, m1, 10_050, D1)  # 100 of P2's
    await earn(db, w, p2, m2, 30_000, D1)  # 300 of P2's
    await redeem(db, w, p2, m1, 200, D2)  # P2 takes m1's points
    await redeem(db, w, operator, m1, 350, D2_LATE)  # the operator takes the rest but 50, across issuers
    refunded = await redeem(db, w, p1, m2, 100, D2)  # P1 takes P2's points ...
    async with db.uow(a) as uow:  # ... and the sale is refunded on D3: the redemption reversed
        await ledger.reverse(uow, uuid.UUID(refunded), key=uuid.uuid4().hex, business_time=D3, timezone="Asia/Shanghai")
        await uow.commit()
    await redeem(db, w, p1, m2, 40, D3)
    assert await expire_book(db, a, EXPIRE_AT) > 0  # what is left expires; breakage back to the issuers
    return w


# --- the independent computation: raw rows of the alliance's book, folded in Python -----------------


@dataclass
class Expected:
    partners: dict[uuid.UUID, dict[str, int]]
    flows: dict[tuple[uuid.UUID, uuid.UUID], tuple[int, int]]
    position: dict[uuid.UUID, int]


def _day(at: datetime) -> date:
    return at.astimezone(TZ).date()


async def expected(db: Database, alliance: uuid.UUID, first: date, last: date) -> Expected:
    async with db.uow(alliance) as uow:

        async def rows(sql: str) -> list[Any]:
            return list((await uow.session.execute(text(sql))).mappings().all())

        entries = {r["id"]: r for r in await rows("SELECT * FROM ledger_entries")}
        postings = await rows("SELECT * FROM ledger_postings")
        accounts = {r["id"]: r for r in await rows("SELECT * FROM ledger_accounts")}
        lots = {r["id"]: r for r in await rows("SELECT * FROM ledger_lots")}
        moves = await rows("SELECT * FROM ledger_lot_moves")
        spokes = {r["branch_id"]: r["merchant_id"] for r in await rows("SELECT * FROM alliance_spokes")}
    partners: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    position: dict[uuid.UUID, int] = defaultdict(int)
    sign = {
        "qty_points_issued": ("points_issued", -1),
        "qty_points_redeemed": ("points_accepted", 1),
        "clr_points_issued": ("issue_cost", -1),
        "clr_points_redeemed": ("reimbursed", 1),
        "clr_fee": ("fees", -1),
        "clr_points_expired": ("breakage_returned", 1),
    }
    for p in postings:
        a = accounts[p["account_id"]]
        owner = spokes.get(a["owner_id"]) if a["owner_kind"] == "branch" else a["owner_id"]
        if a["owner_kind"] not in ("branch", "partner") or owner is None:
            continue
        day = _day(entries[p["entry_id"]]["business_time"])
        if a["kind"].startswith("clr_"):
            position[owner] += p["amount"]
            if first <= day <= last:
                partners[owner]["net"] += p["amount"]
        if a["kind"] in sign and first <= day <= last:
            name, s = sign[a["kind"]]
            partners[owner][name] += s * p["amount"]

    def issuer(lot_id: uuid.UUID) -> uuid.UUID:
        found: uuid.UUID = spokes[uuid.UUID(entries[lots[lot_id]["entry_id"]]["refs"]["branch"])]
        return found

    taken: dict[uuid.UUID, dict[uuid.UUID, int]] = defaultdict(lambda: defaultdict(int))
    for m in moves:
        e = entries[m["entry_id"]]
        if e["kind"] == "expiry" and first <= _day(e["business_time"]) <= last:
            partners[issuer(m["lot_id"])]["points_expired"] -= m["amount"]
        if e["kind"] == "alliance_points_redeemed":
            taken[e["id"]][issuer(m["lot_id"])] -= m["amount"]
    flows: dict[tuple[uuid.UUID, uuid.UUID], list[int]] = defaultdict(lambda: [0, 0])
    for e in entries.values():
        base = entries[e["reverses_id"]] if e["reverses_id"] else e
        if base["kind"] != "alliance_points_redeemed" or not first <= _day(e["business_time"]) <= last:
            continue
        reimbursed = sum(
            p["amount"]
            for p in postings
            if p["entry_id"] == base["id"] and accounts[p["account_id"]]["kind"] == "clr_points_redeemed"
        )
        issuers = sorted(taken[base["id"]])
        shares = largest_remainder(reimbursed, [taken[base["id"]][i] for i in issuers])
        s = -1 if e["reverses_id"] else 1
        for i, share in zip(issuers, shares, strict=True):
            f = flows[(i, uuid.UUID(base["refs"]["merchant"]))]
            f[0] += s * taken[base["id"]][i]
            f[1] += s * share
    return Expected(
        {k: dict(v) for k, v in partners.items()},
        {k: (v[0], v[1]) for k, v in flows.items() if v != [0, 0]},
        dict(position),
    )


def _flows(d: dashboard.AllianceDashboard) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[int, int]]:
    return {(f.issuer_id, f.redeemer_id): (f.points, f.amount) for f in d.flows}


async def test_every_figure_equals_the_journal_and_a_partner_sees_only_its_own(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    w = await world(db, tenant_factory, member_factory)
    await rollups.refresh(db, w.alliance)
    exp = await expected(db, w.alliance, ALL.first, ALL.last)  # type: ignore[arg-type]
    d = await dashboard.dashboard(db, w.operator, w.alliance, ALL, now=NOW)
    assert d.is_operator
    by_partner = {p.merchant_id: p for p in d.partners}
    assert set(by_partner) == {w.operator, w.p1, w.p2}
    for who in (w.operator, w.p1, w.p2):
        assert by_partner[who].figures == exp.partners.get(who, dict.fromkeys(FIGURES, 0)), who
        assert by_partner[who].credit_used == max(0, -exp.position.get(who, 0))
        assert by_partner[who].credit_limit == 50_000
    # the story, in figures a reader can check by hand
    assert by_partner[w.p1].figures["points_issued"] == 500
    assert by_partner[w.p2].figures["points_issued"] == 400
    assert by_partner[w.p1].figures["points_accepted"] == 40  # 100 refunded, 40 kept
    assert by_partner[w.operator].figures["points_accepted"] == 350
    assert by_partner[w.p2].figures["points_expired"] > 0
    assert by_partner[w.p2].figures["breakage_returned"] > 0  # policy: back to the issuers
    assert by_partner[w.p1].figures["fees"] == 7 + 2 * 7 - 7  # earn, two redemptions, one reversed
    assert _flows(d) == exp.flows
    assert exp.flows[(w.p2, w.p1)][0] == 40  # the refunded 100 are gone from the flow
    assert sum(f.amount for f in d.flows) == sum(p.figures["reimbursed"] for p in d.partners)
    assert d.cross_points == sum(p for (i, r), (p, _) in exp.flows.items() if i != r)
    assert d.totals == {n: sum(p[n] for p in exp.partners.values()) for n in FIGURES}
    assert {x.day: x.figures["points_accepted"] for x in d.daily if x.figures["points_accepted"]} == {
        date(2026, 10, 5): 200 + 100,
        date(2026, 10, 6): 350,
        date(2026, 10, 9): -100 + 40,
    }
    assert d.shared == 1
    assert by_partner[w.p1].shared == by_partner[w.p2].shared == 1
    assert by_partner[w.operator].shared == 0

    # a partner: its own row, its own flows in and out, its own shared members; nothing of the others
    mine = await dashboard.dashboard(db, w.p2, w.alliance, ALL, now=NOW)
    assert not mine.is_operator
    assert [p.merchant_id for p in mine.partners] == [w.p2]
    assert mine.partners[0].figures == exp.partners[w.p2]
    assert mine.totals == exp.partners[w.p2]
    assert _flows(mine) == {k: v for k, v in exp.flows.items() if w.p2 in k}
    assert all(w.p2 in (f.issuer_id, f.redeemer_id) for f in mine.flows)
    assert (w.p1, w.operator) not in _flows(mine)
    assert mine.shared == 1

    # a merchant outside the alliance gets the alliance's 404
    stranger = await tenant_factory("局外人")
    with pytest.raises(NotAPartner):
        await dashboard.dashboard(db, stranger, w.alliance, ALL, now=NOW)


async def test_two_alliances_do_not_leak_and_the_previous_period_is_compared(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    w = await world(db, tenant_factory, member_factory)
    # P1 operates a second alliance with P2, with its own activity
    other = await _alliance(db, w.p1, [w.p2], Terms())
    w2 = World(other, w.p1, w.p1, w.p2, w.branches, w.m1, w.m2)
    await earn(db, w2, w.p1, w.m1, 70_000, D1)
    await redeem(db, w2, w.p2, w.m1, 123, D2)
    for a in (w.alliance, other):
        await rollups.refresh(db, a)
    exp = await expected(db, w.alliance, ALL.first, ALL.last)  # type: ignore[arg-type]
    d = await dashboard.dashboard(db, w.operator, w.alliance, ALL, now=NOW)
    assert {p.merchant_id: p.figures for p in d.partners if p.merchant_id in exp.partners} == exp.partners
    assert _flows(d) == exp.flows
    d2 = await dashboard.dashboard(db, w.p1, other, ALL, now=NOW)
    assert _flows(d2) == {(w.p1, w.p2): (123, 98)}  # 123 × 0.008, half-even
    assert {p.merchant_id for p in d2.partners} == {w.p1, w.p2}
    assert d2.totals["points_issued"] == 700
    # November compared with October: the October figures are the previous period's
    nov = await dashboard.dashboard(
        db, w.operator, w.alliance, dashboard.Request(PeriodKind.LAST_MONTH), now=datetime(2026, 12, 5, tzinfo=UTC)
    )
    assert nov.previous.first == date(2026, 10, 1)
    assert nov.previous_totals["points_issued"] == 900
    assert nov.totals["points_issued"] == 0
    assert dashboard.change(nov, "points_issued") == -100


async def _snapshot(db: Database, alliance: uuid.UUID) -> tuple[list[Any], list[Any], Any]:
    async with db.uow(alliance) as uow:
        daily = (await uow.session.execute(text("SELECT * FROM alliance_report_daily ORDER BY day, partner_id"))).all()
        flows = (await uow.session.execute(text("SELECT * FROM alliance_report_flows ORDER BY 2, 3, 4"))).all()
        mark = await q.mark(uow, alliance)
    return [r[:-1] for r in daily], list(flows), mark  # computed_at aside


async def test_the_tick_is_idempotent_incremental_and_survives_a_crash(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    w = await world(db, tenant_factory, member_factory)
    first = await rollups.refresh(db, w.alliance)
    assert first.days >= 5
    before = await _snapshot(db, w.alliance)
    again = await rollups.refresh(db, w.alliance)  # nothing new: only the overlap's days, rewritten equal
    after = await _snapshot(db, w.alliance)
    assert after[:2] == before[:2]
    assert after[2] >= before[2]
    assert again.days <= first.days

    await earn(db, w, w.p2, w.m2, 5_000, D3)  # a new move on an old day (an offline till, say)
    with mock.patch.object(q, "set_mark", side_effect=RuntimeError("killed")), pytest.raises(RuntimeError):
        await rollups.refresh(db, w.alliance)
    crashed = await _snapshot(db, w.alliance)
    assert crashed == after  # rolled back: the days and the mark as they were
    await rollups.refresh(db, w.alliance)
    fixed = await _snapshot(db, w.alliance)
    assert fixed[2] > after[2]
    exp = await expected(db, w.alliance, ALL.first, ALL.last)  # type: ignore[arg-type]
    d = await dashboard.dashboard(db, w.operator, w.alliance, ALL, now=NOW)
    assert {p.merchant_id: p.figures for p in d.partners if p.merchant_id in exp.partners} == exp.partners
    assert _flows(d) == exp.flows
    # a rebuild from scratch gives the same rows
    await rollups.rebuild(db, w.alliance)
    assert (await _snapshot(db, w.alliance))[:2] == fixed[:2]


async def test_the_job_is_listed_and_the_rebuild_command_rebuilds_an_alliance(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    import asyncio

    from typer.testing import CliRunner

    import lianka.actors  # noqa: F401 - registers every periodic job
    from lianka.cli import app
    from lianka.platform import periodic
    from lianka.platform.scheduler import REGISTRY

    w = await world(db, tenant_factory, member_factory)
    runner = CliRunner()
    listed = await asyncio.to_thread(runner.invoke, app, ["jobs", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "alliance-report-rollups" in listed.output
    # the scheduled job's targets: every alliance; with --merchant, those it operates
    report = await periodic.run(REGISTRY["alliance-report-rollups"], db, as_of=NOW, merchant=w.operator, trigger="cli")
    assert len(report.outcomes) == 1 and not report.failed and report.total >= 5  # its days
    tick = await _snapshot(db, w.alliance)
    async with db.uow(w.alliance) as uow:
        code = await uow.session.scalar(text("SELECT code FROM alliances"))
    built = await asyncio.to_thread(runner.invoke, app, ["reports", "rebuild-alliance", "--alliance", str(code)])
    assert built.exit_code == 0, built.output + repr(built.exception)
    assert "days rolled up" in built.output
    assert (await _snapshot(db, w.alliance))[:2] == tick[:2]
    unknown = await asyncio.to_thread(runner.invoke, app, ["reports", "rebuild-alliance", "--alliance", "no-such"])
    assert unknown.exit_code == 2
