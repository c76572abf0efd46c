"""Lifecycle stage from recency, and join eligibility (入会门槛)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from lianka.tenants.domain.programme import JoinPolicy, JoinRules


class Stage(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    DORMANT = "dormant"


@dataclass(frozen=True)
class Recency:
    new_days: int = 30
    active_days: int = 90
    at_risk_days: int = 180


def stage(joined: date, last_purchase: date | None, today: date, r: Recency = Recency()) -> Stage:
    """new: joined within ``new_days`` · active: bought within ``active_days`` · at risk: within
    ``at_risk_days`` · dormant: longer, or never bought after the new period."""
    if last_purchase is None:
        return Stage.NEW if (today - joined).days <= r.new_days else Stage.DORMANT
    idle = (today - last_purchase).days
    if (today - joined).days <= r.new_days:
        return Stage.NEW
    if idle <= r.active_days:
        return Stage.ACTIVE
    if idle <= r.at_risk_days:
        return Stage.AT_RISK
    return Stage.DORMANT


def age_on(birthday: date, today: date) -> int:
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str


def join_eligibility(
    rules: JoinRules, *, purchase: int = 0, cumulative: int = 0, birthday: date | None = None, today: date
) -> Eligibility:
    """May this customer join? ``purchase`` is this sale, ``cumulative`` includes it (minor units)."""
    if rules.min_age:
        if birthday is None:
            return Eligibility(False, f"a birthday is required (minimum age {rules.min_age})")
        if age_on(birthday, today) < rules.min_age:
            return Eligibility(False, f"members must be at least {rules.min_age}")
    if rules.policy == JoinPolicy.FREE:
        return Eligibility(True, "open membership")
    if rules.single_purchase_min and purchase >= rules.single_purchase_min:
        return Eligibility(True, "qualifying single purchase")
    if rules.cumulative_min and cumulative >= rules.cumulative_min:
        return Eligibility(True, "qualifying cumulative purchases")
    return Eligibility(False, "no qualifying purchase yet")
