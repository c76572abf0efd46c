"""QR codes as markup the pages can inline (server-generated SVG: no script, no image request)."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(text: str, *, title: str, css_class: str = "qr") -> Markup:
    """An inline ``<svg>`` of ``text`` (error correction M, a 4-module quiet zone), sized by CSS.
    segno escapes the title; the path holds only coordinates, so the markup is safe to inline."""
    code = segno.make(text, error="m", micro=False)
    return Markup(  # noqa: S704 (segno writes the SVG; the only text in it is the escaped title)
        code.svg_inline(scale=1, border=4, omitsize=True, title=title, svgclass=css_class, light="#fff", dark="#000")
    )
