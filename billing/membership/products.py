"""Use cases on what a merchant sells (membership products) and its paid-membership settings.

A product change applies to new purchases only: a term copies the perks it was sold with."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from lianka.alliance.ledger import services as ledger
from lianka.billing.membership import queries, schemas
from lianka.billing.membership.domain import PackItem, Period, Perks, RefundPolicy
from lianka.billing.membership.errors import ProductCodeTaken
from lianka.billing.membership.models import MembershipProduct, MembershipSettings
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.tenants.services import accounts, coupons
from lianka.tenants.services.programme import programme_at


def perks_of(p: MembershipProduct) -> Perks:
    return Perks(
        tier=p.tier_code,
        extra_discount_percent=p.extra_discount_percent,
        points_multiplier=Decimal(p.points_multiplier),
        coupon_pack=tuple(PackItem(str(x["template"]), int(x["count"])) for x in p.coupon_pack),
        gifts=tuple(p.gifts),
    )


def product_out(p: MembershipProduct) -> schemas.ProductOut:
    return schemas.ProductOut(
        id=p.id,
        code=p.code,
        name=p.name,
        period=p.period,
        months=Period(p.period).months,
        price=p.price,
        currency=p.currency,
        tier=p.tier_code,
        extra_discount_percent=p.extra_discount_percent,
        points_multiplier=str(Decimal(p.points_multiplier).normalize()),
        coupon_pack=[schemas.PackItemIn(str(x["template"]), int(x["count"])) for x in p.coupon_pack],
        gifts=list(p.gifts),
        active=p.active,
    )


async def _check_perks(
    uow: UnitOfWork, tier: str | None, pack: list[schemas.PackItemIn], multiplier: Decimal | None
) -> None:
    if multiplier is not None and not (
        Decimal(1) <= multiplier <= Decimal(10) and multiplier == multiplier.quantize(Decimal("0.01"))
    ):
        raise ValidationFailed("points_multiplier is from 1 to 10, at most two decimals", field="points_multiplier")
    if tier:
        _, programme = await programme_at(uow, datetime.now(UTC))
        if programme.tier(tier) is None:
            raise ValidationFailed(f"the programme has no tier {tier!r}", field="tier")
    for item in pack:
        if await coupons.get_template_by_code(uow, item.template) is None:
            raise ValidationFailed(f"no coupon template {item.template!r}", field="coupon_pack")


async def list_products(db: Database, tenant: uuid.UUID, *, active: bool | None = None) -> list[schemas.ProductOut]:
    async with db.uow(tenant) as uow:
        return [product_out(p) for p in await queries.products(uow, active=active)]


async def create_product(db: Database, tenant: uuid.UUID, body: schemas.ProductIn) -> schemas.ProductOut:
    async with db.uow(tenant) as uow:
        if await queries.product_by_code(uow, body.code) is not None:
            raise ProductCodeTaken(field="code", code=body.code)
        await _check_perks(uow, body.tier, body.coupon_pack, body.points_multiplier)
        currency, _ = await accounts.merchant_info(uow)
        p = MembershipProduct(
            tenant_id=tenant,
            id=uuid.uuid4(),
            code=body.code,
            name=body.name.strip(),
            period=body.period,
            price=body.price,
            currency=currency,
            tier_code=body.tier,
            extra_discount_percent=body.extra_discount_percent,
            points_multiplier=body.points_multiplier,
            coupon_pack=[{"template": x.template, "count": x.count} for x in body.coupon_pack],
            gifts=[g.strip() for g in body.gifts],
            active=body.active,
        )
        uow.session.add(p)
        await uow.session.flush()
        out = product_out(p)
        await uow.commit()
        return out


async def update_product(
    db: Database, tenant: uuid.UUID, product_id: uuid.UUID, body: schemas.ProductPatch
) -> schemas.ProductOut:
    async with db.uow(tenant) as uow:
        p = await queries.product(uow, product_id)
        if p is None:
            raise NotFound("membership product not found")
        await _check_perks(uow, body.tier or None, body.coupon_pack or [], body.points_multiplier)
        if body.name is not None:
            p.name = body.name.strip()
        if body.price is not None:
            p.price = body.price
        if body.tier is not None:
            p.tier_code = body.tier or None
        if body.extra_discount_percent is not None:
            p.extra_discount_percent = body.extra_discount_percent
        if body.points_multiplier is not None:
            p.points_multiplier = body.points_multiplier
        if body.coupon_pack is not None:
            p.coupon_pack = [{"template": x.template, "count": x.count} for x in body.coupon_pack]
        if body.gifts is not None:
            p.gifts = [g.strip() for g in body.gifts]
        if body.active is not None:
            p.active = body.active
        p.updated_at = datetime.now(UTC)
        await uow.session.flush()
        out = product_out(p)
        await uow.commit()
        return out


# --- settings -----------------------------------------------------------------------------------------


async def policy(uow: UnitOfWork) -> tuple[RefundPolicy, int]:
    """(refund policy, reminder days) — the defaults until the merchant saves its own."""
    s = await queries.settings(uow)
    return (RefundPolicy(s.refund_policy), s.reminder_days) if s else (RefundPolicy.UNUSED_MONTHS, 7)


async def deferred_account(uow: UnitOfWork, currency: str) -> ledger.Account:
    """The merchant's liability for membership fees not yet earned."""
    return await _merchant_account(uow, "deferred_membership_revenue", currency)


async def revenue_account(uow: UnitOfWork, currency: str) -> ledger.Account:
    return await _merchant_account(uow, "membership_revenue", currency)


async def _merchant_account(uow: UnitOfWork, kind: str, currency: str) -> ledger.Account:
    assert uow.tenant_id is not None
    return await ledger.open_account(
        uow, owner_kind="merchant", owner_id=uow.tenant_id, kind=kind, unit=currency, allow_negative=True, tracked=False
    )


async def get_settings(db: Database, tenant: uuid.UUID) -> schemas.SettingsOut:
    async with db.uow(tenant) as uow:
        return await _settings_out(uow)


async def _settings_out(uow: UnitOfWork) -> schemas.SettingsOut:
    refund, days = await policy(uow)
    currency, _ = await accounts.merchant_info(uow)
    deferred = await ledger.balance(uow, await deferred_account(uow, currency))
    return schemas.SettingsOut(str(refund), days, deferred, currency)


async def save_settings(db: Database, tenant: uuid.UUID, body: schemas.SettingsIn) -> schemas.SettingsOut:
    async with db.uow(tenant) as uow:
        s = await queries.settings(uow)
        if s is None:
            s = MembershipSettings(tenant_id=tenant)
            uow.session.add(s)
        s.refund_policy, s.reminder_days = body.refund_policy, body.reminder_days
        await uow.session.flush()
        out = await _settings_out(uow)
        await uow.commit()
        return out
