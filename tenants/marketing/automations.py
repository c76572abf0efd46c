"""Automations (issue 16, part 3; decision 0039): a trigger with its parameters, an optional wait,
then a message (channel and template, as campaigns), a coupon and/or points — at most once per
member and occasion.

The daily/periodic step per merchant (:func:`run`) is set-based: every enabled automation's trigger
writes its new occasions into ``automation_firings`` in one ``INSERT … SELECT`` (the primary key
automation/member/occasion makes a re-run a no-op), then the firings whose wait has passed get their
message written into ``campaign_messages`` with the campaigns' consent and weekly-cap conditions
(one statement; the automation owns a campaign of status ``automation`` holding channel and
template), their coupon (``coupons.issue``, stock respected) and points (``accounts.award_points``,
ledger key per firing), and the due messages go to the outbox — the campaigns' actor delivers them
(quiet hours, rate limits, retries, dead letters, receipts: one sender).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.log import get_logger
from lianka.platform.webhooks import services as webhooks
from lianka.tenants import queries as tenant_queries
from lianka.tenants.domain import tiers
from lianka.tenants.marketing import automation_queries as q
from lianka.tenants.marketing import campaign_domain as cd
from lianka.tenants.marketing import campaign_queries as cq
from lianka.tenants.marketing import queries as segment_queries
from lianka.tenants.marketing.campaigns import CHANNELS, DEFAULT_CAP
from lianka.tenants.marketing.errors import AutomationNameTaken, AutomationNotFound, BadAutomation
from lianka.tenants.marketing.models import Automation, AutomationFiring, Campaign
from lianka.tenants.services import accounts
from lianka.tenants.services import coupons as coupon_service
from lianka.tenants.services.coupons import CouponSoldOut, CouponTemplateInactive
from lianka.tenants.services.programme import programme_at

log = get_logger(__name__)
TRIGGERS = q.TRIGGERS
#: found by the periodic scan (a high-water mark: the automation's creation) / by the daily job
EVENT_TRIGGERS = ("joined", "first_purchase", "tier_up", "membership_expiring")
TIME_TRIGGERS = tuple(t for t in TRIGGERS if t not in EVENT_TRIGGERS)
#: triggers whose ``days`` is a number of days (ahead, or since the last purchase)
DAYS_TRIGGERS = ("birthday", "points_expiring", "coupon_expiring", "win_back", "tier_at_risk")


@dataclass(frozen=True)
class AutomationIn:
    name: str
    trigger: str
    days: int = 0
    amount: int = 0
    wait_days: int = 0
    enabled: bool = True
    channel: str | None = None
    subject: str = ""
    template: str = ""
    coupon_template_id: uuid.UUID | None = None
    points: int = 0


def _check(data: AutomationIn) -> None:
    if not 1 <= len(data.name.strip()) <= 100:
        raise BadAutomation("name: 1-100 characters", field="name")
    if data.trigger not in TRIGGERS:
        raise BadAutomation(f"trigger is one of {', '.join(TRIGGERS)}", field="trigger")
    if not 0 <= data.days <= 366:
        raise BadAutomation("days: 0-366", field="days")
    if data.trigger == "win_back" and data.days < 1:
        raise BadAutomation("win-back needs at least 1 day without a purchase", field="days")
    if data.trigger == "stored_value_below" and data.amount <= 0:
        raise BadAutomation("the stored value threshold must be positive (fen)", field="amount")
    if data.amount < 0:
        raise BadAutomation("amount: not negative", field="amount")
    if not 0 <= data.wait_days <= 90:
        raise BadAutomation("wait: 0-90 days", field="wait_days")
    if not 0 <= data.points <= 1_000_000:
        raise BadAutomation("points: 0-1000000", field="points")
    if data.channel is not None:
        if data.channel not in CHANNELS:
            raise BadAutomation(f"channel is one of {', '.join(CHANNELS)}", field="channel")
        try:
            cd.check_template(data.template)
        except cd.TemplateError as e:
            raise BadAutomation(str(e), field="template") from None
        if len(data.subject) > 200:
            raise BadAutomation("subject ≤ 200 characters", field="subject")
    if data.channel is None and data.coupon_template_id is None and not data.points:
        raise BadAutomation("choose at least one action: a message, a coupon or points", field="channel")


async def _write(uow: UnitOfWork, a: Automation, data: AutomationIn) -> None:
    if data.coupon_template_id and not await segment_queries.existing_templates(uow, {data.coupon_template_id}):
        raise BadAutomation("no such coupon template", field="coupon_template_id")
    if await q.name_taken(uow, data.name.strip(), a.id):
        raise AutomationNameTaken(field="name")
    a.name, a.trigger, a.days, a.amount = data.name.strip(), data.trigger, data.days, data.amount
    a.wait_days, a.enabled, a.points = data.wait_days, data.enabled, data.points
    a.coupon_template_id = data.coupon_template_id
    c = None if a.campaign_id is None else await cq.campaign(uow, a.campaign_id)
    if data.channel is None:
        a.campaign_id = None
        return
    if c is None:
        c = Campaign(
            tenant_id=uow.tenant_id,
            id=uuid.uuid4(),
            name=f"automation:{a.id}",
            created_at=a.created_at,
            segment_id=None,
            status="automation",
            template_a="",
        )
        uow.session.add(c)
    c.channel, c.subject, c.template_a = data.channel, data.subject, data.template
    await uow.session.flush()
    a.campaign_id = c.id


async def create(db: Database, tenant: uuid.UUID, data: AutomationIn, *, now: datetime | None = None) -> Automation:
    """A new automation; its event triggers count from ``now`` (members who joined before are not greeted)."""
    _check(data)
    async with db.uow(tenant) as uow:
        a = await create_in(uow, data, now=now or datetime.now(UTC))
        await uow.commit()
        return a


async def create_in(uow: UnitOfWork, data: AutomationIn, *, now: datetime, code: str | None = None) -> Automation:
    """Building block: write a new automation (and its message's campaign). No commit."""
    _check(data)
    a = Automation(tenant_id=uow.tenant_id, id=uuid.uuid4(), code=code, trigger=data.trigger, created_at=now)
    await _write(uow, a, data)
    uow.session.add(a)
    await uow.session.flush()
    await uow.session.refresh(a)
    return a


async def update(db: Database, tenant: uuid.UUID, automation_id: uuid.UUID, data: AutomationIn) -> Automation:
    """Change an automation; occasions already fired stay fired (the trigger may change: new occasions)."""
    _check(data)
    async with db.uow(tenant) as uow:
        a = await _get(uow, automation_id, lock=True)
        await _write(uow, a, data)
        await uow.session.flush()
        await uow.commit()
        return a


async def set_enabled(db: Database, tenant: uuid.UUID, automation_id: uuid.UUID, enabled: bool) -> Automation:
    async with db.uow(tenant) as uow:
        a = await _get(uow, automation_id, lock=True)
        a.enabled = enabled
        await uow.session.flush()
        await uow.commit()
        return a


async def _get(uow: UnitOfWork, automation_id: uuid.UUID, *, lock: bool = False) -> Automation:
    a = await q.automation(uow, automation_id, lock=lock)
    if a is None:
        raise AutomationNotFound()
    return a


@dataclass(frozen=True)
class View:
    automation: Automation
    campaign: Campaign | None
    stats: q.Stats

    def form(self) -> AutomationIn:
        a, c = self.automation, self.campaign
        return AutomationIn(
            name=a.name, trigger=a.trigger, days=a.days, amount=a.amount, wait_days=a.wait_days, enabled=a.enabled,
            channel=c.channel if c else None, subject=c.subject if c else "", template=c.template_a if c else "",
            coupon_template_id=a.coupon_template_id, points=a.points,
        )  # fmt: skip


async def get(db: Database, tenant: uuid.UUID, automation_id: uuid.UUID) -> View:
    async with db.uow(tenant) as uow:
        a = await _get(uow, automation_id)
        c = None if a.campaign_id is None else await cq.campaign(uow, a.campaign_id)
        return View(a, c, (await q.stats(uow)).get(a.id, q.Stats()))


async def list_all(db: Database, tenant: uuid.UUID) -> list[View]:
    async with db.uow(tenant) as uow:
        stats = await q.stats(uow)
        out = []
        for a in await q.automations(uow):
            c = None if a.campaign_id is None else await cq.campaign(uow, a.campaign_id)
            out.append(View(a, c, stats.get(a.id, q.Stats())))
        return out


# --- the merchant's defaults --------------------------------------------------------------------

DEFAULTS = (
    (
        "birthday",
        AutomationIn(
            name="生日祝福", trigger="birthday", days=0, channel="portal", subject="生日快乐",
            template="{name}，{merchant} 祝您生日快乐！",
        ),
    ),
    (
        "points_expiry",
        AutomationIn(
            name="积分到期提醒", trigger="points_expiring", days=30, channel="portal", subject="积分即将到期",
            template="{name}，您有 {expiring_points} 积分将于 {expiring_date} 到期，请及时使用。",
        ),
    ),
    (
        "membership_expiry",
        AutomationIn(
            name="付费会员到期提醒", trigger="membership_expiring", channel="portal", subject="付费会员即将到期",
            template="{name}，您在 {merchant} 的付费会员即将到期，可在会员中心续费。",
        ),
    ),
)  # fmt: skip


async def ensure_defaults_in(uow: UnitOfWork, now: datetime) -> int:
    """The merchant's default automations ("生日祝福", "积分到期提醒", "付费会员到期提醒"), once (by ``code``); the points
    reminder takes the programme's notice period. Returns how many were created."""
    made = 0
    for code, data in DEFAULTS:
        if await q.by_code(uow, code) is not None:
            continue
        if await q.name_taken(uow, data.name):
            continue  # the merchant already named one so: theirs wins
        if code == "points_expiry":
            _, programme = await programme_at(uow, now)
            days = programme.points.expiry.remind_days_before or 30
            await create_in(uow, dataclasses.replace(data, days=days), now=now, code=code)
        else:
            await create_in(uow, data, now=now, code=code)
        made += 1
    return made


# --- running ------------------------------------------------------------------------------------


def birthdays(today: date, days: int) -> tuple[list[str], list[str]]:
    """The month-days (and their years) of the next ``days`` days from ``today``: a birthday in that
    window fires once for that year. 29 February is celebrated on the 28th in a common year."""
    mmdd, years = [], []
    for i in range(days + 1):
        d = today + timedelta(days=i)
        mmdd.append(d.strftime("%m-%d"))
        years.append(str(d.year))
        if d.month == 2 and d.day == 28 and (d + timedelta(days=1)).month == 3:
            mmdd.append("02-29")
            years.append(str(d.year))
    return mmdd, years


async def _params(uow: UnitOfWork, a: Automation, now: datetime, tz: str) -> dict[str, Any]:
    today = now.astimezone(ZoneInfo(tz)).date()
    p: dict[str, Any] = {"tz": tz, "now": now}
    if a.trigger == "birthday":
        p["mmdd"], p["years"] = birthdays(today, a.days)
    elif a.trigger in ("points_expiring", "coupon_expiring"):
        p["horizon"] = now + timedelta(days=a.days)
    elif a.trigger == "win_back":
        p["lapsed"] = now - timedelta(days=a.days)
    elif a.trigger == "tier_up":
        _, programme = await programme_at(uow, now)
        p["ranks"] = json.dumps({t.code: t.rank for t in programme.tiers})
    return p


async def _at_risk(uow: UnitOfWork, days: int, now: datetime, tz: str) -> list[tuple[uuid.UUID, str]]:
    """Members whose tier review falls within ``days`` and whom the review would move down today (the
    review's own rules: ``tiers.review`` on their standing in the window); the occasion is the review."""
    _, programme = await programme_at(uow, now)
    if not programme.tiers:
        return []
    interval = timedelta(days=31 * programme.tier_policy.review_every_months)
    since = now - timedelta(days=31 * programme.tier_policy.window_months)
    ranks = {t.code: t.rank for t in programme.tiers}
    today = now.astimezone(ZoneInfo(tz)).date()
    out = []
    for member, tier, reference in await q.reviews_due(uow, now + timedelta(days=days) - interval):
        if reference + interval <= now:
            continue  # overdue: the review itself decides tonight
        standing = await tenant_queries.standing_for_review(uow, member, since)
        decision = tiers.review(programme, tier, standing, today=today)
        if decision.changed and ranks.get(decision.new or "", -1) < ranks.get(tier, -1):
            out.append((member, "review:" + (reference + interval).astimezone(ZoneInfo(tz)).date().isoformat()))
    return out


async def _give(uow: UnitOfWork, a: Automation, f: AutomationFiring, now: datetime) -> None:
    """The coupon and points of one firing; each at most once (recorded on the firing; the ledger key)."""
    if a.coupon_template_id is not None and f.coupon_id is None:
        try:
            async with uow.session.begin_nested():
                coupon = await coupon_service.issue(uow, a.coupon_template_id, f.member_id, source="automation",
                                                    now=now)  # fmt: skip
            f.coupon_id = coupon.id
        except (CouponSoldOut, CouponTemplateInactive) as e:
            log.info("automation coupon not issued", automation_id=str(a.id), problem=e.type_slug)
    if a.points and not f.points:
        _, programme = await programme_at(uow, now)
        await accounts.award_points(
            uow, f.member_id, a.points, programme=programme, reason="automation",
            key=f"automation:{a.id}:{f.member_id}:{f.occasion}", business_time=now,
            refs={"automation_id": str(a.id)},
        )  # fmt: skip
        f.points = a.points


@dataclass
class RunResult:
    fired: int = 0
    acted: int = 0
    messages: int = 0


async def _act(uow: UnitOfWork, a: Automation, now: datetime, tz: str, cap: int | None) -> tuple[int, int]:
    """The firings of ``a`` whose wait has passed: coupon and points, then the messages in one statement,
    then done. Returns (firings acted on, messages written)."""
    firings = await q.due_firings(uow, a.id, now)
    if not firings:
        return 0, 0
    c = None if a.campaign_id is None else await cq.campaign(uow, a.campaign_id)
    for f in firings:
        await _give(uow, a, f, now)
    await uow.session.flush()
    messages = 0
    if c is not None:
        due = cd.after_quiet_hours(now, tz) if c.channel in ("sms", "wechat") else now
        messages = await q.write_messages(
            uow, a.id, c.id, c.channel, cap=DEFAULT_CAP if cap is None else cap,
            week_ago=now - timedelta(days=7), due=due, now=now,
        )  # fmt: skip
    return await q.mark_done(uow, a.id, None if c is None else c.id, now), messages


async def run_in(uow: UnitOfWork, now: datetime, *, triggers: tuple[str, ...] = TRIGGERS) -> RunResult:
    """Building block: one merchant's automations with a trigger in ``triggers``. No commit."""
    result = RunResult()
    _, tz = await accounts.merchant_info(uow)
    cap = await cq.frequency_cap(uow)
    announced: set[tuple[uuid.UUID, str]] = set()
    for a in await q.automations(uow, enabled_only=True):
        if a.trigger not in triggers:
            continue
        due = now + timedelta(days=a.wait_days)
        if a.trigger == "tier_at_risk":
            for member, occasion in await _at_risk(uow, a.days, now, tz):
                result.fired += await q.fire_one(uow, a, member, occasion, due, now)
        elif a.trigger == "points_expiring":
            fired = await q.fire_new(uow, a, await _params(uow, a, now, tz), due, now)
            result.fired += len(fired)
            await _announce_expiring(uow, [f for f in fired if f not in announced], tz)
            announced.update(fired)
        else:
            result.fired += await q.fire(uow, a, await _params(uow, a, now, tz), due, now)
        acted, messages = await _act(uow, a, now, tz, cap)
        result.acted, result.messages = result.acted + acted, result.messages + messages
    await cq.dispatch_due(uow, now)
    return result


async def _announce_expiring(uow: UnitOfWork, fired: list[tuple[uuid.UUID, str]], tz: str) -> None:
    """A ``points.expiring`` webhook per member and expiry date the reminder just fired for (the caller
    passes each pair once per run, however many points-expiry automations the merchant has)."""
    if not fired:
        return
    points = await q.points_expiring(uow, fired, tz)
    for member, expires_on in fired:
        data = {"member_id": str(member), "points": points.get((member, expires_on), 0), "expires_on": expires_on}
        await webhooks.emit(uow, "points.expiring", data)


async def fire_event(uow: UnitOfWork, trigger: str, member_id: uuid.UUID, occasion: str, now: datetime) -> int:
    """Building block for another area's event (paid membership's term ending unrenewed): every enabled
    automation of ``trigger`` fires for the member once per ``occasion`` and, without a wait, acts at
    once. No commit. Returns how many fired."""
    await ensure_defaults_in(uow, now)
    _, tz = await accounts.merchant_info(uow)
    cap = await cq.frequency_cap(uow)
    fired = 0
    for a in await q.automations(uow, enabled_only=True):
        if a.trigger == trigger:
            fired += await q.fire_one(uow, a, member_id, occasion, now + timedelta(days=a.wait_days), now)
            await _act(uow, a, now, tz, cap)
    await cq.dispatch_due(uow, now)
    return fired


async def run(db: Database, tenant: uuid.UUID, now: datetime | None = None,
              triggers: tuple[str, ...] = TRIGGERS) -> RunResult:  # fmt: skip
    """One merchant's automations in one transaction (the periodic jobs' step)."""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        await ensure_defaults_in(uow, now)
        result = await run_in(uow, now, triggers=triggers)
        await uow.commit()
        return result
