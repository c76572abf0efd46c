"""An alliance's terms: one versioned document, like a merchant's programme.

Prices are ``Decimal`` major units per point (e.g. ``"0.010"``); money derived from them is rounded
once per posting, half-even, to the fen (``settlement.domain.money``). Fees and limits are integer
minor units of the alliance's currency.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import msgspec

from lianka.platform.money import RoundingMode, round_minor
from lianka.tenants.domain.programme import ExpiryPolicy, StoredValueConfig

Price = Decimal  # checked in decode(): 0 <= price <= 1000
Minor = Annotated[int, msgspec.Meta(ge=0, le=10**13)]
#: a per-partner setting is keyed by the partner's merchant id (as text); bounded like every string
PartnerKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MAX_PARTNER_KEYS = 1000


class BreakagePolicy(StrEnum):
    OPERATOR = "operator"  # expired points' liability is released to the operator
    ISSUERS = "issuers"  # returned to the issuing partners pro rata (their issue price back)


class Terms(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: what an issuing partner pays the operator per point it gives out
    issue_price: Price = Decimal("0.010")
    #: what a point takes off a bill at the till
    member_value: Price = Decimal("0.010")
    #: what the operator pays an accepting partner per point it takes as payment
    reimbursement_price: Price = Decimal("0.008")
    #: points per ¥1 of spend, by default and per partner (merchant id as text)
    earn_rate: Price = Decimal("1")
    earn_rates: Annotated[dict[PartnerKey, Price], msgspec.Meta(max_length=MAX_PARTNER_KEYS)] = {}
    expiry: ExpiryPolicy = ExpiryPolicy()
    breakage: BreakagePolicy = BreakagePolicy.OPERATOR
    fee_per_transaction: Minor = 0
    fee_monthly: Minor = 0
    #: points a partner may issue per month (0 = no cap), by default and per partner (merchant id)
    monthly_issuance_cap: Annotated[int, msgspec.Meta(ge=0, le=10**12)] = 0
    issuance_caps: Annotated[
        dict[PartnerKey, Annotated[int, msgspec.Meta(ge=0, le=10**12)]], msgspec.Meta(max_length=MAX_PARTNER_KEYS)
    ] = {}
    #: how much a partner may owe the operator before it must settle to issue again (0 = no limit),
    #: by default and per partner
    credit_limit: Minor = 0
    credit_limits: Annotated[dict[PartnerKey, Minor], msgspec.Meta(max_length=MAX_PARTNER_KEYS)] = {}
    #: alliance stored value: plans sold at any partner, spent at any other; ``bonus_funder`` "hq" means
    #: the operator funds bonuses, otherwise the issuing or the redeeming partner's branch
    stored_value: StoredValueConfig | None = None

    @property
    def sv(self) -> StoredValueConfig:
        return self.stored_value or StoredValueConfig()

    def rate_for(self, merchant: str) -> Decimal:
        return self.earn_rates.get(merchant, self.earn_rate)

    def cap_for(self, merchant: str) -> int:
        return self.issuance_caps.get(merchant, self.monthly_issuance_cap)

    def limit_for(self, merchant: str) -> int:
        return self.credit_limits.get(merchant, self.credit_limit)


class TermsError(ValueError):
    pass


def decode(document: object) -> Terms:
    try:
        terms = msgspec.convert(document, Terms, strict=False)
    except msgspec.ValidationError as exc:
        raise TermsError(str(exc)) from None
    prices = [
        terms.issue_price,
        terms.member_value,
        terms.reimbursement_price,
        terms.earn_rate,
        *terms.earn_rates.values(),
    ]
    if any(not (p.is_finite() and 0 <= p <= 1000) for p in prices):
        raise TermsError("prices and earn rates are between 0 and 1000")
    if terms.reimbursement_price > terms.issue_price:
        # the operator would pay out more than it takes in on every point: a loss by construction
        raise TermsError("reimbursement_price may not exceed issue_price")
    return terms


def points_unit(alliance_id: uuid.UUID) -> str:
    """The ledger unit of an alliance's points (its own scheme, apart from every merchant's)."""
    return f"PTS:alliance:{alliance_id.hex}"


def points_earned(amount: int, rate: Decimal) -> int:
    """Points a purchase of ``amount`` minor units earns at ``rate`` points per major unit: whole
    points only, the fraction never given away (``TOWARD_ZERO``, as the ``ROUND_DOWN`` it replaces)."""
    return round_minor(Decimal(amount) / 100 * rate, RoundingMode.TOWARD_ZERO)
