"""Alliance cross-marketing on real PostgreSQL (decision 0044): a funded offer reaches only the
target's members in the segment who consented to alliance offers; the funder sees suppressed counts,
never members; a redemption at the funder books the fee on the clearing accounts, once, and the
month-end statements net it (numbers worked out by hand below); two alliances do not leak."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lianka.alliance.alliances import membership as alliances
from lianka.alliance.alliances.domain import Terms
from lianka.alliance.alliances.errors import NotAPartner
from lianka.alliance.settlement import close, scopes
from lianka.platform.db import Database
from lianka.platform.errors import IdempotencyConflict
from lianka.platform.settings import get_settings
from lianka.tenants.marketing import campaigns, offers
from lianka.tenants.marketing.errors import BadOffer, OfferDecided, OfferNotFound, VoucherNotValid
from lianka.tenants.marketing.offer_domain import voucher_code

from . import kit

pytestmark = pytest.mark.integration
#: the month the offer runs in (ended, so it can be closed)
PROPOSED = datetime(2026, 8, 3, 2, tzinfo=UTC)
SOLD = datetime(2026, 8, 10, 4, tzinfo=UTC)
VALID_UNTIL = datetime(2026, 8, 31, 15, tzinfo=UTC)
AUG = "2026-08"
ALLIANCE_OK = {"alliance": {"granted": True}}


@dataclass
class World:
    alliance: uuid.UUID
    operator: uuid.UUID
    funder: uuid.UUID
    target: uuid.UUID
    bystander: uuid.UUID
    funder_branch: uuid.UUID
    gold_ok: list[uuid.UUID]  # gold, consented to alliance offers (the first 5 also to SMS)
    gold_refused: list[uuid.UUID]  # gold, withdrew (or never gave) alliance consent
    silver_ok: list[uuid.UUID]


async def _alliance(db: Database, operator: uuid.UUID, partners: list[uuid.UUID], name: str) -> uuid.UUID:
    a = await alliances.create(db, operator, code=f"x-{uuid.uuid4().hex[:10]}", name=name, terms=Terms())
    for p in partners:
        code, _ = await alliances.invite(db, operator, a.id)
        await alliances.accept(db, p, code)
    return a.id


async def _world(db: Database, tenant_factory: Any, member_factory: Any) -> World:
    operator = await tenant_factory("联盟运营")
    funder, target, bystander = [await tenant_factory(n) for n in ("咖啡馆", "书店", "花店")]
    alliance = await _alliance(db, operator, [funder, target, bystander], "街区联盟")
    branch = await kit.branch(db, funder, "F1")
    joined = PROPOSED - timedelta(days=60)
    gold_ok, gold_refused, silver_ok = [], [], []
    for i in range(22):
        m = await member_factory(target)
        consent = ALLIANCE_OK | ({"sms": {"granted": True}} if i < 5 else {})
        await kit.profile(db, target, m, joined=joined, branch=None, tier_code="gold", consent=consent)
        gold_ok.append(m)
    for consent in ({"alliance": {"granted": False}}, {}, {"sms": {"granted": True}}):
        m = await member_factory(target)
        await kit.profile(db, target, m, joined=joined, branch=None, tier_code="gold", consent=consent)
        gold_refused.append(m)
    for _ in range(3):
        m = await member_factory(target)
        await kit.profile(db, target, m, joined=joined, branch=None, tier_code="silver", consent=ALLIANCE_OK)
        silver_ok.append(m)
    return World(alliance, operator, funder, target, bystander, branch, gold_ok, gold_refused, silver_ok)


def _offer(w: World, **over: Any) -> offers.OfferIn:
    fields: dict[str, Any] = {
        "target_merchant_id": w.target,
        "name": "咖啡第二杯",
        "message": "凭券在咖啡馆消费满50元减10元",
        "discount": 1_000,
        "min_spend": 5_000,
        "fee": 300,
        "valid_until": VALID_UNTIL,
        "tiers": ("gold",),
        "channels": ("portal", "sms"),
    }
    return offers.OfferIn(**(fields | over))


async def _rows(owner_engine: Any, sql: str, **params: Any) -> list[Any]:
    async with owner_engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def test_offer_reaches_only_consenting_segment_and_settles(
    db: Database, owner_engine: Any, tenant_factory: Any, member_factory: Any
) -> None:
    w = await _world(db, tenant_factory, member_factory)

    # the funder sees counts only, suppressed below 20
    gold = await offers.estimate(db, w.funder, w.alliance, w.target, ("gold",), ())
    assert (gold.exact, gold.shown) == (22, "22")
    silver = await offers.estimate(db, w.funder, w.alliance, w.target, ("silver",), ())
    assert (silver.exact, silver.shown) == (None, "< 20")
    with pytest.raises(BadOffer):
        await offers.estimate(db, w.funder, w.alliance, w.funder, ("gold",), ())  # not its own members

    view = await offers.create_offer(db, w.funder, w.alliance, _offer(w), now=PROPOSED)
    offer_id = view.offer.id
    assert view.role == "funder" and view.offer.status == "proposed" and view.audience is not None
    assert view.audience.shown == "22"
    # the target sees its exact count; the bystander partner does not see the offer at all
    as_target = await offers.get_offer(db, w.target, w.alliance, offer_id)
    assert as_target.role == "target" and as_target.audience is not None and as_target.audience.exact == 22
    assert [o.offer.id for o in await offers.list_offers(db, w.target)] == [offer_id]
    assert await offers.list_offers(db, w.bystander) == []
    with pytest.raises(OfferNotFound):
        await offers.get_offer(db, w.bystander, w.alliance, offer_id)
    with pytest.raises(OfferNotFound):  # only the target decides
        await offers.decide(db, w.funder, w.alliance, offer_id, accept=True, now=PROPOSED)

    accepted = await offers.decide(db, w.target, w.alliance, offer_id, accept=True, now=PROPOSED)
    assert accepted.offer.status == "accepted" and accepted.offer.recipients == 22
    with pytest.raises(OfferDecided):
        await offers.decide(db, w.target, w.alliance, offer_id, accept=False, now=PROPOSED)

    # delivered through the target's campaigns: portal to every consenting gold member, SMS to the 5
    # who also consented to SMS; nobody else
    msgs = await _rows(
        owner_engine,
        "SELECT c.channel, m.member_id FROM campaign_messages m JOIN campaigns c ON c.tenant_id = m.tenant_id "
        "AND c.id = m.campaign_id WHERE c.alliance_offer_id = :o AND m.tenant_id = :t",
        o=offer_id,
        t=w.target,
    )
    assert {m for ch, m in msgs if ch == "portal"} == set(w.gold_ok)
    assert {m for ch, m in msgs if ch == "sms"} == set(w.gold_ok[:5])
    rows = await _rows(owner_engine, "SELECT member_id, code FROM xmkt_vouchers WHERE offer_id = :o", o=offer_id)
    vouchers = {r[0]: r[1] for r in rows}
    secret = get_settings().secret_key
    assert vouchers == {m: voucher_code(secret, offer_id, m) for m in w.gold_ok}
    # the portal message carries the member's own code
    portal = next(
        r[0]
        for r in await _rows(
            owner_engine, "SELECT id FROM campaigns WHERE alliance_offer_id = :o AND channel = 'portal'", o=offer_id
        )
    )
    async with db.uow(w.target) as uow:
        status = await campaigns.deliver(uow, portal, w.gold_ok[0], PROPOSED, campaigns.NoLimit())
        await uow.commit()
    assert status == "delivered"
    inbox = await campaigns.inbox(db, w.target, w.gold_ok[0])
    assert any(vouchers[w.gold_ok[0]] in item.body for item in inbox)

    # redemption at the funder's branch: discount given, fee booked — once
    code0, code1 = vouchers[w.gold_ok[0]], vouchers[w.gold_ok[1]]
    sale = offers.RedeemIn(code=code0, sale_amount=8_000, branch_id=w.funder_branch, business_time=SOLD)
    first, replayed = await offers.redeem(db, w.funder, w.alliance, sale, "k-1")
    assert not replayed and first["discount"] == 1_000 and first["fee"] == 300 and first["period"] == AUG
    again, replayed = await offers.redeem(db, w.funder, w.alliance, sale, "k-1")
    assert replayed and again == first
    with pytest.raises(VoucherNotValid):  # same voucher, a new key: used already
        await offers.redeem(db, w.funder, w.alliance, sale, "k-2")
    with pytest.raises(IdempotencyConflict):  # same key, another request
        await offers.redeem(db, w.funder, w.alliance, offers.RedeemIn(code1, 9_000, w.funder_branch, SOLD), "k-1")
    with pytest.raises(VoucherNotValid):  # under the minimum spend
        await offers.redeem(db, w.funder, w.alliance, offers.RedeemIn(code1, 4_999, w.funder_branch, SOLD), "k-3")
    target_branch = await kit.branch(db, w.target, "T1")
    with pytest.raises(VoucherNotValid):  # valid at the funder's branches only
        await offers.redeem(db, w.target, w.alliance, offers.RedeemIn(code1, 6_000, target_branch, SOLD), "k-4")
    second, _ = await offers.redeem(
        db, w.funder, w.alliance, offers.RedeemIn(code1.lower(), 6_000, w.funder_branch, SOLD), "k-6"
    )
    assert second["discount"] == 1_000
    entries = await _rows(
        owner_engine,
        "SELECT count(*) FROM ledger_entries WHERE kind = 'alliance_cross_marketing' AND tenant_id = :a",
        a=w.alliance,
    )
    assert entries[0][0] == 2

    r = await offers.results(db, w.funder, w.alliance, offer_id)
    # by hand: 2 redemptions, sales 8 000 + 6 000, discounts 2 × 1 000, fees 2 × 300
    assert (r.sent.shown, r.redeemed, r.attributed_sales, r.discounts, r.fees, r.cost) == (
        "22",
        2,
        14_000,
        2_000,
        600,
        2_600,
    )
    with pytest.raises(OfferNotFound):  # results are the funder's
        await offers.results(db, w.target, w.alliance, offer_id)

    # month end: the funder's branch pays 600, the target receives 600, the operator's line nets 0
    scope = await scopes.alliance_scope(db, w.alliance)
    closed = await close.close(db, scope, AUG)
    by = {(s.entity_kind, s.entity_id): s for s in closed.statements}
    f_branch = by[("branch", w.funder_branch)]
    assert f_branch.lines == {"cross_marketing_charged": {"amount": -600, "points": 0}} and f_branch.net == -600
    assert by[("partner", w.funder)].net == -600
    t = by[("partner", w.target)]
    assert t.lines == {"cross_marketing_earned": {"amount": 600, "points": 0}} and t.net == 600
    hub = next(s for s in closed.statements if s.entity_kind == "hub")
    assert hub.net == 0 and closed.summary["sum_with_hub"] == 0
    assert (await close.close(db, scope, AUG)).checksum == closed.checksum


async def test_two_alliances_do_not_leak(
    db: Database, owner_engine: Any, tenant_factory: Any, member_factory: Any
) -> None:
    w = await _world(db, tenant_factory, member_factory)
    view = await offers.create_offer(db, w.funder, w.alliance, _offer(w), now=PROPOSED)
    await offers.decide(db, w.target, w.alliance, view.offer.id, accept=True, now=PROPOSED)
    # another alliance, where the same target is a partner with another funder
    other_op, other_funder = await tenant_factory("另一运营"), await tenant_factory("面包房")
    other = await _alliance(db, other_op, [other_funder, w.target], "另一联盟")
    other_branch = await kit.branch(db, other_funder, "B1")
    theirs = await offers.create_offer(db, other_funder, other, _offer(w, name="面包", fee=100), now=PROPOSED)
    await offers.decide(db, w.target, other, theirs.offer.id, accept=True, now=PROPOSED)

    # the first funder sees none of it
    assert [o.offer.id for o in await offers.list_offers(db, w.funder)] == [view.offer.id]
    assert {o.offer.id for o in await offers.list_offers(db, w.target)} == {view.offer.id, theirs.offer.id}
    with pytest.raises(NotAPartner):
        await offers.get_offer(db, w.funder, other, theirs.offer.id)
    with pytest.raises(OfferNotFound):
        await offers.get_offer(db, w.funder, w.alliance, theirs.offer.id)
    # a voucher of the other alliance is unknown here, and this alliance's is unknown there
    their_code = voucher_code(get_settings().secret_key, theirs.offer.id, w.gold_ok[0])
    our_code = voucher_code(get_settings().secret_key, view.offer.id, w.gold_ok[0])
    with pytest.raises(VoucherNotValid):
        await offers.redeem(db, w.funder, w.alliance, offers.RedeemIn(their_code, 9_000, w.funder_branch, SOLD), "a")
    with pytest.raises(VoucherNotValid):
        await offers.redeem(db, other_funder, other, offers.RedeemIn(our_code, 9_000, other_branch, SOLD), "b")
    # a partner's transaction reads its own offers and nobody's vouchers (RLS)
    async with db.uow(w.bystander) as uow:
        seen = await uow.session.scalar(text("SELECT count(*) FROM xmkt_offers"))
        vouchers = await uow.session.scalar(text("SELECT count(*) FROM xmkt_vouchers"))
    assert (seen, vouchers) == (0, 0)
    async with db.uow(w.funder) as uow:
        seen = await uow.session.scalar(text("SELECT count(*) FROM xmkt_offers"))
        vouchers = await uow.session.scalar(text("SELECT count(*) FROM xmkt_vouchers"))
    assert (seen, vouchers) == (1, 0)


async def test_concurrent_redemptions_of_one_voucher_book_once(
    db: Database, owner_engine: Any, tenant_factory: Any, member_factory: Any
) -> None:
    import asyncio

    w = await _world(db, tenant_factory, member_factory)
    view = await offers.create_offer(db, w.funder, w.alliance, _offer(w), now=PROPOSED)
    await offers.decide(db, w.target, w.alliance, view.offer.id, accept=True, now=PROPOSED)
    code = voucher_code(get_settings().secret_key, view.offer.id, w.gold_ok[3])
    sale = offers.RedeemIn(code, 9_000, w.funder_branch, SOLD)
    outcomes = await asyncio.gather(
        *(offers.redeem(db, w.funder, w.alliance, sale, f"race-{i}") for i in range(6)), return_exceptions=True
    )
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(won) == 1
    assert all(isinstance(o, VoucherNotValid) for o in outcomes if isinstance(o, BaseException)), outcomes
    rows = await _rows(
        owner_engine,
        "SELECT count(*), coalesce(sum(p.amount), 0) FROM ledger_postings p JOIN ledger_entries e "
        "ON e.tenant_id = p.tenant_id AND e.id = p.entry_id JOIN ledger_accounts a ON a.tenant_id = p.tenant_id "
        "AND a.id = p.account_id WHERE e.tenant_id = :a AND e.kind = 'alliance_cross_marketing' "
        "AND a.kind = 'clr_cross_marketing_charged'",
        a=w.alliance,
    )
    assert (rows[0][0], rows[0][1]) == (1, -300)
