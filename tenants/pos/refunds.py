"""POS use cases on a recorded sale: refund all or part of it, and read it — both under one rule for
who may reach which sale (:func:`visible_sale_branch`).

A refund is one unit of work, exactly-once under its Idempotency-Key. It never edits a ledger entry:
what the sale booked is undone by new entries (a clawback, points and stored value restored, the
clearing reversed), each its part of the sale pro rata so partial refunds add up to the whole.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec
from sqlalchemy import func, select

from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import clearing
from lianka.platform import idempotency
from lianka.platform.db import Database, UnitOfWork, retry_transient
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.money import RoundingMode, largest_remainder, round_minor
from lianka.platform.webhooks import services as webhooks
from lianka.tenants.domain import times
from lianka.tenants.domain.programme import Programme
from lianka.tenants.marketing import offers
from lianka.tenants.pos import queries, schemas
from lianka.tenants.pos.context import balances_out
from lianka.tenants.pos.errors import RefundTooLarge
from lianka.tenants.pos.models import Refund, Sale, SaleLine
from lianka.tenants.services import accounts
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services.programme import programme_at


def _part(total: int, before: int, after: int, net: int) -> int:
    """This refund's part of ``total`` when the refunded amount goes from ``before`` to ``after`` of
    ``net``: the cumulative pro-rata target minus what earlier refunds took, so partial refunds add up
    to exactly ``total`` once the sale is fully refunded."""

    def target(refunded: int) -> int:
        return round_minor(Decimal(total) * Decimal(refunded) / Decimal(net), RoundingMode.HALF_EVEN) if net else 0

    return target(after) - target(before)


async def visible_sale_branch(uow: UnitOfWork, sale_id: uuid.UUID, branches: frozenset[uuid.UUID] | None) -> uuid.UUID:
    """The branch of a sale the caller may see and refund, or NotFound exactly as for a stranger's
    sale. ``branches`` is the caller's branch limit (None: every branch). A branch-limited caller
    (manager, cashier, branch terminal) reaches only its branches' sales — unless the programme in
    force now says ``refunds.anywhere`` (the refund is then booked at the selling branch)."""
    branch = await queries.sale_branch(uow, sale_id)
    if branch is None:
        raise NotFound("sale not found")
    if branches is not None and branch not in branches and not (await programme_at(uow))[1].refunds.anywhere:
        raise NotFound("sale not found")
    return branch


async def _amount_of_lines(
    uow: UnitOfWork, s: Sale, body: schemas.RefundIn, remaining: int
) -> tuple[int, list[dict[str, int]]]:
    """A refund by lines: what the member paid for them, and the lines refunded; each line's refunded
    quantity moves (the rows are locked).

    A line's price after promotions is its total less what the sale's promotions took off it (each
    applied promotion records that per line, decision 0043); the other discounts (tier, coupons) are
    spread over the lines pro rata to those prices. The refunded units take their share of their line,
    and the sum is rounded once (half-even)."""
    if body.amount is not None:
        raise ValidationFailed("give amount or lines, not both")
    sale_lines = {
        x.line_no: x
        for x in await uow.session.scalars(select(SaleLine).where(SaleLine.sale_id == s.id).with_for_update())
    }
    promo = [0] * (max(sale_lines, default=-1) + 1)
    for applied in s.applied_promotions:
        for line_no, off in applied.get("lines", []):
            if 0 <= line_no < len(promo):
                promo[line_no] += int(off)
    paid_lines = Fraction(0)
    lines_out: list[dict[str, int]] = []
    for rl in body.lines:
        line = sale_lines.get(rl.line_no)
        if line is None:
            raise NotFound(f"sale has no line {rl.line_no}", field="lines")
        if rl.qty > line.qty - line.refunded_qty:
            raise RefundTooLarge(f"line {rl.line_no} has {line.qty - line.refunded_qty} left to refund")
        line.refunded_qty += rl.qty
        paid_lines += Fraction(rl.qty * (line.qty * line.unit_price - promo[rl.line_no]), line.qty)
        lines_out.append({"line_no": rl.line_no, "qty": rl.qty})
    after_promotions = s.gross - s.promotion_discount
    share = Fraction(s.net, after_promotions) if after_promotions else Fraction(0)
    amount = round_minor(paid_lines * share, RoundingMode.HALF_EVEN)
    return min(amount, remaining), lines_out


@dataclass(frozen=True)
class _Parts:
    """What this refund gives back of the sale: points clawed back, points restored, stored value
    restored (principal, bonus) and the qualifying spend taken off the member's total."""

    claw: int
    points: int
    principal: int
    bonus: int
    spend: int

    @classmethod
    def of(cls, s: Sale, before: int, after: int) -> _Parts:
        return cls(
            *(
                _part(total, before, after, s.net)
                for total in (s.points_earned, s.points_redeemed, s.sv_principal, s.sv_bonus, s.qualifying_spend)
            )
        )


async def _undo_for_member(
    uow: UnitOfWork,
    s: Sale,
    parts: _Parts,
    *,
    key: str,
    bt: datetime,
    currency: str,
    tz: str,
    programme: Programme,
    refs: dict[str, str],
) -> tuple[dict[str, str], int]:
    """The ledger entries that undo this part of a member's sale. Returns (entries by name, the points
    debt a clawback left)."""
    assert s.member_id is not None
    entries: dict[str, str] = {}
    debt = 0
    mine = await accounts.member_accounts(uow, s.member_id, currency)
    merchant = await accounts.merchant_accounts(uow, currency)
    if parts.claw:
        over = frozenset({mine.points.id}) if programme.refunds.clawback else frozenset()
        e = await ledger.post(
            uow,
            kind="points_clawed_back",
            business_time=bt,
            key=f"{key}:claw",
            scope="pos",
            timezone=tz,
            refs=refs,
            overdraw=over,
            legs=[ledger.Leg(mine.points, -parts.claw), ledger.Leg(merchant.points_issued, parts.claw)],
        )
        entries["clawback"] = str(e.id)
        debt = max(0, -await ledger.balance(uow, mine.points))
    if parts.points:
        e = await accounts.award_points(
            uow,
            s.member_id,
            parts.points,
            programme=programme,
            reason="points_restored",
            key=f"{key}:restore",
            business_time=bt,
            refs=refs,
        )
        entries["points_restored"] = str(e.id)
    if parts.principal or parts.bonus:
        # bonus goes back into lots of the branches that issued it, so a later spend charges them again
        issuers = await clearing.bonus_issuers(uow, uuid.UUID(s.entries["stored_value"]))
        names = sorted(issuers) or [""]
        shares = largest_remainder(parts.bonus, [issuers.get(n, 1) for n in names])
        for i, (issuer, share) in enumerate(zip(names, shares, strict=True)):
            p_part = parts.principal if i == 0 else 0
            if not (p_part or share):
                continue
            legs = [ledger.Leg(merchant.sales, -(p_part + share))]
            if p_part:
                legs.append(ledger.Leg(mine.sv_principal, p_part))
            if share:
                legs.append(ledger.Leg(mine.sv_bonus, share))
            e = await ledger.post(
                uow,
                kind="stored_value_restored",
                business_time=bt,
                key=f"{key}:sv" if i == 0 else f"{key}:sv:{i}",
                scope="pos",
                timezone=tz,
                refs={**refs, "branch": issuer} if issuer else refs,
                legs=legs,
            )
            entries["stored_value_restored" if i == 0 else f"stored_value_restored_{i}"] = str(e.id)
        if "clearing" in s.entries:
            c = await clearing.post_restored(
                uow,
                currency=currency,
                tz=tz,
                original=uuid.UUID(s.entries["clearing"]),
                principal=parts.principal,
                bonus=parts.bonus,
                orig_principal=s.sv_principal,
                orig_bonus=s.sv_bonus,
                key=key,
                business_time=bt,
                refs={**refs, "branch": str(s.branch_id)},
            )
            if c is not None:
                entries["clearing"] = str(c.id)
    return entries, debt


@retry_transient
async def refund(
    db: Database,
    tenant: uuid.UUID,
    sale_id: uuid.UUID,
    body: schemas.RefundIn,
    key: str,
    branches: frozenset[uuid.UUID] | None,
) -> tuple[schemas.RefundOut, bool]:
    """Refund all or part of a sale: the points it earned come back (pro rata; a clawback debt when
    already spent and the programme allows it), redeemed points and stored value go back to the member
    (to principal and bonus as consumed), coupons are given back on a full refund (per policy).

    Who may refund is :func:`visible_sale_branch`'s rule; the refund is always booked at the selling
    branch (its row, and the clearing that undoes the sale's), whoever hands the money back."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint("pos.refund", str(sale_id), msgspec.to_builtins(body))
    async with db.uow(tenant) as uow:
        await visible_sale_branch(uow, sale_id, branches)  # before the replay: a replay shows the refund too
        replay = await idempotency.claim(uow, "pos.refund", key, fp)
        if replay is not None:
            return msgspec.convert(replay.body, schemas.RefundOut), True
        s = (await uow.session.scalars(select(Sale).where(Sale.id == sale_id).with_for_update())).one()
        bt = times.business_time(body.business_time)
        if body.business_time is not None and bt < s.business_time:  # a skewed till's own sale stays refundable
            raise ValidationFailed("business_time is before the sale", field="business_time")
        currency, tz = await accounts.merchant_info(uow)
        _, programme = await programme_at(uow, bt)
        remaining = s.net - s.refunded
        lines_out: list[dict[str, int]] = []
        if body.lines:
            amount, lines_out = await _amount_of_lines(uow, s, body, remaining)
        else:
            amount = body.amount if body.amount is not None else remaining
        if amount <= 0 or amount > remaining:
            raise RefundTooLarge(f"{remaining} is left to refund on this sale", remaining=remaining)
        before, after = s.refunded, s.refunded + amount
        parts = _Parts.of(s, before, after)
        entries: dict[str, str] = {}
        debt = 0
        refund_id = uuid.uuid4()
        if s.member_id is not None:
            entries, debt = await _undo_for_member(
                uow,
                s,
                parts,
                key=key,
                bt=bt,
                currency=currency,
                tz=tz,
                programme=programme,
                refs={"sale": str(sale_id), "refund": str(refund_id)},
            )
        s.refunded = after
        s.status = "refunded" if after == s.net else "partially_refunded"
        if s.status == "refunded":
            await coupon_svc.restore(uow, sale_id, reissue=programme.refunds.reissue_coupons)
        if s.member_id is not None:
            await queries.reduce_spend(uow, s.member_id, parts.spend)
        uow.session.add(
            Refund(
                tenant_id=tenant,
                id=refund_id,
                sale_id=sale_id,
                branch_id=s.branch_id,
                amount=amount,
                lines=lines_out,
                points_clawed_back=parts.claw,
                points_restored=parts.points,
                sv_principal_restored=parts.principal,
                sv_bonus_restored=parts.bonus,
                points_debt=debt,
                business_time=bt,
                entries=entries,
            )
        )
        await uow.session.flush()
        if s.status == "refunded" and s.alliance_voucher:  # unused again, its fee reversed (decision 0044)
            await offers.give_back(uow, tenant, sale_id, s.alliance_voucher, bt)
        out = schemas.RefundOut(
            refund_id=refund_id,
            sale_id=sale_id,
            amount=amount,
            points_clawed_back=parts.claw,
            points_restored=parts.points,
            sv_principal_restored=parts.principal,
            sv_bonus_restored=parts.bonus,
            points_debt=debt,
            sale_status=s.status,
            balances=await balances_out(uow, s.member_id, bt) if s.member_id else None,
        )
        await webhooks.emit(
            uow,
            "sale.refunded",
            {
                "refund_id": str(refund_id),
                "sale_id": str(sale_id),
                "branch_id": str(s.branch_id),
                "member_id": str(s.member_id) if s.member_id else None,
                "amount": {"minor": amount, "currency": currency},
                "business_time": bt.isoformat(),
            },
        )
        await idempotency.store(uow, "pos.refund", key, 201, msgspec.to_builtins(out))
        await uow.commit()
        return out, False


async def get_sale(
    db: Database, tenant: uuid.UUID, sale_id: uuid.UUID, branches: frozenset[uuid.UUID] | None
) -> dict[str, Any]:
    """A sale with its lines, for a caller who may refund it (the same branch rule as :func:`refund`)."""
    async with db.uow(tenant) as uow:
        await visible_sale_branch(uow, sale_id, branches)
        s = await uow.session.get(Sale, (tenant, sale_id))
        assert s is not None
        lines = (
            await uow.session.scalars(select(SaleLine).where(SaleLine.sale_id == sale_id).order_by(SaleLine.line_no))
        ).all()
        refunds = await uow.session.scalar(select(func.count()).select_from(Refund).where(Refund.sale_id == sale_id))
        return {
            "id": s.id,
            "member_id": s.member_id,
            "branch_id": s.branch_id,
            "business_time": s.business_time,
            "currency": s.currency,
            "gross": s.gross,
            "promotion_discount": s.promotion_discount,
            "member_discount": s.member_discount,
            "coupon_total": s.coupon_total,
            "points_redeemed": s.points_redeemed,
            "points_cash": s.points_cash,
            "sv_principal": s.sv_principal,
            "sv_bonus": s.sv_bonus,
            "due": s.due,
            "points_earned": s.points_earned,
            "refunded": s.refunded,
            "status": s.status,
            "offline": s.offline,
            "coupons": s.coupons,
            "applied_promotions": s.applied_promotions,
            "lines": [
                {
                    "line_no": x.line_no,
                    "sku": x.sku,
                    "qty": x.qty,
                    "unit_price": x.unit_price,
                    "refunded_qty": x.refunded_qty,
                }
                for x in lines
            ],
            "refunds": int(refunds or 0),
        }
