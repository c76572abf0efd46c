"""Statements as files: CSV, XLSX, PDF, and the payout/collection instruction file.

Every file is made from the stored statements (never recomputed), amounts as integers in minor units
plus a formatted column, so a spreadsheet sums exactly what the ledger holds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal

from lianka.alliance.settlement.close import CloseResult, Statement
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
    "fee": ("服务费", "Fees"),
    "adjustment": ("调整", "Adjustments"),
}
HEADER = ["period", "entity_kind", "entity_code", "entity_name", "line", "label", "points", "amount_minor",
          "amount", "currency"]


def label(line: str, lang: str = "en") -> str:
    zh, en = LINE_LABELS.get(line, (line, line))
    return zh if lang == "zh" else en


def fmt(minor: int, currency: str) -> str:
    return Money(minor, currency).format()


def _major(minor: int, currency: str) -> Decimal:
    """Exact decimal major units for a spreadsheet cell (never a float)."""
    return Decimal(minor).scaleb(-minor_digits(currency))


def rows(result: CloseResult, statements: Iterable[Statement] | None = None) -> list[list[object]]:
    """One row per statement line, then opening, late items, net and closing position."""
    out: list[list[object]] = []
    for s in statements if statements is not None else result.statements:
        base = [result.period, s.entity_kind, s.code, s.name]
        out.append([*base, "opening", "Opening position", "", s.opening, fmt(s.opening, s.currency), s.currency])
        for line, v in s.lines.items():
            out.append([*base, line, label(line), v["points"] or "", v["amount"], fmt(v["amount"], s.currency),
                        s.currency])
        if s.late:
            out.append([*base, "late_items", "of which late items", "", s.late, fmt(s.late, s.currency), s.currency])
        out.append([*base, "net", f"Net ({s.direction})", "", s.net, fmt(s.net, s.currency), s.currency])
        out.append([*base, "closing", "Closing position", "", s.closing, fmt(s.closing, s.currency), s.currency])
    return out


def to_csv(result: CloseResult, statements: Iterable[Statement] | None = None) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    w.writerows(rows(result, statements))
    w.writerow([])
    w.writerow(["checksum", result.checksum])
    return ("\ufeff" + buf.getvalue()).encode()  # BOM: Excel opens UTF-8 Chinese correctly


def to_xlsx(result: CloseResult, statements: Iterable[Statement] | None = None) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    chosen = list(statements if statements is not None else result.statements)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Summary"
    ws.append(["Period", result.period, "Checksum", result.checksum])
    ws.append([])
    ws.append(["Entity", "Kind", "Opening", "Net", "Direction", "Closing", "Currency"])
    for cell in ws[3]:
        cell.font = Font(bold=True)
    for s in chosen:
        ws.append([f"{s.code} {s.name}", s.entity_kind, _major(s.opening, s.currency), _major(s.net, s.currency),
                   s.direction, _major(s.closing, s.currency), s.currency])
        for col in (3, 4, 6):
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
    for i, s in enumerate(chosen):
        if i:
            story.append(PageBreak())
        story.append(Paragraph(f"结算单 Settlement statement — {result.period}", styles["Title"]))
        story.append(Paragraph(f"{s.name} ({s.code}) · {s.entity_kind}", styles["Heading2"]))
        data: list[list[str]] = [["项目 Line", "积分 Points", "金额 Amount"],
                                 ["期初 Opening position", "", fmt(s.opening, s.currency)]]
        for line, v in s.lines.items():
            data.append([f"{label(line, 'zh')} {label(line)}", f"{v['points']:,}" if v["points"] else "",
                         fmt(v["amount"], s.currency)])
        if s.late:
            data.append(["其中迟到项目 of which late items", "", fmt(s.late, s.currency)])
        data.append([f"净额 Net ({s.direction})", "", fmt(s.net, s.currency)])
        data.append(["期末 Closing position", "", fmt(s.closing, s.currency)])
        table = Table(data, colWidths=[260, 90, 110])
        table.setStyle(TableStyle([
            ("FONTNAME", (0, 0), (-1, -1), font), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")), ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ]))
        story += [Spacer(1, 12), table, Spacer(1, 12),
                  Paragraph(f"Checksum {s.checksum}", styles["Normal"])]
    doc.build(story)
    return out.getvalue()


def instructions(result: CloseResult, hub_name: str) -> bytes:
    """Who pays whom how much: one transfer per spoke (partners in an alliance), through the hub."""
    top = "partner" if result.scope == "alliance" else "branch"
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["period", "payer", "payee", "amount_minor", "amount", "currency", "reference"])
    for s in result.statements:
        if s.entity_kind != top or s.closing == 0:
            continue
        payer, payee = (hub_name, f"{s.code} {s.name}") if s.closing > 0 else (f"{s.code} {s.name}", hub_name)
        w.writerow([result.period, payer, payee, abs(s.closing), fmt(abs(s.closing), s.currency), s.currency,
                    f"LK-{result.period}-{s.checksum[:12]}"])
    return ("\ufeff" + buf.getvalue()).encode()
