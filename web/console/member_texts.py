"""What the member pages say, translatable: labels of the CRM's codes, the problems of their fields,
and the import's file and row errors.

The shared problem texts (``messages.PROBLEMS``) are keyed by (problem type, field) for every page;
a member's ``name`` or ``email`` follows other rules than a branch's or an account's, so these pages
place their own texts over the shared ones for their fields (:func:`member_form_errors`).

The import's row report comes from ``tenants.domain.imports`` as English sentences for developers
and the command line; :func:`row_error` recognises each kind the parser writes and says it in the
reader's language (anything unknown is shown as written, never hidden).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from lianka.platform.errors import DomainError
from lianka.web.console.i18n import N_, NP_, Language
from lianka.web.console.pages import FormErrors, form_errors

STAGES = {"new": N_("New"), "active": N_("Active"), "at_risk": N_("At risk"), "dormant": N_("Dormant")}
GENDERS = {"unknown": N_("Not given"), "female": N_("Female"), "male": N_("Male"), "other": N_("Other")}
CHANNELS = {
    "sms": N_("SMS"),
    "email": N_("E-mail"),
    "wechat": N_("WeChat"),
    "push": N_("App notifications"),
    "phone": N_("Phone calls"),
    "alliance": N_("Alliance partners' offers"),
}
SOURCES = {
    "till": N_("At the till"),
    "api": N_("Added by staff"),
    "import": N_("Imported"),
    "portal": N_("Online"),
    "online": N_("Online"),
}
IMPORT_MODES = {
    "skip_invalid": N_("Import the valid rows, report the others"),
    "all_or_nothing": N_("All or nothing: import only a file without errors"),
}
IMPORT_STATUS = {
    "queued": N_("Waiting to start"),
    "running": N_("Importing"),
    "done": N_("Finished"),
    "failed": N_("Refused"),
}
SALE_STATUS = {"completed": N_("Completed"), "partially_refunded": N_("Partly refunded"), "refunded": N_("Refunded")}
COUPON_STATUS = {"issued": N_("Available"), "redeemed": N_("Used"), "void": N_("Void"), "expired": N_("Expired")}
COUPON_KINDS = {
    "fixed": NP_("coupon kind", "Amount off"),
    "percent": NP_("coupon kind", "Percent off"),
    "gift": N_("Gift"),
}
#: ledger entry kinds on a member's points account (a reversal shows as "Reversal: <kind>")
POINTS_KINDS = {
    "points_earned": N_("Earned on a purchase"),
    "points_redeemed": NP_("points entry", "Paid with points"),
    "points_clawed_back": N_("Taken back after a refund"),
    "points_restored": N_("Given back after a refund"),
    "opening_balance": N_("Opening balance (import)"),
    "reward_redeemed": N_("Exchanged for a reward"),
    "lucky_draw": N_("Lucky draw"),
    "lucky_draw_prize": N_("Lucky draw prize"),
    "expiry": N_("Expired"),
    "rule_signup": N_("Welcome bonus"),
    "rule_checkin": N_("Daily check-in"),
    "rule_review": NP_("points entry", "Review"),
    "rule_referral": NP_("points entry", "Referral"),
    "rule_birthday": N_("Birthday"),
    "rule_custom": N_("Event"),
    "rule_tier_upgrade": NP_("points entry", "Tier upgrade"),
    "rule_promotion": N_("Promotion"),
}


#: what a stored-value movement is, in the member's words (ledger entry kinds)
SV_KINDS = {
    "stored_value_top_up": N_("Top-up"),
    "stored_value_spent": N_("Paid with stored value"),
    "stored_value_refunded": N_("Unused balance refunded"),
    "stored_value_restored": N_("Given back after a refund"),
    "reward_stored_value": N_("Reward credited"),
    "opening_balance": N_("Opening balance (import)"),
}

CONSENT_SOURCES = {
    "console": N_("Staff, in the console"),
    "staff": N_("Staff, through the API"),
    "import": N_("Import"),
    "portal": N_("The member, online"),
}
#: why a tier changed (``tenants.domain.tiers``); a tier granted by hand is "manual: <the reason given>"
TIER_REASONS = {
    "qualified: spend": N_("Reached the spend threshold"),
    "qualified: points": N_("Reached the points threshold"),
    "qualified: purchase": N_("Bought the membership"),
    "qualified: invitation": N_("Invited"),
    "qualified at review": N_("Qualified at the review"),
    "re-evaluated at review": N_("Re-evaluated at the review"),
    "downgraded one step at review": N_("Down one tier at the review"),
    "retained": N_("Kept at the review"),
    "manual floor": N_("Kept by a granted tier"),
}


def tier_reason(reason: str, lang: Language) -> str:
    if reason.startswith("manual: "):
        return lang.gettext("Granted by hand: %(reason)s") % {"reason": reason.removeprefix("manual: ")}
    return lang.gettext(TIER_REASONS[reason]) if reason in TIER_REASONS else reason


def actor_label(actor: str, lang: Language) -> str:
    """Who made a change, as staff read it (the records keep ids: ``staff:<id>``, ``client:<id>``)."""
    kind = actor.partition(":")[0]
    known = {
        "review": N_("Tier review"),
        "pos": N_("Till"),
        "staff": N_("Staff"),
        "client": N_("API client"),
        "member": N_("The member"),
    }
    return lang.gettext(known[kind]) if kind in known else actor


def points_kind(kind: str, lang: Language) -> str:
    original = kind.removeprefix("reversal:")
    label = lang.gettext(POINTS_KINDS[original]) if original in POINTS_KINDS else original
    return lang.gettext("Reversal: %(kind)s") % {"kind": label} if kind != original else label


#: (problem type, field) -> what the member pages say beside the field
PROBLEMS: dict[tuple[str, str], str] = {
    ("validation-failed", "name"): N_("A name has at most 100 characters."),
    ("validation-failed", "email"): N_("Enter an e-mail address such as li@example.com, or leave it empty."),
    ("validation-failed", "address"): N_("An address has at most 400 characters."),
    ("validation-failed", "birthday"): N_("Enter a date in the past, such as 1990-05-20."),
    ("validation-failed", "gender"): N_("Choose one of the options."),
    ("validation-failed", "tags"): N_("Up to 50 tags of at most 40 characters, separated by commas."),
    ("validation-failed", "tier"): N_("Choose a tier of your programme."),
    ("validation-failed", "reason"): N_("Say why: the reason is kept in the tier history."),
    ("validation-failed", "until"): N_("Enter today or a later date, or leave it empty."),
    ("validation-failed", "channel"): N_("Choose a channel."),
    ("validation-failed", "granted"): N_("Choose to record or to withdraw the consent."),
    ("validation-failed", "mode"): N_("Choose how to import."),
    ("validation-failed", "stage"): N_("Choose a stage from the list."),
    ("validation-failed", "branch_id"): N_("Choose a branch from the list."),
    ("validation-failed", "page"): N_("There is no such page."),
    ("validation-failed", "file"): N_("Choose a CSV file (UTF-8) with a phone column."),
    ("bad-request", "key"): N_("This form has expired. Reload the page and try again."),
    ("idempotency-key-reused", "key"): N_("This form was sent already. Reload the page to see the result."),
}

#: the import's refusals of a whole file (``member_imports.create``, the CSV parser), by their wording
FILE_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"larger than"), N_("The file is larger than 20 MB: split it into smaller files.")),
    (re.compile(r"not UTF-8|NUL characters"), N_("The file is not CSV text in UTF-8: save it again as “CSV UTF-8”.")),
    (re.compile(r"is empty"), N_("The file is empty.")),
    (re.compile(r"'phone' .* column is required"), N_("The file needs a phone (手机) column.")),
    (re.compile(r"unknown columns"), N_("The file has columns we do not know; see the list of columns below.")),
    (re.compile(r"at most \d+ rows"), N_("At most 100,000 rows per file: split it.")),
    (re.compile(r"not readable CSV"), N_("The file cannot be read as CSV.")),
    (re.compile(r"^no file$"), N_("Choose a file to import.")),
)


def member_form_errors(exc: DomainError, lang: Language, fields: Collection[str]) -> FormErrors:
    """``pages.form_errors``, with these pages' texts for their fields — beside the field when the
    form has it, on top otherwise — and a refused file said precisely."""
    errors = form_errors(exc, lang, fields)
    named = str(exc.extra.get("field") or "")
    mine = _problem_text(exc, named, lang)
    if mine is not None:
        if named in errors.fields:
            errors.fields[named] = mine
        else:
            errors.general = [mine]
    return errors


def _problem_text(exc: DomainError, field: str, lang: Language) -> str | None:
    if exc.type_slug == "validation-failed" and field == "file":
        return file_problem(exc.detail, lang)
    if exc.type_slug == "idempotency-key-reused":  # the form's key was used for another change
        field = "key"
    message = PROBLEMS.get((exc.type_slug, field))
    return lang.gettext(message) if message else None


def _recognised(table: tuple[tuple[re.Pattern[str], str], ...], sentence: str, lang: Language) -> str | None:
    """The message of the first pattern ``sentence`` matches, in ``lang``, with the pattern's named
    groups filled in (``%(line)s``); None for a sentence none of them knows."""
    for pattern, message in table:
        found = pattern.search(sentence)
        if found:
            return lang.gettext(message) % found.groupdict()
    return None


def file_problem(detail: str, lang: Language) -> str:
    return _recognised(FILE_PROBLEMS, detail, lang) or lang.gettext(PROBLEMS[("validation-failed", "file")])


#: one message of an import row (``tenants.domain.imports._parse``, ``member_imports.run``), by its wording
ROW_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^not a (valid )?phone number"), N_("Not a valid mobile number.")),
    (re.compile(r"^phone \S+ already on line (?P<line>\d+)"), N_("The same phone number is on line %(line)s.")),
    (
        re.compile(r"^\w+: line breaks and control characters"),
        N_("Line breaks and control characters are not allowed."),
    ),
    (re.compile(r"^gender:"), N_("Gender: male, female, 男 or 女.")),
    (re.compile(r"^birthday:"), N_("Birthday: a date such as 1990-05-20.")),
    (re.compile(r"^email:"), N_("Not an e-mail address.")),
    (re.compile(r"^opening_points:"), N_("Opening points: a whole number from 0 to 1,000,000,000.")),
    (re.compile(r"^(sms|email)_consent:"), N_("Consent: yes or no (是 or 否).")),
    (re.compile(r"^name:"), N_("A name has at most 100 characters.")),
    (re.compile(r"^branch: no branch"), N_("No branch has this code.")),
)


def row_error(message: str, lang: Language) -> str:
    return _recognised(ROW_PROBLEMS, message, lang) or message


#: a member's online payment (``payment_orders.status``)
ORDER_STATUS: dict[str, str] = {
    "pending": N_("Waiting for the payment"),
    "paid": N_("Paid"),
    "refunded": N_("Refunded"),
    "partially_refunded": N_("Partly refunded"),
    "failed": N_("Payment failed"),
    "expired": N_("Payment not completed"),
}
