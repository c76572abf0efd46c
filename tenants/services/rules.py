"""The earning-rules engine: award a rule's points (and optional coupon) to a member.

Sign-up, check-in, review, referral, birthday, custom events and tier upgrades all go through
:func:`award`, inside the caller's unit of work (it never commits):

1. the rule's filters (active, date window and weekdays in the merchant's time zone, branch, tier);
2. a transaction-scoped advisory lock on (rule, member) — concurrent awards of one rule to one
   member queue here, so the per-member and per-day sums below are exact;
3. exactly-once: an award already recorded under ``(rule, key)`` is returned as a replay;
4. caps, in points: per member per local day and per member are summed from ``rule_awards``; the
   total cap is a counter row (``rule_counters``) read ``FOR UPDATE`` — only rules *with* a total
   cap take that lock, so uncapped rules never queue on a hot row;
5. points are credited as a lot on the ledger (expiry from the programme), the coupon is issued
   from its template (stock and per-member limit honoured; a coupon that cannot be issued is
   reported, the points still count), and the award is recorded.

See docs/decisions/0009-earning-rule-caps.md for why caps are counted this way.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from lianka.platform import idempotency
from lianka.platform.db import UnitOfWork
from lianka.platform.errors import Conflict, NotFound, RuleViolation
from lianka.tenants import queries
from lianka.tenants.domain import rules as domain
from lianka.tenants.domain.programme import EarningRule, Programme, RuleKind
from lianka.tenants.models import Coupon, RuleAward
from lianka.tenants.services import accounts
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services.programme import programme_at

_LOOK_UP = "<look up>"


@dataclass(frozen=True)
class Award:
    """The outcome of one rule for one member: ``awarded``, ``replayed`` (done before under the same
    key) or ``skipped`` (``reason`` says why)."""

    rule: str
    kind: str
    member_id: uuid.UUID
    status: str
    points: int = 0
    coupon_code: str | None = None
    entry_id: uuid.UUID | None = None
    reason: str = ""

    @property
    def gave_something(self) -> bool:
        return self.status == "awarded" and (self.points > 0 or self.coupon_code is not None)


def derived_key(prefix: str, key: str, limit: int = idempotency.MAX_KEY) -> str:
    """``prefix + key`` for a ledger entry or an award, hashed when it would pass ``limit`` (a caller's
    Idempotency-Key may itself use the whole limit)."""
    whole = prefix + key
    return whole if len(whole) <= limit else prefix + "sha256:" + hashlib.sha256(key.encode()).hexdigest()


async def lock(uow: UnitOfWork, name: str) -> None:
    """A transaction-scoped advisory lock on ``name`` within this merchant."""
    await queries.advisory_lock(uow, f"{uow.tenant_id}:{name}")


async def require_member(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    """NotFound unless ``member_id`` is a member of this merchant (another merchant's member alike)."""
    if not await queries.is_member(uow, member_id):
        raise NotFound("member not found", field="member_id")


async def member_tier(uow: UnitOfWork, programme: Programme, member_id: uuid.UUID) -> str | None:
    return await queries.member_tier_code(uow, member_id) or domain.base_tier(programme)


async def _so_far(uow: UnitOfWork, rule: EarningRule, member_id: uuid.UUID, day: date) -> domain.Awarded:
    today = mine = total = 0
    if rule.cap_per_day is not None or rule.cap_per_member is not None:
        today, mine = await queries.rule_award_sums(uow, rule.code, member_id, day)
    if rule.cap_total is not None:
        total = await queries.lock_rule_counter(uow, rule.code)
    return domain.Awarded(today=today, member=mine, total=total)


async def _replay(uow: UnitOfWork, rule: EarningRule, member_id: uuid.UUID, key: str) -> Award | None:
    done = (
        await uow.session.scalars(select(RuleAward).where(RuleAward.rule_code == rule.code, RuleAward.award_key == key))
    ).first()
    if done is None:
        return None
    if done.member_id != member_id:
        raise Conflict(f"award key {key!r} of rule {rule.code} was used for another member")
    code = await uow.session.scalar(select(Coupon.code).where(Coupon.id == done.coupon_id)) if done.coupon_id else None
    return Award(rule.code, str(rule.kind), member_id, "replayed", done.points, code, done.entry_id)


async def _coupon(uow: UnitOfWork, rule: EarningRule, member_id: uuid.UUID, at: datetime) -> tuple[Coupon | None, str]:
    template = await coupon_svc.get_template_by_code(uow, rule.coupon_template)
    if template is None:
        return None, f"no coupon template {rule.coupon_template!r}"
    try:  # issue() checks before it writes: a refusal leaves nothing behind
        return await coupon_svc.issue(uow, template.id, member_id, source=f"rule:{rule.code}"[:32], now=at), ""
    except RuleViolation as exc:
        return None, exc.detail


async def award(
    uow: UnitOfWork,
    programme: Programme,
    rule: EarningRule,
    member_id: uuid.UUID,
    *,
    key: str,
    at: datetime,
    branch_code: str | None = None,
    tier: str | None = _LOOK_UP,
    points: int | None = None,
    refs: Mapping[str, object] | None = None,
) -> Award:
    """Give ``member_id`` what ``rule`` gives (``points`` overrides the rule's points, e.g. a check-in
    with its streak bonus), at most once per ``(rule, key)``. Never raises for a rule that does not
    apply: the outcome says ``skipped`` and why."""
    _, tz = await accounts.merchant_info(uow)
    day = at.astimezone(ZoneInfo(tz)).date()
    if tier == _LOOK_UP:
        tier = await member_tier(uow, programme, member_id)
    skipped = domain.ineligible(rule, day=day, branch_code=branch_code, tier=tier)
    if skipped:
        return Award(rule.code, str(rule.kind), member_id, "skipped", reason=skipped)
    await lock(uow, f"rule:{rule.code}:{member_id}")
    key = derived_key("", key, limit=240)
    replay = await _replay(uow, rule, member_id, key)
    if replay is not None:
        return replay
    wanted = rule.points if points is None else points
    grant = domain.allowance(rule, wanted, await _so_far(uow, rule, member_id, day)) if wanted else 0
    if wanted and not grant:
        return Award(rule.code, str(rule.kind), member_id, "skipped", reason="cap reached")
    entry = None
    if grant:
        entry = await accounts.award_points(
            uow,
            member_id,
            grant,
            programme=programme,
            reason=f"rule_{rule.kind}",
            key=derived_key(f"rule:{rule.code}:", key),
            business_time=at,
            refs={"rule": rule.code, **(refs or {})},
        )
    coupon, coupon_note = (await _coupon(uow, rule, member_id, at)) if rule.coupon_template else (None, "")
    if not grant and coupon is None:
        return Award(rule.code, str(rule.kind), member_id, "skipped", reason=coupon_note or "nothing to give")
    if rule.cap_total is not None:
        await queries.count_rule_award(uow, rule.code, grant)
    uow.session.add(
        RuleAward(
            tenant_id=uow.tenant_id,
            rule_code=rule.code,
            kind=str(rule.kind),
            award_key=key,
            member_id=member_id,
            day=day,
            points=grant,
            entry_id=entry.id if entry else None,
            coupon_id=coupon.id if coupon else None,
            refs=dict(refs or {}),
            at=at,
        )
    )
    await uow.session.flush()
    return Award(
        rule.code,
        str(rule.kind),
        member_id,
        "awarded",
        grant,
        coupon.code if coupon else None,
        entry.id if entry else None,
        coupon_note if rule.coupon_template and coupon is None else "",
    )


def rules_of(programme: Programme, kind: RuleKind, *, event: str | None = None) -> list[EarningRule]:
    return [r for r in programme.rules if r.kind == kind and (event is None or r.event == event)]


async def award_all(
    uow: UnitOfWork,
    programme: Programme,
    rules: Iterable[EarningRule],
    member_id: uuid.UUID,
    *,
    key: str,
    at: datetime,
    branch_code: str | None = None,
    refs: Mapping[str, object] | None = None,
) -> list[Award]:
    tier = await member_tier(uow, programme, member_id)
    return [
        await award(uow, programme, r, member_id, key=key, at=at, branch_code=branch_code, tier=tier, refs=refs)
        for r in rules
    ]


async def on_signup(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    *,
    at: datetime | None = None,
    branch_id: uuid.UUID | None = None,
    programme: Programme | None = None,
) -> list[Award]:
    """Sign-up rules for a new membership (once per member: the key is the member)."""
    at = at or datetime.now(UTC)
    if programme is None:
        _, programme = await programme_at(uow, at)
    rules = rules_of(programme, RuleKind.SIGNUP)
    if not rules:
        return []
    code = await queries.branch_code(uow, branch_id) if branch_id else None
    return await award_all(uow, programme, rules, member_id, key=f"signup:{member_id}", at=at, branch_code=code or None)


async def on_tier_change(
    uow: UnitOfWork,
    programme: Programme,
    member_id: uuid.UUID,
    old: str | None,
    new: str | None,
    *,
    at: datetime,
    branch_code: str | None = None,
) -> list[Award]:
    """Tier-upgrade rules when ``new`` ranks above ``old`` (once per member and tier reached)."""
    if not domain.is_upgrade(programme, old, new):
        return []
    return [
        await award(
            uow,
            programme,
            r,
            member_id,
            key=f"tier:{member_id}:{new}",
            at=at,
            branch_code=branch_code,
            tier=new,
            refs={"from": old, "to": new},
        )
        for r in rules_of(programme, RuleKind.TIER_UPGRADE)
    ]


async def on_referral(
    uow: UnitOfWork,
    programme: Programme,
    referrer: uuid.UUID,
    referee: uuid.UUID,
    *,
    spend: int,
    key: str,
    at: datetime,
    branch_code: str | None = None,
) -> list[Award]:
    """The referrer's reward for the referee's first purchase of at least the rule's ``min_spend``."""
    rules = [r for r in rules_of(programme, RuleKind.REFERRAL) if spend >= r.min_spend]
    if not rules:
        return []
    return await award_all(
        uow,
        programme,
        rules,
        referrer,
        key=f"referral:{referee}",
        at=at,
        branch_code=branch_code,
        refs={"referee": str(referee), "sale_key": key},
    )
