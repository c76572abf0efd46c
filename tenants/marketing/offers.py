"""Alliance cross-marketing (issue 16, decision 0044): a partner funds an offer for another partner's
members without seeing them.

* The **funder** proposes an offer (a discount at its own branches, a fee per redemption it pays the
  target) to the members of a **target** partner chosen by tier and lifecycle stage only. It sees
  how many members match as a suppressed count (``offer_domain.suppressed``), never who.
* The **target** accepts (or declines): accepting is its consent to the deal, and its own campaign
  machinery (``campaigns.start_in``) delivers the offer — portal inbox plus any channel the offer
  names — to the matching members who consented to alliance offers (a segment condition), each with
  a voucher code. The recipients' ids leave the target's book only as the operator's delivery
  records (``xmkt_vouchers``, in the alliance's book, which no partner reads).
* A **redemption** at the funder's branch (idempotent; a voucher is used once) books the fee on the
  alliance's clearing accounts: the funder's branch ``clr_cross_marketing_charged``, the target
  partner's ``clr_cross_marketing_earned``, so the month-end close nets it into both statements.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lianka.alliance.alliances import queries as alliance_queries
from lianka.alliance.alliances.access import membership
from lianka.alliance.alliances.errors import NotAPartner
from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import clearing
from lianka.alliance.settlement.domain import cross_marketing
from lianka.platform import idempotency
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.settings import get_settings
from lianka.tenants.domain.lifecycle import Stage
from lianka.tenants.domain.pricing import VoucherTerms
from lianka.tenants.marketing import campaign_domain as cd
from lianka.tenants.marketing import campaign_queries as campaign_q
from lianka.tenants.marketing import campaigns
from lianka.tenants.marketing import offer_queries as q
from lianka.tenants.marketing import queries as segment_queries
from lianka.tenants.marketing import services as segments
from lianka.tenants.marketing.errors import BadOffer, OfferDecided, OfferNotFound, VoucherNotValid
from lianka.tenants.marketing.models import Campaign, Segment
from lianka.tenants.marketing.offer_domain import OFFER_CHANNELS, Audience, Count, discount_for, suppressed
from lianka.tenants.marketing.offer_domain import voucher_code as derive_code

MAX_AMOUNT = 10**9


@dataclass(frozen=True)
class OfferIn:
    target_merchant_id: uuid.UUID
    name: str
    message: str
    discount: int
    valid_until: datetime
    tiers: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    channels: tuple[str, ...] = ("portal",)
    min_spend: int = 0
    fee: int = 0


@dataclass(frozen=True)
class OfferView:
    """An offer as one of its two partners sees it. ``audience`` is a count: exact for the target (its
    own members), suppressed for the funder."""

    offer: q.OfferRow
    role: str  # funder | target
    audience: Count | None = None


@dataclass(frozen=True)
class Results:
    """What the funder learns: recipients (suppressed), redemptions at its branches, the sales they came
    with, and what they cost it (discounts given plus fees owed)."""

    sent: Count
    redeemed: int
    attributed_sales: int
    discounts: int
    fees: int

    @property
    def cost(self) -> int:
        return self.discounts + self.fees


def _check(data: OfferIn, now: datetime) -> Audience:
    if not 1 <= len(data.name.strip()) <= 100:
        raise BadOffer("name: 1-100 characters", field="name")
    if not 1 <= len(data.message.strip()) <= 300:
        raise BadOffer("message: 1-300 characters", field="message")
    try:
        cd.check_template(data.message)
    except cd.TemplateError as e:
        raise BadOffer(str(e), field="message") from None
    if not 0 < data.discount <= MAX_AMOUNT:
        raise BadOffer("discount: a positive number of fen", field="discount")
    if not 0 <= data.min_spend <= MAX_AMOUNT or not 0 <= data.fee <= MAX_AMOUNT:
        raise BadOffer("minimum spend and fee: 0 or more fen", field="fee")
    if data.valid_until.tzinfo is None or data.valid_until <= now:
        raise BadOffer("valid_until: a future time with a time zone", field="valid_until")
    if "portal" not in data.channels or not set(data.channels) <= set(OFFER_CHANNELS):
        raise BadOffer(f"channels: portal, and any of {', '.join(OFFER_CHANNELS[1:])}", field="channels")
    if len(data.tiers) > 20 or any(not 1 <= len(t) <= 40 for t in data.tiers):
        raise BadOffer("tiers: up to 20 tier codes", field="tiers")
    try:
        stages = tuple(Stage(s) for s in data.stages)
    except ValueError:
        raise BadOffer(f"stages: any of {', '.join(Stage)}", field="stages") from None
    return Audience(tuple(data.tiers), stages)


async def _enter(uow: UnitOfWork, alliance_id: uuid.UUID) -> alliance_queries.AllianceRow:
    """From the partner's book into the alliance's, the partner being active in it."""
    _, status = await membership(uow, alliance_id)
    if status != "active":
        raise NotFound("alliance not found")
    await uow.set_tenant(alliance_id)
    return await alliance_queries.alliance(uow)


async def _active_partner(uow: UnitOfWork, alliance_id: uuid.UUID, merchant: uuid.UUID) -> bool:
    return any(
        p.merchant_id == merchant and p.status == "active" for p in await alliance_queries.partners(uow, alliance_id)
    )


async def _count(db: Database, target: uuid.UUID, audience: Audience, now: datetime | None = None) -> int:
    """How many of the target's members the audience selects (consent to alliance offers included),
    counted in the target's own book — only the number comes out."""
    rules = segments.parse_rules(audience.rules())
    async with db.uow(target) as uow:
        return await segment_queries.count(uow, rules, await segments.clock(uow, now))


def _audience(o: q.OfferRow) -> Audience:
    return Audience(tuple(o.tiers), tuple(Stage(s) for s in o.stages))


# --- the funder ---------------------------------------------------------------------------------------


async def estimate(
    db: Database, funder: uuid.UUID, alliance_id: uuid.UUID, target: uuid.UUID, tiers: tuple[str, ...],
    stages: tuple[str, ...],
) -> Count:  # fmt: skip
    """The funder's live count while it builds an offer: suppressed below the threshold."""
    try:
        audience = Audience(tiers, tuple(Stage(s) for s in stages))
    except ValueError:
        raise BadOffer(f"stages: any of {', '.join(Stage)}", field="stages") from None
    async with db.uow(funder) as uow:
        await _enter(uow, alliance_id)
        if target == funder or not await _active_partner(uow, alliance_id, target):
            raise BadOffer("the target must be another active partner of the alliance", field="target_merchant_id")
    return suppressed(await _count(db, target, audience))


async def create_offer(
    db: Database, funder: uuid.UUID, alliance_id: uuid.UUID, data: OfferIn, now: datetime | None = None
) -> OfferView:
    now = now or datetime.now(UTC)
    audience = _check(data, now)
    async with db.uow(funder) as uow:
        book = await _enter(uow, alliance_id)
        target = data.target_merchant_id
        if target == funder or not await _active_partner(uow, alliance_id, target):
            raise BadOffer("the target must be another active partner of the alliance", field="target_merchant_id")
        row = await q.insert_offer(
            uow,
            q.NewOffer(
                alliance_id, funder, target, data.name.strip(), data.message.strip(), list(audience.tiers),
                [str(s) for s in audience.stages], list(data.channels), data.discount, data.min_spend, data.fee,
                book.currency, data.valid_until,
            ),
        )  # fmt: skip
        await uow.set_tenant(funder)
        await uow.commit()
    return OfferView(row, "funder", suppressed(await _count(db, target, audience, now)))


async def _mine(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, offer_id: uuid.UUID) -> q.OfferRow:
    async with db.uow(merchant) as uow:
        await _enter(uow, alliance_id)
        o = await q.offer(uow, alliance_id, offer_id)
    if o is None or merchant not in (o.funder_merchant_id, o.target_merchant_id):
        raise OfferNotFound()
    return o


async def get_offer(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, offer_id: uuid.UUID) -> OfferView:
    o = await _mine(db, merchant, alliance_id, offer_id)
    n = await _count(db, o.target_merchant_id, _audience(o))
    if merchant == o.target_merchant_id:
        return OfferView(o, "target", Count(n, str(n)))
    return OfferView(o, "funder", suppressed(n))


async def list_offers(db: Database, merchant: uuid.UUID) -> list[OfferView]:
    """Every offer the merchant funds or receives, in any of its alliances (read under the ``own_offers``
    policy: a partner's transaction sees its own offers and no other)."""
    async with db.uow(merchant) as uow:
        rows = await q.my_offers(uow, merchant)
    return [OfferView(o, "funder" if o.funder_merchant_id == merchant else "target") for o in rows]


async def results(db: Database, funder: uuid.UUID, alliance_id: uuid.UUID, offer_id: uuid.UUID) -> Results:
    o = await _mine(db, funder, alliance_id, offer_id)
    if o.funder_merchant_id != funder:
        raise OfferNotFound()
    async with db.uow(funder) as uow:
        await _enter(uow, alliance_id)
        r = await q.redemptions(uow, alliance_id, offer_id)
    return Results(suppressed(o.recipients), r.redeemed, r.sales, r.discounts, r.redeemed * o.fee)


# --- the target -----------------------------------------------------------------------------------------


async def _deliver(uow: UnitOfWork, o: q.OfferRow, now: datetime) -> list[uuid.UUID]:
    """Building block in the target's book: a segment of the offer's audience and one campaign per
    channel, started through the campaign machinery (consent, caps, quiet hours, the plan's messages
    all apply). Returns the recipients."""
    assert uow.tenant_id is not None
    label = f"{o.name} · {o.id.hex[:8]}"
    segment = Segment(tenant_id=uow.tenant_id, name=label[:100], rules=_audience(o).rules(), rules_version=1)
    uow.session.add(segment)
    await uow.session.flush()
    ids = []
    for channel in o.channels:
        c = Campaign(
            tenant_id=uow.tenant_id,
            name=f"{label} · {channel}"[:100],
            segment_id=segment.id,
            channel=channel,
            subject=o.name,
            template_a=f"{o.message} {{coupon_code}}",
            status="draft",
            alliance_offer_id=o.id,
        )
        uow.session.add(c)
        await uow.session.flush()
        await campaigns.start_in(uow, c, now)
        ids.append(c.id)
    await campaign_q.dispatch_due(uow, now)
    return await q.recipients(uow, ids)


async def decide(
    db: Database, target: uuid.UUID, alliance_id: uuid.UUID, offer_id: uuid.UUID, *, accept: bool,
    now: datetime | None = None,
) -> OfferView:  # fmt: skip
    """The target accepts (the offer is delivered, in the same transaction) or declines."""
    now = now or datetime.now(UTC)
    async with db.uow(target) as uow:
        await _enter(uow, alliance_id)
        o = await q.offer(uow, alliance_id, offer_id, lock=True)
        if o is None or o.target_merchant_id != target:
            raise OfferNotFound()
        if o.status != "proposed":
            raise OfferDecided()
        recipients: list[uuid.UUID] = []
        if accept:
            if o.valid_until <= now:
                raise BadOffer("the offer has expired", field="valid_until")
            if not await _active_partner(uow, alliance_id, o.funder_merchant_id):
                raise BadOffer("the funding partner is no longer active", field="offer_id")
            await uow.set_tenant(target)
            recipients = await _deliver(uow, o, now)
            await uow.set_tenant(alliance_id)
            secret = get_settings().secret_key
            codes = [derive_code(secret, o.id, m) for m in recipients]
            await q.insert_vouchers(uow, alliance_id, o.id, recipients, codes, now)
        await q.decide(uow, alliance_id, o.id, "accepted" if accept else "declined", now, len(recipients))
        o = await q.offer(uow, alliance_id, offer_id)
        assert o is not None
        await uow.set_tenant(target)
        await uow.commit()
    return OfferView(o, "target", Count(len(recipients), str(len(recipients))))


# --- redemption at the funder's till -----------------------------------------------------------------------


@dataclass(frozen=True)
class RedeemIn:
    code: str
    sale_amount: int
    branch_id: uuid.UUID
    business_time: datetime | None = None


async def redeem(
    db: Database, funder: uuid.UUID, alliance_id: uuid.UUID, data: RedeemIn, key: str
) -> tuple[dict[str, Any], bool]:
    """A voucher used at the funder's branch: the discount to give, and the fee booked on the alliance's
    clearing accounts — once per voucher, and once per ``key`` (a retry replays the first answer)."""
    code = data.code.strip().upper()
    if not 1 <= len(code) <= 32:
        raise ValidationFailed("code: 1-32 characters", field="code")
    if not 0 < data.sale_amount <= 10**11:
        raise ValidationFailed("sale_amount: a positive number of fen", field="sale_amount")
    at = data.business_time or datetime.now(UTC)

    async def work(uow: UnitOfWork) -> dict[str, Any]:
        branch = await alliance_queries.branch(uow, data.branch_id)
        if branch is None:
            raise NotFound("branch not found", field="branch_id")
        book = await _enter(uow, alliance_id)
        v = await q.voucher(uow, alliance_id, code)
        o = await q.offer(uow, alliance_id, v.offer_id) if v else None
        if v is None or o is None or o.funder_merchant_id != funder:
            raise VoucherNotValid("no such voucher for this merchant's offers", field="code")
        if v.redeemed_at is not None:
            raise VoucherNotValid("this voucher was already used", field="code")
        if o.status != "accepted" or at > o.valid_until:
            raise VoucherNotValid("this offer is not valid now", field="code")
        discount = discount_for(data.sale_amount, o.discount, o.min_spend)
        if discount is None:
            raise VoucherNotValid(f"the sale must be at least {o.min_spend} fen", field="sale_amount")
        entry = None
        if o.fee:
            await alliance_queries.record_spoke(
                uow, alliance_queries.SpokeRow(alliance_id, data.branch_id, funder, branch.code, branch.name)
            )
            hub = clearing.Hub("alliance", alliance_id, book.currency)
            charged, earned = cross_marketing(str(data.branch_id), str(o.target_merchant_id), o.fee)
            legs = await clearing.legs(uow, hub, [charged])
            legs += await clearing.legs(uow, hub, [earned], owner_kind="partner")
            entry = await ledger.post(
                uow,
                kind="alliance_cross_marketing",
                business_time=at,
                key=f"xmkt:{code}",
                scope=f"pos:{funder}",
                timezone=book.timezone,
                legs=legs,
                refs={"merchant": str(funder), "branch": str(data.branch_id), "offer": str(o.id)},
            )
        used = await q.redeem(
            uow,
            q.Redemption(alliance_id, o.id, code, at, data.branch_id, data.sale_amount, discount,
                         entry.id if entry else None, None),
        )  # fmt: skip
        if not used:
            raise VoucherNotValid("this voucher was already used", field="code")
        await uow.set_tenant(funder)
        return {
            "offer_id": str(o.id),
            "discount": discount,
            "fee": o.fee,
            "sale_amount": data.sale_amount,
            "entry_id": str(entry.id) if entry else None,
            "period": entry.period if entry else None,
        }

    when = data.business_time.isoformat() if data.business_time else None
    request = (str(alliance_id), code, data.sale_amount, str(data.branch_id), when)
    return await idempotency.once(db, funder, "alliance.offer.redeem", key, request, dict[str, Any], work)


# --- redemption inside the POS sale (decision 0044, 2026-12-02) ---------------------------------------------


@dataclass(frozen=True)
class SaleVoucher:
    """A voucher checked for a sale at the funder's till: what pricing needs and what the sale redeems."""

    code: str
    alliance_id: uuid.UUID
    offer: q.OfferRow
    timezone: str

    @property
    def terms(self) -> VoucherTerms:
        return VoucherTerms(self.code, self.offer.discount, self.offer.min_spend)


def normalise_code(code: str) -> str:
    return code.strip().upper()


async def voucher_for_sale(
    uow: UnitOfWork, funder: uuid.UUID, code: str, alliance_id: uuid.UUID | None, at: datetime
) -> SaleVoucher:
    """Building block for the POS quote and sale (the merchant's unit of work, left in the merchant's
    book): the voucher ``code`` of one of the funder's accepted offers, valid at ``at`` and unused, in
    ``alliance_id`` or — when the till does not say — in any alliance the merchant is active in.
    Anything else is the same 422 as the redeem endpoint's (it reveals nothing about other offers)."""
    code = normalise_code(code)
    if alliance_id is not None:
        candidates = [alliance_id]
    else:
        candidates = [m.alliance_id for m in await alliance_queries.my_alliances(uow) if m.status == "active"]
    try:
        for a in candidates:
            try:
                book = await _enter(uow, a)
            except (NotFound, NotAPartner):
                continue
            v = await q.voucher(uow, a, code)
            o = await q.offer(uow, a, v.offer_id) if v else None
            await uow.set_tenant(funder)
            if v is None or o is None or o.funder_merchant_id != funder:
                continue
            if v.redeemed_at is not None:
                raise VoucherNotValid("this voucher was already used", field="alliance_voucher")
            if o.status != "accepted" or at > o.valid_until:
                raise VoucherNotValid("this offer is not valid now", field="alliance_voucher")
            return SaleVoucher(code, a, o, book.timezone)
    finally:
        await uow.set_tenant(funder)
    raise VoucherNotValid("no such voucher for this merchant's offers", field="alliance_voucher")


async def redeem_in_sale(
    uow: UnitOfWork, funder: uuid.UUID, sv: SaleVoucher, *, sale_id: uuid.UUID, branch_id: uuid.UUID,
    at: datetime, sale_amount: int, discount: int,
) -> dict[str, Any]:  # fmt: skip
    """Building block of the POS sale: mark the voucher used by this sale and book the offer's fee (as
    :func:`redeem` does), in the sale's transaction; returns what the sale records. The ledger key
    names the sale, so a voucher given back by a refund can be used (and its fee booked) again."""
    o = sv.offer
    branch = await alliance_queries.branch(uow, branch_id)
    if branch is None:
        raise NotFound("branch not found", field="branch_id")
    book = await _enter(uow, sv.alliance_id)
    entry = None
    try:
        if o.fee:
            await alliance_queries.record_spoke(
                uow, alliance_queries.SpokeRow(sv.alliance_id, branch_id, funder, branch.code, branch.name)
            )
            hub = clearing.Hub("alliance", sv.alliance_id, book.currency)
            charged, earned = cross_marketing(str(branch_id), str(o.target_merchant_id), o.fee)
            legs = await clearing.legs(uow, hub, [charged])
            legs += await clearing.legs(uow, hub, [earned], owner_kind="partner")
            entry = await ledger.post(
                uow,
                kind="alliance_cross_marketing",
                business_time=at,
                key=f"xmkt:{sv.code}:{sale_id}",
                scope=f"pos:{funder}",
                timezone=book.timezone,
                legs=legs,
                refs={"merchant": str(funder), "branch": str(branch_id), "offer": str(o.id), "sale": str(sale_id)},
            )
        used = await q.redeem(
            uow,
            q.Redemption(sv.alliance_id, o.id, sv.code, at, branch_id, sale_amount, discount,
                         entry.id if entry else None, sale_id),
        )  # fmt: skip
        if not used:
            raise VoucherNotValid("this voucher was already used", field="alliance_voucher")
    finally:
        await uow.set_tenant(funder)
    return {
        "code": sv.code,
        "alliance_id": str(sv.alliance_id),
        "offer_id": str(o.id),
        "discount": discount,
        "fee": o.fee,
        "entry_id": str(entry.id) if entry else None,
    }


async def give_back(
    uow: UnitOfWork, funder: uuid.UUID, sale_id: uuid.UUID, recorded: dict[str, Any], at: datetime
) -> bool:
    """Building block of a full refund: the voucher the sale redeemed is unused again and its fee is
    reversed (the target reached no paying customer). False — nothing changes — when the merchant is
    no longer active in the alliance (its fee stands, like any booked charge of a partner that left)."""
    alliance_id = uuid.UUID(recorded["alliance_id"])
    try:
        book = await _enter(uow, alliance_id)
    except (NotFound, NotAPartner):
        await uow.set_tenant(funder)
        return False
    try:
        if not await q.unredeem(uow, alliance_id, recorded["code"], sale_id):
            return False
        if recorded.get("entry_id"):
            await ledger.reverse(
                uow,
                uuid.UUID(recorded["entry_id"]),
                key=f"xmkt:{recorded['code']}:{sale_id}:back",
                business_time=at,
                timezone=book.timezone,
                memo="alliance voucher given back by a full refund",
                scope=f"pos:{funder}",
            )
        return True
    finally:
        await uow.set_tenant(funder)
