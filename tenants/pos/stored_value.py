"""POS use cases on stored value (储值): a plan bought at the till, and unused principal paid back.

Principal and bonus are tracked apart: only principal is ever paid back. Each is one unit of work,
exactly-once under its Idempotency-Key; the branch that takes or pays out the money books it against
HQ through clearing (``alliance/settlement/clearing.py``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from fractions import Fraction

import msgspec

from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import clearing
from lianka.platform import idempotency, metrics
from lianka.platform.db import Database, UnitOfWork, retry_transient
from lianka.platform.errors import NotFound
from lianka.platform.money import RoundingMode, round_minor
from lianka.platform.webhooks import services as webhooks
from lianka.tenants.domain import pricing, times
from lianka.tenants.pos import schemas
from lianka.tenants.pos.context import balances_out, branch
from lianka.tenants.pos.errors import NothingToRefund
from lianka.tenants.pos.models import TopUp
from lianka.tenants.services import accounts, rules
from lianka.tenants.services.programme import programme_at


@retry_transient
async def top_up(
    db: Database, tenant: uuid.UUID, body: schemas.TopUpIn, key: str, branch_id: uuid.UUID | None
) -> tuple[schemas.TopUpOut, bool]:
    """A stored-value plan bought at the till: principal and bonus tracked apart. Returns (response,
    replayed)."""
    return await idempotency.once(
        db,
        tenant,
        "pos.top_up",
        key,
        (msgspec.to_builtins(body), str(branch_id)),
        schemas.TopUpOut,
        lambda uow: _top_up(uow, body, key, branch_id),
    )


async def _top_up(uow: UnitOfWork, body: schemas.TopUpIn, key: str, branch_id: uuid.UUID | None) -> schemas.TopUpOut:
    at_branch, _ = await branch(uow, body.branch_id or branch_id)
    return await book_top_up(
        uow,
        member_id=body.member_id,
        plan_code=body.plan,
        branch_id=at_branch,
        payment_method=body.payment_method,
        entry_key=f"{key}:top_up",
        scope="pos",
        business_time=body.business_time,
    )


async def book_top_up(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    plan_code: str,
    branch_id: uuid.UUID | None,
    payment_method: str,
    entry_key: str,
    scope: str,
    business_time: datetime | None = None,
    refs: dict[str, str] | None = None,
) -> schemas.TopUpOut:
    """Credit a stored-value plan's principal and bonus (building block; the till and online payments
    share it). ``branch_id`` is the branch that took the money and owes HQ for it through clearing;
    ``None`` means HQ took it itself (an online payment with no "online" branch): no clearing legs
    and no ``top_ups`` row (which names a branch), the ledger entry is the record. The entry is
    idempotent on ``(scope, entry_key)``."""
    bt = times.business_time(business_time)
    currency, tz = await accounts.merchant_info(uow)
    _, programme = await programme_at(uow, bt)
    plan = next((p for p in programme.stored_value.plans if p.code == plan_code and p.active), None)
    if plan is None:
        raise NotFound(f"no active stored-value plan {plan_code!r}", field="plan")
    await rules.require_member(uow, member_id)
    mine = await accounts.member_accounts(uow, member_id, currency)
    merchant = await accounts.merchant_accounts(uow, currency)
    legs = [ledger.Leg(mine.sv_principal, plan.pay), ledger.Leg(merchant.cash, -plan.pay)]
    if plan.bonus:
        legs += [ledger.Leg(mine.sv_bonus, plan.bonus), ledger.Leg(merchant.bonus_expense, -plan.bonus)]
    if branch_id is not None:
        legs += await clearing.top_up_legs(uow, currency, branch_id, plan.pay)
    top_up_id = uuid.uuid4()
    entry_refs = {"top_up": str(top_up_id), **({"branch": str(branch_id)} if branch_id else {}), **(refs or {})}
    e = await ledger.post(
        uow,
        kind="stored_value_top_up",
        business_time=bt,
        key=entry_key,
        scope=scope,
        timezone=tz,
        refs=entry_refs,
        legs=legs,
    )
    metrics.count_top_up(uow, currency, plan.pay, scope)
    await webhooks.emit(
        uow,
        "topup.recorded",
        {
            "top_up_id": str(top_up_id),
            "member_id": str(member_id),
            "branch_id": str(branch_id) if branch_id else None,
            "plan": plan_code,
            "paid": {"minor": plan.pay, "currency": currency},
            "bonus": {"minor": plan.bonus, "currency": currency},
            "channel": scope,
            "business_time": bt.isoformat(),
        },
    )
    if branch_id is not None:
        uow.session.add(
            TopUp(
                tenant_id=uow.tenant_id,
                id=top_up_id,
                member_id=member_id,
                branch_id=branch_id,
                plan_code=plan.code,
                currency=currency,
                principal=plan.pay,
                bonus=plan.bonus,
                payment_method=payment_method,
                business_time=bt,
                entry_id=e.id,
            )
        )
        await uow.session.flush()
    return schemas.TopUpOut(
        top_up_id=top_up_id,
        member_id=member_id,
        principal=plan.pay,
        bonus=plan.bonus,
        balances=await balances_out(uow, member_id, bt),
    )


async def refund_stored_value(
    db: Database, tenant: uuid.UUID, body: schemas.StoredValueRefundIn, key: str, branch_id: uuid.UUID | None
) -> tuple[schemas.StoredValueRefundOut, bool]:
    """Unused principal paid back at the till (never the bonus: the bonus that came with it is forfeited
    in the same proportion, so a top-up cannot be turned into free money). The branch that pays out is
    reimbursed by HQ through clearing. A member with no principal at all gets ``nothing-to-refund``
    (422) rather than a refund of 0; asking for more than the principal is ``insufficient-stored-value``.
    Returns (response, replayed)."""
    return await idempotency.once(
        db,
        tenant,
        "pos.sv_refund",
        key,
        (msgspec.to_builtins(body), str(branch_id)),
        schemas.StoredValueRefundOut,
        lambda uow: _refund_stored_value(uow, body, key, branch_id),
    )


async def _refund_stored_value(
    uow: UnitOfWork, body: schemas.StoredValueRefundIn, key: str, branch_id: uuid.UUID | None
) -> schemas.StoredValueRefundOut:
    at_branch, _ = await branch(uow, body.branch_id or branch_id)
    return await book_sv_refund(
        uow,
        member_id=body.member_id,
        amount=body.amount,
        branch_id=at_branch,
        payment_method=body.payment_method,
        entry_key=f"{key}:sv_refund",
        scope="pos",
        business_time=body.business_time,
    )


async def book_sv_refund(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    amount: int | None,
    branch_id: uuid.UUID | None,
    payment_method: str,
    entry_key: str,
    scope: str,
    business_time: datetime | None = None,
    refs: dict[str, str] | None = None,
) -> schemas.StoredValueRefundOut:
    """Pay back unused principal (all of it when ``amount`` is None), forfeiting the bonus in
    proportion (building block; the till and online refunds share it). ``branch_id`` None: HQ pays
    out itself, no clearing legs."""
    bt = times.business_time(business_time)
    await rules.require_member(uow, member_id)
    currency, tz = await accounts.merchant_info(uow)
    mine = await accounts.member_accounts(uow, member_id, currency)
    merchant = await accounts.merchant_accounts(uow, currency)
    have = await accounts.balances(uow, member_id, bt)
    if have.sv_principal <= 0:
        raise NothingToRefund("the member holds no stored-value principal (a bonus is never paid out)", available=0)
    amount = have.sv_principal if amount is None else amount
    if amount > have.sv_principal:
        raise pricing.InsufficientStoredValue(available=have.sv_principal, requested=amount)
    # the bonus forfeited in proportion, rounded towards −∞ (the member keeps the fraction)
    forfeit = (
        round_minor(Fraction(amount * have.sv_bonus, have.sv_principal), RoundingMode.FLOOR)
        if amount < have.sv_principal
        else have.sv_bonus
    )
    legs = [ledger.Leg(mine.sv_principal, -amount), ledger.Leg(merchant.cash, amount)]
    if forfeit:
        legs += [ledger.Leg(mine.sv_bonus, -forfeit), ledger.Leg(merchant.bonus_expense, forfeit)]
    if branch_id is not None:
        legs += await clearing.sv_refund_legs(uow, currency, branch_id, amount)
    entry_refs = {**({"branch": str(branch_id)} if branch_id else {}), "payment_method": payment_method, **(refs or {})}
    await ledger.post(
        uow,
        kind="stored_value_refunded",
        business_time=bt,
        key=entry_key,
        scope=scope,
        timezone=tz,
        refs=entry_refs,
        legs=legs,
    )
    return schemas.StoredValueRefundOut(
        member_id=member_id,
        principal_refunded=amount,
        bonus_forfeited=forfeit,
        balances=await balances_out(uow, member_id, bt),
    )
