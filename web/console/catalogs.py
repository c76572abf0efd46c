"""The console's gettext catalogs as data: what the sources say, what each catalog holds.

Used by ``make i18n`` (``python -m lianka.web.console.catalogs fill-en``: the English catalog takes
each new English message id as its text, to be edited there if the wording should differ) and by
the test that fails while a catalog lacks a translation or lags behind the sources.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po, write_po

from lianka.web.console.i18n import CATALOG_DIR, DOMAIN, LANGUAGES

WEB_DIR = CATALOG_DIR.parent
BABEL_CFG = WEB_DIR.parent / "babel.cfg"
#: gettext's keywords plus ``NP_(context, message)`` (``i18n.NP_``; the Makefile passes ``-k NP_:1c,2``)
KEYWORDS = {**DEFAULT_KEYWORDS, "NP_": ((1, "c"), 2)}


def po_path(locale: str) -> Path:
    return CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(locale: str) -> Path:
    return CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"


def source_messages() -> set[tuple[str | None, str]]:
    """Every (context, message id) the templates and ``web/console/*.py`` use (as ``make i18n``
    extracts): a word given a context is a different message from the same word without one."""
    with BABEL_CFG.open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    found: set[tuple[str | None, str]] = set()
    for _, _, message, _, context in extract_from_dir(str(WEB_DIR), method_map, options_map, keywords=KEYWORDS):
        found.add((context, message if isinstance(message, str) else message[0]))
    return found


def read_catalog(locale: str) -> Catalog:
    with po_path(locale).open("rb") as f:
        return read_po(f, locale=locale)


def read_compiled(locale: str) -> Catalog:
    with mo_path(locale).open("rb") as f:
        return read_mo(f)


def fill_english() -> int:
    """Give every untranslated message of the ``en`` catalog its English id; return how many."""
    catalog = read_catalog("en")
    filled = 0
    for message in catalog:
        if not message.id or (message.string and (not isinstance(message.string, tuple) or all(message.string))):
            continue
        message.string = tuple(message.id) if isinstance(message.id, tuple) else message.id
        filled += 1
    with po_path("en").open("wb") as f:
        write_po(f, catalog, width=0, include_previous=False)
    return filled


def main(argv: list[str]) -> int:
    if argv[1:] == ["fill-en"]:
        print(f"en: {fill_english()} message(s) filled with their English id")
        return 0
    print(f"usage: python -m lianka.web.console.catalogs fill-en  (locales: {', '.join(LANGUAGES.values())})")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
