"""Campaigns' SQL: choosing the recipients of a frozen snapshot and writing one row per recipient in
ONE ``INSERT … SELECT`` (consent, weekly cap, holdout and the A/B split decided in SQL — member ids
never pass through Python), moving due rows to the outbox in one statement, what one delivery
needs to know, linking provider receipts, and the results' aggregates.

Statements are fixed text with bound parameters (decision 0005); RLS scopes them to the merchant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from lianka.platform.db import UnitOfWork
from lianka.tenants.marketing.models import Campaign, CampaignMessage

#: the outbox actor of one message (counted by ``billing.limits.check_messages``)
SEND_ACTOR = "marketing_send_message"

# Who may receive: in the snapshot, not holdout, not erased, consent granted on the channel (the
# portal inbox only needs it not withdrawn), an address for e-mail, and under the weekly cap.
_ELIGIBLE = """
FROM audience_snapshot_members s
LEFT JOIN member_profiles p ON p.tenant_id = s.tenant_id AND p.member_id = s.member_id
WHERE s.tenant_id = :tenant AND s.snapshot_id = :snapshot AND NOT s.holdout AND p.erased_at IS NULL
  AND CASE WHEN CAST(:channel AS text) = 'portal' THEN coalesce(p.consent -> 'portal' ->> 'granted', 'true') = 'true'
           ELSE coalesce(p.consent -> CAST(:channel AS text) ->> 'granted', 'false') = 'true' END
  AND (CAST(:channel AS text) <> 'email' OR coalesce(p.email, '') <> '')
  AND s.member_id NOT IN (
      SELECT member_id FROM campaign_messages
      WHERE tenant_id = :tenant AND channel = :channel AND created_at > :week_ago AND status NOT IN ('dead', 'skipped')
      GROUP BY member_id HAVING count(*) >= :cap)
"""

_COUNT = text("SELECT count(*) " + _ELIGIBLE)

_INSERT = text(
    "INSERT INTO campaign_messages (tenant_id, campaign_id, member_id, channel, variant, status, due_at, created_at) "
    "SELECT s.tenant_id, CAST(:campaign AS uuid), s.member_id, CAST(:channel AS text), "
    "CASE WHEN :has_b AND mod(hashtextextended(CAST(s.member_id AS text), :seed) & 9223372036854775807, 100) "
    ">= :split_a THEN 'b' ELSE 'a' END, 'pending', CAST(:due AS timestamptz), CAST(:now AS timestamptz) "
    + _ELIGIBLE
    + " ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True)
class Audience:
    campaign: uuid.UUID
    snapshot: uuid.UUID
    channel: str
    cap: int
    week_ago: datetime


def _params(a: Audience, tenant: uuid.UUID | None) -> dict[str, Any]:
    return {"tenant": tenant, "snapshot": a.snapshot, "channel": a.channel, "cap": a.cap, "week_ago": a.week_ago}


async def eligible_count(uow: UnitOfWork, a: Audience) -> int:
    return int(await uow.session.scalar(_COUNT, _params(a, uow.tenant_id)) or 0)


async def insert_messages(
    uow: UnitOfWork, a: Audience, *, has_b: bool, split_a: int, seed: int, due: datetime, now: datetime
) -> int:
    """One ``pending`` row per eligible recipient; a member already sent this campaign is skipped."""
    params = _params(a, uow.tenant_id) | {"campaign": a.campaign, "has_b": has_b, "split_a": split_a, "seed": seed, "due": due,
                           "now": now}  # fmt: skip
    result = await uow.session.execute(_INSERT, params)
    return int(getattr(result, "rowcount", 0) or 0)


_DISPATCH = text(
    "WITH due AS (UPDATE campaign_messages SET status = 'queued' "
    "WHERE status IN ('pending', 'retry') AND due_at <= :now RETURNING tenant_id, campaign_id, member_id, occasion) "
    "INSERT INTO outbox (tenant_id, queue, actor, payload) "
    "SELECT tenant_id, 'messages', CAST(:actor AS text), "
    "jsonb_build_object('campaign_id', CAST(campaign_id AS text), 'member_id', CAST(member_id AS text)) "
    "|| CASE WHEN occasion = '' THEN '{}'::jsonb ELSE jsonb_build_object('occasion', occasion) END FROM due"
)


async def dispatch_due(uow: UnitOfWork, now: datetime) -> int:
    """Every due row (pending, or a retry whose back-off has passed) to the outbox, in one statement."""
    result = await uow.session.execute(_DISPATCH, {"now": now, "actor": SEND_ACTOR})
    n = int(getattr(result, "rowcount", 0) or 0)
    if n:
        await uow.session.execute(text("NOTIFY lianka_outbox"))
    return n


_FINISH = text(
    "UPDATE campaigns k SET status = 'sent' WHERE status = 'sending' AND NOT EXISTS ("
    "SELECT 1 FROM campaign_messages c WHERE c.tenant_id = k.tenant_id AND c.campaign_id = k.id "
    "AND c.status IN ('pending', 'queued', 'retry'))"
)


async def finish_sent(uow: UnitOfWork) -> int:
    """Campaigns with nothing left to send become ``sent`` (dead letters do not hold them open)."""
    result = await uow.session.execute(_FINISH)
    return int(getattr(result, "rowcount", 0) or 0)


async def variant_groups(
    uow: UnitOfWork, campaign_id: uuid.UUID, start: datetime, end: datetime
) -> dict[str, tuple[int, int, int]]:
    """Per variant of the messages written: recipients, those with a sale in [start, end), their sales."""
    rows = await uow.session.execute(
        text(
            "SELECT c.variant, count(*), count(x.member_id), coalesce(sum(x.spend), 0) "
            "FROM campaign_messages c LEFT JOIN ("
            "  SELECT member_id, sum(due) AS spend FROM sales WHERE member_id IS NOT NULL AND status <> 'refunded' "
            "  AND tenant_id = :t AND business_time >= :start AND business_time < :end GROUP BY member_id"
            ") x ON x.member_id = c.member_id WHERE c.tenant_id = :t AND c.campaign_id = :c "
            "GROUP BY c.variant ORDER BY c.variant"
        ),
        {"t": uow.tenant_id, "c": campaign_id, "start": start, "end": end},
    )
    return {str(v): (int(n), int(b), int(s)) for v, n, b, s in rows}


async def campaigns_to_start(uow: UnitOfWork, now: datetime) -> list[uuid.UUID]:
    stmt = select(Campaign.id).where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
    return list((await uow.session.scalars(stmt)).all())


async def message(
    uow: UnitOfWork, campaign: uuid.UUID, member: uuid.UUID, *, lock: bool = False, occasion: str = ""
) -> CampaignMessage | None:
    return await uow.session.get(CampaignMessage, (uow.tenant_id, campaign, member, occasion), with_for_update=lock)


@dataclass(frozen=True)
class Recipient:
    phone: str
    email: str
    name: str
    tier: str
    points: int
    expiring_points: int
    expiring_date: datetime | None
    slug: str
    merchant: str
    timezone: str


_RECIPIENT = text(
    """
SELECT m.phone, coalesce(p.email, ''), coalesce(p.name, ''), coalesce(p.tier_code, ''),
       coalesce((SELECT sum(b.balance) FROM ledger_accounts a JOIN ledger_balances b
                 ON b.tenant_id = a.tenant_id AND b.account_id = a.id
                 WHERE a.tenant_id = :tenant AND a.owner_kind = 'member' AND a.owner_id = m.id AND a.kind = 'points'), 0),
       coalesce((SELECT sum(l.remaining) FROM ledger_accounts a JOIN ledger_lots l
                 ON l.tenant_id = a.tenant_id AND l.account_id = a.id
                 WHERE a.tenant_id = :tenant AND a.owner_kind = 'member' AND a.owner_id = m.id AND a.kind = 'points' AND l.remaining > 0
                   AND l.expires_at > CAST(:now AS timestamptz) AND l.expires_at <= CAST(:now AS timestamptz) + interval '30 days'), 0),
       (SELECT min(l.expires_at) FROM ledger_accounts a JOIN ledger_lots l
                 ON l.tenant_id = a.tenant_id AND l.account_id = a.id
                 WHERE a.tenant_id = :tenant AND a.owner_kind = 'member' AND a.owner_id = m.id AND a.kind = 'points' AND l.remaining > 0
                   AND l.expires_at > CAST(:now AS timestamptz) AND l.expires_at <= CAST(:now AS timestamptz) + interval '30 days'),
       t.slug, t.name, t.timezone
FROM members m
JOIN merchants t ON t.id = :tenant
LEFT JOIN member_profiles p ON p.tenant_id = :tenant AND p.member_id = m.id
WHERE m.id = :member
"""
)


async def recipient(uow: UnitOfWork, member: uuid.UUID, now: datetime) -> Recipient | None:
    row = (await uow.session.execute(_RECIPIENT, {"tenant": uow.tenant_id, "member": member, "now": now})).first()
    return None if row is None else Recipient(*row)


_LINK_RECEIPTS = text(
    """
WITH r AS (
    SELECT id, message_id, status, coalesce(reported_at, received_at) AS at FROM delivery_receipts
    WHERE provider = :provider AND message_id = ANY(CAST(:ids AS text[]))
), linked AS (
    UPDATE campaign_messages c
    SET status = r.status, delivered_at = CASE WHEN r.status = 'delivered' THEN r.at END
    FROM r
    WHERE c.provider = :provider AND c.provider_message_id = r.message_id AND c.status IN ('sent', 'delivered', 'failed')
    RETURNING c.tenant_id, r.id AS receipt_id
)
UPDATE delivery_receipts d SET tenant_id = linked.tenant_id FROM linked WHERE d.id = linked.receipt_id
"""
)


async def link_receipts(uow: UnitOfWork, provider: str, message_ids: list[str]) -> int:
    """Platform scope: the messages the receipts name take their status; the receipts their merchant."""
    result = await uow.session.execute(_LINK_RECEIPTS, {"provider": provider, "ids": message_ids})
    return int(getattr(result, "rowcount", 0) or 0)


# --- lists and results -------------------------------------------------------------------------


async def campaign(uow: UnitOfWork, campaign_id: uuid.UUID, *, lock: bool = False) -> Campaign | None:
    return await uow.session.get(Campaign, (uow.tenant_id, campaign_id), with_for_update=lock)


async def campaigns(uow: UnitOfWork) -> list[Campaign]:
    stmt = select(Campaign).where(Campaign.status != "automation").order_by(Campaign.created_at.desc())
    return list((await uow.session.scalars(stmt)).all())


async def name_taken(uow: UnitOfWork, name: str) -> bool:
    return bool(await uow.session.scalar(select(Campaign.id).where(Campaign.name == name).limit(1)))


async def frequency_cap(uow: UnitOfWork) -> int | None:
    found = await uow.session.scalar(text("SELECT frequency_cap FROM marketing_settings"))
    return None if found is None else int(found)


async def set_frequency_cap(uow: UnitOfWork, cap: int) -> None:
    await uow.session.execute(
        text(
            "INSERT INTO marketing_settings (tenant_id, frequency_cap) VALUES (:t, :cap) "
            "ON CONFLICT (tenant_id) DO UPDATE SET frequency_cap = excluded.frequency_cap"
        ),
        {"t": uow.tenant_id, "cap": cap},
    )


async def dead_letters(uow: UnitOfWork, campaign_id: uuid.UUID, limit: int = 200) -> list[CampaignMessage]:
    stmt = (
        select(CampaignMessage)
        .where(CampaignMessage.campaign_id == campaign_id, CampaignMessage.status == "dead")
        .order_by(CampaignMessage.member_id)
        .limit(limit)
    )
    return list((await uow.session.scalars(stmt)).all())


async def status_counts(uow: UnitOfWork, campaign_id: uuid.UUID) -> dict[str, int]:
    rows = await uow.session.execute(
        text(
            "SELECT status, count(*) FROM campaign_messages WHERE campaign_id = :c GROUP BY status "
            "UNION ALL SELECT 'opened', count(*) FROM campaign_messages WHERE campaign_id = :c AND opened_at IS NOT NULL "
            "UNION ALL SELECT 'variant_b', count(*) FROM campaign_messages WHERE campaign_id = :c AND variant = 'b'"
        ),
        {"c": campaign_id},
    )
    return {str(k): int(v) for k, v in rows}


async def coupons_redeemed(uow: UnitOfWork, campaign_id: uuid.UUID) -> tuple[int, int]:
    """(coupons of this campaign redeemed, their face value in fen: the fixed amount off)."""
    row = (
        await uow.session.execute(
            text(
                "SELECT count(*), coalesce(sum(t.amount_off), 0) FROM campaign_messages c "
                "JOIN coupons co ON co.tenant_id = c.tenant_id AND co.id = c.coupon_id "
                "JOIN coupon_templates t ON t.tenant_id = co.tenant_id AND t.id = co.template_id "
                "WHERE c.campaign_id = :c AND co.status = 'redeemed'"
            ),
            {"c": campaign_id},
        )
    ).one()
    return int(row[0]), int(row[1])


async def groups(
    uow: UnitOfWork, snapshot_id: uuid.UUID, start: datetime, end: datetime
) -> dict[bool, tuple[int, int, int]]:
    """Per side of the snapshot (holdout or not): members, members with a sale in [start, end), their sales."""
    rows = await uow.session.execute(
        text(
            "SELECT s.holdout, count(*), count(x.member_id), coalesce(sum(x.spend), 0) "
            "FROM audience_snapshot_members s LEFT JOIN ("
            "  SELECT member_id, sum(due) AS spend FROM sales WHERE member_id IS NOT NULL AND status <> 'refunded' "
            "  AND tenant_id = :t AND business_time >= :start AND business_time < :end GROUP BY member_id"
            ") x ON x.member_id = s.member_id WHERE s.tenant_id = :t AND s.snapshot_id = :snap GROUP BY s.holdout"
        ),
        {"t": uow.tenant_id, "snap": snapshot_id, "start": start, "end": end},
    )
    return {bool(h): (int(n), int(c), int(v)) for h, n, c, v in rows}


# --- the portal inbox --------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    campaign_id: uuid.UUID
    subject: str
    body: str
    sent_at: datetime | None
    opened_at: datetime | None


async def inbox(uow: UnitOfWork, member: uuid.UUID, limit: int = 50) -> list[InboxItem]:
    rows = await uow.session.execute(
        text(
            "SELECT c.campaign_id, k.subject, c.body, c.sent_at, c.opened_at FROM campaign_messages c "
            "JOIN campaigns k ON k.tenant_id = c.tenant_id AND k.id = c.campaign_id "
            "WHERE c.member_id = :m AND c.channel = 'portal' AND c.status IN ('sent', 'delivered') "
            "ORDER BY c.sent_at DESC LIMIT :n"
        ),
        {"m": member, "n": limit},
    )
    return [InboxItem(*r) for r in rows]


async def unread(uow: UnitOfWork, member: uuid.UUID) -> int:
    found = await uow.session.scalar(
        text(
            "SELECT count(*) FROM campaign_messages WHERE member_id = :m AND channel = 'portal' "
            "AND status IN ('sent', 'delivered') AND opened_at IS NULL"
        ),
        {"m": member},
    )
    return int(found or 0)


async def mark_opened(uow: UnitOfWork, campaign: uuid.UUID, member: uuid.UUID, now: datetime) -> bool:
    result = await uow.session.execute(
        text(
            "UPDATE campaign_messages SET opened_at = :now WHERE campaign_id = :c AND member_id = :m "
            "AND opened_at IS NULL AND status IN ('sent', 'delivered')"
        ),
        {"now": now, "c": campaign, "m": member},
    )
    return bool(getattr(result, "rowcount", 0))
