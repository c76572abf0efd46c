"""Reading what people type into console forms: amounts in yuan, whole numbers, rates, dates and
local times — exactly, and refused with a problem that names the field.

An amount typed as ``12.34`` becomes ``1234`` fen through :meth:`Money.of` (``Decimal``, never a
float); ``12.345`` has a fraction of a fen and is refused, as are ``1e3``, ``NaN`` and negatives.
Thousands separators and a leading ``¥`` are accepted. A date or a ``datetime-local`` value is read
in the merchant's time zone. Each refusal is a :class:`ValidationFailed` with ``field`` (the form's
input name) and ``reason`` (what :data:`REASON_TEXTS` explains to the reader), so a page shows the
message beside the input (:func:`field_errors`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from litestar.datastructures import FormMultiDict

from lianka.platform.errors import DomainError, ValidationFailed
from lianka.platform.money import Money, minor_digits
from lianka.platform.validate import from_msgspec
from lianka.web.console import messages
from lianka.web.console.i18n import N_, Language
from lianka.web.console.pages import FormErrors, form_text

T = TypeVar("T")
_AMOUNT = re.compile(r"^\d{1,13}(\.\d{1,20})?$")
_WHOLE = re.compile(r"^\d{1,13}$")
_RATE = re.compile(r"^\d{1,7}(\.\d{1,7})?$")
_IGNORED_IN_AMOUNTS = str.maketrans("", "", " ,，¥￥\u00a0")

#: why a value was refused -> what the reader is told (beside the field)
REASON_TEXTS: dict[str, str] = {
    "amount": N_("Enter an amount in yuan with at most two decimals, e.g. 12.50."),
    "whole": N_("Enter a whole number, e.g. 12."),
    "rate": N_("Enter a number such as 1 or 0.5."),
    "date": N_("Enter a date."),
    "datetime": N_("Enter a date and a time."),
    "required": N_("This is required."),
    "too-long": N_("This is too long."),
    "positive": N_("Enter an amount above zero."),
}

#: the code and name of a catalogue item (a coupon template, a reward), as their forms explain them
CODE_AND_NAME: dict[str, str] = {
    "code": N_("Use 1 to 40 letters, digits, “-” or “_”."),
    "name": N_("Enter a name of 1 to 100 characters."),
}


def _refuse(name: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{name}: {reason}", field=name, reason=reason)


def text_of(form: FormMultiDict, name: str, *, max_length: int = 400) -> str:
    """The stripped text of ``name`` ('' when absent); an over-long text is refused."""
    value = form_text(form, name)
    if len(value) > max_length:
        raise _refuse(name, "too-long")
    return value


def all_of(form: FormMultiDict, name: str) -> list[str]:
    """Every value of a checkbox group (strings only, stripped)."""
    return [v.strip() for v in form.getall(name, []) if isinstance(v, str) and "\x00" not in v]


def flag(form: FormMultiDict, name: str) -> bool:
    return bool(text_of(form, name, max_length=10))


def minor_units(text: str, name: str, currency: str, *, required: bool = True) -> int | None:
    """``text`` (major units: ``3,000.50``) as an exact integer of minor units, or ``None`` when empty
    and not ``required``."""
    cleaned = text.translate(_IGNORED_IN_AMOUNTS)
    if not cleaned:
        if required:
            raise _refuse(name, "amount")
        return None
    if not _AMOUNT.match(cleaned):
        raise _refuse(name, "amount")
    try:
        return Money.of(cleaned, currency).minor
    except ValueError:  # a fraction of the minor unit, or out of range
        raise _refuse(name, "amount") from None


def major_units(minor: int, currency: str) -> str:
    """What an amount input shows for ``minor`` (``300000`` fen -> ``3000.00``)."""
    digits = minor_digits(currency)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def whole(text: str, name: str, *, required: bool = True) -> int | None:
    """A whole number ≥ 0 (``None`` when empty and not ``required``)."""
    if not text:
        if required:
            raise _refuse(name, "whole")
        return None
    if not _WHOLE.match(text):
        raise _refuse(name, "whole")
    return int(text)


def rate(text: str, name: str) -> str:
    """A non-negative decimal number such as ``0.5`` (kept as text: the document stores ``Decimal``)."""
    if not _RATE.match(text):
        raise _refuse(name, "rate")
    return text


def day(text: str, name: str) -> date | None:
    """A ``YYYY-MM-DD`` date, ``None`` when empty."""
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _refuse(name, "date") from None


def local_time(text: str, name: str, timezone: str) -> datetime:
    """A ``datetime-local`` value (``2026-02-01T00:00``) as an aware time in ``timezone``."""
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        raise _refuse(name, "datetime") from None
    if naive.tzinfo is not None or not 16 <= len(text) <= 19:
        raise _refuse(name, "datetime")
    return naive.replace(tzinfo=ZoneInfo(timezone))


def start_of_day(value: date | None, timezone: str) -> datetime | None:
    """00:00 of ``value`` in ``timezone``."""
    return None if value is None else datetime(value.year, value.month, value.day, tzinfo=ZoneInfo(timezone))


def struct(type_: type[T], data: dict[str, Any]) -> T:
    """``data`` (read from a form) as the API's request struct, checked by the same constraints; a
    refusal names the field (the struct's field names are the form's input names)."""
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc) from None


# --- errors beside their fields ----------------------------------------------------------------------


def field_errors(
    exc: DomainError,
    lang: Language,
    names: Collection[str],
    texts: Mapping[str, str],
    *,
    placed: Callable[[str], str | None] = lambda field: field,
) -> FormErrors:
    """The problem ``exc`` as a form shows it: beside the input its ``field`` names (``placed`` turns
    the problem's field into the form's input name) with the text for its ``reason`` or for the
    input (``texts``: input name or the last part of it -> message), else on top of the form."""
    errors = FormErrors()
    field = exc.extra.get("field")
    name = placed(str(field)) if field else None
    if name is not None and name in names:
        leaf = name.rsplit("-", 1)[-1]
        reason = str(exc.extra.get("reason") or "")
        message = (
            texts.get(f"{leaf}:{reason}")
            or texts.get(f"{leaf}:{exc.type_slug}")
            or REASON_TEXTS.get(reason)
            or texts.get(name)
            or texts.get(leaf)
        )
        errors.fields[name] = (
            lang.gettext(message) if message else messages.problem_text(exc.type_slug, None, exc.status, lang)
        )
    else:
        message = texts.get(exc.type_slug)
        errors.general.append(
            lang.gettext(message) if message else messages.problem_text(exc.type_slug, None, exc.status, lang)
        )
    return errors
