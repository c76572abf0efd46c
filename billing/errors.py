"""Billing's refusals that other areas see: a restricted merchant's configuration write, and a
plan limit reached. Both are 402 Payment Required — paying (upgrading) is what lifts them — and
carry ``upgrade_url``, the console's billing page."""

from __future__ import annotations

from lianka.platform.errors import DomainError

#: where an owner upgrades or pays (the console's billing page)
UPGRADE_PATH = "/console/billing"


class PlanRestricted(DomainError):
    """Configuration and marketing writes wait until the merchant pays; the till, the member
    portal, reads, exports, settlement and billing itself go on (decision 0032)."""

    type_slug = "plan-restricted"
    title = "The subscription is restricted: pay or choose a plan to change the set-up"
    status = 402


class PlanLimitReached(DomainError):
    """``limit`` (branches, members, staff_seats, messages_per_month, alliance_membership), the
    plan's value and the current use travel in the problem body."""

    type_slug = "plan-limit-reached"
    title = "The plan's limit is reached: upgrade to add more"
    status = 402
