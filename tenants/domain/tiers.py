"""Tier rules: qualification, immediate upgrades, periodic retention review (保级), manual floors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from lianka.tenants.domain.programme import Programme, RetentionAction, Tier, TierQualification


@dataclass(frozen=True)
class Standing:
    """What a member has done within the programme's tier window."""

    spend: int = 0
    points_earned: int = 0
    purchased: frozenset[str] = frozenset()  # tier codes bought (paid membership), still valid
    invited: frozenset[str] = frozenset()  # tier codes granted by invitation


@dataclass(frozen=True)
class TierChange:
    old: str | None
    new: str | None
    reason: str

    @property
    def changed(self) -> bool:
        return self.old != self.new


def _meets(t: Tier, s: Standing) -> bool:
    match t.qualification:
        case TierQualification.SPEND:
            return s.spend >= t.threshold
        case TierQualification.POINTS:
            return s.points_earned >= t.threshold
        case TierQualification.PURCHASE:
            return t.code in s.purchased
        case TierQualification.INVITATION:
            return t.code in s.invited


def qualified_tier(p: Programme, s: Standing) -> Tier | None:
    """The highest-ranked tier whose criterion the standing meets."""
    met = [t for t in p.tiers if _meets(t, s)]
    return max(met, key=lambda t: t.rank) if met else None


def _rank(p: Programme, code: str | None) -> int:
    t = p.tier(code)
    return t.rank if t else -1


def _floor(
    p: Programme, result: Tier | None, floor: str | None, floor_until: date | None, today: date
) -> tuple[Tier | None, bool]:
    f = p.tier(floor)
    if f and floor_until and today <= floor_until and _rank(p, f.code) > _rank(p, result.code if result else None):
        return f, True
    return result, False


def on_activity(
    p: Programme,
    current: str | None,
    s: Standing,
    *,
    floor: str | None = None,
    floor_until: date | None = None,
    today: date,
) -> TierChange:
    """After a purchase/earn: upgrade at once when a higher tier is met; never downgrade here."""
    q = qualified_tier(p, s)
    q, floored = _floor(p, q, floor, floor_until, today)
    if q and _rank(p, q.code) > _rank(p, current):
        return TierChange(current, q.code, "manual floor" if floored else f"qualified: {q.qualification}")
    return TierChange(current, current, "unchanged")


def review(
    p: Programme,
    current: str | None,
    s: Standing,
    *,
    floor: str | None = None,
    floor_until: date | None = None,
    today: date,
) -> TierChange:
    """Periodic retention review: keep, or downgrade one step / re-evaluate, never below the floor."""
    q = qualified_tier(p, s)
    if _rank(p, q.code if q else None) >= _rank(p, current):
        new = q
        reason = "retained" if (q and q.code == current) else "qualified at review"
    elif p.tier_policy.retention == RetentionAction.REEVALUATE:
        new, reason = q, "re-evaluated at review"
    else:
        below = [t for t in p.tiers_by_rank() if t.rank < _rank(p, current)]
        one_down = below[-1] if below else None
        new = one_down if _rank(p, one_down.code if one_down else None) >= _rank(p, q.code if q else None) else q
        reason = "downgraded one step at review"
    new, floored = _floor(p, new, floor, floor_until, today)
    if floored:
        reason = "manual floor"
    return TierChange(current, new.code if new else None, reason)


def progress(p: Programme, current: str | None, s: Standing) -> dict[str, object] | None:
    """What the next tier up needs: ``{"tier": code, "needed": n, "measure": "spend"|"points"}``."""
    higher = [
        t
        for t in p.tiers_by_rank()
        if t.rank > _rank(p, current) and t.qualification in (TierQualification.SPEND, TierQualification.POINTS)
    ]
    if not higher:
        return None
    nxt = higher[0]
    have = s.spend if nxt.qualification == TierQualification.SPEND else s.points_earned
    return {
        "tier": nxt.code,
        "measure": str(nxt.qualification),
        "threshold": nxt.threshold,
        "have": have,
        "needed": max(nxt.threshold - have, 0),
    }


def retention(p: Programme, current: str | None, s: Standing) -> dict[str, object] | None:
    """What keeps the current tier at the next retention review (保级): its own threshold, reached
    within the programme's window (``review`` keeps a tier whose member still qualifies for it).
    ``None`` for no tier, or a tier that spend or points do not decide (bought, invited, threshold 0)."""
    tier = p.tier(current) if current else None
    if tier is None or tier.threshold <= 0:
        return None
    if tier.qualification not in (TierQualification.SPEND, TierQualification.POINTS):
        return None
    have = s.spend if tier.qualification == TierQualification.SPEND else s.points_earned
    return {
        "tier": tier.code,
        "measure": str(tier.qualification),
        "threshold": tier.threshold,
        "have": have,
        "needed": max(tier.threshold - have, 0),
        "window_months": p.tier_policy.window_months,
    }
