"""A report's table as a file download, audited: every CSV/XLSX the console's reports hand out (the HQ
dashboard's charts, the finance reports, the alliance dashboard and liability) is an export, so it is
recorded as ``export.downloaded`` in the downloading merchant's audit log (decision 0051), with what
was downloaded — the report, its period or query, the format and the number of rows."""

from __future__ import annotations

from typing import Any

from litestar import Response

from lianka.platform import audit, tables
from lianka.platform.identity.guards import IdentityService
from lianka.platform.identity.principal import Principal


async def attachment(
    ident: IdentityService,
    principal: Principal,
    table: tuple[list[str], list[list[object]]],
    fmt: str,
    filename: str,
    *,
    report: str,
    details: dict[str, Any],
    sheet: str | None = None,
) -> Response[bytes]:
    """``table`` (header, rows) as ``filename`` in ``fmt`` (csv or xlsx; the XLSX sheet is named
    ``sheet``, else ``report``), its download audited first."""
    header, rows = table
    body, media = tables.render(header, rows, fmt, sheet or report)
    await audit.downloaded(
        ident.db, principal.tenant, audit.by(principal), report, filename, {**details, "format": fmt, "rows": len(rows)}
    )
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
