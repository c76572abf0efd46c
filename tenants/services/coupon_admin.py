"""Coupon use cases behind the API: one unit of work each (templates, issuing, a member's coupons).
The rules themselves — stock, limits, validity, codes — are in :mod:`lianka.tenants.services.coupons`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from lianka.platform import idempotency
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import ValidationFailed
from lianka.tenants import queries
from lianka.tenants.catalogue import schemas
from lianka.tenants.domain import times
from lianka.tenants.models import Coupon, CouponTemplate
from lianka.tenants.pos.context import member_by_card
from lianka.tenants.services import coupons, rules

STATUSES = ("issued", "redeemed", "void", "expired")


def template_out(t: CouponTemplate) -> schemas.TemplateOut:
    return schemas.TemplateOut(
        id=t.id,
        code=t.code,
        name=t.name,
        kind=t.kind,
        amount_off=t.amount_off,
        percent_off=t.percent_off,
        cap=t.cap,
        gift_sku=t.gift_sku,
        min_spend=t.min_spend,
        valid_from=t.valid_from,
        valid_until=t.valid_until,
        valid_days=t.valid_days,
        branches=list(t.branch_codes),
        stackable=t.stackable,
        per_member_limit=t.per_member_limit,
        stock_total=t.stock_total,
        issued_count=t.issued_count,
        remaining=None if t.stock_total is None else max(t.stock_total - t.issued_count, 0),
        active=t.active,
        created_at=t.created_at,
        claimable=t.claimable,
    )


def coupon_out(c: Coupon, t: CouponTemplate) -> schemas.CouponOut:
    return schemas.CouponOut(
        id=c.id,
        code=c.code,
        member_id=c.member_id,
        template_id=t.id,
        template_code=t.code,
        name=t.name,
        kind=t.kind,
        amount_off=t.amount_off,
        percent_off=t.percent_off,
        cap=t.cap,
        min_spend=t.min_spend,
        gift_sku=t.gift_sku,
        branches=list(t.branch_codes),
        stackable=t.stackable,
        status=c.status,
        source=c.source,
        valid_from=c.valid_from,
        valid_until=c.valid_until,
        issued_at=c.issued_at,
        redeemed_at=c.redeemed_at,
    )


async def _check_branches(uow: UnitOfWork, codes: list[str]) -> None:
    if not codes:
        return
    known = await queries.known_branch_codes(uow, codes)
    unknown = sorted(set(codes) - known)
    if unknown:
        raise ValidationFailed(f"unknown branch codes {unknown}", field="branches")


async def create_template(db: Database, tenant: uuid.UUID, data: schemas.TemplateIn) -> schemas.TemplateOut:
    times.setting(data.valid_from, "valid_from")
    times.setting(data.valid_until, "valid_until")
    async with db.uow(tenant) as uow:
        await _check_branches(uow, data.branches)
        t = await coupons.create_template(
            uow,
            coupons.TemplateSpec(
                code=data.code,
                name=data.name,
                kind=data.kind,
                amount_off=data.amount_off,
                percent_off=data.percent_off,
                cap=data.cap,
                gift_sku=data.gift_sku,
                min_spend=data.min_spend,
                valid_from=data.valid_from,
                valid_until=data.valid_until,
                valid_days=data.valid_days,
                branch_codes=tuple(data.branches),
                stackable=data.stackable,
                per_member_limit=data.per_member_limit,
                stock_total=data.stock_total,
                claimable=data.claimable,
            ),
        )
        await uow.session.refresh(t)
        out = template_out(t)
        await uow.commit()
        return out


async def list_templates(db: Database, tenant: uuid.UUID, *, active: bool | None) -> list[schemas.TemplateOut]:
    async with db.uow(tenant) as uow:
        return [template_out(t) for t in await coupons.list_templates(uow, active=active)]


async def get_template(db: Database, tenant: uuid.UUID, template_id: uuid.UUID) -> schemas.TemplateOut:
    async with db.uow(tenant) as uow:
        return template_out(await coupons.get_template(uow, template_id))


async def deactivate(db: Database, tenant: uuid.UUID, template_id: uuid.UUID) -> schemas.TemplateOut:
    async with db.uow(tenant) as uow:
        out = template_out(await coupons.deactivate_template(uow, template_id))
        await uow.commit()
        return out


async def _issue(
    uow: UnitOfWork, template_id: uuid.UUID, member_id: uuid.UUID, *, actor: str, now: datetime | None
) -> schemas.CouponOut:
    t = await coupons.get_template(uow, template_id)
    await rules.require_member(uow, member_id)
    c = await coupons.issue(uow, t.id, member_id, source=actor.partition(":")[0], now=now or datetime.now(UTC))
    await uow.session.refresh(c)
    return coupon_out(c, t)


async def issue(
    db: Database,
    tenant: uuid.UUID,
    template_id: uuid.UUID,
    member_id: uuid.UUID,
    key: str,
    *,
    actor: str,
    now: datetime | None = None,
) -> tuple[schemas.CouponOut, bool]:
    """One coupon for a member, exactly once under ``key``. Returns (coupon, replayed)."""

    async def work(uow: UnitOfWork) -> schemas.CouponOut:
        return await _issue(uow, template_id, member_id, actor=actor, now=now)

    return await idempotency.once(
        db, tenant, "coupons.issue", key, (str(template_id), str(member_id)), schemas.CouponOut, work
    )


async def issue_to_card(
    db: Database,
    tenant: uuid.UUID,
    template_id: uuid.UUID,
    card: str,
    key: str,
    *,
    actor: str,
    now: datetime | None = None,
) -> tuple[schemas.CouponOut, bool]:
    """:func:`issue` to the member holding card number ``card`` (what staff read off a card or the
    member's app), exactly once under ``key``; an unknown card — or another merchant's member — is a
    404 naming the field ``card``."""

    async def work(uow: UnitOfWork) -> schemas.CouponOut:
        return await _issue(uow, template_id, await member_by_card(uow, card), actor=actor, now=now)

    return await idempotency.once(
        db, tenant, "coupons.issue", key, (str(template_id), "card", card.strip()), schemas.CouponOut, work
    )


@dataclass(frozen=True)
class TemplateUsage:
    """A template with how many of its coupons were used in a sale."""

    template: schemas.TemplateOut
    redeemed: int


async def templates_with_usage(db: Database, tenant: uuid.UUID) -> list[TemplateUsage]:
    """Every template, oldest first, with its stock (issued, remaining) and its coupons redeemed."""
    async with db.uow(tenant) as uow:
        used = await queries.coupons_redeemed_by_template(uow)
        return [TemplateUsage(template_out(t), used.get(t.id, 0)) for t in await coupons.list_templates(uow)]


async def member_coupons(
    db: Database, tenant: uuid.UUID, member_id: uuid.UUID, *, status: str | None
) -> list[schemas.CouponOut]:
    if status is not None and status not in STATUSES:
        raise ValidationFailed(f"status is one of {', '.join(STATUSES)}", field="status")
    async with db.uow(tenant) as uow:
        await rules.require_member(uow, member_id)
        return [coupon_out(c, t) for c, t in await coupons.member_coupons(uow, member_id, status=status)]
