"""The CRM's SQL: the member list with its filters, and what the member detail and the tier history
read — each statement behind a typed function returning a documented row type. The rules of
``tenants/queries.py`` hold here too (bound parameters only, no commit, decision 0019).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from lianka.platform.db import UnitOfWork
from lianka.tenants.domain import lifecycle
from lianka.tenants.queries import rows_as


@dataclass(frozen=True)
class ListFilter:
    """The member list's filters (all optional); ``stage`` is one of :class:`lifecycle.Stage`."""

    q: str = ""  # name, card number, or the last digits of the phone
    tier: str | None = None
    tag: str | None = None
    stage: str | None = None
    branch_id: uuid.UUID | None = None


_RECENCY = lifecycle.Recency()
_JOINED = "ms.joined_at::date"
_LAST = "p.last_purchase_at::date"
#: the lifecycle stage as SQL over joined_at / last_purchase_at (the same rule as ``lifecycle.stage``)
_STAGE_CLAUSES = {
    lifecycle.Stage.NEW: f"{_JOINED} >= :new_since",
    lifecycle.Stage.ACTIVE: f"{_JOINED} < :new_since AND {_LAST} >= :active",
    lifecycle.Stage.AT_RISK: f"{_JOINED} < :new_since AND {_LAST} < :active AND {_LAST} >= :risk",
    lifecycle.Stage.DORMANT: f"{_JOINED} < :new_since AND ({_LAST} IS NULL OR {_LAST} < :risk)",
}


def _stage_bounds(today: date) -> dict[str, date]:
    """The dates the stage clauses compare with (``:new_since``, ``:active``, ``:risk``)."""
    return {
        "new_since": today - timedelta(days=_RECENCY.new_days),
        "active": today - timedelta(days=_RECENCY.active_days),
        "risk": today - timedelta(days=_RECENCY.at_risk_days),
    }


def _member_filter(f: ListFilter, today: date) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of the member list, from fixed parts (values are bound parameters)."""
    where = ""
    params: dict[str, Any] = {}
    if f.q:
        q = f.q.strip()
        tail = " OR m.phone LIKE :q_tail" if q.isdigit() and len(q) >= 4 else ""
        where += f" AND (p.name ILIKE :q_like OR m.card_number = :q{tail})"
        params.update(q=q, q_like=f"%{q}%", q_tail=f"%{q}")
    if f.tier:
        where += " AND p.tier_code = :tier"
        params["tier"] = f.tier
    if f.tag:
        where += " AND :tag = ANY(p.tags)"
        params["tag"] = f.tag
    if f.branch_id:
        where += " AND ms.branch_id = :branch"  # the join branch: set at enrolment, never moved
        params["branch"] = f.branch_id
    if f.stage is not None:
        where += f" AND {_STAGE_CLAUSES[lifecycle.Stage(f.stage)]}"
        params.update(_stage_bounds(today))
    return where, params


@dataclass(frozen=True)
class MemberListRow:
    """Row type of the member list (the full phone: callers mask it unless exporting)."""

    member_id: uuid.UUID
    card_number: str
    phone: str
    joined_at: datetime
    name: str
    tier_code: str | None
    tags: list[str]
    last_purchase_at: datetime | None
    spend: int
    purchases: int
    source: str
    gender: str | None
    birthday: date | None
    email: str | None
    #: this merchant's personal data about the member was erased (PIPL): the phone is '' then
    erased_at: datetime | None = None


async def member_list(
    uow: UnitOfWork, f: ListFilter, today: date, *, limit: int, offset: int
) -> tuple[list[MemberListRow], int]:
    """One page of members (newest first) and the total matching; ``f.stage`` must be a valid stage."""
    where, params = _member_filter(f, today)
    base = (
        "FROM memberships ms JOIN members m ON m.id = ms.member_id "
        "LEFT JOIN member_profiles p ON p.tenant_id = ms.tenant_id AND p.member_id = ms.member_id WHERE true" + where
    )
    total = int(await uow.session.scalar(text(f"SELECT count(*) {base}"), params) or 0)
    rows = await rows_as(
        uow,
        MemberListRow,
        (
            "SELECT ms.member_id, m.card_number, CASE WHEN p.erased_at IS NULL THEN m.phone ELSE '' END AS phone, "
            "ms.joined_at, coalesce(p.name, '') AS name, p.erased_at, "
            "p.tier_code, coalesce(p.tags, '{}') AS tags, p.last_purchase_at, coalesce(p.cumulative_spend, 0) AS spend, "
            "coalesce(p.purchase_count, 0) AS purchases, coalesce(p.source, 'till') AS source, p.gender, p.birthday, "
            f"p.email {base} ORDER BY ms.joined_at DESC, ms.member_id LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": limit, "offset": offset},
    )
    return rows, total


@dataclass(frozen=True)
class MemberIdentity:
    """Row type: a member's card, phone, enrolment time and join branch here."""

    card_number: str
    phone: str
    joined_at: datetime
    branch_id: uuid.UUID | None
    #: erased here (PIPL): the phone is '' then
    erased_at: datetime | None = None


async def member_identity(uow: UnitOfWork, member_id: uuid.UUID) -> MemberIdentity:
    found = await rows_as(
        uow,
        MemberIdentity,
        (
            "SELECT m.card_number, CASE WHEN p.erased_at IS NULL THEN m.phone ELSE '' END AS phone, ms.joined_at, "
            "ms.branch_id, p.erased_at FROM memberships ms JOIN members m ON m.id = ms.member_id "
            "LEFT JOIN member_profiles p ON p.tenant_id = ms.tenant_id AND p.member_id = ms.member_id "
            "WHERE ms.member_id = :m"
        ),
        {"m": member_id},
    )
    return found[0]


@dataclass(frozen=True)
class MemberCouponRow:
    """Row type: one of a member's coupons with its template's name and kind."""

    code: str
    status: str
    valid_until: datetime | None
    name: str
    kind: str


async def member_coupon_rows(uow: UnitOfWork, member_id: uuid.UUID, limit: int = 100) -> list[MemberCouponRow]:
    return await rows_as(
        uow,
        MemberCouponRow,
        (
            "SELECT c.code, c.status, c.valid_until, t.name, t.kind FROM coupons c JOIN coupon_templates t "
            "ON t.tenant_id = c.tenant_id AND t.id = c.template_id WHERE c.member_id = :m ORDER BY c.issued_at DESC "
            "LIMIT :limit"
        ),
        {"m": member_id, "limit": limit},
    )


@dataclass(frozen=True)
class PurchaseRow:
    """Row type: one of a member's sales, as the member detail lists it (``lines``: sku, qty, unit_price)."""

    id: uuid.UUID
    business_time: datetime
    branch: str
    gross: int
    discounts: int
    #: names of the price promotions the sale got
    promotions: list[str]
    points_redeemed: int
    stored_value: int
    due: int
    points_earned: int
    refunded: int
    status: str
    lines: list[dict[str, Any]]


async def purchases(uow: UnitOfWork, member_id: uuid.UUID, limit: int = 50) -> list[PurchaseRow]:
    return await rows_as(
        uow,
        PurchaseRow,
        (
            "SELECT s.id, s.business_time, b.code AS branch, s.gross, s.promotion_discount + s.member_discount + s.coupon_total AS discounts, "
            "coalesce((SELECT jsonb_agg(p->>'name') FROM jsonb_array_elements(s.applied_promotions) p), '[]') "
            "AS promotions, "
            "s.points_redeemed, s.sv_principal + s.sv_bonus AS stored_value, s.due, s.points_earned, s.refunded, "
            "s.status, coalesce((SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'qty', l.qty, "
            "'unit_price', l.unit_price) ORDER BY l.line_no) FROM sale_lines l WHERE l.tenant_id = s.tenant_id "
            "AND l.sale_id = s.id), '[]') AS lines "
            "FROM sales s JOIN branches b ON b.tenant_id = s.tenant_id AND b.id = s.branch_id WHERE s.member_id = :m "
            "ORDER BY s.business_time DESC LIMIT :limit"
        ),
        {"m": member_id, "limit": limit},
    )


@dataclass(frozen=True)
class PointsMovement:
    """Row type: one posting on a member's points account, with its lot's expiry and availability."""

    kind: str
    business_time: datetime
    points: int
    reversal: bool
    expires_at: datetime | None
    available_at: datetime | None


async def points_history(uow: UnitOfWork, points_account: uuid.UUID, limit: int = 100) -> list[PointsMovement]:
    return await rows_as(
        uow,
        PointsMovement,
        (
            "SELECT e.kind, e.business_time, p.amount AS points, e.reverses_id IS NOT NULL AS reversal, "
            "(SELECT min(l.expires_at) FROM ledger_lots l WHERE l.tenant_id = p.tenant_id AND l.entry_id = e.id "
            "AND l.account_id = p.account_id) AS expires_at, (SELECT min(l.available_at) FROM ledger_lots l "
            "WHERE l.tenant_id = p.tenant_id AND l.entry_id = e.id AND l.account_id = p.account_id) AS available_at "
            "FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id "
            "WHERE p.account_id = :a ORDER BY e.business_time DESC, e.posted_at DESC LIMIT :limit"
        ),
        {"a": points_account, "limit": limit},
    )


@dataclass(frozen=True)
class StoredValueMovement:
    """One ledger entry's effect on a member's stored value: paid-in and bonus apart."""

    kind: str
    business_time: datetime
    principal: int
    bonus: int
    reversal: bool


async def stored_value_history(
    uow: UnitOfWork, principal_account: uuid.UUID, bonus_account: uuid.UUID, limit: int = 100
) -> list[StoredValueMovement]:
    return await rows_as(
        uow,
        StoredValueMovement,
        (
            "SELECT e.kind, e.business_time, "
            "COALESCE(sum(p.amount) FILTER (WHERE p.account_id = :p), 0)::bigint AS principal, "
            "COALESCE(sum(p.amount) FILTER (WHERE p.account_id = :b), 0)::bigint AS bonus, "
            "e.reverses_id IS NOT NULL AS reversal "
            "FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id "
            "WHERE p.account_id IN (:p, :b) GROUP BY e.id, e.kind, e.business_time, e.posted_at, e.reverses_id "
            "ORDER BY e.business_time DESC, e.posted_at DESC LIMIT :limit"
        ),
        {"p": principal_account, "b": bonus_account, "limit": limit},
    )


@dataclass(frozen=True)
class TierChangeRow:
    """Row type of ``tier_changes`` as the history shows it."""

    old_tier: str | None
    new_tier: str | None
    reason: str
    actor: str
    at: datetime


async def tier_changes(uow: UnitOfWork, member_id: uuid.UUID) -> list[TierChangeRow]:
    return await rows_as(
        uow,
        TierChangeRow,
        ("SELECT old_tier, new_tier, reason, actor, at FROM tier_changes WHERE member_id = :m ORDER BY at DESC"),
        {"m": member_id},
    )


# --- what the console's member list shows beside the list (filter choices, charts) ---------------

#: members per lifecycle stage in one pass, from the very clauses the list filters with; composed once,
#: at import, of constant parts only (the dates are bound parameters)
_STAGE_COUNTS = (
    "SELECT "
    + ", ".join(f"count(*) FILTER (WHERE {clause}) AS {stage.value}" for stage, clause in _STAGE_CLAUSES.items())
    + " FROM memberships ms LEFT JOIN member_profiles p ON p.tenant_id = ms.tenant_id AND p.member_id = ms.member_id"
)


async def stage_counts(uow: UnitOfWork, today: date) -> dict[str, int]:
    """How many members are in each lifecycle stage today (every stage present, 0 included)."""
    row = (await uow.session.execute(text(_STAGE_COUNTS), _stage_bounds(today))).one()
    return {stage.value: int(row._mapping[stage.value]) for stage in lifecycle.Stage}


@dataclass(frozen=True)
class TierCount:
    """Row type: members holding a tier (``tier_code`` None: no tier yet)."""

    tier_code: str | None
    members: int


async def tier_counts(uow: UnitOfWork) -> list[TierCount]:
    return await rows_as(
        uow,
        TierCount,
        (
            "SELECT p.tier_code, count(*) AS members FROM memberships ms "
            "LEFT JOIN member_profiles p ON p.tenant_id = ms.tenant_id AND p.member_id = ms.member_id "
            "GROUP BY p.tier_code ORDER BY members DESC"
        ),
        {},
    )


async def tags_in_use(uow: UnitOfWork, limit: int = 200) -> list[str]:
    """The tags the merchant's members carry, alphabetically (the tag filter's choices)."""
    found = await uow.session.scalars(
        text("SELECT DISTINCT unnest(tags) AS tag FROM member_profiles ORDER BY tag LIMIT :limit"), {"limit": limit}
    )
    return [str(tag) for tag in found]


@dataclass(frozen=True)
class BranchChoice:
    """Row type: a branch as a filter or a member's join branch shows it."""

    id: uuid.UUID
    code: str
    name: str


async def branch_choices(uow: UnitOfWork) -> list[BranchChoice]:
    return await rows_as(uow, BranchChoice, "SELECT id, code, name FROM branches ORDER BY code", {})
