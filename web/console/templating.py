"""The Jinja environment of the console's pages, and its static files.

Templates live in ``web/templates/`` (``base.html`` is the layout, ``_macros.html`` the form
helpers); static files in ``web/static/`` are served at ``/static/…`` with a one-year ``immutable``
cache: vendored files carry their version in their folder name and :func:`static_url` adds a hash of
the content to every URL, so a changed file is a new URL and no browser keeps a stale copy.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from lianka.web.console import i18n

WEB_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
STATIC_PREFIX = "/static"
ONE_YEAR = 365 * 24 * 3600


@functools.cache
def static_url(path: str) -> str:
    """``/static/<path>?v=<content hash>``; a missing file fails loudly at render time."""
    file = (STATIC_DIR / path).resolve()
    if not file.is_relative_to(STATIC_DIR) or not file.is_file():
        raise FileNotFoundError(f"no static file {path!r}")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{path}?v={digest}"


def _language(ctx: Context) -> i18n.Language:
    lang = ctx.get("lang")
    return lang if isinstance(lang, i18n.Language) else i18n.Language(i18n.DEFAULT_TAG)


def _merchant_field(ctx: Context, name: str, default: str) -> str:
    merchant = ctx.get("merchant")
    return str(getattr(merchant, name, default) or default)


@pass_context
def _gettext(ctx: Context, message: str) -> str:
    return _language(ctx).gettext(message)


@pass_context
def _pgettext(ctx: Context, context: str, message: str) -> str:
    return _language(ctx).pgettext(context, message)


@pass_context
def _ngettext(ctx: Context, singular: str, plural: str, n: int) -> str:
    return _language(ctx).ngettext(singular, plural, n)


@pass_context
def _money(ctx: Context, minor: int, currency: str | None = None) -> str:
    return i18n.money(minor, currency or _merchant_field(ctx, "currency", "CNY"))


@pass_context
def _localtime(ctx: Context, value: datetime, fmt: str = "medium") -> str:
    return i18n.localtime(value, _language(ctx), _merchant_field(ctx, "timezone", i18n.DEFAULT_TIMEZONE), fmt)


@pass_context
def _localdate(ctx: Context, value: date | datetime, fmt: str = "medium") -> str:
    return i18n.localdate(value, _language(ctx), _merchant_field(ctx, "timezone", i18n.DEFAULT_TIMEZONE), fmt)


def environment() -> Environment:
    """Autoescaping on, undefined names are errors (a typo fails the page's test, not a customer).

    ``{% trans %}`` and ``_()`` translate into the language in the page's context (``lang``), so one
    environment serves every language at once."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True, pgettext=_pgettext)  # type: ignore[attr-defined]
    env.filters.update(money=_money, localtime=_localtime, localdate=_localdate)
    env.globals["static"] = static_url
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


def static_files_router() -> Router:
    return create_static_files_router(
        path=STATIC_PREFIX,
        directories=[STATIC_DIR],
        name="static",
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=ONE_YEAR, public=True, immutable=True),
    )
