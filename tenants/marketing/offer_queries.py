"""Alliance cross-marketing's SQL (decision 0044). Offers and vouchers live in the alliance's book
(``tenant_id`` is the alliance's id): the statements here run after the use case has switched the
unit of work into that book. Fixed text, bound parameters."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import text

from lianka.platform.db import UnitOfWork


class OfferRow(NamedTuple):
    alliance_id: uuid.UUID
    id: uuid.UUID
    funder_merchant_id: uuid.UUID
    target_merchant_id: uuid.UUID
    name: str
    message: str
    tiers: list[str]
    stages: list[str]
    channels: list[str]
    discount: int
    min_spend: int
    fee: int
    currency: str
    valid_until: datetime
    status: str
    recipients: int
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True)
class NewOffer:
    alliance_id: uuid.UUID
    funder: uuid.UUID
    target: uuid.UUID
    name: str
    message: str
    tiers: list[str]
    stages: list[str]
    channels: list[str]
    discount: int
    min_spend: int
    fee: int
    currency: str
    valid_until: datetime


class VoucherRow(NamedTuple):
    offer_id: uuid.UUID
    member_id: uuid.UUID
    redeemed_at: datetime | None


class Redemptions(NamedTuple):
    redeemed: int
    sales: int
    discounts: int


_COLUMNS = (
    "tenant_id, id, funder_merchant_id, target_merchant_id, name, message, tiers, stages, channels, discount, "
    "min_spend, fee, currency, valid_until, status, recipients, created_at, decided_at"
)
_INSERT = text(
    "INSERT INTO xmkt_offers (tenant_id, funder_merchant_id, target_merchant_id, name, message, tiers, stages, "
    "channels, discount, min_spend, fee, currency, valid_until) VALUES (:a, :f, :t, :n, :msg, CAST(:tiers AS jsonb), "
    "CAST(:stages AS jsonb), CAST(:channels AS jsonb), :d, :ms, :fee, :cur, :vu) RETURNING " + _COLUMNS
)
_MINE = text(
    "SELECT " + _COLUMNS + " FROM xmkt_offers WHERE (funder_merchant_id = :m OR target_merchant_id = :m) "
    "ORDER BY created_at DESC LIMIT 200"
)
_ONE = text("SELECT " + _COLUMNS + " FROM xmkt_offers WHERE tenant_id = :a AND id = :o")
_ONE_FOR_UPDATE = text("SELECT " + _COLUMNS + " FROM xmkt_offers WHERE tenant_id = :a AND id = :o FOR UPDATE")
_DECIDE = text("UPDATE xmkt_offers SET status = :s, decided_at = :at, recipients = :r WHERE tenant_id = :a AND id = :o")
_VOUCHERS = text(
    "INSERT INTO xmkt_vouchers (tenant_id, offer_id, member_id, code, issued_at) "
    "SELECT :a, :o, m, c, :at FROM unnest(CAST(:members AS uuid[]), CAST(:codes AS text[])) AS v(m, c) "
    "ON CONFLICT DO NOTHING"
)
_REDEEM = text(
    "UPDATE xmkt_vouchers v SET redeemed_at = :at, branch_id = :b, sale_amount = :amount, discount = :d, entry_id = :e, "
    "sale_id = :s "
    "FROM xmkt_offers o WHERE v.tenant_id = :a AND v.code = :code AND v.redeemed_at IS NULL "
    "AND o.tenant_id = v.tenant_id AND o.id = v.offer_id AND o.id = :o "
    "RETURNING v.member_id"
)
_VOUCHER = text(
    "SELECT v.offer_id, v.member_id, v.redeemed_at FROM xmkt_vouchers v WHERE v.tenant_id = :a AND v.code = :code"
)
_REDEMPTIONS = text(
    "SELECT count(redeemed_at), coalesce(sum(sale_amount), 0), coalesce(sum(discount), 0) FROM xmkt_vouchers WHERE tenant_id = :a "
    "AND offer_id = :o"
)


async def insert_offer(uow: UnitOfWork, new: NewOffer) -> OfferRow:
    row = (
        await uow.session.execute(
            _INSERT,
            {
                "a": new.alliance_id,
                "f": new.funder,
                "t": new.target,
                "n": new.name,
                "msg": new.message,
                "tiers": json.dumps(new.tiers),
                "stages": json.dumps(new.stages),
                "channels": json.dumps(new.channels),
                "d": new.discount,
                "ms": new.min_spend,
                "fee": new.fee,
                "cur": new.currency,
                "vu": new.valid_until,
            },
        )
    ).one()
    return OfferRow(*row)


async def my_offers(uow: UnitOfWork, merchant: uuid.UUID) -> list[OfferRow]:
    """Offers the merchant funds or is the target of (the RLS policy ``own_offers`` allows no more)."""
    return [OfferRow(*r) for r in await uow.session.execute(_MINE, {"m": merchant})]


async def offer(uow: UnitOfWork, alliance_id: uuid.UUID, offer_id: uuid.UUID, *, lock: bool = False) -> OfferRow | None:
    row = (await uow.session.execute(_ONE_FOR_UPDATE if lock else _ONE, {"a": alliance_id, "o": offer_id})).first()
    return OfferRow(*row) if row else None


async def decide(
    uow: UnitOfWork, alliance_id: uuid.UUID, offer_id: uuid.UUID, status: str, at: datetime, recipients: int
) -> None:
    await uow.session.execute(_DECIDE, {"a": alliance_id, "o": offer_id, "s": status, "at": at, "r": recipients})


async def insert_vouchers(
    uow: UnitOfWork, alliance_id: uuid.UUID, offer_id: uuid.UUID, members: list[uuid.UUID], codes: list[str],
    at: datetime,
) -> None:  # fmt: skip
    await uow.session.execute(
        _VOUCHERS, {"a": alliance_id, "o": offer_id, "members": members, "codes": codes, "at": at}
    )


async def voucher(uow: UnitOfWork, alliance_id: uuid.UUID, code: str) -> VoucherRow | None:
    row = (await uow.session.execute(_VOUCHER, {"a": alliance_id, "code": code})).first()
    return VoucherRow(*row) if row else None


@dataclass(frozen=True)
class Redemption:
    alliance_id: uuid.UUID
    offer_id: uuid.UUID
    code: str
    at: datetime
    branch: uuid.UUID
    amount: int
    discount: int
    entry: uuid.UUID | None
    #: the POS sale it was redeemed in (None: the separate redeem endpoint)
    sale: uuid.UUID | None = None


async def redeem(uow: UnitOfWork, r: Redemption) -> bool:
    """Mark the voucher used — once: False when it already was (a conditional ``UPDATE``)."""
    done = await uow.session.execute(
        _REDEEM,
        {"a": r.alliance_id, "o": r.offer_id, "code": r.code, "at": r.at, "b": r.branch, "amount": r.amount,
         "d": r.discount, "e": r.entry, "s": r.sale},
    )  # fmt: skip
    return done.first() is not None


_UNREDEEM = text(
    "UPDATE xmkt_vouchers SET redeemed_at = NULL, branch_id = NULL, sale_amount = NULL, discount = NULL, "
    "entry_id = NULL, sale_id = NULL WHERE tenant_id = :a AND code = :code AND sale_id = :s RETURNING offer_id"
)


async def unredeem(uow: UnitOfWork, alliance_id: uuid.UUID, code: str, sale_id: uuid.UUID) -> bool:
    """The voucher the sale used is unused again (a full refund); False when that sale holds none."""
    done = await uow.session.execute(_UNREDEEM, {"a": alliance_id, "code": code, "s": sale_id})
    return done.first() is not None


async def redemptions(uow: UnitOfWork, alliance_id: uuid.UUID, offer_id: uuid.UUID) -> Redemptions:
    row = (await uow.session.execute(_REDEMPTIONS, {"a": alliance_id, "o": offer_id})).one()
    return Redemptions(int(row[0]), int(row[1]), int(row[2]))


_RECIPIENTS = text(
    "SELECT DISTINCT member_id FROM campaign_messages WHERE campaign_id = ANY(CAST(:c AS uuid[])) ORDER BY member_id"
)


async def recipients(uow: UnitOfWork, campaigns: list[uuid.UUID]) -> list[uuid.UUID]:
    """In the target's book: the members the offer's campaigns write a message for (its recipients)."""
    return list(await uow.session.scalars(_RECIPIENTS, {"c": campaigns}))
