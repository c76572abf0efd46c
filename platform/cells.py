"""Cells of the spreadsheets and CSV files the product writes, made safe to open.

A spreadsheet program treats a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula ("CSV injection", OWASP): a member who names themselves ``=HYPERLINK(...)``
would run it on the desk of whoever opens the export. Every CSV/XLSX writer passes each *text* cell
through :func:`safe_cell`; numbers stay numbers (``-1200`` is an amount, not a formula), so only
``str`` values are touched. The neutral form prefixes a single quote, which spreadsheets show as
text and hide, and which a program reading the file can strip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged unless it is text a spreadsheet would evaluate; then ``'`` + value."""
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]
