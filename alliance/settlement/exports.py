"""Statements as files: CSV, XLSX, PDF, and the payout/collection instruction file.

Every file is made from the stored statements (never recomputed), amounts as integers in minor units
plus a formatted column, so a spreadsheet sums exactly what the ledger holds. Each statement lists
its late items under their total. Every text cell of a CSV/XLSX goes through
:func:`~lianka.platform.cells.safe_cell` (names come from merchants: ``=HYPERLINK(…)`` stays text);
numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lianka.alliance.settlement.statements import CloseResult, Statement
from lianka.platform.cells import safe_row
from lianka.platform.errors import ValidationFailed
from lianka.platform.money import Money, minor_digits

LINE_LABELS: dict[str, tuple[str, str]] = {
    "stored_value_collected": ("储值收款", "Stored value collected"),
    "stored_value_consumed_principal": ("储值消费（本金）", "Stored value consumed (principal)"),
    "stored_value_bonus_funded": ("赠送金额补贴", "Bonus funded"),
    "stored_value_bonus_charged": ("赠送金额承担", "Bonus charged"),
    "stored_value_refunded": ("储值退款", "Stored value refunded"),
    "points_issued": ("积分发行", "Points issued"),
    "points_redeemed": ("积分兑付", "Points redeemed"),
    "points_expired": ("积分过期返还", "Points expired (returned)"),
    "cross_marketing_charged": ("联盟引流券费用", "Cross-marketing fees paid"),
    "cross_marketing_earned": ("联盟引流券收入", "Cross-marketing fees earned"),
    "fee": ("服务费", "Fees"),
    "adjustment": ("调整", "Adjustments"),
}
HEADER = [
    "period",
    "entity_kind",
    "entity_code",
    "entity_name",
    "line",
    "label",
    "points",
    "amount_minor",
    "amount",
    "currency",
    "partner",
    "late_entry_id",
    "late_business_time",
    "late_belongs_to",
    "late_line",
    "late_branch",
]


def label(line: str, lang: str = "en") -> str:
    zh, en = LINE_LABELS.get(line, (line, line))
    return zh if lang == "zh" else en


def fmt(minor: int, currency: str) -> str:
    return Money(minor, currency).format()


def _major(minor: int, currency: str) -> Decimal:
    """Exact decimal major units for a spreadsheet cell (never a float)."""
    return Decimal(minor).scaleb(-minor_digits(currency))


def partner_codes(statements: Iterable[Statement]) -> dict[uuid.UUID, str]:
    """merchant id -> slug of the alliance partners (and the operator, the hub) among ``statements``:
    what a branch statement's ``parent_id`` is shown as."""
    return {s.merchant_id: s.code for s in statements if s.merchant_id is not None and s.entity_kind != "branch"}


def partner_of(s: Statement, codes: dict[uuid.UUID, str]) -> str:
    """The slug of the partner a statement is about or belongs to ('' for a chain's, and for a hub)."""
    if s.entity_kind == "partner":
        return s.code
    return codes.get(s.parent_id, "") if s.parent_id is not None else ""


def late_label(item: dict[str, Any], lang: str = "en") -> str:
    return f"迟到项目：{label(item['line'], 'zh')}" if lang == "zh" else f"Late item: {label(item['line'])}"


def rows(result: CloseResult, statements: Iterable[Statement] | None = None) -> list[list[object]]:
    """One row per statement line, then opening, late items (their total, then each one), net and
    closing position. Text cells are made safe to open in a spreadsheet."""
    chosen = list(statements if statements is not None else result.statements)
    codes = partner_codes(chosen)
    out: list[list[object]] = []
    for s in chosen:
        base = [result.period, s.entity_kind, s.code, s.name]
        partner = [partner_of(s, codes)]
        out.append(
            [*base, "opening", "Opening position", "", s.opening, fmt(s.opening, s.currency), s.currency, *partner]
        )
        for line, v in s.lines.items():
            out.append(
                [
                    *base,
                    line,
                    label(line),
                    v["points"] or "",
                    v["amount"],
                    fmt(v["amount"], s.currency),
                    s.currency,
                    *partner,
                ]
            )
        if s.late or s.late_items:
            out.append(
                [*base, "late_items", "of which late items", "", s.late, fmt(s.late, s.currency), s.currency, *partner]
            )
        for item in s.late_items:
            out.append(
                [
                    *base,
                    "late_item",
                    late_label(item),
                    item["points"] or "",
                    item["amount"],
                    fmt(item["amount"], s.currency),
                    s.currency,
                    *partner,
                    item["entry_id"],
                    item["business_time"],
                    item["belongs_to"],
                    item["line"],
                    item["branch"],
                ]
            )
        out.append([*base, "net", f"Net ({s.direction})", "", s.net, fmt(s.net, s.currency), s.currency, *partner])
        out.append(
            [*base, "closing", "Closing position", "", s.closing, fmt(s.closing, s.currency), s.currency, *partner]
        )
    return [safe_row([*r, *[""] * (len(HEADER) - len(r))]) for r in out]  # every row as wide as the header


def to_csv(result: CloseResult, statements: Iterable[Statement] | None = None) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    w.writerows(rows(result, statements))
    w.writerow([])
    w.writerow(safe_row(["checksum", result.checksum]))
    return ("\ufeff" + buf.getvalue()).encode()  # BOM: Excel opens UTF-8 Chinese correctly


def to_xlsx(result: CloseResult, statements: Iterable[Statement] | None = None) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    chosen = list(statements if statements is not None else result.statements)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Summary"
    ws.append(safe_row(["Period", result.period, "Checksum", result.checksum]))
    ws.append([])
    ws.append(["Entity", "Kind", "Opening", "Net", "Direction", "Closing", "Currency", "Late items", "Partner"])
    for cell in ws[3]:
        cell.font = Font(bold=True)
    codes = partner_codes(chosen)
    for s in chosen:
        ws.append(
            safe_row(
                [
                    f"{s.code} {s.name}",
                    s.entity_kind,
                    _major(s.opening, s.currency),
                    _major(s.net, s.currency),
                    s.direction,
                    _major(s.closing, s.currency),
                    s.currency,
                    _major(s.late, s.currency),
                    partner_of(s, codes),
                ]
            )
        )
        for col in (3, 4, 6, 8):
            ws.cell(row=ws.max_row, column=col).number_format = "#,##0.00"
    lines = wb.create_sheet("Lines")
    lines.append(HEADER)
    for cell in lines[1]:
        cell.font = Font(bold=True)
    for r in rows(result, chosen):
        lines.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_pdf(result: CloseResult, statements: Iterable[Statement] | None = None, *, title: str = "") -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"  # a CID font reportlab ships: Chinese without bundling a TTF
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    styles = getSampleStyleSheet()
    for st in styles.byName.values():
        st.fontName = font
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=title or f"Settlement {result.period}")
    story: list[object] = []
    chosen = list(statements if statements is not None else result.statements)
    codes = partner_codes(chosen)
    for i, s in enumerate(chosen):
        if i:
            story.append(PageBreak())
        story.append(Paragraph(f"结算单 Settlement statement — {result.period}", styles["Title"]))
        story.append(Paragraph(escape(f"{s.name} ({s.code}) · {s.entity_kind}"), styles["Heading2"]))
        if partner_of(s, codes) and s.entity_kind == "branch":
            story.append(Paragraph(escape(f"合作商户 Partner: {partner_of(s, codes)}"), styles["Normal"]))
        data: list[list[str]] = [
            ["项目 Line", "积分 Points", "金额 Amount"],
            ["期初 Opening position", "", fmt(s.opening, s.currency)],
        ]
        for line, v in s.lines.items():
            data.append(
                [
                    f"{label(line, 'zh')} {label(line)}",
                    f"{v['points']:,}" if v["points"] else "",
                    fmt(v["amount"], s.currency),
                ]
            )
        if s.late:
            data.append(["其中迟到项目 of which late items", "", fmt(s.late, s.currency)])
        data.append([f"净额 Net ({s.direction})", "", fmt(s.net, s.currency)])
        data.append(["期末 Closing position", "", fmt(s.closing, s.currency)])
        table = Table(data, colWidths=[260, 90, 110])
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), font),
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                    ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ]
            )
        )
        story += [Spacer(1, 12), table, Spacer(1, 12)]
        if s.late_items:
            story += [Paragraph("迟到项目 Late items", styles["Heading3"]), _late_table(s, font), Spacer(1, 12)]
        story.append(Paragraph(f"Checksum {s.checksum}", styles["Normal"]))
    doc.build(story)
    return out.getvalue()


def _late_table(s: Statement, font: str) -> Any:
    """The statement's late items: entry, business time, the month it belonged to, line, branch, amount."""
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    data: list[list[str]] = [
        ["分录 Entry", "业务时间 Business time", "所属月份 Month", "项目 Line", "门店 Branch", "金额 Amount"]
    ]
    for item in s.late_items:
        data.append(
            [
                item["entry_id"],
                item["business_time"],
                item["belongs_to"],
                label(item["line"]),
                item["branch"],
                fmt(item["amount"], s.currency),
            ]
        )
    table = Table(data, colWidths=[128, 100, 45, 110, 50, 62], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("FONTSIZE", (0, 0), (-1, -1), 6),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                ("ALIGN", (-1, 0), (-1, -1), "RIGHT"),
            ]
        )
    )
    return table


def escape(text: str) -> str:
    """Text for a reportlab Paragraph (which reads a little markup): names are shown, not parsed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def instructions(result: CloseResult, hub_name: str, statements: Iterable[Statement] | None = None) -> bytes:
    """Who pays whom how much: one transfer per spoke (partners in an alliance), through the hub — the
    chain's HQ, or the alliance's operator (named by the hub's own statement when there is one); only
    those of ``statements`` when given."""
    top = "partner" if result.scope == "alliance" else "branch"
    hub = next((s for s in result.statements if s.entity_kind == "hub"), None)
    hub_name = hub.name if hub is not None else hub_name
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["period", "payer", "payee", "amount_minor", "amount", "currency", "reference"])
    for s in statements if statements is not None else result.statements:
        if s.entity_kind != top or s.closing == 0:
            continue
        payer, payee = (hub_name, f"{s.code} {s.name}") if s.closing > 0 else (f"{s.code} {s.name}", hub_name)
        w.writerow(
            safe_row(
                [
                    result.period,
                    payer,
                    payee,
                    abs(s.closing),
                    fmt(abs(s.closing), s.currency),
                    s.currency,
                    f"LK-{result.period}-{s.checksum[:12]}",
                ]
            )
        )
    return ("\ufeff" + buf.getvalue()).encode()


MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


@dataclass(frozen=True)
class StatementFile:
    """A file to download: its name, media type and bytes."""

    filename: str
    media_type: str
    body: bytes


def render(
    result: CloseResult, fmt: str, name: str, statements: list[Statement] | None = None, hub_name: str = "HQ"
) -> StatementFile:
    """The period's statements (or only ``statements``) as ``csv``, ``xlsx`` or ``pdf``, or the
    instruction file (``instructions``, a CSV named ``<name>-instructions-<period>.csv``)."""
    if fmt == "csv":
        body = to_csv(result, statements)
    elif fmt == "xlsx":
        body = to_xlsx(result, statements)
    elif fmt == "pdf":
        body = to_pdf(result, statements)
    elif fmt == "instructions":
        body, fmt = instructions(result, hub_name, statements), "csv"
        name = f"{name}-instructions"
    else:
        raise ValidationFailed("format is csv, xlsx, pdf or instructions", field="format")
    return StatementFile(f"{name}-{result.period}.{fmt}", MEDIA[fmt], body)
