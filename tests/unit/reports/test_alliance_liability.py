"""The alliance liability report's folding (``alliance.reports.liability.build``): the totals come from
the accounts, the partner rows from the lots, and what the lots do not carry — a clawback past the
balance (a debt), a lot made by an entry without a partner's branch — lands in the no-issuer row, so
the rows always add up to the total."""

from __future__ import annotations

from lianka.alliance.reports.liability import NO_ISSUER, SCHEMES, build
from lianka.alliance.reports.liability_queries import Movement

P1, P2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
PTS = "alliance_points"


def test_partner_rows_add_up_to_the_total_and_the_rest_has_no_issuer() -> None:
    totals = [
        Movement(PTS, "*", "", 1_000),  # held before the month
        Movement(PTS, "*", "alliance_points_issued", 700),
        Movement(PTS, "*", "alliance_points_redeemed", -400),
        Movement(PTS, "*", "reversal:alliance_points_redeemed", 50),
        Movement(PTS, "*", "reversal:alliance_points_issued", -120),  # a clawback: 20 past the balance
        Movement(PTS, "*", "expiry", -30),
    ]
    lots = [
        Movement(PTS, P1, "", 600),
        Movement(PTS, P2, "", 400),
        Movement(PTS, P1, "alliance_points_issued", 500),
        Movement(PTS, "", "alliance_points_issued", 200),  # an entry naming no partner's branch
        Movement(PTS, P1, "alliance_points_redeemed", -300),
        Movement(PTS, P2, "alliance_points_redeemed", -100),
        Movement(PTS, P2, "reversal:alliance_points_redeemed", 50),
        Movement(PTS, P1, "reversal:alliance_points_issued", -100),  # the lots held only 100 of the 120
        Movement(PTS, P2, "expiry", -30),
    ]
    rows = build(totals, lots, [P1, P2])
    by = {(r.scheme, r.branch): r for r in rows}
    total, p1, p2, rest = by[PTS, "*"], by[PTS, P1], by[PTS, P2], by[PTS, NO_ISSUER]
    assert total.figures() == {
        "opening": 1_000,
        "issued": 580,
        "used": 350,
        "expired": 30,
        "refunded": 0,
        "closing": 1_200,
    }
    assert p1.figures() == {"opening": 600, "issued": 400, "used": 300, "expired": 0, "refunded": 0, "closing": 700}
    assert p2.figures() == {"opening": 400, "issued": 0, "used": 50, "expired": 30, "refunded": 0, "closing": 320}
    # the 200 without an issuer, less the 20 of debt the lots could not take
    assert rest.figures() == {"opening": 0, "issued": 180, "used": 0, "expired": 0, "refunded": 0, "closing": 180}
    for col, value in total.figures().items():
        assert p1.figures()[col] + p2.figures()[col] + rest.figures()[col] == value, col
    # every scheme has its total and a row per partner, zeros included; no empty no-issuer rows
    assert [(r.scheme, r.branch) for r in rows if r.scheme != PTS] == [
        (s, b) for s in SCHEMES if s != PTS for b in ("*", P1, P2)
    ]
