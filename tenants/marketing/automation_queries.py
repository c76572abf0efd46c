"""Automations' SQL (decision 0039): each trigger is one set-based ``INSERT … SELECT`` into
``automation_firings`` (the primary key — automation, member, occasion — makes "at most once per
occasion" a constraint), the due firings' messages are written into ``campaign_messages`` in one
more statement with the campaigns' consent and weekly-cap conditions, and the stats.

Statements are fixed text with bound parameters (decision 0005); RLS scopes them to the merchant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from lianka.platform.db import UnitOfWork
from lianka.tenants.marketing.models import Automation, AutomationFiring

# Each trigger: (member_id, occasion) rows. Parameters: :since (the automation's creation, the
# high-water mark of event triggers), :now, :horizon (now + N days), :lapsed (now - N days),
# :tz, :mmdd/:years (birthdays in the window), :ranks (tier code → rank), :amount.
_OCCASIONS: dict[str, str] = {
    "joined": """
SELECT p.member_id, 'joined' FROM member_profiles p
WHERE p.created_at >= :since AND p.erased_at IS NULL""",
    "first_purchase": """
SELECT p.member_id, 'first' FROM member_profiles p
WHERE p.first_purchase_at >= :since AND p.erased_at IS NULL""",
    "birthday": """
SELECT p.member_id, d.yr FROM member_profiles p
JOIN unnest(CAST(:mmdd AS text[]), CAST(:years AS text[])) AS d(mmdd, yr) ON to_char(p.birthday, 'MM-DD') = d.mmdd
WHERE p.birthday IS NOT NULL AND p.erased_at IS NULL""",
    "points_expiring": """
SELECT a.owner_id, to_char(l.expires_at AT TIME ZONE CAST(:tz AS text), 'YYYY-MM-DD')
FROM ledger_accounts a JOIN ledger_lots l ON l.tenant_id = a.tenant_id AND l.account_id = a.id
WHERE a.owner_kind = 'member' AND a.kind = 'points' AND l.remaining > 0
  AND l.expires_at > :now AND l.expires_at <= :horizon
GROUP BY 1, 2""",
    "coupon_expiring": """
SELECT c.member_id, CAST(c.id AS text) FROM coupons c
WHERE c.status = 'issued' AND c.valid_until > :now AND c.valid_until <= :horizon""",
    "win_back": """
SELECT p.member_id, 'since:' || to_char(p.last_purchase_at AT TIME ZONE CAST(:tz AS text), 'YYYY-MM-DD')
FROM member_profiles p WHERE p.last_purchase_at <= :lapsed AND p.erased_at IS NULL""",
    "tier_up": """
SELECT c.member_id, CAST(c.id AS text) FROM tier_changes c
WHERE c.at >= :since AND c.new_tier IS NOT NULL
  AND coalesce(CAST(CAST(:ranks AS jsonb) ->> c.new_tier AS int), 0)
    > coalesce(CAST(CAST(:ranks AS jsonb) ->> c.old_tier AS int), -1)""",
    "stored_value_below": """
SELECT sv.member_id, 'topup:' || to_char(top.at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS.US') FROM (
    SELECT a.owner_id AS member_id, sum(b.balance) AS balance FROM ledger_accounts a
    JOIN ledger_balances b ON b.tenant_id = a.tenant_id AND b.account_id = a.id
    WHERE a.owner_kind = 'member' AND a.kind IN ('sv_principal', 'sv_bonus') GROUP BY a.owner_id
) sv JOIN (
    SELECT a.owner_id AS member_id, max(p.posted_at) AS at FROM ledger_accounts a
    JOIN ledger_postings p ON p.tenant_id = a.tenant_id AND p.account_id = a.id AND p.amount > 0
    WHERE a.owner_kind = 'member' AND a.kind = 'sv_principal' GROUP BY a.owner_id
) top ON top.member_id = sv.member_id
WHERE sv.balance < :amount""",
    # an event only: paid membership's renewal job reports a term ending unrenewed (``fire_one``)
    "membership_expiring": """
SELECT CAST(NULL AS uuid), CAST(NULL AS text) WHERE false""",
    # decided in Python by the tier review's own rules (``automations._at_risk``, then ``fire_one``)
    "tier_at_risk": """
SELECT CAST(NULL AS uuid), CAST(NULL AS text) WHERE false""",
}

TRIGGERS = tuple(_OCCASIONS)

_FIRE = {
    trigger: text(
        "INSERT INTO automation_firings (tenant_id, automation_id, member_id, occasion, status, due_at, created_at) "
        "SELECT CAST(:tenant AS uuid), CAST(:automation AS uuid), o.member_id, o.occasion, 'waiting', "
        "CAST(:due AS timestamptz), CAST(:now AS timestamptz) "
        f"FROM ({sql}) AS o(member_id, occasion) ON CONFLICT DO NOTHING RETURNING member_id, occasion"
    )
    for trigger, sql in _OCCASIONS.items()
}


async def fire(uow: UnitOfWork, a: Automation, params: dict[str, Any], due: datetime, now: datetime) -> int:
    """New occasions of ``a``'s trigger become waiting firings (due after the wait); known ones are skipped."""
    return len(await fire_new(uow, a, params, due, now))


async def fire_new(
    uow: UnitOfWork, a: Automation, params: dict[str, Any], due: datetime, now: datetime
) -> list[tuple[uuid.UUID, str]]:
    """:func:`fire`, returning the (member, occasion) of the firings it wrote."""
    values = {
        "since": a.created_at, "now": now, "horizon": None, "lapsed": None, "tz": "UTC", "mmdd": [], "years": [],
        "ranks": "{}", "amount": a.amount,
    } | params | {"tenant": uow.tenant_id, "automation": a.id, "due": due}  # fmt: skip
    used = {k: v for k, v in values.items() if f":{k}" in str(_FIRE[a.trigger])}
    rows = await uow.session.execute(_FIRE[a.trigger], used)
    return [(r.member_id, r.occasion) for r in rows]


_FIRE_ONE = text(
    "INSERT INTO automation_firings (tenant_id, automation_id, member_id, occasion, status, due_at, created_at) "
    "VALUES (:tenant, :automation, :member, :occasion, 'waiting', :due, :now) ON CONFLICT DO NOTHING"
)


async def fire_one(uow: UnitOfWork, a: Automation, member: uuid.UUID, occasion: str, due: datetime,
                   now: datetime) -> int:  # fmt: skip
    """One occasion reported by another area (an event), once."""
    params = {"tenant": uow.tenant_id, "automation": a.id, "member": member, "occasion": occasion, "due": due,
              "now": now}  # fmt: skip
    result = await uow.session.execute(_FIRE_ONE, params)
    return int(getattr(result, "rowcount", 0) or 0)


async def reviews_due(uow: UnitOfWork, due_before: datetime) -> list[tuple[uuid.UUID, str, datetime]]:
    """Members with a tier last reviewed (or holding it since) at or before ``due_before``: (member,
    tier, that time) — their next review is at most the review interval after it."""
    rows = await uow.session.execute(
        text(
            "SELECT member_id, tier_code, coalesce(tier_reviewed_at, tier_since) FROM member_profiles "
            "WHERE tier_code IS NOT NULL AND erased_at IS NULL AND coalesce(tier_reviewed_at, tier_since) <= :b "
            "ORDER BY member_id"
        ),
        {"b": due_before},
    )
    return [(r[0], str(r[1]), r[2]) for r in rows]


async def due_firings(uow: UnitOfWork, automation: uuid.UUID, now: datetime) -> list[AutomationFiring]:
    stmt = (
        select(AutomationFiring)
        .where(
            AutomationFiring.automation_id == automation,
            AutomationFiring.status == "waiting",
            AutomationFiring.due_at <= now,
        )
        .order_by(AutomationFiring.member_id, AutomationFiring.occasion)
        .with_for_update(skip_locked=True)
    )
    return list((await uow.session.scalars(stmt)).all())


# The campaigns' conditions (campaign_queries._ELIGIBLE) applied to due firings: not erased, consent
# on the channel (the portal inbox only needs it not withdrawn), an address for e-mail, under the
# weekly cap of messages on the channel (campaigns' and automations' together).
_MESSAGES = text(
    """
INSERT INTO campaign_messages (tenant_id, campaign_id, member_id, occasion, channel, variant, status, due_at, created_at)
SELECT f.tenant_id, CAST(:campaign AS uuid), f.member_id, f.occasion, CAST(:channel AS text), 'a', 'pending',
       CAST(:due AS timestamptz), CAST(:now AS timestamptz)
FROM automation_firings f
LEFT JOIN member_profiles p ON p.tenant_id = f.tenant_id AND p.member_id = f.member_id
WHERE f.automation_id = :automation AND f.status = 'waiting' AND f.due_at <= :now AND p.erased_at IS NULL
  AND CASE WHEN CAST(:channel AS text) = 'portal' THEN coalesce(p.consent -> 'portal' ->> 'granted', 'true') = 'true'
           ELSE coalesce(p.consent -> CAST(:channel AS text) ->> 'granted', 'false') = 'true' END
  AND (CAST(:channel AS text) <> 'email' OR coalesce(p.email, '') <> '')
  AND f.member_id NOT IN (
      SELECT member_id FROM campaign_messages
      WHERE channel = :channel AND created_at > :week_ago AND status NOT IN ('dead', 'skipped')
      GROUP BY member_id HAVING count(*) >= :cap)
ON CONFLICT DO NOTHING
"""
)


async def write_messages(
    uow: UnitOfWork, automation: uuid.UUID, campaign: uuid.UUID, channel: str, *, cap: int, week_ago: datetime,
    due: datetime, now: datetime,
) -> int:  # fmt: skip
    params = {"automation": automation, "campaign": campaign, "channel": channel, "cap": cap, "week_ago": week_ago,
              "due": due, "now": now}  # fmt: skip
    result = await uow.session.execute(_MESSAGES, params)
    return int(getattr(result, "rowcount", 0) or 0)


_DONE = text(
    """
UPDATE automation_firings f SET status = 'done', done_at = :now,
    messaged = EXISTS (SELECT 1 FROM campaign_messages c WHERE c.tenant_id = f.tenant_id
                       AND c.campaign_id = CAST(:campaign AS uuid) AND c.member_id = f.member_id AND c.occasion = f.occasion)
WHERE f.automation_id = :automation AND f.status = 'waiting' AND f.due_at <= :now
"""
)


async def mark_done(uow: UnitOfWork, automation: uuid.UUID, campaign: uuid.UUID | None, now: datetime) -> int:
    result = await uow.session.execute(_DONE, {"automation": automation, "campaign": campaign, "now": now})
    return int(getattr(result, "rowcount", 0) or 0)


# --- rows, lists and stats ----------------------------------------------------------------------


async def automation(uow: UnitOfWork, automation_id: uuid.UUID, *, lock: bool = False) -> Automation | None:
    return await uow.session.get(Automation, (uow.tenant_id, automation_id), with_for_update=lock)


async def automations(uow: UnitOfWork, *, enabled_only: bool = False) -> list[Automation]:
    stmt = select(Automation).order_by(Automation.created_at, Automation.name)
    if enabled_only:
        stmt = stmt.where(Automation.enabled)
    return list((await uow.session.scalars(stmt)).all())


async def name_taken(uow: UnitOfWork, name: str, but: uuid.UUID | None = None) -> bool:
    stmt = select(Automation.id).where(Automation.name == name)
    if but is not None:
        stmt = stmt.where(Automation.id != but)
    return bool(await uow.session.scalar(stmt.limit(1)))


async def by_code(uow: UnitOfWork, code: str) -> Automation | None:
    return await uow.session.scalar(select(Automation).where(Automation.code == code))


@dataclass(frozen=True)
class Stats:
    fired: int = 0
    waiting: int = 0
    sent: int = 0
    coupons: int = 0
    points: int = 0


async def stats(uow: UnitOfWork) -> dict[uuid.UUID, Stats]:
    """Per automation: firings, still waiting, messages sent (sent or delivered), coupons, points given."""
    rows = await uow.session.execute(
        text(
            """
SELECT a.id, count(f.member_id), count(f.member_id) FILTER (WHERE f.status = 'waiting'),
       (SELECT count(*) FROM campaign_messages c WHERE c.tenant_id = a.tenant_id AND c.campaign_id = a.campaign_id
          AND c.status IN ('sent', 'delivered')),
       count(f.coupon_id), coalesce(sum(f.points), 0)
FROM automations a LEFT JOIN automation_firings f ON f.tenant_id = a.tenant_id AND f.automation_id = a.id
GROUP BY a.tenant_id, a.id, a.campaign_id
"""
        )
    )
    return {r[0]: Stats(int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows}


async def points_expiring(
    uow: UnitOfWork, fired: list[tuple[uuid.UUID, str]], tz: str
) -> dict[tuple[uuid.UUID, str], int]:
    """The points still expiring on each (member, local expiry date) — what the ``points.expiring``
    webhook says of the firings ``fire_new`` just wrote."""
    rows = await uow.session.execute(
        text(
            "SELECT f.member_id, f.occasion, COALESCE(SUM(l.remaining), 0) AS points "
            "FROM unnest(CAST(:members AS uuid[]), CAST(:days AS text[])) AS f(member_id, occasion) "
            "LEFT JOIN ledger_accounts a ON a.owner_id = f.member_id AND a.owner_kind = 'member' AND a.kind = 'points' "
            "LEFT JOIN ledger_lots l ON l.tenant_id = a.tenant_id AND l.account_id = a.id AND l.remaining > 0 "
            "AND to_char(l.expires_at AT TIME ZONE CAST(:tz AS text), 'YYYY-MM-DD') = f.occasion "
            "GROUP BY f.member_id, f.occasion"
        ),
        {"members": [m for m, _ in fired], "days": [d for _, d in fired], "tz": tz},
    )
    return {(r.member_id, r.occasion): int(r.points) for r in rows}
