"""What the programme editor calls things, in the reader's language: the sections, every field, the
choices of each enumeration, the messages beside a refused input, and a version-to-version change
as one readable line ("Gold · Threshold: ¥3,000.00 → ¥5,000.00").

The forms and the version diff use the same labels, so a change reads as the field it was made in.
Keys are (group, field path): the group is a section of the document or a list in it (``tiers``,
``tier_policy``, ``plans``…), the path the field's name inside it (``expiry.months``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lianka.platform.errors import DomainError
from lianka.tenants.domain.programme_diff import Change, Unit
from lianka.web.console import i18n, messages
from lianka.web.console.form_values import CODE_AND_NAME
from lianka.web.console.i18n import N_, NP_, Language

#: the editor's sections (URL key -> title), in the order of its tabs
SECTION_TITLES: dict[str, str] = {
    "tiers": N_("Tiers"),
    "points": N_("Points"),
    "rules": N_("Earning rules"),
    "join": N_("Joining"),
    "stored-value": N_("Stored value"),
    "refunds": N_("Refunds"),
    "promotions": N_("Promotions"),
}

#: a group of the document -> its title in a diff
GROUP_TITLES: dict[str, str] = {
    "points": N_("Points"),
    "tiers": N_("Tier"),
    "tier_policy": N_("Tier rules"),
    "rules": N_("Rule"),
    "join": N_("Joining"),
    "stored_value": N_("Stored value"),
    "plans": N_("Stored-value plan"),
    "refunds": N_("Refunds"),
    "promotions": N_("Promotion"),
}

LABELS: dict[tuple[str, str], str] = {
    ("points", "name"): N_("Name of the points"),
    ("points", "earn_per_major"): N_("Points per ¥1 spent"),
    ("points", "rounding"): N_("Rounding of points earned"),
    ("points", "expiry.kind"): N_("Points expire"),
    ("points", "expiry.months"): N_("Months until points expire"),
    ("points", "expiry.extra_years"): N_("Extra years (end of year)"),
    ("points", "expiry.remind_days_before"): N_("Remind members this many days before"),
    ("points", "pending_days"): N_("Days before new points can be spent"),
    ("points", "cash_value_per_point"): N_("Value of one point (¥)"),
    ("points", "cash_max_share_percent"): N_("Share of a bill payable with points (%)"),
    ("points", "cash_min_points"): N_("Fewest points per payment"),
    ("tiers", "code"): N_("Code"),
    ("tiers", "name"): N_("Name"),
    ("tiers", "rank"): N_("Rank"),
    ("tiers", "qualification"): N_("Qualifies by"),
    ("tiers", "threshold"): N_("Threshold"),
    ("tiers", "discount_percent"): N_("Member discount (%)"),
    ("tiers", "points_multiplier"): N_("Points multiplier"),
    ("tiers", "birthday_multiplier"): N_("Birthday multiplier"),
    ("tiers", "perks"): N_("Perks"),
    ("tier_policy", "window_months"): N_("Qualifying window (months)"),
    ("tier_policy", "review_every_months"): N_("Review every (months)"),
    ("tier_policy", "retention"): N_("At the review, members below their tier"),
    ("rules", "code"): N_("Code"),
    ("rules", "kind"): N_("Kind"),
    ("rules", "points"): N_("Points"),
    ("rules", "multiplier"): N_("Multiplier"),
    ("rules", "streak_bonus"): N_("Streak bonus (day:points)"),
    ("rules", "event"): N_("Event name"),
    ("rules", "weekdays"): N_("Days of the week"),
    ("rules", "branches"): N_("Branches (codes)"),
    ("rules", "tiers"): N_("Tiers"),
    ("rules", "starts"): N_("Starts"),
    ("rules", "ends"): N_("Ends"),
    ("rules", "cap_per_day"): N_("Cap per member and day"),
    ("rules", "cap_per_member"): N_("Cap per member"),
    ("rules", "cap_total"): N_("Cap in total"),
    ("rules", "min_spend"): N_("Referee's minimum first purchase"),
    ("rules", "coupon_template"): N_("Coupon issued (template code)"),
    ("rules", "active"): N_("Active"),
    ("join", "policy"): N_("Who may join"),
    ("join", "single_purchase_min"): N_("Minimum single purchase"),
    ("join", "cumulative_min"): N_("Or minimum spend in total"),
    ("join", "min_age"): N_("Minimum age"),
    ("stored_value", "consumption"): N_("Spending order"),
    ("stored_value", "bonus_funder"): N_("Who pays for the bonus"),
    ("stored_value", "bonus_counts_as_spend"): N_("Bonus counts as spend for points"),
    ("plans", "code"): N_("Code"),
    ("plans", "name"): N_("Name"),
    ("plans", "pay"): N_("Pay"),
    ("plans", "get"): N_("Get"),
    ("plans", "active"): N_("On sale"),
    ("refunds", "clawback"): N_("Refunds take back the points earned"),
    ("refunds", "reissue_coupons"): N_("A full refund gives the coupons back"),
    ("refunds", "anywhere"): N_("Any branch may refund any branch's sale"),
    ("promotions", "code"): N_("Code"),
    ("promotions", "name"): N_("Name"),
    ("promotions", "kind"): N_("Kind"),
    ("promotions", "percent_off"): N_("Percent off"),
    ("promotions", "steps"): N_("Spend and save (yuan)"),
    ("promotions", "buy"): N_("Buy N (one more free)"),
    ("promotions", "multiplier"): N_("Points multiplier"),
    ("promotions", "skus"): N_("Item codes"),
    ("promotions", "categories"): N_("Categories"),
    ("promotions", "members_only"): N_("Members only"),
    ("promotions", "min_tier"): N_("From tier"),
    ("promotions", "weekdays"): N_("Days of the week"),
    ("promotions", "branches"): N_("Branches (codes)"),
    ("promotions", "starts"): N_("Starts"),
    ("promotions", "ends"): N_("Ends"),
    ("promotions", "from_time"): N_("Daily from"),
    ("promotions", "until_time"): N_("Daily until"),
    ("promotions", "stackable"): N_("Combines with other promotions"),
    ("promotions", "active"): NP_("promotion", "Active"),
    ("promotions", "limit_per_member"): N_("Times per member"),
}

CHOICES: dict[tuple[str, str], dict[str, str]] = {
    ("points", "rounding"): {
        "floor": N_("Round down"),
        "ceiling": N_("Round up"),
        "half_up": N_("To the nearest, halves up"),
        "half_even": N_("To the nearest, halves to even"),
        "toward_zero": N_("Drop the fraction"),
    },
    ("points", "expiry.kind"): {
        "rolling_months": N_("Some months after they are earned"),
        "end_of_year": N_("At the end of a year"),
        "never": NP_("points expiry", "Never"),
    },
    ("tiers", "qualification"): {
        "spend": NP_("tier qualification", "Spend"),
        "points": N_("Points earned"),
        "purchase": N_("Bought (paid membership)"),
        "invitation": N_("By invitation"),
    },
    ("tier_policy", "retention"): {
        "downgrade_one": N_("Go down one tier"),
        "reevaluate": N_("Get the tier they qualify for"),
    },
    ("rules", "kind"): {
        "promotion": N_("Promotion (multiplies a sale's points)"),
        "signup": N_("Sign-up"),
        "checkin": N_("Daily check-in"),
        "review": NP_("earning rule", "Review"),
        "referral": NP_("earning rule", "Referral"),
        "birthday": N_("Birthday"),
        "custom": N_("Custom event"),
        "tier_upgrade": NP_("earning rule", "Tier upgrade"),
    },
    ("rules", "weekdays"): {
        "0": N_("Mon"),
        "1": N_("Tue"),
        "2": N_("Wed"),
        "3": N_("Thu"),
        "4": N_("Fri"),
        "5": N_("Sat"),
        "6": N_("Sun"),
    },
    ("promotions", "kind"): {
        "spend_save": N_("Spend and save (满减)"),
        "percent_off": N_("Percent off items"),
        "buy_n_get_one": N_("Buy N get one free"),
        "member_day": N_("Member day"),
    },
    ("promotions", "weekdays"): {
        "0": N_("Mon"),
        "1": N_("Tue"),
        "2": N_("Wed"),
        "3": N_("Thu"),
        "4": N_("Fri"),
        "5": N_("Sat"),
        "6": N_("Sun"),
    },
    ("join", "policy"): {"free": N_("Anyone, free"), "qualifying_purchase": N_("After a qualifying purchase")},
    ("stored_value", "consumption"): {
        "proportional": N_("Principal and bonus in proportion"),
        "principal_first": N_("Principal first"),
    },
    ("stored_value", "bonus_funder"): {
        "hq": N_("Headquarters"),
        "issuing_branch": N_("The branch that sold the top-up"),
        "redeeming_branch": N_("The branch where it is spent"),
    },
}

#: messages beside a refused input: by the input's last part and the problem's reason, or the part alone
ERROR_TEXTS: dict[str, str] = {
    "name": CODE_AND_NAME["name"],
    "code": N_("Use lower-case letters, digits, “-” or “_” (at most 32)."),
    "code:duplicate": N_("Another row uses this code."),
    "code:required": N_("Give this row a code, or leave the whole row empty."),
    "rank": N_("Enter a rank from 0 to 100."),
    "rank:duplicate": N_("Another tier has this rank."),
    "qualification": N_("Choose how members qualify."),
    "threshold": N_("Enter the spend in yuan, or a number of points."),
    "threshold:order": N_("A higher tier needs at least the threshold of the tier below it."),
    "discount_percent": N_("Enter a percentage from 0 to 100."),
    "cash_max_share_percent": N_("Enter a percentage from 0 to 100."),
    "points_multiplier": N_("Enter a multiplier above 0 and at most 20."),
    "birthday_multiplier": N_("Enter a multiplier above 0 and at most 20."),
    "multiplier": N_("Enter a multiplier above 0 and at most 20."),
    "window_months": N_("Enter 1 to 60 months."),
    "review_every_months": N_("Enter 1 to 60 months."),
    "months": N_("Enter 1 to 120 months."),
    "extra_years": N_("Enter 0 to 10 years."),
    "remind_days_before": N_("Enter 0 to 365 days."),
    "pending_days": N_("Enter 0 to 90 days."),
    "min_age": N_("Enter an age from 0 to 120."),
    "earn_per_major": N_("Enter 0 to 1000 points per ¥1."),
    "cash_value_per_point": N_("Enter a value above ¥0 and at most ¥100."),
    "event:required": N_("A custom rule needs the name of its event."),
    "coupon_template:conflict": N_("A promotion multiplies points and issues no coupon."),
    "coupon_template:unknown": N_("There is no coupon template with this code."),
    "streak_bonus": N_("Write day:points pairs such as 7:20, 30:100 (days 1 to 366)."),
    "ends:dates": N_("The rule ends before it starts."),
    "tiers:unknown": N_("Choose tiers of this programme."),
    "kind:duplicate": N_("Only one check-in rule may be active."),
    "get:order": N_("“Get” must be at least “Pay”."),
    "pay": N_("Enter an amount above zero."),
    "get": N_("Enter an amount above zero."),
    "effective_at": N_("Choose a time from now on (in your time zone)."),
    "percent_off": N_("Enter a percentage from 0 to 100."),
    "percent_off:range": N_("Enter a percentage from 1 to 100."),
    "percent_off:required": N_("A member day takes a percentage off or multiplies points."),
    "steps": N_("Write spend:saving pairs in yuan, such as 100:10, 200:30."),
    "steps:required": N_("A spend-and-save promotion needs at least one spend:saving pair."),
    "steps:order": N_("A saving cannot be more than its spend."),
    "steps:duplicate": N_("Two pairs have the same spend."),
    "buy": N_("Enter a number from 1 to 100."),
    "weekdays:required": N_("Choose the member day's days of the week."),
    "min_tier:unknown": N_("Choose a tier of this programme."),
    "from_time": N_("Enter a time such as 14:00."),
    "until_time": N_("Enter a time such as 14:00."),
    "until_time:dates": N_("The daily window ends before it starts."),
    "limit_per_member": N_("Enter 1 to 10000, or leave empty for no limit."),
    "sample-amount": N_("Enter the basket's amount in yuan, above zero."),
    "validation-failed": N_("Check the values you entered."),
    "conflict": N_("The programme was changed meanwhile. Reload the page and try again."),
}


def label(group: str, path: str, lang: Language) -> str:
    return lang.gettext(LABELS.get((group, path), path))


def choice(group: str, path: str, value: object, lang: Language) -> str:
    text = CHOICES.get((group, path), {}).get(str(value))
    return lang.gettext(text) if text else str(value)


@dataclass(frozen=True)
class DiffLine:
    """A change as a row of the diff table: what changed, before, after."""

    what: str
    before: str
    after: str
    kind: str


def _value(change: Change, value: object, lang: Language, currency: str) -> str:
    if value is None or value in ("", [], {}):
        return "—"
    unit = change.unit
    group, path = change.section, change.field
    if (group, path) == ("promotions", "steps") and isinstance(value, list):
        return ", ".join(
            lang.gettext("spend {spend} save {off}").format(
                spend=i18n.money(s.spend, currency), off=i18n.money(s.off, currency)
            )
            for s in value
        )
    if (group, path) in CHOICES:
        if isinstance(value, list):
            return ", ".join(choice(group, path, v, lang) for v in value)
        return choice(group, path, value, lang)
    if unit is Unit.MONEY and isinstance(value, int):
        return i18n.money(value, currency)
    if unit is Unit.POINTS and isinstance(value, int):
        return lang.gettext("{n} points").format(n=f"{value:,}")
    if unit is Unit.PERCENT:
        return f"{value}%"
    if unit is Unit.MULTIPLIER:
        return f"×{value}"
    if unit is Unit.FLAG:
        return lang.gettext("Yes") if value else lang.gettext("No")
    if isinstance(value, dict):
        return ", ".join(f"{k}:{v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Decimal | date):
        return str(value)
    return str(value)


def describe(change: Change, lang: Language, currency: str) -> DiffLine:
    """``change`` as the reader reads it."""
    group = lang.gettext(GROUP_TITLES.get(change.section, change.section))
    if change.unit is Unit.ITEM:
        what = f"{group}: {change.item_name}"
        if change.kind == "added":
            return DiffLine(what, "—", lang.gettext("Added"), "added")
        return DiffLine(what, lang.gettext("Removed"), "—", "removed")
    where = change.item_name if change.item is not None else group
    what = f"{where} · {label(change.section, change.field, lang)}"
    return DiffLine(
        what, _value(change, change.old, lang, currency), _value(change, change.new, lang, currency), "changed"
    )


#: why a sample cannot be priced (the POS's refusals), by problem type
SAMPLE_PROBLEMS: dict[str, str] = {
    "rule-violation": N_("Not so many points can pay for this basket."),
    "insufficient-points": N_("Not so many points can pay for this basket."),
    "validation-failed": N_("Check the sample basket."),
}


def problem(exc: DomainError, lang: Language) -> str:
    """Why a sample basket cannot be priced under one version."""
    text = SAMPLE_PROBLEMS.get(exc.type_slug)
    return lang.gettext(text) if text else messages.problem_text(exc.type_slug, None, exc.status, lang)
