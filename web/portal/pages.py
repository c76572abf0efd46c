"""Rendering a portal page: the context every portal template gets, the member's CSRF token, and the
portal's own texts for problems (a member's phone or code is not a cashier's search box).

The portal reuses the console's machinery (decision 0018): the Jinja environment and its ``money``
/ ``localtime`` filters, the language negotiation and switch (``POST /lang``), the anonymous-cookie
CSRF token for forms before sign-in (``check_public_form``), and ``go`` for redirects. Signed in,
forms carry the member session's CSRF token, which the platform's ``requires_member`` guard checks.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from litestar.datastructures import Cookie
from litestar.response import Template

from lianka.platform.errors import DomainError
from lianka.platform.identity import sessions
from lianka.web.console import i18n, messages
from lianka.web.console.i18n import N_
from lianka.web.console.pages import FLASH_COOKIE, FormErrors, HtmlRequest, identity, language
from lianka.web.console.security import form_token

#: the portal's texts for (problem type, field), placed over the console's (``messages.PROBLEMS``)
PROBLEMS: dict[tuple[str, str | None], str] = {
    ("validation-failed", "phone"): N_("Enter a valid mobile number."),
    ("validation-failed", "code"): N_("Enter the 6-digit code from the text message."),
    ("validation-failed", "privacy"): N_("Accept the privacy notice to join."),
    ("validation-failed", "name"): N_("A name has at most 100 characters."),
    ("validation-failed", "birthday"): N_("Enter your birthday (you must be old enough to join)."),
    ("invalid-credentials", None): N_("The code is wrong or has expired."),
    ("rate-limited", None): N_("Too many attempts: try again in a few minutes."),
    ("not-found", "branch"): N_("This join link is not valid."),
    ("validation-failed", "email"): N_("Enter an e-mail address such as ming@example.com."),
    ("validation-failed", "address"): N_("An address has at most 400 characters."),
    ("validation-failed", "preferences"): N_("Preferences: at most 200 characters."),
    ("stored-value-left", None): N_("Stored value is left on your card: spend it or ask the shop for a refund first."),
    ("not-found", "scope"): N_("Choose one of your shops."),
}
FLASH: dict[str, str] = {
    "signed-out": N_("You have signed out."),
    "code-sent": N_("We have sent a code to your phone."),
    "joined": N_("Welcome! You are a member now: show this card at the till."),
    "prospect": N_("Almost there: your membership starts with your first qualifying purchase at the till."),
    "already": N_("You are a member already: welcome back."),
    "profile-saved": N_("Your profile is saved."),
    "consent-granted": N_("Consent given: you will receive news on this channel."),
    "consent-withdrawn": N_("Consent withdrawn: no more news on this channel."),
    "erased-merchant": N_("Done: the shop has erased your personal data."),
    "erased-everywhere": N_("Done: your personal data is erased everywhere and you are signed out."),
    "recognition-on": N_("Done: this partner recognises your card again."),
    "recognition-off": N_("Done: this partner no longer recognises your card."),
    "joined-invited": N_(
        "Welcome! You joined through a friend's invitation: your friend is thanked after your first purchase."
    ),
    "joined-uninvited": N_(
        "Welcome! You are a member now. The invitation code was not valid, so no friend is linked to your membership."
    ),
    "prospect-invited": N_(
        "Almost there: your membership starts with your first qualifying purchase at the till, and your friend's invitation counts then."
    ),
    "prospect-uninvited": N_(
        "Almost there: your membership starts with your first qualifying purchase at the till. The invitation code was not valid, so no friend is linked."
    ),
    "already-invited": N_("You are a member already: welcome back. An invitation only counts for new members."),
    "coupon-claimed": N_("The coupon is in your wallet: show your card at the till to use it."),
    "reward-redeemed": N_("Redeemed! Your points have been spent."),
    "pay-not-configured": N_("This shop does not take online payments yet: buy it at the till."),
    "pay-failed": N_("The payment could not be started. Please try again later."),
    "product-gone": N_("This membership is no longer on sale."),
}


def problem_text(exc: DomainError, field: str | None, lang: i18n.Language) -> str:
    message = PROBLEMS.get((exc.type_slug, field)) or PROBLEMS.get((exc.type_slug, None))
    return lang.gettext(message) if message else messages.problem_text(exc.type_slug, field, exc.status, lang)


def portal_errors(exc: DomainError, lang: i18n.Language, fields: Collection[str]) -> FormErrors:
    """The problem beside its field when the form has it, else on top (as ``pages.form_errors``)."""
    errors = FormErrors()
    name = str(exc.extra.get("field") or "") or None
    if name in fields:
        errors.fields[str(name)] = problem_text(exc, name, lang)
    else:
        errors.general.append(problem_text(exc, name, lang))
    return errors


def member_csrf(request: HtmlRequest) -> str | None:
    token = request.cookies.get(sessions.MEMBER_COOKIE)
    return sessions.csrf_token(identity(request).secret, token) if token else None


async def portal_page(
    request: HtmlRequest,
    template: str,
    *,
    signed_in: bool = False,
    status: int = 200,
    flash: str | None = None,
    **values: Any,
) -> Template:
    """A portal page with ``lang``, ``csrf`` (the member session's token when signed in, else the
    anonymous one), ``lang_csrf`` (for the language switch), ``signed_in`` and ``flash``."""
    ident = identity(request)
    lang = language(request)
    anon_csrf, anon_cookie = form_token(request, ident)
    cookies: list[Cookie] = [anon_cookie] if anon_cookie is not None else []
    shown = FLASH.get(flash or request.cookies.get(FLASH_COOKIE) or "")
    if request.cookies.get(FLASH_COOKIE):
        cookies.append(Cookie(key=FLASH_COOKIE, value="", max_age=0, path="/"))
    context = {
        "lang": lang,
        "languages": i18n.LANGUAGES,
        "csrf": (member_csrf(request) if signed_in else None) or anon_csrf,
        "lang_csrf": (member_csrf(request) if signed_in else None) or anon_csrf,
        "signed_in": signed_in,
        "flash": lang.gettext(shown) if shown else None,
        "path": request.url.path,
        "merchant": values.pop("merchant", None),
        **values,
    }
    return Template(template, context=context, status_code=status, cookies=cookies, media_type="text/html")
