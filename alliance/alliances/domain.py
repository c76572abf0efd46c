"""An alliance's terms: one versioned document, like a merchant's programme.

Prices are ``Decimal`` major units per point (e.g. ``"0.010"``); money derived from them is rounded
once per posting, half-even, to the fen (``settlement.domain.money``). Fees and limits are integer
minor units of the alliance's currency.
"""

from __future__ import annotations

import re
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
    """Terms refused; ``field`` is the path of the value at fault (``expiry.months``,
    ``earn_rates.<merchant id>``), None when the whole document is; ``reason`` says why (``invalid``:
    not a value of its type or bounds, ``range``: a price outside 0..1000, ``above-issue-price``)."""

    def __init__(self, message: str, field: str | None = None, reason: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


_MSGSPEC_PATH = re.compile(r"- at `\$\.?(?P<path>[^`]*)`$")


def _at_fault(document: object, path: str) -> str:
    """msgspec names a refused value of a per-partner setting only as ``earn_rates[...]``: the path
    of the entry it refuses instead (``earn_rates.<merchant id>``), found by converting each alone."""
    name = path.removesuffix("[...]")
    values = document.get(name) if name != path and isinstance(document, dict) else None
    if not isinstance(values, dict):
        return path
    for key, value in values.items():
        try:
            msgspec.convert({name: {key: value}}, Terms, strict=False)
        except msgspec.ValidationError:
            return f"{name}.{key}"
    return path


def decode(document: object) -> Terms:
    try:
        terms = msgspec.convert(document, Terms, strict=False)
    except msgspec.ValidationError as exc:
        found = _MSGSPEC_PATH.search(str(exc))
        path = found.group("path") if found else ""
        raise TermsError(str(exc), _at_fault(document, path) if path else None) from None
    prices = {
        "issue_price": terms.issue_price,
        "member_value": terms.member_value,
        "reimbursement_price": terms.reimbursement_price,
        "earn_rate": terms.earn_rate,
        **{f"earn_rates.{key}": rate for key, rate in terms.earn_rates.items()},
    }
    for field, price in prices.items():
        if not (price.is_finite() and 0 <= price <= 1000):
            raise TermsError("prices and earn rates are between 0 and 1000", field, "range")
    if terms.reimbursement_price > terms.issue_price:
        # the operator would pay out more than it takes in on every point: a loss by construction
        raise TermsError("reimbursement_price may not exceed issue_price", "reimbursement_price", "above-issue-price")
    return terms


def points_unit(alliance_id: uuid.UUID) -> str:
    """The ledger unit of an alliance's points (its own scheme, apart from every merchant's)."""
    return f"PTS:alliance:{alliance_id.hex}"


def points_earned(amount: int, rate: Decimal) -> int:
    """Points a purchase of ``amount`` minor units earns at ``rate`` points per major unit: whole
    points only, the fraction never given away (``TOWARD_ZERO``, as the ``ROUND_DOWN`` it replaces)."""
    return round_minor(Decimal(amount) / 100 * rate, RoundingMode.TOWARD_ZERO)
