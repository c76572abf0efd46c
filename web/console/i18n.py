"""The console's languages: zh-CN (the default) and English, from Babel gettext catalogs.

The language is the user's choice (the ``lk_lang`` cookie the switcher sets), else the best match
in ``Accept-Language``, else zh-CN. Message ids are the English texts; ``web/i18n/<locale>/`` holds
each catalog (``.po`` edited, ``.mo`` compiled — both committed, so a fresh checkout serves both
languages without a build step). ``make i18n`` re-extracts the ids from the templates and from
``web/console/*.py`` and updates both catalogs; ``tests/unit/test_console_i18n.py`` fails while a
message lacks a translation or a catalog lags behind the sources.

Amounts and times go through two filters: ``money`` (integer minor units, never floats: the same
formatting as :meth:`lianka.platform.money.Money.format`, ``¥12.34``) and ``localtime`` (an aware
datetime shown in the merchant's time zone, in the reader's language).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.support import NullTranslations, Translations

from lianka.platform.money import Money

CATALOG_DIR = Path(__file__).resolve().parent.parent / "i18n"
DOMAIN = "messages"
#: BCP 47 tag (what pages, cookies and Accept-Language use) -> Babel/gettext locale
LANGUAGES = {"zh-CN": "zh_CN", "en": "en"}
DEFAULT_TAG = "zh-CN"
LANG_COOKIE = "lk_lang"
DEFAULT_TIMEZONE = "Asia/Shanghai"


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined (menus, error texts); it is translated
    when shown, in the reader's language."""
    return message


class InContext(str):
    """A message id with its gettext context (made by :func:`NP_`): still the English text wherever
    a ``str`` is expected, and :meth:`Language.gettext` — so ``_()`` in templates too — translates it
    in its context."""

    context: str


def NP_(context: str, message: str) -> str:
    """:func:`N_` with a context, for a short word whose Chinese depends on where it stands ("Never"
    for points that never expire 永不过期, for a client never used 从未使用). Extracted as
    ``msgctxt``/``msgid`` (keyword ``NP_:1c,2``: ``make i18n`` and ``catalogs.KEYWORDS``)."""
    marked = InContext(message)
    marked.context = context
    return marked


@functools.cache
def translations(locale: str) -> NullTranslations:
    return Translations.load(str(CATALOG_DIR), [locale], domain=DOMAIN)


@dataclass(frozen=True)
class Language:
    """The reader's language for one request."""

    tag: str

    @property
    def locale(self) -> str:
        return LANGUAGES[self.tag]

    def gettext(self, message: str) -> str:
        if isinstance(message, InContext):
            return self.pgettext(message.context, str(message))
        return translations(self.locale).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.locale).ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        """``message`` in ``context``: one English word, several Chinese ones ("Active" is 活跃 for a
        member's lifecycle stage, 启用 for a staff account, 有效 for a POS client)."""
        return str(translations(self.locale).pgettext(context, message))


def _accept_language(header: str) -> list[str]:
    """The header's language tags, best first (``q=0`` excluded; ties keep the header's order)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(choice: str | None, accept_language: str | None) -> Language:
    """The user's choice when it is one of ours, else the first ``Accept-Language`` entry we speak
    (any Chinese reads zh-CN; ``*`` means our default), else zh-CN."""
    if choice in LANGUAGES:
        return Language(choice)
    for tag in _accept_language(accept_language or "")[:20]:
        if tag == "zh" or tag.startswith("zh-") or tag == "*":
            return Language(DEFAULT_TAG)
        if tag == "en" or tag.startswith("en-"):
            return Language("en")
    return Language(DEFAULT_TAG)


def money(minor: int, currency: str = "CNY") -> str:
    """``¥12.34`` from ``1234`` fen: exact integer arithmetic (``Money`` refuses floats)."""
    return Money(minor, currency).format()


def localtime(value: datetime, language: Language, timezone: str = DEFAULT_TIMEZONE, fmt: str = "medium") -> str:
    """An aware datetime in ``timezone`` (the merchant's), formatted for the reader's language."""
    if value.tzinfo is None:
        raise ValueError("localtime needs an aware datetime (UTC in the database)")
    return format_datetime(value, fmt, tzinfo=ZoneInfo(timezone), locale=language.locale)


def localdate(value: date | datetime, language: Language, timezone: str = DEFAULT_TIMEZONE, fmt: str = "medium") -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("localdate needs an aware datetime (UTC in the database)")
        value = value.astimezone(ZoneInfo(timezone)).date()
    return format_date(value, fmt, locale=language.locale)
