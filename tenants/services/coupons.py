"""Coupon templates (代金券) and issued coupons: stock, per-member limits, validity, unguessable codes."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from lianka.platform.db import UnitOfWork
from lianka.platform.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from lianka.tenants import queries
from lianka.tenants.domain.pricing import CouponKind, CouponNotApplicable, CouponTerms
from lianka.tenants.models import Coupon, CouponTemplate

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_LOOKALIKES = str.maketrans("ILO", "110")  # what people type for 1, 1, 0


def new_code() -> str:
    """12 random base32 characters = 60 bits, grouped for reading aloud at the till."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(code: str) -> str:
    c = code.strip().upper().replace("-", "").replace(" ", "")
    c = c.translate(_LOOKALIKES)
    return f"{c[:4]}-{c[4:8]}-{c[8:]}" if len(c) == 12 else c


class CouponSoldOut(RuleViolation):
    type_slug = "coupon-sold-out"
    title = "No coupons of this kind are left"


class CouponLimitReached(RuleViolation):
    type_slug = "coupon-limit-reached"
    title = "The member already holds as many of these coupons as allowed"


class CouponTemplateInactive(RuleViolation):
    type_slug = "coupon-template-inactive"
    title = "This coupon template no longer issues coupons"


@dataclass(frozen=True)
class TemplateSpec:
    code: str
    name: str
    kind: CouponKind
    amount_off: int = 0
    percent_off: int = 0
    cap: int | None = None
    gift_sku: str = ""
    min_spend: int = 0
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    branch_codes: tuple[str, ...] = ()
    stackable: bool = True
    per_member_limit: int | None = None
    stock_total: int | None = None
    claimable: bool = False


def _check(spec: TemplateSpec) -> None:
    """The template's own rules; each refusal names the field at fault."""
    if spec.kind == CouponKind.FIXED and spec.amount_off <= 0:
        raise ValidationFailed("a fixed coupon needs a positive amount_off", field="amount_off")
    if spec.kind == CouponKind.PERCENT and not 0 < spec.percent_off <= 100:
        raise ValidationFailed("percent_off must be 1..100", field="percent_off")
    if spec.kind == CouponKind.GIFT and not spec.gift_sku:
        raise ValidationFailed("a gift coupon needs a gift_sku", field="gift_sku")
    if spec.valid_days is None and spec.valid_until is None:
        raise ValidationFailed("give either valid_until or valid_days", field="valid_days")
    if spec.valid_from and spec.valid_until and spec.valid_until <= spec.valid_from:
        raise ValidationFailed("valid_until must be after valid_from", field="valid_until")
    for name in ("amount_off", "min_spend", "cap", "stock_total", "valid_days"):
        n = getattr(spec, name) or 0
        if n < 0 or n > 10**12:
            raise ValidationFailed("amounts and counts must be between 0 and 10^12", field=name)


async def create_template(uow: UnitOfWork, spec: TemplateSpec) -> CouponTemplate:
    _check(spec)
    exists = await uow.session.scalar(
        select(func.count()).select_from(CouponTemplate).where(CouponTemplate.code == spec.code)
    )
    if exists:
        raise Conflict(f"a coupon template with code {spec.code!r} exists", field="code")
    t = CouponTemplate(
        tenant_id=uow.tenant_id,
        code=spec.code,
        name=spec.name,
        kind=str(spec.kind),
        amount_off=spec.amount_off,
        percent_off=spec.percent_off,
        cap=spec.cap,
        gift_sku=spec.gift_sku,
        min_spend=spec.min_spend,
        valid_from=spec.valid_from,
        valid_until=spec.valid_until,
        valid_days=spec.valid_days,
        branch_codes=list(spec.branch_codes),
        stackable=spec.stackable,
        per_member_limit=spec.per_member_limit,
        stock_total=spec.stock_total,
        claimable=spec.claimable,
        issued_count=0,
    )
    uow.session.add(t)
    await uow.session.flush()
    return t


async def get_template(uow: UnitOfWork, template_id: uuid.UUID) -> CouponTemplate:
    t = await uow.session.get(CouponTemplate, (uow.tenant_id, template_id))
    if t is None:
        raise NotFound("coupon template not found")
    return t


async def get_template_by_code(uow: UnitOfWork, code: str) -> CouponTemplate | None:
    return (await uow.session.scalars(select(CouponTemplate).where(CouponTemplate.code == code))).first()


async def list_templates(uow: UnitOfWork, *, active: bool | None = None) -> list[CouponTemplate]:
    q = select(CouponTemplate).order_by(CouponTemplate.created_at, CouponTemplate.code)
    if active is not None:
        q = q.where(CouponTemplate.active.is_(active))
    return list(await uow.session.scalars(q))


async def deactivate_template(uow: UnitOfWork, template_id: uuid.UUID) -> CouponTemplate:
    """No more coupons of this kind are issued; coupons already issued stay valid until they expire."""
    t = await get_template(uow, template_id)
    t.active = False
    await uow.session.flush()
    return t


async def member_coupons(
    uow: UnitOfWork, member_id: uuid.UUID, *, status: str | None = None
) -> list[tuple[Coupon, CouponTemplate]]:
    """The member's coupons with their templates, newest first."""
    q = (
        select(Coupon, CouponTemplate)
        .join(
            CouponTemplate, (CouponTemplate.tenant_id == Coupon.tenant_id) & (CouponTemplate.id == Coupon.template_id)
        )
        .where(Coupon.member_id == member_id)
        .order_by(Coupon.issued_at.desc(), Coupon.code)
    )
    if status is not None:
        q = q.where(Coupon.status == status)
    return [(row.Coupon, row.CouponTemplate) for row in await uow.session.execute(q)]


async def issue(
    uow: UnitOfWork, template_id: uuid.UUID, member_id: uuid.UUID, *, source: str = "api", now: datetime | None = None
) -> Coupon:
    """Issue one coupon: takes one from stock atomically and honours the per-member limit."""
    now = now or datetime.now(UTC)
    t = await get_template(uow, template_id)
    if not t.active:
        raise CouponTemplateInactive("this coupon template is not active", template=t.code)
    if t.valid_until and t.valid_until <= now:
        raise CouponTemplateInactive("this coupon template has expired", template=t.code)
    if t.per_member_limit is not None:
        # serialise this member's issues of this template, so concurrent issues cannot pass the limit
        await queries.advisory_lock(uow, f"coupon:{uow.tenant_id}:{t.id}:{member_id}")
        held = await uow.session.scalar(
            select(func.count()).select_from(Coupon).where(Coupon.template_id == t.id, Coupon.member_id == member_id)
        )
        if int(held or 0) >= t.per_member_limit:
            raise CouponLimitReached(limit=t.per_member_limit)
    taken = await uow.session.execute(
        update(CouponTemplate)
        .where(
            CouponTemplate.id == t.id,
            (CouponTemplate.stock_total.is_(None)) | (CouponTemplate.issued_count < CouponTemplate.stock_total),
        )
        .values(issued_count=CouponTemplate.issued_count + 1)
        .returning(CouponTemplate.issued_count)
    )
    if taken.first() is None:
        raise CouponSoldOut(stock=t.stock_total)
    start = max(now, t.valid_from) if t.valid_from else now
    until = t.valid_until
    if t.valid_days is not None:
        by_days = start + timedelta(days=t.valid_days)
        until = min(until, by_days) if until else by_days
    c = Coupon(
        tenant_id=uow.tenant_id,
        template_id=t.id,
        member_id=member_id,
        code=new_code(),
        status="issued",
        source=source,
        valid_from=start,
        valid_until=until,
    )
    uow.session.add(c)
    await uow.session.flush()
    return c


async def terms_for_sale(
    uow: UnitOfWork, codes: list[str], member_id: uuid.UUID, branch_code: str, at: datetime, *, lock: bool
) -> list[tuple[Coupon, CouponTerms]]:
    """The coupons a sale wants to use, checked: the member's own, unused, valid now, at this branch."""
    out = []
    for raw in codes:
        code = normalise_code(raw)
        q = (
            select(Coupon, CouponTemplate)
            .join(
                CouponTemplate,
                (CouponTemplate.tenant_id == Coupon.tenant_id) & (CouponTemplate.id == Coupon.template_id),
            )
            .where(Coupon.code == code)
        )
        if lock:
            q = q.with_for_update(of=Coupon)
        row = (await uow.session.execute(q)).first()
        if row is None or row.Coupon.member_id != member_id:
            raise CouponNotApplicable(f"coupon {raw} is not this member's", coupon=raw)
        c, t = row.Coupon, row.CouponTemplate
        if c.status != "issued":
            raise CouponNotApplicable(f"coupon {raw} is {c.status}", coupon=raw)
        if at < c.valid_from or (c.valid_until and at >= c.valid_until):
            raise CouponNotApplicable(f"coupon {raw} is not valid now", coupon=raw)
        if t.branch_codes and branch_code not in t.branch_codes:
            raise CouponNotApplicable(f"coupon {raw} is not valid at this branch", coupon=raw)
        out.append(
            (
                c,
                CouponTerms(
                    code=c.code,
                    kind=CouponKind(t.kind),
                    amount_off=t.amount_off,
                    percent_off=t.percent_off,
                    cap=t.cap,
                    min_spend=t.min_spend,
                    gift_sku=t.gift_sku,
                    stackable=t.stackable,
                ),
            )
        )
    return out


async def mark_redeemed(uow: UnitOfWork, coupon: Coupon, sale_id: uuid.UUID, at: datetime) -> None:
    coupon.status, coupon.redeemed_at, coupon.redeemed_sale_id = "redeemed", at, sale_id
    await uow.session.flush()


async def restore(uow: UnitOfWork, sale_id: uuid.UUID, *, reissue: bool) -> int:
    """On refund: give the sale's coupons back (``reissue``) or void them. Returns how many."""
    coupons = list(await uow.session.scalars(select(Coupon).where(Coupon.redeemed_sale_id == sale_id)))
    for c in coupons:
        if reissue:
            c.status, c.redeemed_at, c.redeemed_sale_id = "issued", None, None
        else:
            c.status = "void"
    await uow.session.flush()
    return len(coupons)
