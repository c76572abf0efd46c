"""Campaigns (issue 16, part 2): create, preview, start (now or at a time), deliver one message,
dead letters and re-sends, receipts, the portal inbox, and the results (decision 0038).

Starting freezes the segment's audience (``services.freeze_audience``, holdout kept in the
snapshot), asks billing whether the plan's messages fit (402 before anything is written), then
writes one ``campaign_messages`` row per eligible recipient in one ``INSERT … SELECT`` and moves the
due ones to the outbox in one more statement. A message inside quiet hours is due at 09:00. The
delivery actor (``campaign_jobs``) sends one message: renders the template, issues the coupon while
stock lasts, passes the per-provider rate limit, and records the provider's id; a retryable failure
is tried again after a back-off (the periodic dispatch re-queues it), the fifth is a dead letter.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlencode

from lianka.billing import limits
from lianka.platform import audit
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import DomainError
from lianka.platform.identity.secrets_box import mac, same
from lianka.platform.log import get_logger
from lianka.platform.metrics import count_message
from lianka.platform.settings import get_settings
from lianka.tenants import queries as tenant_queries
from lianka.tenants.marketing import campaign_domain as cd
from lianka.tenants.marketing import campaign_queries as q
from lianka.tenants.marketing import providers, unsubscribe
from lianka.tenants.marketing import queries as segment_queries
from lianka.tenants.marketing import services as segments
from lianka.tenants.marketing import wechat_queries as wq
from lianka.tenants.marketing.channels import Channel, Message, SendFailed
from lianka.tenants.marketing.channels.wechat import WechatSubscribe
from lianka.tenants.marketing.errors import (
    BadCampaign,
    CampaignAlreadyStarted,
    CampaignNameTaken,
    CampaignNotFound,
    NotDeadLetter,
    SegmentNotFound,
)
from lianka.tenants.marketing.models import Campaign, CampaignMessage
from lianka.tenants.marketing.offer_domain import voucher_code
from lianka.tenants.services import accounts
from lianka.tenants.services import coupons as coupon_service
from lianka.tenants.services.coupons import CouponSoldOut, CouponTemplateInactive

log = get_logger(__name__)
CHANNELS = ("sms", "email", "portal", "wechat")
DEFAULT_CAP = 2
#: messages per second per provider (the providers' documented default quotas are higher)
RATES = {"aliyun": 50, "tencent": 50, "smtp": 20, "console": 1000, "portal": 10000, "wechat": 1000}


def public_url() -> str:
    """Where links in messages point: the installation's ``LIANKA_PUBLIC_URL`` (the same base as
    sign-in links and e-mails)."""
    return get_settings().identity.public_url


@dataclass(frozen=True)
class CampaignIn:
    name: str
    segment_id: uuid.UUID
    channel: str
    template_a: str
    template_b: str | None = None
    split_a_pct: int = 100
    holdout_pct: int = 0
    subject: str = ""
    coupon_template_id: uuid.UUID | None = None
    scheduled_at: datetime | None = None
    attribution_days: int = 7
    message_cost: int = 0
    link: str = ""


def _template(text: str, field: str) -> str:
    try:
        return cd.check_template(text)
    except cd.TemplateError as e:
        raise BadCampaign(str(e), field=field) from None


def _check(data: CampaignIn) -> None:
    if not 1 <= len(data.name.strip()) <= 100:
        raise BadCampaign("name: 1-100 characters", field="name")
    if data.channel not in CHANNELS:
        raise BadCampaign(f"channel is one of {', '.join(CHANNELS)}", field="channel")
    _template(data.template_a, "template_a")
    if data.template_b is not None:
        _template(data.template_b, "template_b")
    if not 0 <= data.split_a_pct <= 100:
        raise BadCampaign("split: 0-100 percent", field="split_a_pct")
    if data.template_b is None and data.split_a_pct != 100:
        raise BadCampaign("a split needs a second template", field="split_a_pct")
    if not 0 <= data.holdout_pct <= 50:
        raise BadCampaign("holdout: 0-50 percent", field="holdout_pct")
    if not 1 <= data.attribution_days <= 90:
        raise BadCampaign("attribution window: 1-90 days", field="attribution_days")
    if data.message_cost < 0:
        raise BadCampaign("message cost: not negative", field="message_cost")
    if data.scheduled_at is not None and data.scheduled_at.tzinfo is None:
        raise BadCampaign("scheduled_at needs a time zone", field="scheduled_at")
    if len(data.subject) > 200 or len(data.link) > 500:
        raise BadCampaign("subject ≤ 200, link ≤ 500 characters", field="subject")
    if data.link and not data.link.startswith(("https://", "http://")):
        raise BadCampaign("link: an http(s) URL", field="link")


async def create_campaign(db: Database, tenant: uuid.UUID, data: CampaignIn) -> Campaign:
    _check(data)
    async with db.uow(tenant) as uow:
        if await segment_queries.segment(uow, data.segment_id) is None:
            raise SegmentNotFound(field="segment_id")
        if data.coupon_template_id and not await segment_queries.existing_templates(uow, {data.coupon_template_id}):
            raise BadCampaign("no such coupon template", field="coupon_template_id")
        if await q.name_taken(uow, data.name.strip()):
            raise CampaignNameTaken(field="name")
        c = Campaign(
            tenant_id=tenant,
            name=data.name.strip(),
            segment_id=data.segment_id,
            channel=data.channel,
            subject=data.subject,
            template_a=data.template_a,
            template_b=data.template_b,
            split_a_pct=data.split_a_pct,
            holdout_pct=data.holdout_pct,
            coupon_template_id=data.coupon_template_id,
            link=data.link,
            scheduled_at=data.scheduled_at,
            status="draft",
            attribution_days=data.attribution_days,
            message_cost=data.message_cost,
        )
        uow.session.add(c)
        await uow.session.flush()
        await uow.session.refresh(c)
        await uow.commit()
        return c


async def _get(uow: UnitOfWork, campaign_id: uuid.UUID, *, lock: bool = False) -> Campaign:
    c = await q.campaign(uow, campaign_id, lock=lock)
    if c is None:
        raise CampaignNotFound()
    return c


async def get_campaign(db: Database, tenant: uuid.UUID, campaign_id: uuid.UUID) -> Campaign:
    async with db.uow(tenant) as uow:
        return await _get(uow, campaign_id)


async def list_campaigns(db: Database, tenant: uuid.UUID) -> list[Campaign]:
    async with db.uow(tenant) as uow:
        return await q.campaigns(uow)


# --- settings ----------------------------------------------------------------------------------


async def frequency_cap(db: Database, tenant: uuid.UUID) -> int:
    async with db.uow(tenant) as uow:
        cap = await q.frequency_cap(uow)
    return DEFAULT_CAP if cap is None else cap


async def set_frequency_cap(db: Database, tenant: uuid.UUID, cap: int) -> None:
    if not 0 <= cap <= 50:
        raise BadCampaign("frequency cap: 0-50 messages a week", field="frequency_cap")
    async with db.uow(tenant) as uow:
        await q.set_frequency_cap(uow, cap)
        await uow.commit()


# --- preview -----------------------------------------------------------------------------------


def _values(c: Campaign, r: q.Recipient, tz: str, coupon_code: str, link: str) -> dict[str, str]:
    from zoneinfo import ZoneInfo

    expiring = r.expiring_date.astimezone(ZoneInfo(tz)).date().isoformat() if r.expiring_date else ""
    return {
        "name": r.name,
        "tier": r.tier,
        "points": str(r.points),
        "expiring_points": str(r.expiring_points),
        "expiring_date": expiring,
        "coupon_code": coupon_code,
        "link": link or c.link,
        "merchant": r.merchant,
    }


@dataclass(frozen=True)
class Preview:
    variant: str
    text: str


async def preview(
    db: Database, tenant: uuid.UUID, campaign_id: uuid.UUID, member_id: uuid.UUID | None = None
) -> list[Preview]:
    """Each variant as ``member_id`` would get it (coupon code shown as a sample), or with sample values."""
    async with db.uow(tenant) as uow:
        c = await _get(uow, campaign_id)
        templates = [("a", c.template_a)] + ([("b", c.template_b)] if c.template_b else [])
        if member_id is None:
            return [Preview(v, cd.sample(t)) for v, t in templates]
        r = await q.recipient(uow, member_id, datetime.now(UTC))
        if r is None:
            raise BadCampaign("no such member", field="member_id")
        values = _values(c, r, r.timezone, cd.VARIABLES["coupon_code"] if c.coupon_template_id else "", "")
        return [Preview(v, cd.render(t, values)) for v, t in templates]


# --- starting ----------------------------------------------------------------------------------


#: who sends a campaign when the caller names nobody (scripts, benchmarks); people come through the
#: console and the API, which pass themselves
SENT_BY_CODE = audit.system("campaigns.send")


def _seed(campaign_id: uuid.UUID) -> int:
    return zlib.crc32(campaign_id.bytes)


async def start_in(uow: UnitOfWork, c: Campaign, now: datetime) -> int:
    """Building block: freeze the audience, check the plan, write the recipients' rows, queue the due
    ones (the caller then runs ``dispatch_due``). Returns how many recipients. No commit."""
    if c.status not in ("draft", "scheduled") or c.segment_id is None:
        raise CampaignAlreadyStarted()
    snapshot = await segments.freeze_audience(
        uow, c.segment_id, exclude_holdout_pct=c.holdout_pct, seed=_seed(c.id), now=now
    )
    cap = await q.frequency_cap(uow)
    audience = q.Audience(c.id, snapshot, c.channel, DEFAULT_CAP if cap is None else cap, now - timedelta(days=7))
    n = await q.eligible_count(uow, audience)
    assert uow.tenant_id is not None
    await limits.check_messages(uow, uow.tenant_id, n)
    _, tz = await accounts.merchant_info(uow)
    due = cd.after_quiet_hours(now, tz) if c.channel in ("sms", "wechat") else now
    written = await q.insert_messages(
        uow, audience, has_b=c.template_b is not None, split_a=c.split_a_pct, seed=_seed(c.id), due=due, now=now
    )
    c.snapshot_id, c.status, c.started_at, c.recipients = snapshot, "sending", now, written
    await uow.session.flush()
    return written


async def send(
    db: Database,
    tenant: uuid.UUID,
    campaign_id: uuid.UUID,
    now: datetime | None = None,
    *,
    actor: audit.Actor = SENT_BY_CODE,
) -> Campaign:
    """Send now, or (``scheduled_at`` in the future) mark it scheduled for the periodic dispatch.
    Audited in the same transaction: ``campaign.sent`` (with the recipients written) or
    ``campaign.scheduled``, by ``actor`` (the console and the API pass the signed-in staff or client)."""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        c = await _get(uow, campaign_id, lock=True)
        if c.status not in ("draft", "scheduled"):
            raise CampaignAlreadyStarted()
        details: dict[str, object] = {"name": c.name, "channel": c.channel, "segment_id": c.segment_id}
        if c.scheduled_at is not None and c.scheduled_at > now:
            c.status = "scheduled"
            action, details["scheduled_at"] = "campaign.scheduled", c.scheduled_at
        else:
            details["recipients"] = await start_in(uow, c, now)
            action = "campaign.sent"
            await q.dispatch_due(uow, now)
        await audit.record(uow, actor, action, object_kind="campaign", object_id=c.id, details=details)
        await uow.session.flush()
        await uow.commit()
        return c


async def tick(db: Database, tenant: uuid.UUID, now: datetime) -> int:
    """The periodic step for one merchant: start scheduled campaigns that are due (one the plan refuses
    goes back to draft, so it neither blocks the others nor retries every minute), queue due messages."""
    async with db.uow(tenant) as uow:
        for campaign_id in await q.campaigns_to_start(uow, now):
            c = await _get(uow, campaign_id, lock=True)
            try:
                async with uow.session.begin_nested():
                    await start_in(uow, c, now)
            except DomainError as e:  # the plan refused (402): back to draft, the others still go
                await uow.session.refresh(c)
                c.status = "draft"
                log.warning("scheduled campaign not started", campaign_id=str(c.id), problem=e.type_slug)
        n = await q.dispatch_due(uow, now)
        await q.finish_sent(uow)
        await uow.commit()
        return n


# --- delivering one message --------------------------------------------------------------------


class RateLimit(Protocol):
    async def take(self, provider: str, per_second: int, now: datetime) -> bool: ...


class NoLimit:
    async def take(self, provider: str, per_second: int, now: datetime) -> bool:
        return True


class RedisRateLimit:
    """A one-second window per provider in Redis (shared by every worker)."""

    def __init__(self, redis: object) -> None:
        self.redis = redis

    async def take(self, provider: str, per_second: int, now: datetime) -> bool:
        key = f"lianka:mkt-rate:{provider}:{int(now.timestamp())}"
        pipe = self.redis.pipeline()  # type: ignore[attr-defined]
        pipe.incr(key)
        pipe.expire(key, 2)
        count, _ = await pipe.execute()
        return int(count) <= per_second


async def _coupon(uow: UnitOfWork, c: Campaign, m: CampaignMessage, now: datetime) -> str:
    """Issue the campaign's coupon once per recipient while stock lasts; '' when none (sold out: the
    message still goes). A campaign delivering an alliance offer prints the recipient's voucher code
    (decision 0044), valid at the funding partner's branches."""
    if c.alliance_offer_id is not None:
        return voucher_code(get_settings().secret_key, c.alliance_offer_id, m.member_id)
    if c.coupon_template_id is None:
        return ""
    if m.coupon_id is not None:
        from lianka.tenants.models import Coupon

        held = await uow.session.get(Coupon, (uow.tenant_id, m.coupon_id))
        return held.code if held else ""
    try:
        async with uow.session.begin_nested():
            coupon = await coupon_service.issue(uow, c.coupon_template_id, m.member_id, source="campaign", now=now)
    except (CouponSoldOut, CouponTemplateInactive):
        return ""
    m.coupon_id = coupon.id
    return coupon.code


async def deliver(uow: UnitOfWork, campaign_id: uuid.UUID, member_id: uuid.UUID, now: datetime,
                  limiter: RateLimit, occasion: str = "") -> str:  # fmt: skip
    """Building block (the actor's body): send one queued message (a campaign's, or an automation's
    for one ``occasion``). Returns its new status."""
    assert uow.tenant_id is not None
    m = await q.message(uow, campaign_id, member_id, lock=True, occasion=occasion)
    if m is None or m.status not in ("queued", "pending", "retry"):
        return m.status if m else "missing"  # a redelivered message changes nothing
    c = await _get(uow, campaign_id)
    r = await q.recipient(uow, member_id, now)
    if r is None:
        m.status, m.error = "failed", "member not found"
        return m.status
    if c.channel in ("sms", "wechat"):
        later = cd.after_quiet_hours(now, r.timezone)
        if later > now:
            m.status, m.due_at = "pending", later
            return m.status
    channel = None if c.channel == "portal" else await _channel(uow, c.channel)
    provider = "portal" if channel is None else channel.provider
    if not await limiter.take(provider, RATES.get(provider, 50), now):
        m.status, m.due_at = "retry", now + timedelta(seconds=1)  # not an attempt: just later
        return m.status
    code = await _coupon(uow, c, m, now)
    tracked = click_link(public_url(), r.slug, uow.tenant_id, campaign_id, member_id) if c.link else ""
    link = unsubscribe.link(public_url(), r.slug, uow.tenant_id, member_id, c.channel) if c.channel != "portal" else ""
    template = c.template_b if m.variant == "b" and c.template_b else c.template_a
    text = cd.render(template, _values(c, r, r.timezone, code, tracked))
    m.body, m.provider = text, provider
    if channel is None:
        m.status, m.sent_at, m.delivered_at = "delivered", now, now
        count_message(uow, c.channel, m.status)
        return m.status
    key = f"{campaign_id}:{member_id}" + (f":{occasion}" if occasion else "")
    to = r.email if c.channel == "email" else r.phone
    grant = None
    if c.channel == "wechat":
        openid = await wq.openid(uow, member_id)
        if isinstance(channel, WechatSubscribe):  # the real API: an openid and a one-time subscription
            if openid is None:
                m.status, m.error = "skipped", "no WeChat openid for this member"
                return m.status
            grant = await wq.spend_grant(uow, member_id, channel.settings.template_id, key, now)
            if grant is None:
                m.status, m.error = "skipped", "no WeChat subscription left for the template"
                return m.status
        to = openid or f"member:{member_id}"
    message = Message(
        channel="email" if c.channel == "email" else "wechat" if c.channel == "wechat" else "sms",
        to=to,
        text=text,
        subject=c.subject or r.merchant,
        unsubscribe_url=link,
        key=key,
    )
    m.attempts += 1
    try:
        receipt = await channel.send(message)
    except SendFailed as e:
        if grant is not None and e.retryable:
            await wq.restore_grant(uow, grant)  # not used up: the next attempt needs it
        m.error = str(e)[:300]
        if not e.retryable or m.attempts >= cd.MAX_ATTEMPTS:
            m.status = "dead" if e.retryable else "failed"
        else:
            m.status, m.due_at = "retry", now + cd.backoff(m.attempts)
        count_message(uow, c.channel, "failed" if m.status == "retry" else m.status)  # every failed attempt
        return m.status
    m.status, m.sent_at, m.error = "sent", now, ""
    count_message(uow, c.channel, m.status)
    m.provider_message_id, m.provider = receipt.message_id, receipt.provider
    return m.status


async def _channel(uow: UnitOfWork, channel: str) -> Channel:
    return await providers.channel_for(uow, channel)


async def deliver_one(
    db: Database,
    tenant: uuid.UUID,
    campaign_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    now: datetime | None = None,
    limiter: RateLimit | None = None,
    occasion: str = "",
) -> str:
    """One delivery in its own transaction (what the actor does, without the inbox bookkeeping)."""
    async with db.uow(tenant) as uow:
        status = await deliver(uow, campaign_id, member_id, now or datetime.now(UTC), limiter or NoLimit(), occasion)
        await uow.commit()
        return status


async def resend(db: Database, tenant: uuid.UUID, campaign_id: uuid.UUID, member_id: uuid.UUID,
                 now: datetime | None = None) -> None:  # fmt: skip
    """A dead letter back to the queue (attempts reset), queued at once."""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        m = await q.message(uow, campaign_id, member_id, lock=True)
        if m is None:
            raise CampaignNotFound()
        if m.status != "dead":
            raise NotDeadLetter()
        m.status, m.attempts, m.due_at, m.error = "pending", 0, now, ""
        await uow.session.flush()
        await q.dispatch_due(uow, now)
        await uow.commit()


async def dead_letters(db: Database, tenant: uuid.UUID, campaign_id: uuid.UUID) -> list[CampaignMessage]:
    async with db.uow(tenant) as uow:
        await _get(uow, campaign_id)
        return await q.dead_letters(uow, campaign_id)


async def link_receipts(db: Database, provider: str, message_ids: list[str]) -> int:
    """After a receipt push: the campaign messages it names take its status (platform scope)."""
    async with db.uow(system=True) as uow:
        n = await q.link_receipts(uow, provider, message_ids)
        await uow.commit()
        return n


# --- the tracked link (an e-mail's or SMS's "opened") -------------------------------------------


def click_signature(tenant: uuid.UUID, campaign_id: uuid.UUID, member_id: uuid.UUID) -> str:
    return mac(get_settings().secret_key, "lianka:campaign-click", f"{tenant}:{campaign_id}:{member_id}")


def click_link(base: str, slug: str, tenant: uuid.UUID, campaign_id: uuid.UUID, member_id: uuid.UUID) -> str:
    """The ``{link}`` a recipient gets: through us (recording the open), then to the campaign's link."""
    query = urlencode(
        {"k": str(campaign_id), "m": str(member_id), "s": click_signature(tenant, campaign_id, member_id)}
    )
    return f"{base.rstrip('/')}/m/{slug}/go?{query}"


async def follow_click(db: Database, slug: str, campaign: str, member: str, sig: str,
                       now: datetime | None = None) -> str:  # fmt: skip
    """Record the open of a signed link and return where it leads; a bad link is a 404."""
    try:
        campaign_id, member_id = uuid.UUID(campaign), uuid.UUID(member)
    except ValueError:
        raise CampaignNotFound() from None
    async with db.uow(system=True) as uow:
        tenant = await tenant_queries.merchant_id_by_slug(uow, slug)
    if tenant is None or not same(sig, click_signature(tenant, campaign_id, member_id)):
        raise CampaignNotFound()
    async with db.uow(tenant) as uow:
        c = await _get(uow, campaign_id)
        await q.mark_opened(uow, campaign_id, member_id, now or datetime.now(UTC))
        await uow.commit()
    return c.link or f"/m/{slug}"


# --- the portal inbox --------------------------------------------------------------------------


async def inbox(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> list[q.InboxItem]:
    async with db.uow(tenant) as uow:
        return await q.inbox(uow, member_id)


async def unread(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> int:
    async with db.uow(tenant) as uow:
        return await q.unread(uow, member_id)


async def open_message(db: Database, tenant: uuid.UUID, campaign_id: uuid.UUID, member_id: uuid.UUID,
                       now: datetime | None = None) -> bool:  # fmt: skip
    async with db.uow(tenant) as uow:
        opened = await q.mark_opened(uow, campaign_id, member_id, now or datetime.now(UTC))
        await uow.commit()
        return opened


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    campaign: Campaign
    counts: dict[str, int]
    coupons_redeemed: int
    attribution: cd.Attribution | None
    currency: str
    timezone: str
    #: A/B: per variant, recipients who were written a message (not intention-to-treat: both arms
    #: passed the same filters, so they compare with each other, not with the control group)
    variants: dict[str, cd.Group]

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def sent(self) -> int:
        return sum(self.count(s) for s in ("sent", "delivered", "failed"))


async def results(db: Database, tenant: uuid.UUID, campaign_id: uuid.UUID) -> Results:
    async with db.uow(tenant) as uow:
        c = await _get(uow, campaign_id)
        currency, tz = await accounts.merchant_info(uow)
        counts = await q.status_counts(uow, campaign_id)
        redeemed, coupon_cost = await q.coupons_redeemed(uow, campaign_id)
        attribution, variants = None, {}
        if c.snapshot_id is not None and c.started_at is not None:
            end = c.started_at + timedelta(days=c.attribution_days)
            g = await q.groups(uow, c.snapshot_id, c.started_at, end)
            found = await q.variant_groups(uow, campaign_id, c.started_at, end)
            # every variant the campaign has, even one the split left without recipients (shown as 0)
            configured = ("a", "b") if c.template_b else ("a",)
            variants = {v: cd.Group(*found.get(v, (0, 0, 0))) for v in sorted({*configured, *found})}
            treated, control = cd.Group(*g.get(False, (0, 0, 0))), cd.Group(*g.get(True, (0, 0, 0)))
            sent = sum(counts.get(s, 0) for s in ("sent", "delivered", "failed"))
            attribution = cd.attribute(treated, control, coupon_cost=coupon_cost, message_cost=sent * c.message_cost)
        return Results(c, counts, redeemed, attribution, currency, tz, variants)
