"""The alliance's liability report against independent figures: two partners and the operator earning
and redeeming each other's points, a reversed redemption and the expiry of what is left
(``world`` of the dashboard's test). The scheme's total equals the members' balances and the lots'
remaining points; one month's closing is the next one's opening; a partner's *used* points equal
what the dashboard's flows (another code path: lot moves per redemption) say was redeemed of its
issue, and its November expiry equals its October closing; a partner sees its own rows only; a
stranger gets 404; two alliances do not leak."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.alliances.errors import NotAPartner
from lianka.alliance.reports import dashboard, liability, rollups
from lianka.platform.db import Database
from lianka.platform.errors import ValidationFailed
from lianka.tenants.reports.domain import PeriodKind
from tests.integration.alliance_reports.test_alliance_dashboard import NOW, world

pytestmark = pytest.mark.integration
OCTOBER = dashboard.Request(PeriodKind.CUSTOM, date(2026, 10, 1), date(2026, 10, 31))

_HELD = text("""
SELECT a.kind, coalesce(sum(b.balance), 0) AS held
  FROM ledger_accounts a JOIN ledger_balances b ON b.tenant_id = a.tenant_id AND b.account_id = a.id
 WHERE a.owner_kind = 'member' AND a.kind LIKE 'alliance\\_%'
 GROUP BY 1
""")
_REMAINING = text("""
SELECT coalesce(sum(l.remaining), 0) FROM ledger_lots l
  JOIN ledger_accounts a ON a.tenant_id = l.tenant_id AND a.id = l.account_id
 WHERE a.owner_kind = 'member' AND a.kind = 'alliance_points'
""")


async def test_totals_tie_to_the_book_and_partner_rows_to_the_flows(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    w = await world(db, tenant_factory, member_factory)
    oct_, nov, dec = [
        await liability.report(db, w.operator, w.alliance, p, now=NOW) for p in ("2026-10", "2026-11", "2026-12")
    ]
    p1, p2 = str(w.p1), str(w.p2)
    points = oct_.total("alliance_points")
    assert points is not None
    # by hand: P1 earned 500 points for ¥500, P2 100 + 300; redeemed 200 + 350 + 100 − 100 (reversed) + 40
    assert (points.opening, points.issued, points.used, points.expired) == (0, 900, 590, 0)
    assert points.closing == 310
    assert oct_.row("alliance_points", p1).issued == 500  # type: ignore[union-attr]
    assert oct_.row("alliance_points", p2).issued == 400  # type: ignore[union-attr]
    assert oct_.row("alliance_points", str(w.operator)).issued == 0  # type: ignore[union-attr]
    # the partners' rows add up to the total: nothing without an issuer in this world
    assert oct_.row("alliance_points", liability.NO_ISSUER) is None
    for col in ("opening", "issued", "used", "expired", "closing"):
        assert sum(getattr(r, col) for r in oct_.rows if r.scheme == "alliance_points" and r.branch != "*") == getattr(
            points, col
        ), col
    # what each issuer's lots lost to redemptions in October = the dashboard's flows out of its issue
    await rollups.refresh(db, w.alliance)
    d = await dashboard.dashboard(db, w.operator, w.alliance, OCTOBER, now=NOW)
    for issuer in (w.p1, w.p2, w.operator):
        flowed = sum(f.points for f in d.flows if f.issuer_id == issuer)
        assert oct_.row("alliance_points", str(issuer)).used == flowed, issuer  # type: ignore[union-attr]
    # months chain, issuer by issuer
    for scheme in liability.SCHEMES:
        for key in ("*", p1, p2):
            a, b, c = (m.row(scheme, key) for m in (oct_, nov, dec))
            assert a is not None and b is not None and c is not None
            assert b.opening == a.closing and c.opening == b.closing, (scheme, key)
    # what was left in October expired in November (rolling one month), issuer by issuer (which
    # issuer's lots a redemption took first depends on the lots' order, so only the sum is by hand)
    for who in (p1, p2, str(w.operator)):
        left, gone = oct_.row("alliance_points", who), nov.row("alliance_points", who)
        assert left is not None and gone is not None
        assert gone.expired == left.closing and gone.closing == 0, who
    assert nov.total("alliance_points").expired == 310  # type: ignore[union-attr]
    # the closing of the last month is what members hold now: balances and the lots' remaining points
    async with db.uow(w.alliance) as uow:
        held = {k: int(v) for k, v in await uow.session.execute(_HELD)}
        remaining = int(await uow.session.scalar(_REMAINING) or 0)
    for scheme in liability.SCHEMES:
        assert dec.total(scheme).closing == held.get(scheme, 0), scheme  # type: ignore[union-attr]
    assert dec.total("alliance_points").closing == remaining == 0  # type: ignore[union-attr]
    # points in money at the reimbursement price in force (0.008 by default): 310 points -> ¥2.48
    assert oct_.value_per_point == Decimal("0.008")
    assert points.value["closing"] == 248


async def test_a_partner_sees_its_own_rows_a_stranger_nothing_and_alliances_do_not_leak(
    db: Database, tenant_factory: Any, member_factory: Any
) -> None:
    w = await world(db, tenant_factory, member_factory)
    other = await world(db, tenant_factory, member_factory)
    mine = await liability.report(db, w.p1, w.alliance, "2026-10", now=NOW)
    assert not mine.is_operator
    assert {r.branch for r in mine.rows} == {str(w.p1)}
    assert [r.scheme for r in mine.rows] == list(liability.SCHEMES)
    assert mine.total("alliance_points") is None
    assert mine.row("alliance_points", str(w.p1)).issued == 500  # type: ignore[union-attr]
    # the other alliance's activity is its own: each total is this world's 900 points alone
    for ww in (w, other):
        r = await liability.report(db, ww.operator, ww.alliance, "2026-10", now=NOW)
        assert r.total("alliance_points").issued == 900  # type: ignore[union-attr]
        assert set(r.partners) == {str(ww.operator), str(ww.p1), str(ww.p2)}
    with pytest.raises(NotAPartner):
        await liability.report(db, other.p1, w.alliance, "2026-10", now=NOW)
    for bad in ("2026-13", "2026-1", "", "2026-10'; --"):
        with pytest.raises(ValidationFailed):
            await liability.report(db, w.operator, w.alliance, bad, now=NOW)
