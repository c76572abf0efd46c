"""Checks of the few values every area accepts: a currency, a time zone; and msgspec's refusals as
problems that name the field.

One place, so that an alliance, a merchant and a branch refuse the same bad values with the same
problem, and so that a value that passes here can never fail later (a time zone that ``ZoneInfo``
cannot load would otherwise be stored and break every month-end close of its book).
"""

from __future__ import annotations

import re
import zoneinfo

import msgspec

from lianka.platform.errors import ValidationFailed
from lianka.platform.money import minor_digits


def currency(code: str, field: str = "currency") -> str:
    """``code`` when it is an ISO 4217 currency the ledger can book (it knows its minor digits)."""
    try:
        minor_digits(code)
    except ValueError:
        raise ValidationFailed(
            f"unsupported currency {code!r}: use an ISO 4217 code such as CNY", field=field
        ) from None
    return code


def time_zone(name: str, field: str = "timezone") -> str:
    """``name`` when it is an IANA time zone this machine knows (``Asia/Shanghai``)."""
    if not name or "\x00" in name or len(name) > 64:
        raise ValidationFailed("unknown time zone", field=field)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed(
            f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai", field=field
        ) from None
    return name


_MSGSPEC_PATH = re.compile(r"- at `\$\.?(?P<path>[^`]*)`$")


def from_msgspec(exc: msgspec.ValidationError, **extra: object) -> ValidationFailed:
    """msgspec's refusal as a 400 whose ``field`` is the path of the value at fault, in msgspec's
    notation (``tiers[1].threshold``; absent when the whole document is at fault) and ``reason``
    ``invalid``."""
    found = _MSGSPEC_PATH.search(str(exc))
    where = {"field": found.group("path")} if found and found.group("path") else {}
    return ValidationFailed(str(exc), reason="invalid", **where, **extra)
