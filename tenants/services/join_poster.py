"""Join links and their printable posters (issue 14): every merchant has a join link
(``/join/<slug>``) and every branch one of its own (``/join/<slug>/<branch code>``, which makes the
branch the member's join branch). A poster is the merchant's name, the branch's, the QR code of the
link and the link itself — a PNG (Pillow, already installed with reportlab) and a PDF (reportlab, as
the settlement statements: its CID font prints Chinese without a bundled font file).

The PNG needs a font with Chinese glyphs: the first of :data:`CJK_FONTS` that exists (Debian's
``fonts-noto-cjk``, or ``LIANKA_POSTER_FONT``); without one the names print in Pillow's own font,
which has no Chinese (the PDF is then the poster to print — decision 0027).
"""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import segno
from sqlalchemy import select

from lianka.platform.db import Database
from lianka.platform.errors import NotFound
from lianka.tenants.models import Branch, Merchant

CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


@dataclass(frozen=True)
class JoinLink:
    url: str
    #: None: the merchant's own link (no join branch)
    branch_id: uuid.UUID | None
    branch_code: str | None
    branch_name: str | None


@dataclass(frozen=True)
class JoinLinks:
    merchant_name: str
    merchant_slug: str
    links: list[JoinLink]

    def link(self, branch_id: uuid.UUID | None) -> JoinLink:
        found = next((x for x in self.links if x.branch_id == branch_id), None)
        if found is None:
            raise NotFound("branch not found", field="branch")
        return found


async def join_links(db: Database, tenant: uuid.UUID, public_url: str) -> JoinLinks:
    """Read use case: the merchant's join link and every branch's, as absolute URLs."""
    base = public_url.rstrip("/")
    async with db.uow(tenant) as uow:
        merchant = await uow.session.get(Merchant, tenant)
        if merchant is None:
            raise NotFound("merchant not found")
        branches = list(await uow.session.scalars(select(Branch).order_by(Branch.code)))
    own = f"{base}/join/{quote(merchant.slug)}"
    return JoinLinks(
        merchant.name,
        merchant.slug,
        [JoinLink(own, None, None, None)]
        + [JoinLink(f"{own}/{quote(b.code, safe='')}", b.id, b.code, b.name) for b in branches],
    )


# --- rendering ----------------------------------------------------------------------------------------


def _font_path() -> str | None:
    chosen = os.environ.get("LIANKA_POSTER_FONT")
    for path in ((chosen,) if chosen else ()) + CJK_FONTS:
        if Path(path).is_file():
            return path
    return None


def poster_png(merchant: str, branch: str | None, url: str, caption: str) -> bytes:
    """A 1080 x 1440 PNG: the names on top, the QR code of ``url`` in the middle, ``caption`` (e.g.
    "扫码入会 Scan to join") and the link below."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 1080, 1440
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    path = _font_path()

    def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)

    def centred(y: int, text: str, size: int, fill: str = "black") -> None:
        f = font(size)
        while size > 24 and draw.textlength(text, font=f) > width - 80:  # a long name gets smaller
            size -= 4
            f = font(size)
        draw.text(((width - draw.textlength(text, font=f)) / 2, y), text, font=f, fill=fill)

    centred(90, merchant, 84)
    if branch:
        centred(200, branch, 52, "#444444")
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=20, border=4)
    qr = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    side = 760
    qr = qr.resize((side, side), Image.Resampling.NEAREST)
    image.paste(qr, ((width - side) // 2, 300))
    centred(1100, caption, 60)
    centred(1220, url, 30, "#444444")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def poster_pdf(merchant: str, branch: str | None, url: str, caption: str) -> bytes:
    """An A4 PDF of the same poster, the QR code drawn as vector squares (sharp at any print size)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "STSong-Light"  # a CID font reportlab ships: Chinese without bundling a TTF
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    buf = io.BytesIO()
    width, height = A4
    c = canvas.Canvas(buf, pagesize=A4)
    c.setTitle(f"{merchant} {branch or ''}".strip())

    def centred(y: float, text: str, size: float) -> None:
        while size > 8 and pdfmetrics.stringWidth(text, font, size) > width - 30 * mm:
            size -= 1
        c.setFont(font, size)
        c.drawCentredString(width / 2, y, text)

    centred(height - 40 * mm, merchant, 32)
    if branch:
        centred(height - 55 * mm, branch, 20)
    qr = segno.make(url, error="m")
    rows = list(qr.matrix_iter(border=4))
    side = 130 * mm
    module = side / len(rows)
    left, top = (width - side) / 2, height - 70 * mm
    c.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(rows):
        for col, dark in enumerate(row):
            if dark:
                c.rect(left + col * module, top - (r + 1) * module, module, module, stroke=0, fill=1)
    centred(top - side - 18 * mm, caption, 24)
    centred(top - side - 30 * mm, url, 11)
    c.showPage()
    c.save()
    return buf.getvalue()
