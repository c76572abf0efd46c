"""Marketing's SQL: a segment's rule document compiled to ONE set-based query, the audience snapshot
(one ``INSERT … SELECT``), the nightly RFM scores, and the small reads and writes around them.

The compiler builds SQLAlchemy Core expressions only: every value from a rule is a bound parameter,
no SQL text is built from input (decision 0005; ``tests/unit/test_sql_built_from_strings.py``).
Row-level security scopes every statement to the unit of work's merchant; the compiled query also
ties every table it reads — the outer ``memberships`` and each semi-join's — to the merchant as one
bound parameter (``tenant_of``), so on Citus each part is routed to the merchant's shard and the
semi-joins stay hashed (decision 0048); the snapshot INSERT uses the same parameter for its rows.

Shape of the compiled query: ``SELECT ms.member_id FROM memberships ms LEFT JOIN member_profiles p
LEFT JOIN member_rfm r WHERE <rules>``; conditions on sales, ledger balances, lots and coupons are
``member_id IN (SELECT … GROUP BY … HAVING …)`` semi-joins (hashed once, not re-run per member),
and "at most N" ranges that include members with nothing are ``NOT IN`` the complement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Integer,
    Select,
    SmallInteger,
    String,
    and_,
    bindparam,
    cast,
    column,
    exists,
    extract,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    table,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, insert
from sqlalchemy.sql.elements import ColumnElement

from lianka.platform.db import UnitOfWork
from lianka.tenants.domain import lifecycle
from lianka.tenants.marketing import domain as d
from lianka.tenants.marketing.models import AudienceSnapshot, MemberRfm, Segment

# --- the tables the compiler reads (lightweight Core tables: only the columns used) ---------------

_U = UUID(as_uuid=True)
_TS = DateTime(timezone=True)
memberships = table("memberships", column("tenant_id", _U), column("member_id", _U), column("branch_id", _U),
                    column("joined_at", _TS))  # fmt: skip
members = table("members", column("id", _U), column("card_number", String))
profiles = table(
    "member_profiles",
    column("tenant_id", _U),
    column("member_id", _U),
    column("name", String),
    column("tier_code", String),
    column("tags", ARRAY(String)),
    column("birthday", Date),
    column("last_purchase_at", _TS),
    column("consent", JSONB),
    column("erased_at", _TS),
)
rfm = table("member_rfm", column("tenant_id", _U), column("member_id", _U), column("recency", SmallInteger),
            column("frequency", SmallInteger), column("monetary", SmallInteger))  # fmt: skip
sales = table("sales", column("tenant_id", _U), column("member_id", _U), column("branch_id", _U), column("business_time", _TS),
              column("qualifying_spend", BigInteger), column("status", String))  # fmt: skip
accounts = table("ledger_accounts", column("tenant_id", _U), column("id", _U), column("owner_kind", String),
                 column("owner_id", _U), column("kind", String))  # fmt: skip
balances = table("ledger_balances", column("tenant_id", _U), column("account_id", _U), column("balance", BigInteger))
lots = table("ledger_lots", column("tenant_id", _U), column("account_id", _U), column("remaining", BigInteger),
             column("available_at", _TS), column("expires_at", _TS))  # fmt: skip
coupons = table("coupons", column("tenant_id", _U), column("member_id", _U), column("template_id", _U), column("status", String),
                column("valid_until", _TS))  # fmt: skip
snapshot_members = table("audience_snapshot_members", column("tenant_id", _U), column("snapshot_id", _U),
                         column("member_id", _U), column("holdout", Boolean))  # fmt: skip

MS, P, R = memberships.alias("ms"), profiles.alias("p"), rfm.alias("r")
#: the merchant a compiled query is for: one bound parameter, compared with every table's tenant_id
Tenant = ColumnElement[uuid.UUID]
MEMBER = MS.c.member_id


@dataclass(frozen=True)
class Clock:
    """The instant and the merchant's date a query is evaluated at (windows and stages count from them)."""

    now: datetime
    today: date
    #: the first instant of next month in the merchant's time zone ("expiring this month")
    month_end: datetime | None = None

    @property
    def end_of_month(self) -> datetime:
        if self.month_end is not None:
            return self.month_end
        first = self.today.replace(day=1) + timedelta(days=32)
        return datetime.combine(first.replace(day=1), datetime.min.time(), tzinfo=self.now.tzinfo)


def _range(value: ColumnElement[Any], lo: int | None, hi: int | None) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if lo is not None:
        parts.append(value >= lo)
    if hi is not None:
        parts.append(value <= hi)
    return and_(true(), *parts)


def _member_in_amount(
    members_col: ColumnElement[Any],
    amount: ColumnElement[Any],
    where: Sequence[ColumnElement[bool]],
    lo: int | None,
    hi: int | None,
) -> ColumnElement[bool]:
    """``amount`` (an aggregate per ``members_col``, 0 for a member without rows) within [lo, hi].

    With lo > 0 the member must have rows: ``IN (… HAVING amount BETWEEN lo AND hi)``. Otherwise a
    member without rows matches too, so the condition is ``NOT IN`` the members above ``hi``."""
    base = select(members_col).where(members_col.is_not(None), *where).group_by(members_col)
    if lo:
        return MEMBER.in_(base.having(_range(amount, lo, hi)))
    if hi is None:
        return true()
    return MEMBER.not_in(base.having(amount > hi))


def _stage(stage: lifecycle.Stage, clock: Clock) -> ColumnElement[bool]:
    """The lifecycle stage as SQL (the rule of ``lifecycle.stage``, as in ``crm_queries``)."""
    r = lifecycle.Recency()
    joined, last = cast(MS.c.joined_at, Date), cast(P.c.last_purchase_at, Date)
    new_since = clock.today - timedelta(days=r.new_days)
    active = clock.today - timedelta(days=r.active_days)
    risk = clock.today - timedelta(days=r.at_risk_days)
    old = joined < new_since
    match stage:
        case lifecycle.Stage.NEW:
            return joined >= new_since
        case lifecycle.Stage.ACTIVE:
            return and_(old, last >= active)
        case lifecycle.Stage.AT_RISK:
            return and_(old, last < active, last >= risk)
        case lifecycle.Stage.DORMANT:
            return and_(old, or_(last.is_(None), last < risk))


def _member_accounts(kinds: Sequence[str], t: Tenant) -> list[ColumnElement[bool]]:
    return [accounts.c.tenant_id == t, accounts.c.owner_kind == "member", accounts.c.kind.in_(list(kinds))]


def _balance(kinds: Sequence[str], lo: int | None, hi: int | None, t: Tenant) -> ColumnElement[bool]:
    joined = accounts.join(
        balances, and_(balances.c.tenant_id == accounts.c.tenant_id, balances.c.account_id == accounts.c.id)
    )
    owner = accounts.c.owner_id
    base = select(owner).select_from(joined).where(owner.is_not(None), *_member_accounts(kinds, t)).group_by(owner)
    total = func.sum(balances.c.balance)
    if lo:
        return MEMBER.in_(base.having(_range(total, lo, hi)))
    if hi is None:
        return true()
    return MEMBER.not_in(base.having(total > hi))


def _sales_since(days: int, clock: Clock, t: Tenant) -> list[ColumnElement[bool]]:
    return [
        sales.c.tenant_id == t,
        sales.c.business_time >= clock.now - timedelta(days=days),
        sales.c.status != "refunded",
    ]


def _condition(node: d.Node, clock: Clock, t: Tenant) -> ColumnElement[bool]:
    match node:
        case d.Group():
            parts = [_condition(c, clock, t) for c in node.conditions]
            combined = (and_(true(), *parts) if node.op == "and" else or_(false(), *parts)) if parts else true()
            # NOT over unknown (a NULL tier, no profile) is true: the member does not match the inner rules
            return not_(func.coalesce(combined, false())) if node.negate else combined
        case d.TierIs():
            return P.c.tier_code.in_(node.tiers)
        case d.HasTags():
            tags = cast(literal(node.tags, ARRAY(String)), ARRAY(String))
            return P.c.tags.overlap(tags) if node.match == "any" else P.c.tags.contains(tags)
        case d.InStage():
            return or_(false(), *(_stage(s, clock) for s in node.stages))
        case d.RfmScore():
            return _range(R.c[node.score], node.min, node.max)
        case d.BirthdayMonth():
            return cast(extract("month", P.c.birthday), Integer).in_(node.months)
        case d.Joined():
            return _dates(MS.c.joined_at, node.on_or_after, node.before)
        case d.LastPurchase():
            return _dates(P.c.last_purchase_at, node.on_or_after, node.before)
        case d.SpendInWindow():
            spend = func.coalesce(func.sum(sales.c.qualifying_spend), 0)
            return _member_in_amount(sales.c.member_id, spend, _sales_since(node.days, clock, t), node.min, node.max)
        case d.VisitsInWindow():
            return _member_in_amount(
                sales.c.member_id, func.count(), _sales_since(node.days, clock, t), node.min, node.max
            )
        case d.AtBranch():
            if node.how == "joined":
                return MS.c.branch_id.in_(node.branches)
            where: list[ColumnElement[bool]] = [
                sales.c.tenant_id == t,
                sales.c.branch_id.in_(node.branches),
                sales.c.member_id.is_not(None),
            ]
            if node.days is not None:
                where.append(sales.c.business_time >= clock.now - timedelta(days=node.days))
            return MEMBER.in_(select(sales.c.member_id).where(*where))
        case d.PointsBalance():
            return _balance(("points",), node.min, node.max, t)
        case d.StoredValueBalance():
            return _balance(("sv_principal", "sv_bonus"), node.min, node.max, t)
        case d.PointsExpiring():
            joined = accounts.join(
                lots, and_(lots.c.tenant_id == accounts.c.tenant_id, lots.c.account_id == accounts.c.id)
            )
            due = (
                select(accounts.c.owner_id)
                .select_from(joined)
                .where(
                    *_member_accounts(("points",), t),
                    lots.c.remaining > 0,
                    lots.c.available_at <= clock.now,
                    lots.c.expires_at > clock.now,
                    lots.c.expires_at <= clock.now + timedelta(days=node.days)
                    if node.days is not None
                    else lots.c.expires_at <= clock.end_of_month,
                )
                .group_by(accounts.c.owner_id)
                .having(func.sum(lots.c.remaining) >= node.min)
            )
            return MEMBER.in_(due)
        case d.HoldsCoupon():
            held = select(coupons.c.member_id).where(
                coupons.c.tenant_id == t,
                coupons.c.template_id.in_(node.templates),
                coupons.c.status == "issued",
                or_(coupons.c.valid_until.is_(None), coupons.c.valid_until > clock.now),
            )
            return MEMBER.in_(held)
        case d.Consent():
            granted = P.c.consent[str(node.channel)]["granted"].astext == "true"
            return granted if node.granted else not_(func.coalesce(granted, false()))


def _dates(col: ColumnElement[Any], on_or_after: date | None, before: date | None) -> ColumnElement[bool]:
    day = cast(col, Date)
    parts = [day >= on_or_after] if on_or_after else []
    if before:
        parts.append(day < before)
    return and_(col.is_not(None), *parts)


def _from() -> Any:
    return MS.outerjoin(P, and_(P.c.tenant_id == MS.c.tenant_id, P.c.member_id == MS.c.member_id)).outerjoin(
        R, and_(R.c.tenant_id == MS.c.tenant_id, R.c.member_id == MS.c.member_id)
    )


def where_clause(rules: d.Rules, clock: Clock, t: Tenant) -> ColumnElement[bool]:
    """The rules as one boolean expression over ``ms`` / ``p`` / ``r``, the merchant ``t``'s members
    (every semi-join's table tied to ``t`` too); erased members never match."""
    return and_(MS.c.tenant_id == t, P.c.erased_at.is_(None), _condition(rules.root, clock, t))


def audience(rules: d.Rules, clock: Clock, t: Tenant) -> Select[tuple[uuid.UUID]]:
    """``SELECT ms.member_id …`` of the members the rules select."""
    return select(MEMBER).select_from(_from()).where(where_clause(rules, clock, t))


def tenant_of(uow: UnitOfWork) -> Tenant:
    """The unit of work's merchant as the compiled query's tenant parameter."""
    assert uow.tenant_id is not None
    return bindparam("segment_tenant", uow.tenant_id, type_=_U)


# --- preview, snapshot ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleRow:
    member_id: uuid.UUID
    card_number: str
    name: str
    tier_code: str | None


async def count(uow: UnitOfWork, rules: d.Rules, clock: Clock) -> int:
    stmt = select(func.count()).select_from(_from()).where(where_clause(rules, clock, tenant_of(uow)))
    return int(await uow.session.scalar(stmt) or 0)


async def sample(uow: UnitOfWork, rules: d.Rules, clock: Clock, limit: int = 10) -> list[SampleRow]:
    """The newest ``limit`` members of the audience (what the console shows under the count)."""
    m = members.alias("m")
    stmt = (
        select(MEMBER, m.c.card_number, func.coalesce(P.c.name, ""), P.c.tier_code)
        .select_from(_from().join(m, m.c.id == MEMBER))
        .where(where_clause(rules, clock, tenant_of(uow)))
        .order_by(MS.c.joined_at.desc(), MEMBER)
        .limit(limit)
    )
    return [SampleRow(*row) for row in (await uow.session.execute(stmt)).all()]


async def insert_snapshot_members(
    uow: UnitOfWork, snapshot_id: uuid.UUID, rules: d.Rules, clock: Clock, *, holdout_pct: int, seed: int
) -> tuple[int, int]:
    """The audience into the snapshot in ONE ``INSERT … SELECT`` (the member ids never reach Python);
    a member is in the holdout when a seeded hash of its id falls in the first ``holdout_pct`` of 100
    buckets (stable for a seed, independent of the order rows come in). Returns (members, holdout)."""
    # the tenant once, as one parameter for the target's rows and every source's filter (Citus: co-located)
    tenant = tenant_of(uow)
    aud = audience(rules, clock, tenant).subquery("aud")
    bucket = func.mod(func.hashtextextended(cast(aud.c.member_id, String), seed).op("&")(2**63 - 1), 100)
    source = select(tenant, literal(snapshot_id, _U), aud.c.member_id, bucket < holdout_pct)
    ins = insert(snapshot_members).from_select(["tenant_id", "snapshot_id", "member_id", "holdout"], source)
    await uow.session.execute(ins)
    stats = select(func.count(), func.count().filter(snapshot_members.c.holdout)).where(
        snapshot_members.c.snapshot_id == snapshot_id
    )
    total, held = (await uow.session.execute(stats)).one()
    return int(total), int(held)


async def snapshot_member_ids(
    uow: UnitOfWork, snapshot_id: uuid.UUID, *, holdout: bool | None = None
) -> list[uuid.UUID]:
    """For tests and small audiences only: campaigns stream from the table instead."""
    stmt = select(snapshot_members.c.member_id).where(snapshot_members.c.snapshot_id == snapshot_id)
    if holdout is not None:
        stmt = stmt.where(snapshot_members.c.holdout.is_(holdout))
    return list((await uow.session.scalars(stmt)).all())


async def snapshot(uow: UnitOfWork, snapshot_id: uuid.UUID) -> AudienceSnapshot | None:
    return await uow.session.get(AudienceSnapshot, (uow.tenant_id, snapshot_id))


# --- segments ------------------------------------------------------------------------------------


async def segment(uow: UnitOfWork, segment_id: uuid.UUID, *, lock: bool = False) -> Segment | None:
    return await uow.session.get(Segment, (uow.tenant_id, segment_id), with_for_update=lock)


async def segments(uow: UnitOfWork) -> list[Segment]:
    return list((await uow.session.scalars(select(Segment).order_by(Segment.name))).all())


async def segment_name_taken(uow: UnitOfWork, name: str, but: uuid.UUID | None = None) -> bool:
    stmt = select(exists().where(Segment.name == name, Segment.id != but if but else true()))
    return bool(await uow.session.scalar(stmt))


async def existing_branches(uow: UnitOfWork, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    b = table("branches", column("id", _U))
    return set((await uow.session.scalars(select(b.c.id).where(b.c.id.in_(list(ids))))).all()) if ids else set()


async def existing_templates(uow: UnitOfWork, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    t = table("coupon_templates", column("id", _U))
    return set((await uow.session.scalars(select(t.c.id).where(t.c.id.in_(list(ids))))).all()) if ids else set()


# --- RFM -----------------------------------------------------------------------------------------

#: one merchant's scores in one statement: aggregate the window's sales per member, score each
#: measure with ntile(5) (ties share the lowest score their value got, so equal members score
#: equally), upsert, then drop the scores of members who no longer bought in the window.
_RFM_UPSERT = text(
    """
WITH agg AS (
    SELECT member_id, max(business_time) AS last_at, count(*) AS n, sum(qualifying_spend) AS spend
    FROM sales
    WHERE member_id IS NOT NULL AND status <> 'refunded' AND business_time > :since AND business_time <= :as_of
    GROUP BY member_id
), tiles AS (
    SELECT member_id, last_at, n, spend,
           ntile(5) OVER (ORDER BY last_at, member_id) AS r0,
           ntile(5) OVER (ORDER BY n, member_id) AS f0,
           ntile(5) OVER (ORDER BY spend, member_id) AS m0
    FROM agg
), scored AS (
    SELECT member_id, last_at, n, spend,
           min(r0) OVER (PARTITION BY last_at) AS r,
           min(f0) OVER (PARTITION BY n) AS f,
           min(m0) OVER (PARTITION BY spend) AS m
    FROM tiles
)
INSERT INTO member_rfm AS t (tenant_id, member_id, recency, frequency, monetary, last_purchase_at, purchases,
                             spend, computed_at)
SELECT :tenant, member_id, r, f, m, last_at, n, spend, :as_of FROM scored
ON CONFLICT (tenant_id, member_id) DO UPDATE SET recency = excluded.recency, frequency = excluded.frequency,
    monetary = excluded.monetary, last_purchase_at = excluded.last_purchase_at, purchases = excluded.purchases,
    spend = excluded.spend, computed_at = excluded.computed_at
"""
)
_RFM_PRUNE = text("DELETE FROM member_rfm WHERE computed_at <> :as_of")


async def compute_rfm(uow: UnitOfWork, as_of: datetime, since: datetime) -> int:
    """Score every member who bought in (since, as_of]; returns how many were scored."""
    result = await uow.session.execute(_RFM_UPSERT, {"tenant": uow.tenant_id, "as_of": as_of, "since": since})
    await uow.session.execute(_RFM_PRUNE, {"as_of": as_of})
    return int(getattr(result, "rowcount", 0) or 0)


async def member_rfm(uow: UnitOfWork, member_id: uuid.UUID) -> MemberRfm | None:
    return await uow.session.get(MemberRfm, (uow.tenant_id, member_id))


async def branch_options(uow: UnitOfWork) -> list[tuple[uuid.UUID, str, str]]:
    b = table("branches", column("id", _U), column("code", String), column("name", String))
    rows = await uow.session.execute(select(b.c.id, b.c.code, b.c.name).order_by(b.c.code))
    return [(r[0], r[1], r[2]) for r in rows]


async def template_options(uow: UnitOfWork) -> list[tuple[uuid.UUID, str, str]]:
    t = table("coupon_templates", column("id", _U), column("code", String), column("name", String),
              column("active", Boolean))  # fmt: skip
    rows = await uow.session.execute(select(t.c.id, t.c.code, t.c.name).where(t.c.active).order_by(t.c.code))
    return [(r[0], r[1], r[2]) for r in rows]


# --- the dashboard's member panels (written nightly with the RFM scores) ---------------------------


async def lifecycle_counts(uow: UnitOfWork, clock: Clock) -> tuple[int, dict[str, int]]:
    """(members, members per lifecycle stage) — the segments' own stage rule (``_stage``), counted over
    the merchant's members that are not erased."""
    stages = list(lifecycle.Stage)
    stmt = (
        select(func.count(), *(func.count().filter(_stage(s, clock)) for s in stages))
        .select_from(_from())
        .where(MS.c.tenant_id == tenant_of(uow), P.c.erased_at.is_(None))
    )
    row = (await uow.session.execute(stmt)).one()
    return int(row[0]), {s.value: int(n) for s, n in zip(stages, row[1:], strict=True)}


async def rfm_grid(uow: UnitOfWork) -> list[tuple[int, int, int]]:
    """Members per (recency, frequency) score, every cell that has any."""
    stmt = (
        select(rfm.c.recency, rfm.c.frequency, func.count())
        .where(rfm.c.tenant_id == tenant_of(uow))
        .group_by(rfm.c.recency, rfm.c.frequency)
        .order_by(rfm.c.recency, rfm.c.frequency)
    )
    return [(int(r), int(f), int(n)) for r, f, n in (await uow.session.execute(stmt)).all()]
