"""A report's table (an English header and rows) as a file: CSV (UTF-8 with a BOM, for Excel) or
XLSX. Money is exact decimal major units (``12.34``, :func:`major`), never a float; text cells are
neutralised against formula injection (``platform.cells``). Shared by every dashboard's downloads."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from lianka.platform.cells import safe_row
from lianka.platform.money import minor_digits

FORMATS = ("csv", "xlsx")
MEDIA = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def major(minor: int, currency: str) -> Decimal:
    """Minor units as exact major units (``1234`` fen → ``12.34``)."""
    return Decimal(minor).scaleb(-minor_digits(currency))


def to_csv(header: list[str], rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(safe_row(r) for r in rows)
    return ("\ufeff" + buf.getvalue()).encode()


def to_xlsx(header: list[str], rows: list[list[object]], title: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31]
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append(safe_row(r))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def render(header: list[str], rows: list[list[object]], fmt: str, title: str) -> tuple[bytes, str]:
    """(body, media type) of the table in ``fmt`` (one of :data:`FORMATS`)."""
    body = to_csv(header, rows) if fmt == "csv" else to_xlsx(header, rows, title)
    return body, MEDIA[fmt]
