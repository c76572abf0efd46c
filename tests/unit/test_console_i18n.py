"""The console's languages: complete, fresh catalogs; language negotiation; money and time filters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lianka.web.console import catalogs, i18n
from lianka.web.console.i18n import Language, negotiate

LOCALES = sorted(i18n.LANGUAGES.values())


def _translated(message: object) -> bool:
    string = getattr(message, "string", None)
    if isinstance(string, tuple):
        return all(string)
    return bool(string)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(locale: str) -> None:
    catalog = catalogs.read_catalog(locale)
    missing = [m.id for m in catalog if m.id and (not _translated(m) or m.fuzzy)]
    assert not missing, f"{locale}: untranslated or fuzzy (edit web/i18n/{locale}/LC_MESSAGES/messages.po): {missing}"


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogs_are_not_stale(locale: str) -> None:
    """Every message the sources use is in the catalog and the catalog has none they dropped:
    otherwise run `make i18n` (and translate what it added)."""
    in_sources = catalogs.source_messages()
    in_catalog = {
        (m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalogs.read_catalog(locale) if m.id
    }
    assert in_sources - in_catalog == set(), "messages missing from the catalog: run `make i18n`"
    assert in_catalog - in_sources == set(), "messages no source uses any more: run `make i18n`"


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_matches_its_source(locale: str) -> None:
    def plain(value: object) -> object:  # a plural's forms: a tuple from the .po, a list from the .mo
        return tuple(value) if isinstance(value, list | tuple) else value

    po = {plain(m.id): plain(m.string) for m in catalogs.read_catalog(locale) if m.id}
    mo = {plain(m.id): plain(m.string) for m in catalogs.read_compiled(locale) if m.id}
    assert mo == po, "the .mo is older than the .po: run `make i18n`"


def test_the_test_sees_a_missing_translation(tmp_path, monkeypatch) -> None:
    """The completeness check is not vacuous: a catalog with an empty msgstr fails it."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    broken = Catalog(locale="zh_CN")
    broken.add("Branches", "门店")
    broken.add("Add branch", "")
    po = tmp_path / "zh_CN" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as f:
        write_po(f, broken)
    monkeypatch.setattr(catalogs, "CATALOG_DIR", tmp_path)
    monkeypatch.setattr(catalogs, "po_path", lambda locale: tmp_path / locale / "LC_MESSAGES" / "messages.po")
    with pytest.raises(AssertionError, match="Add branch"):
        test_every_message_is_translated("zh_CN")


def test_a_word_in_context_is_translated_in_its_context() -> None:
    """``NP_`` marks a word whose Chinese depends on where it stands; ``gettext`` (and ``_()`` in
    templates) translates it in that context, and the staleness check tells the contexts apart."""
    from lianka.web.console import member_texts, programme_text

    zh, en = Language("zh-CN"), Language("en")
    never_expires = programme_text.CHOICES[("points", "expiry.kind")]["never"]
    assert never_expires == "Never" and isinstance(never_expires, i18n.InContext)
    assert zh.gettext(never_expires) == "永不过期"
    assert zh.pgettext("last used", "Never") == "从未使用"
    assert zh.gettext(member_texts.POINTS_KINDS["rule_review"]) != zh.gettext(
        programme_text.CHOICES[("rules", "kind")]["review"]
    )
    assert en.gettext(never_expires) == "Never"
    in_sources = catalogs.source_messages()
    assert {("points expiry", "Never"), ("last used", "Never")} <= in_sources
    assert (None, "Never") not in in_sources


def test_pages_speak_chinese_and_english() -> None:
    assert Language("zh-CN").gettext("Branches") == "门店"
    assert Language("en").gettext("Branches") == "Branches"


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "zh-CN"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "fr-FR, en;q=0.5", "en"),
        (None, "zh-TW,en;q=0.8", "zh-CN"),
        (None, "en;q=0.4, zh;q=0.9", "zh-CN"),
        (None, "en;q=0, de", "zh-CN"),
        (None, "garbage;;q=x,,", "zh-CN"),
        ("en", "zh-CN", "en"),
        ("zh-CN", "en", "zh-CN"),
        ("xx", "en", "en"),
    ],
)
def test_language_is_the_choice_then_accept_language_then_chinese(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert negotiate(cookie, header).tag == expected


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (1234, "CNY", "¥12.34"),
        (0, "CNY", "¥0.00"),
        (-500, "CNY", "-¥5.00"),
        (123456789, "CNY", "¥1,234,567.89"),
        (1, "CNY", "¥0.01"),
        (1500, "JPY", "¥1,500"),
    ],
)
def test_money_is_exact(minor: int, currency: str, expected: str) -> None:
    assert i18n.money(minor, currency) == expected


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        i18n.money(12.34, "CNY")  # type: ignore[arg-type]


def test_times_show_in_the_merchants_zone_and_the_readers_language() -> None:
    late_utc = datetime(2026, 3, 31, 17, 30, tzinfo=UTC)  # already 1 April in Shanghai
    zh = i18n.localtime(late_utc, Language("zh-CN"), "Asia/Shanghai")
    en = i18n.localtime(late_utc, Language("en"), "Asia/Shanghai")
    assert "2026年4月1日" in zh and "01:30:00" in zh
    assert "Apr 1, 2026" in en and "1:30:00" in en
    assert "Mar 31, 2026" in i18n.localtime(late_utc, Language("en"), "Europe/London")
    assert i18n.localdate(late_utc, Language("en"), "Asia/Shanghai") == "Apr 1, 2026"
    with pytest.raises(ValueError, match="aware"):
        i18n.localtime(datetime(2026, 1, 1), Language("en"))
