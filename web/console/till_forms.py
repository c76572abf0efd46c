"""The web till's forms: what the cashier typed, as the POS use cases' request bodies.

Amounts are typed in major units (``12.34``) and become integer minor units exactly (no float ever
touches them: a regular expression admits at most the currency's decimals, ``Money.of`` scales).
Bodies are built with ``msgspec.convert`` into the API's own structs (``tenants.pos.schemas``), so the
same bounds apply as for a JSON request; a refusal names the form field it is about, and the page
shows it beside that field.

What the cashier typed travels back into the form when something is refused (``values``), so
nothing has to be typed twice.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from litestar.datastructures import FormMultiDict

from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.money import Money, minor_digits
from lianka.tenants.pos import schemas
from lianka.web.console.i18n import N_
from lianka.web.console.pages import form_text

T = TypeVar("T")

#: payment methods the till offers (the API accepts any ``[a-z_]{2,32}``)
PAYMENT_METHODS = {
    "cash": N_("Cash"),
    "wechat_pay": N_("WeChat Pay"),
    "alipay": N_("Alipay"),
    "bank_card": N_("Bank card"),
}
#: the till's problems that name no field, placed beside the field they are about
FIELD_OF_PROBLEM = {
    "insufficient-points": "points",
    "rule-violation": "points",  # the pricing's "at least / at most N points" rules
    "insufficient-stored-value": "stored_value",
    "payment-exceeds-bill": "stored_value",
    "coupon-not-applicable": "coupons",
    "alliance-voucher-not-valid": "alliance_voucher",
    "not-eligible-to-join": "join_phone",
    "refund-exceeds-sale": "refund_amount",
}
#: the body's path in a msgspec error ("$.lines[0].qty") -> the form field
_PATH = re.compile(r"at `\$\.([a-z_]+)")
MAX_LINES = 50


def place(exc: DomainError, fields: dict[str, str] | None = None) -> DomainError:
    """``exc`` with the form field it is about, when it names none (``fields``, else
    :data:`FIELD_OF_PROBLEM`, by the problem's type)."""
    where = {**FIELD_OF_PROBLEM, **(fields or {})}
    if not exc.extra.get("field") and exc.type_slug in where:
        exc.extra["field"] = where[exc.type_slug]
    return exc


def amount(raw: str, name: str, currency: str, *, required: bool = False) -> int | None:
    """``"12.34"`` → ``1234`` (CNY); blank → None (or a problem when ``required``)."""
    raw = raw.strip().removeprefix("¥").replace(",", "").strip()
    if not raw:
        if required:
            raise ValidationFailed(f"{name} is required", field=name)
        return None
    digits = minor_digits(currency)
    pattern = rf"\d{{1,11}}(\.\d{{1,{digits}}})?" if digits else r"\d{1,11}"
    if not re.fullmatch(pattern, raw):
        raise ValidationFailed(f"{name}: an amount such as 12.50", field=name)
    return Money.of(raw, currency).minor


def count(raw: str, name: str) -> int:
    """A whole number (points, a quantity); blank is 0."""
    raw = raw.strip()
    if not raw:
        return 0
    if not re.fullmatch(r"\d{1,11}", raw):
        raise ValidationFailed(f"{name}: a whole number", field=name)
    return int(raw)


def an_id(raw: str, name: str) -> uuid.UUID | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationFailed(f"{name} is not an id", field=name) from None


def convert(data: dict[str, Any], into: type[T], *, fields: dict[str, str] | None = None) -> T:
    """``data`` as the API's struct ``into``, with its bounds; a refusal names the form field (the
    body's field, or its form name in ``fields``)."""
    try:
        return msgspec.convert(data, into)
    except msgspec.ValidationError as exc:
        found = _PATH.search(str(exc))
        name = found.group(1) if found else None
        raise ValidationFailed(str(exc), field=(fields or {}).get(name or "", name)) from None


@dataclass
class Line:
    sku: str = ""
    qty: str = ""
    price: str = ""


@dataclass
class BasketValues:
    """The basket form as typed (re-rendered after a refusal)."""

    amount: str = ""
    points: str = ""
    stored_value: str = ""
    payment_method: str = "cash"
    coupons: list[str] = field(default_factory=list)
    alliance_voucher: str = ""
    lines: list[Line] = field(default_factory=lambda: [Line()])
    member_id: str = ""
    join_phone: str = ""
    branch_id: str = ""
    key: str = ""


def basket_values(form: FormMultiDict) -> BasketValues:
    skus, qtys, prices = (form.getall(name, []) for name in ("sku", "qty", "price"))
    lines = [Line(str(s).strip(), str(q).strip(), str(p).strip()) for s, q, p in zip(skus, qtys, prices, strict=False)][
        :MAX_LINES
    ]
    return BasketValues(
        amount=form_text(form, "amount"),
        points=form_text(form, "points"),
        stored_value=form_text(form, "stored_value"),
        payment_method=form_text(form, "payment_method") or "cash",
        coupons=[str(c).strip() for c in form.getall("coupon", []) if str(c).strip()][:20],
        alliance_voucher=form_text(form, "alliance_voucher"),
        lines=lines or [Line()],
        member_id=form_text(form, "member_id"),
        join_phone=form_text(form, "join_phone"),
        branch_id=form_text(form, "branch_id"),
        key=form_text(form, "key"),
    )


def basket(v: BasketValues, currency: str) -> schemas.Basket | None:
    """The POS basket, or None while there is nothing to price yet (no amount and no line)."""
    lines: list[tuple[str, int, int]] = []  # (sku, qty, unit price)
    for line in v.lines:
        if not (line.sku or line.qty or line.price):
            continue
        if not line.sku:
            raise ValidationFailed("every line needs an item code", field="lines")
        price = amount(line.price, "lines", currency, required=True) or 0
        lines.append((line.sku, count(line.qty or "1", "lines"), price))
    total = amount(v.amount, "amount", currency)
    if total is None and lines:  # the lines say what the basket is worth
        total = sum(qty * price for _, qty, price in lines)
    if total is None:
        return None
    member_id = an_id(v.member_id, "member_id")
    items = [{"sku": sku, "qty": qty, "unit_price": price} for sku, qty, price in lines]
    return convert(
        {
            "amount": total,
            "lines": items,
            "member_id": member_id,
            "join_phone": (v.join_phone or None) if member_id is None else None,
            "branch_id": an_id(v.branch_id, "branch_id"),
            "points": count(v.points, "points"),
            "stored_value": amount(v.stored_value, "stored_value", currency) or 0,
            "coupons": v.coupons,
            "alliance_voucher": v.alliance_voucher.strip() or None,
            "payment_method": v.payment_method,
        },
        schemas.Basket,
    )


@dataclass
class RefundValues:
    mode: str = "all"
    amount: str = ""
    #: quantity to refund per line number, as typed
    qty: dict[int, str] = field(default_factory=dict)
    key: str = ""


#: the refund form's fields are named apart from the basket's (both are on the till page)
_REFUND_FIELDS = {"amount": "refund_amount", "lines": "refund_lines"}


def refund_values(form: FormMultiDict) -> RefundValues:
    qty: dict[int, str] = {}
    for name in form:
        if name.startswith("qty_") and name[4:].isdigit() and len(qty) < 500:
            qty[int(name[4:])] = form_text(form, name)
    return RefundValues(
        mode=form_text(form, "mode") or "all",
        amount=form_text(form, "refund_amount"),
        qty=qty,
        key=form_text(form, "key"),
    )


def refund(v: RefundValues, currency: str) -> schemas.RefundIn:
    if v.mode == "amount":
        return convert(
            {"amount": amount(v.amount, "refund_amount", currency, required=True)},
            schemas.RefundIn,
            fields=_REFUND_FIELDS,
        )
    if v.mode == "lines":
        lines = [
            {"line_no": n, "qty": count(q, "refund_lines")}
            for n, q in sorted(v.qty.items())
            if count(q, "refund_lines")
        ]
        if not lines:
            raise ValidationFailed("choose the quantities to refund", field="refund_lines")
        return convert({"lines": lines}, schemas.RefundIn, fields=_REFUND_FIELDS)
    if v.mode != "all":
        raise ValidationFailed("mode is all, amount or lines", field="mode")
    return schemas.RefundIn()
