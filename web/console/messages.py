"""Texts the console shows for problems and after actions, translatable.

The API's problems carry English ``detail`` texts for developers; a page shows the reader a
message chosen by the problem's ``type`` (and ``field``), in the reader's language. An unknown
problem falls back to a message for its HTTP status, so nothing untranslated reaches a page.
Flash messages travel as a *key* in a short-lived cookie, never as text (nobody can make our page
say something of their choosing).
"""

from __future__ import annotations

from lianka.platform.errors import DomainError
from lianka.web.console.i18n import N_, Language

#: (problem type slug, field or None) -> message
PROBLEMS: dict[tuple[str, str | None], str] = {
    ("bad-campaign", "template_a"): N_("The message may only use the variables listed below, in braces."),
    ("bad-campaign", "template_b"): N_("The message may only use the variables listed below, in braces."),
    ("bad-campaign", None): N_("Check this value."),
    ("campaign-name-taken", None): N_("A campaign with this name exists."),
    ("campaign-already-started", None): N_("This campaign has already been sent."),
    ("segment-not-found", None): N_("Choose a segment."),
    ("validation-failed", "code"): N_("Use 1 to 32 letters, digits, “-” or “_”."),
    ("validation-failed", "name"): N_("Enter a name of 1 to 200 characters."),
    ("validation-failed", "address"): N_("An address has at most 400 characters."),
    ("validation-failed", "timezone"): N_("Enter a time zone such as Asia/Shanghai."),
    ("validation-failed", "currency"): N_("Choose a currency such as CNY."),
    ("validation-failed", "slug"): N_("Use 2 to 63 lower-case letters, digits and hyphens."),
    ("validation-failed", "merchant_name"): N_("Enter your business's name (1 to 200 characters)."),
    ("validation-failed", "email"): N_("Enter a valid e-mail address."),
    ("validation-failed", "password"): N_("Use 10 to 256 characters, and not a too simple one."),
    ("validation-failed", "password_again"): N_("The two passwords differ."),
    ("validation-failed", None): N_("Fill in the required fields."),
    ("bad-payment-credentials", None): N_(
        "Fill in every field of the chosen provider, as its merchant platform shows them."
    ),
    ("conflict", "code"): N_("Another branch already uses this code."),
    ("slug-taken", "slug"): N_("This address is taken; choose another one."),
    ("email-taken", "email"): N_("An account with this e-mail address exists already: sign in instead."),
    ("invalid-credentials", None): N_("The e-mail address or the password is not right."),
    ("account-locked", None): N_("Too many failed attempts: try again in a few minutes."),
    ("rate-limited", None): N_("Too many attempts: try again in a few minutes."),
    ("invalid-token", None): N_("This link is not valid any more. Ask for a new one."),
    ("csrf-failed", None): N_("This page has expired. Reload it and try again."),
    ("insufficient-permission", None): N_("Your role does not allow this."),
    ("forbidden", None): N_("Your role does not allow this."),
    ("not-found", None): N_("There is nothing here, or it is not yours to see."),
    ("oidc-failed", None): N_("Sign-in with the external provider failed."),
    # the till, POS clients, staff, programme templates (web/console/till.py, clients.py, staff.py, programme_start.py)
    ("webhook-url-refused", "url"): N_(
        "This URL cannot receive webhooks: use an https address on the public internet (not a private, "
        "loopback or link-local address)."
    ),
    ("webhook-unknown-event", "events"): N_("Choose at least one event."),
    # paid membership (web/console/membership.py)
    ("membership-product-exists", "code"): N_("Another membership product uses this code."),
    ("membership-product-retired", None): N_("This membership product is no longer sold."),
    ("membership-refund-not-allowed", None): N_("Your policy does not pay membership fees back."),
    ("membership-nothing-to-refund", None): N_(
        "Every month of this membership has begun: nothing is left to pay back."
    ),
    ("membership-term-not-live", None): N_("This membership has already ended."),
    ("membership-online-refund-unavailable", None): N_(
        "This membership was paid online; its refund goes back through the payment provider."
    ),
    ("validation-failed", "price"): N_("Enter a price above zero, such as 99.00."),
    ("validation-failed", "coupon_pack"): N_(
        "Use coupon template codes with a count, such as m5x2, separated by commas."
    ),
    ("validation-failed", "tier"): N_("Choose a tier of your programme, or none."),
    ("validation-failed", "points_multiplier"): N_("Enter a multiplier from 1 to 10, such as 1.5."),
    ("validation-failed", "extra_discount_percent"): N_("Enter a whole percentage from 0 to 90."),
    ("validation-failed", "amount"): N_("Enter an amount such as 12.50."),
    ("validation-failed", "stored_value"): N_("Enter an amount such as 12.50."),
    ("validation-failed", "refund_amount"): N_("Enter an amount such as 12.50."),
    ("validation-failed", "points"): N_("Enter a whole number of points."),
    ("validation-failed", "lines"): N_(
        "Each item needs a code, a quantity and a unit price, and together they make the amount."
    ),
    ("validation-failed", "refund_lines"): N_("Enter how many of each item to refund."),
    ("validation-failed", "mode"): N_("Choose what to refund."),
    ("validation-failed", "payment_method"): N_("Choose how the customer pays."),
    ("validation-failed", "phone"): N_("Type a mobile number or a card number, or scan the member's code."),
    ("validation-failed", "qr"): N_("This is not a Lianka member code."),
    ("validation-failed", "branch_id"): N_("Choose a branch."),
    ("validation-failed", "member_id"): N_("Find the member again."),
    ("validation-failed", "scopes"): N_("Choose at least one thing the client may do."),
    ("validation-failed", "expires_in_days"): N_("Enter a number of days from 1 to 3650, or leave it empty."),
    ("validation-failed", "role"): N_("Choose a role."),
    ("validation-failed", "branch_ids"): N_("A manager needs at least one branch."),
    ("validation-failed", "display_name"): N_("A name has at most 200 characters."),
    ("validation-failed", "template"): N_("Choose one of the templates."),
    ("bad-lucky-draw", None): N_("Check the lucky draw:"),
    ("bad-alliance-offer", None): N_("Check the offer:"),
    ("alliance-offer-decided", None): N_("This offer was already accepted or declined."),
    ("lucky-draw-name-taken", "name"): N_("A lucky draw with this name exists."),
    ("insufficient-points", "points"): N_("The member does not have that many points."),
    ("rule-violation", "points"): N_("That many points cannot pay for this bill: see how many can."),
    ("insufficient-stored-value", "stored_value"): N_("The member's stored value is not enough."),
    ("payment-exceeds-bill", "stored_value"): N_("Stored value cannot pay more than what is left of the bill."),
    ("coupon-not-applicable", "coupons"): N_(
        "A chosen coupon cannot be used for this sale (minimum spend, branch or combination)."
    ),
    ("alliance-voucher-not-valid", "alliance_voucher"): N_(
        "This voucher cannot be used for this sale: unknown here, already used, expired, or under its minimum spend."
    ),
    ("not-eligible-to-join", "join_phone"): N_(
        "This purchase is too small to join: your programme's join rule asks for more."
    ),
    ("refund-exceeds-sale", "refund_amount"): N_("That is more than what is left to refund."),
    ("refund-exceeds-sale", "refund_lines"): N_("That is more than what is left of these items."),
    ("not-found", "plan"): N_("This plan is not on sale any more."),
    ("idempotency-key-reused", None): N_("This form was already used for something else. Reload the page."),
    ("conflict", "email"): N_("This person is already on your staff."),
    ("rule-violation", "role"): N_("A merchant keeps at least one owner."),
}

BY_STATUS: dict[int, str] = {
    400: N_("Check the values you entered."),
    401: N_("Sign in to continue."),
    403: N_("Your role does not allow this."),
    404: N_("There is nothing here, or it is not yours to see."),
    409: N_("This conflicts with what exists already."),
    415: N_("Check the values you entered."),
    422: N_("A rule of your programme does not allow this."),
    429: N_("Too many attempts: try again in a few minutes."),
}
SERVER_ERROR = N_("Something went wrong on our side. Try again in a moment.")

FLASH: dict[str, str] = {
    "payments-saved": N_("Payment settings saved."),
    "payment-refunded": N_("The payment was refunded through the provider."),
    "payment-refund-refused": N_(
        "The refund could not be made: nothing is left to refund, or the member has spent it."
    ),
    "branch-created": N_("Branch added."),
    "segment-saved": N_("Segment saved."),
    "campaign-saved": N_("Campaign saved. Check the preview, then send it."),
    "campaign-sent": N_("Campaign started."),
    "campaign-resent": N_("The message is queued again."),
    "automation-saved": N_("Automation saved."),
    "draw-saved": N_("Lucky draw saved."),
    "offer-proposed": N_("Offer proposed: the partner decides whether its members get it."),
    "offer-accepted": N_("Offer accepted: it is on its way to your consenting members."),
    "offer-declined": N_("Offer declined."),
    "draw-on": N_("Lucky draw switched on."),
    "draw-off": N_("Lucky draw switched off."),
    "automation-on": N_("Automation switched on."),
    "automation-off": N_("Automation switched off."),
    "campaign-cap-saved": N_("Frequency cap saved."),
    "provider-saved": N_("Provider saved."),
    "branch-saved": N_("Branch saved."),
    "programme-published": N_("A new version of the programme is in force."),
    "programme-scheduled": N_("A new version of the programme is scheduled."),
    "coupon-template-created": N_("Coupon template created."),
    "coupon-template-deactivated": N_("Coupon template deactivated: it issues no more coupons."),
    "reward-created": N_("Reward added."),
    "membership-product-created": N_("Membership product added."),
    "membership-settings-saved": N_("Paid membership settings saved."),
    "membership-canceled": N_("The membership will not renew; its perks last to the end of the term."),
    "membership-refunded": N_("The unused months were paid back; the membership has ended."),
    "reward-saved": N_("Reward saved."),
    "reward-withdrawn": N_("Reward withdrawn."),
    "gift-delivered": N_("Gift handed out."),
    "gift-cancelled": N_("Redemption cancelled: the points are back."),
    "signed-out": N_("You have signed out."),
    "signed-in-elsewhere": N_("Your session has ended. Sign in again."),
    "merchant-switched": N_("Switched merchant."),
    "password-set": N_("Your password is set. Sign in with it."),
    "password-reset": N_("Your password has been changed. Sign in with the new one."),
    "not-a-merchant": N_("You no longer work for that merchant. Choose another one."),
    "member-saved": N_("Profile saved."),
    "consent-saved": N_("Consent recorded."),
    "tier-granted": N_("Tier granted."),
    "client-created": N_("Client created."),
    "client-revoked": N_("Client revoked: its tills stop working now."),
    # outbound webhooks (web/console/webhooks.py)
    "webhook-created": N_("Subscription created."),
    "webhook-rotated": N_("New secret made: the old one no longer signs."),
    "webhook-switched-on": N_("Subscription switched on."),
    "webhook-switched-off": N_("Subscription switched off: no new events are sent to it."),
    "webhook-test-queued": N_("Test event queued: it appears in the delivery log below."),
    "webhook-replay-queued": N_("The event is being sent again, with the same event id."),
    "staff-invited": N_("Invitation sent."),
    "staff-saved": N_("Saved."),
    "staff-removed": N_("Removed from your staff."),
    "template-published": N_("Your programme is published: members earn from the next sale."),
    # alliances (web/console/alliance.py)
    "alliance-founded": N_("Alliance founded: you operate it. Invite partners and set its terms."),
    "alliance-joined": N_("You have joined the alliance."),
    "invite-created": N_("Invitation code created."),
    "partner-suspended": N_("Partner suspended: it can neither issue nor accept points."),
    "partner-reinstated": N_("Partner reinstated."),
    "partner-left": N_("Out of the alliance: its members' points stay valid at the other partners."),
    "terms-published": N_("A new version of the terms is in force."),
    "terms-scheduled": N_("A new version of the terms is scheduled."),
    "period-closed": N_("Month closed: the statements are ready."),
}


#: the subscription's refusals (billing's 402s): shown with a link to the billing page
#: the lucky draw's prize rows (``web/console/draws.py``, four rows)
PROBLEMS.update(
    {("validation-failed", f"prizes[{i}].chance_bp"): N_("Enter a chance from 0.01 to 100 percent.") for i in range(4)}
)

PLAN_PROBLEMS = {
    "plan-restricted": N_(
        "Your subscription is restricted, so set-up and marketing changes wait until it is paid. "
        "The till, the member portal, reports and exports work as usual."
    ),
    "plan-limit-reached": N_("Your plan allows %(value)s %(what)s, and %(used)s are in use. Upgrade to add more."),
}
PLAN_NO_ALLIANCE = N_("Your plan does not include alliance membership. Upgrade to found or join an alliance.")
LIMIT_NAMES = {
    "branches": N_("branches"),
    "members": N_("members"),
    "staff_seats": N_("staff seats"),
    "messages_per_month": N_("messages a month"),
}


def plan_problem_text(exc: DomainError, lang: Language) -> str:
    if exc.type_slug == "plan-restricted":
        return lang.gettext(PLAN_PROBLEMS["plan-restricted"])
    limit = str(exc.extra.get("limit", ""))
    if limit == "alliance_membership":
        return lang.gettext(PLAN_NO_ALLIANCE)
    what = lang.gettext(LIMIT_NAMES[limit]) if limit in LIMIT_NAMES else limit
    return lang.gettext(PLAN_PROBLEMS["plan-limit-reached"]) % {
        "value": exc.extra.get("plan_value"),
        "what": what,
        "used": exc.extra.get("current"),
    }


def problem_text(slug: str, field: str | None, status: int, lang: Language) -> str:
    message = PROBLEMS.get((slug, field)) or PROBLEMS.get((slug, None)) or BY_STATUS.get(status) or SERVER_ERROR
    return lang.gettext(message)


def flash_text(key: str | None, lang: Language) -> str | None:
    message = FLASH.get(key or "")
    return lang.gettext(message) if message else None
