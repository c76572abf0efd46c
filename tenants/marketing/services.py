"""Segments (saved audiences), their live preview, the audience snapshot, and the RFM scores.

Use cases take the ``Database`` and own their transaction; :func:`freeze_audience` and
:func:`score_rfm` are building blocks (they take a unit of work and never commit) so a campaign can
freeze its audience in the transaction that starts it.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import ValidationFailed
from lianka.tenants.marketing import domain as d
from lianka.tenants.marketing import queries as q
from lianka.tenants.marketing.errors import (
    BadSegmentRules,
    SegmentInUse,
    SegmentNameTaken,
    SegmentNotFound,
    UnknownReference,
)
from lianka.tenants.marketing.models import AudienceSnapshot, MemberRfm, Segment
from lianka.tenants.reports import dashboard_queries
from lianka.tenants.services import accounts

#: RFM looks back this far (decision 0036)
RFM_WINDOW = timedelta(days=365)
SAMPLE_SIZE = 10


def parse_rules(raw: Any) -> d.Rules:
    """The rule document from parsed JSON, or :class:`BadSegmentRules` naming the field."""
    try:
        return d.decode(raw)
    except d.RuleError as e:
        raise BadSegmentRules(str(e), field=e.field) from None


async def clock(uow: UnitOfWork, now: datetime | None = None) -> q.Clock:
    """Now, today and the end of this month in the merchant's time zone (stages, date rules and
    "expiring this month" count from them)."""
    now = now or datetime.now(UTC)
    _, tz = await accounts.merchant_info(uow)
    today = now.astimezone(ZoneInfo(tz)).date()
    first_next = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    month_end = datetime.combine(first_next, time(0), tzinfo=ZoneInfo(tz))
    return q.Clock(now, today, month_end)


async def _check_references(uow: UnitOfWork, rules: d.Rules) -> None:
    branches, templates = d.referenced_ids(rules)
    missing = branches - await q.existing_branches(uow, branches)
    if missing:
        raise UnknownReference(f"no branch {sorted(map(str, missing))[0]}", field="branches")
    missing = templates - await q.existing_templates(uow, templates)
    if missing:
        raise UnknownReference(f"no coupon template {sorted(map(str, missing))[0]}", field="templates")


def _name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed("name: 1-100 characters", field="name")
    return name


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[q.SampleRow]


async def preview_in(uow: UnitOfWork, rules: d.Rules, now: datetime | None = None) -> Preview:
    await _check_references(uow, rules)
    c = await clock(uow, now)
    return Preview(await q.count(uow, rules, c), await q.sample(uow, rules, c, SAMPLE_SIZE))


async def preview(db: Database, tenant: uuid.UUID, raw: Any, now: datetime | None = None) -> Preview:
    """Live count and a sample of the members the (unsaved) rules select."""
    rules = parse_rules(raw)
    async with db.uow(tenant) as uow:
        return await preview_in(uow, rules, now)


async def _get(uow: UnitOfWork, segment_id: uuid.UUID, *, lock: bool = False) -> Segment:
    s = await q.segment(uow, segment_id, lock=lock)
    if s is None:
        raise SegmentNotFound()
    return s


async def create_segment(db: Database, tenant: uuid.UUID, name: str, raw: Any) -> Segment:
    rules, name = parse_rules(raw), _name(name)
    async with db.uow(tenant) as uow:
        await _check_references(uow, rules)
        if await q.segment_name_taken(uow, name):
            raise SegmentNameTaken(field="name")
        c = await clock(uow)
        s = Segment(
            tenant_id=tenant,
            name=name,
            rules=d.encode(rules),
            rules_version=rules.version,
            last_count=await q.count(uow, rules, c),
            counted_at=c.now,
        )
        uow.session.add(s)
        await uow.session.flush()
        await uow.session.refresh(s)
        await uow.commit()
        return s


async def change_segment(
    db: Database, tenant: uuid.UUID, segment_id: uuid.UUID, *, name: str | None = None, raw: Any = None
) -> Segment:
    rules = parse_rules(raw) if raw is not None else None
    async with db.uow(tenant) as uow:
        s = await _get(uow, segment_id, lock=True)
        if name is not None:
            name = _name(name)
            if await q.segment_name_taken(uow, name, but=segment_id):
                raise SegmentNameTaken(field="name")
            s.name = name
        if rules is not None:
            await _check_references(uow, rules)
            c = await clock(uow)
            s.rules, s.rules_version = d.encode(rules), rules.version
            s.last_count, s.counted_at = await q.count(uow, rules, c), c.now
        s.updated_at = datetime.now(UTC)
        await uow.session.flush()
        await uow.commit()
        return s


async def delete_segment(db: Database, tenant: uuid.UUID, segment_id: uuid.UUID) -> None:
    """Deletes a segment no snapshot refers to (a frozen audience keeps its segment: 409 otherwise)."""
    async with db.uow(tenant) as uow:
        s = await _get(uow, segment_id, lock=True)
        await uow.session.delete(s)
        try:
            async with uow.session.begin_nested():
                await uow.session.flush()
        except IntegrityError:
            raise SegmentInUse() from None
        await uow.commit()


async def get_segment(db: Database, tenant: uuid.UUID, segment_id: uuid.UUID) -> Segment:
    async with db.uow(tenant) as uow:
        return await _get(uow, segment_id)


async def list_segments(db: Database, tenant: uuid.UUID) -> list[Segment]:
    async with db.uow(tenant) as uow:
        return await q.segments(uow)


async def recount(db: Database, tenant: uuid.UUID, segment_id: uuid.UUID) -> Segment:
    async with db.uow(tenant) as uow:
        s = await _get(uow, segment_id, lock=True)
        c = await clock(uow)
        s.last_count, s.counted_at = await q.count(uow, parse_rules(s.rules), c), c.now
        await uow.session.flush()
        await uow.commit()
        return s


# --- the snapshot (building block for campaigns) -----------------------------------------------


async def freeze_audience(
    uow: UnitOfWork,
    segment_id: uuid.UUID,
    *,
    exclude_holdout_pct: int = 0,
    seed: int | None = None,
    now: datetime | None = None,
) -> uuid.UUID:
    """Freeze the segment's audience now: a snapshot row (with the rules as they were) and its members
    written by one ``INSERT … SELECT`` (never through Python). ``exclude_holdout_pct`` percent of
    them (by a seeded hash of the member id: the same seed gives the same split) are marked
    ``holdout`` — kept in the snapshot as the control group, never sent to. Building block: no commit."""
    if not 0 <= exclude_holdout_pct <= 100:
        raise ValidationFailed("holdout: 0-100 percent", field="exclude_holdout_pct")
    s = await _get(uow, segment_id)
    rules = parse_rules(s.rules)
    seed = secrets.randbits(62) if seed is None else seed
    snap = AudienceSnapshot(
        tenant_id=uow.tenant_id, segment_id=segment_id, rules=s.rules, holdout_pct=exclude_holdout_pct, seed=seed
    )
    uow.session.add(snap)
    await uow.session.flush()
    total, held = await q.insert_snapshot_members(
        uow, snap.id, rules, await clock(uow, now), holdout_pct=exclude_holdout_pct, seed=seed
    )
    snap.members, snap.holdout = total, held
    await uow.session.flush()
    return snap.id


# --- RFM ---------------------------------------------------------------------------------------


async def score_rfm(uow: UnitOfWork, as_of: datetime) -> int:
    """Recompute this merchant's RFM scores from the last 12 months of sales (building block)."""
    return await q.compute_rfm(uow, as_of, as_of - RFM_WINDOW)


async def rfm_scores(db: Database, tenant: uuid.UUID, as_of: datetime) -> int:
    """The nightly job's step for one merchant: one transaction, idempotent (a rerun rewrites the same).
    The dashboard's member snapshot (members per lifecycle stage, the RFM grid) is rewritten with the
    scores, so both are as of the same night."""
    async with db.uow(tenant) as uow:
        n = await score_rfm(uow, as_of)
        await snapshot_members(uow, as_of)
        await uow.commit()
        return n


async def snapshot_members(uow: UnitOfWork, as_of: datetime) -> None:
    """Building block: count the members per lifecycle stage (the segments' rule) and per RFM cell, and
    keep them for the dashboard (``report_member_snapshots``)."""
    total, stages = await q.lifecycle_counts(uow, await clock(uow, as_of))
    grid = await q.rfm_grid(uow)
    await dashboard_queries.save_member_snapshot(
        uow, as_of, dashboard_queries.MemberSnapshot(as_of, total, stages, grid)
    )


async def member_rfm(uow: UnitOfWork, member_id: uuid.UUID) -> MemberRfm | None:
    return await q.member_rfm(uow, member_id)


# --- the console's rule builder ----------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    id: uuid.UUID
    label: str


@dataclass(frozen=True)
class Builder:
    """What the rule builder shows: the choices for branch and coupon conditions, and the live
    preview of the rules — or the refusal naming the field when they are not valid yet."""

    branches: list[Option]
    templates: list[Option]
    preview: Preview | None
    error: BadSegmentRules | UnknownReference | None


async def builder(db: Database, tenant: uuid.UUID, raw: Any, now: datetime | None = None) -> Builder:
    async with db.uow(tenant) as uow:
        branches = [Option(i, f"{code} {name}") for i, code, name in await q.branch_options(uow)]
        templates = [Option(i, f"{code} {name}") for i, code, name in await q.template_options(uow)]
        try:
            shown: Preview | None = await preview_in(uow, parse_rules(raw), now)
            error: BadSegmentRules | UnknownReference | None = None
        except (BadSegmentRules, UnknownReference) as e:
            shown, error = None, e
    return Builder(branches, templates, shown, error)
