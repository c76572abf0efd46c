"""The rewards catalogue (积分兑换): gifts to pick up, coupons, stored-value credit, bought with points.

A redemption is one transaction, exactly-once under its Idempotency-Key: the checks (active, tier,
per-member limit), one unit of stock taken by a conditional ``UPDATE`` (never oversold), the points
spent on the ledger (first-expiring lots first; the balance row's floor refuses an overdraft under
concurrency), then the coupon issued, the stored value credited (as bonus, funded by the merchant's
bonus expense, like a top-up's bonus) or the gift set aside for pickup. Any refusal rolls all of it
back. Cancelling a gift not yet picked up reverses the ledger entry — the same lots come back — and
returns the unit to stock; ledger rows are never changed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from lianka.alliance.ledger import services as ledger
from lianka.alliance.ledger.errors import InsufficientFunds
from lianka.platform import idempotency
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import Conflict, Forbidden, NotFound, RuleViolation, ValidationFailed
from lianka.tenants import queries
from lianka.tenants.catalogue import schemas
from lianka.tenants.domain.pricing import InsufficientPoints
from lianka.tenants.models import Coupon, CouponTemplate, Reward, RewardRedemption
from lianka.tenants.services import accounts, rules
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services.programme import latest, programme_at


class RewardSoldOut(RuleViolation):
    type_slug = "reward-sold-out"
    title = "This reward is out of stock"


class RewardLimitReached(RuleViolation):
    type_slug = "reward-limit-reached"
    title = "The member has redeemed this reward as often as allowed"


class TierNotAllowed(RuleViolation):
    type_slug = "reward-tier-not-allowed"
    title = "This reward is for other tiers"


class RewardInactive(RuleViolation):
    type_slug = "reward-inactive"
    title = "This reward is not available"


class RedemptionClosed(Conflict):
    type_slug = "redemption-closed"
    title = "This redemption is already closed"


# --- catalogue (staff) ---------------------------------------------------------------------------


async def template_code(uow: UnitOfWork, template_id: uuid.UUID | None) -> str | None:
    if template_id is None:
        return None
    return await uow.session.scalar(select(CouponTemplate.code).where(CouponTemplate.id == template_id))


def reward_out(r: Reward, template_code: str | None) -> schemas.RewardOut:
    return schemas.RewardOut(
        id=r.id,
        code=r.code,
        name=r.name,
        kind=r.kind,
        points_cost=r.points_cost,
        stock_total=r.stock_total,
        redeemed_count=r.redeemed_count,
        remaining=None if r.stock_total is None else max(r.stock_total - r.redeemed_count, 0),
        pickup_branch_id=r.pickup_branch_id,
        coupon_template=template_code,
        sv_amount=r.sv_amount,
        tiers=list(r.tier_codes),
        per_member_limit=r.per_member_limit,
        active=r.active,
        created_at=r.created_at,
    )


async def _check_branch(uow: UnitOfWork, branch_id: uuid.UUID | None) -> None:
    if branch_id is not None and await queries.branch_code(uow, branch_id) is None:
        raise NotFound("branch not found", field="pickup_branch_id")


async def _check_tiers(uow: UnitOfWork, tiers: list[str]) -> None:
    _, programme = await latest(uow)
    unknown = sorted(set(tiers) - {t.code for t in programme.tiers})
    if unknown:
        raise ValidationFailed(f"unknown tiers {unknown}", field="tiers")


async def create(db: Database, tenant: uuid.UUID, data: schemas.RewardIn) -> schemas.RewardOut:
    """Add a reward to the catalogue (code unique per merchant)."""
    async with db.uow(tenant) as uow:
        out = await _create(uow, data)
        await uow.commit()
        return out


async def _create(uow: UnitOfWork, data: schemas.RewardIn) -> schemas.RewardOut:
    template_id = None
    if data.kind == "coupon":
        if not data.coupon_template:
            raise ValidationFailed("a coupon reward needs coupon_template", field="coupon_template")
        template = await coupon_svc.get_template_by_code(uow, data.coupon_template)
        if template is None:
            raise NotFound(f"no coupon template {data.coupon_template!r}", field="coupon_template")
        template_id = template.id
    elif data.coupon_template:
        raise ValidationFailed("only coupon rewards take coupon_template", field="coupon_template")
    if (data.kind == "stored_value") != (data.sv_amount > 0):
        raise ValidationFailed("sv_amount is for stored-value rewards, and they need one", field="sv_amount")
    if data.pickup_branch_id and data.kind != "gift":
        raise ValidationFailed("only gifts have a pickup branch", field="pickup_branch_id")
    await _check_branch(uow, data.pickup_branch_id)
    await _check_tiers(uow, data.tiers)
    r = Reward(
        tenant_id=uow.tenant_id,
        code=data.code,
        name=data.name,
        kind=data.kind,
        points_cost=data.points_cost,
        stock_total=data.stock_total,
        redeemed_count=0,
        pickup_branch_id=data.pickup_branch_id,
        coupon_template_id=template_id,
        sv_amount=data.sv_amount,
        tier_codes=list(data.tiers),
        per_member_limit=data.per_member_limit,
        active=data.active,
    )
    uow.session.add(r)
    try:
        async with uow.session.begin_nested():
            await uow.session.flush()
    except IntegrityError:
        raise Conflict(f"a reward with code {data.code!r} exists", field="code") from None
    return reward_out(r, data.coupon_template)


async def get(uow: UnitOfWork, reward_id: uuid.UUID, *, lock: bool = False) -> Reward:
    q = select(Reward).where(Reward.id == reward_id)
    if lock:
        q = q.with_for_update()
    r = (await uow.session.scalars(q.execution_options(populate_existing=True))).first()
    if r is None:
        raise NotFound("reward not found")
    return r


async def list_rewards(db: Database, tenant: uuid.UUID, *, active: bool | None = None) -> list[schemas.RewardOut]:
    async with db.uow(tenant) as uow:
        return await _list(uow, active=active)


async def reward(db: Database, tenant: uuid.UUID, reward_id: uuid.UUID) -> schemas.RewardOut:
    async with db.uow(tenant) as uow:
        r = await get(uow, reward_id)
        return reward_out(r, await template_code(uow, r.coupon_template_id))


async def _list(uow: UnitOfWork, *, active: bool | None = None) -> list[schemas.RewardOut]:
    q = (
        select(Reward, CouponTemplate.code)
        .outerjoin(
            CouponTemplate,
            (CouponTemplate.tenant_id == Reward.tenant_id) & (CouponTemplate.id == Reward.coupon_template_id),
        )
        .order_by(Reward.points_cost, Reward.code)
    )
    if active is not None:
        q = q.where(Reward.active.is_(active))
    return [reward_out(row.Reward, row.code) for row in await uow.session.execute(q)]


async def update_reward(
    db: Database, tenant: uuid.UUID, reward_id: uuid.UUID, patch: schemas.RewardPatch
) -> schemas.RewardOut:
    async with db.uow(tenant) as uow:
        out = await _update(uow, reward_id, patch)
        await uow.commit()
        return out


async def _update(uow: UnitOfWork, reward_id: uuid.UUID, patch: schemas.RewardPatch) -> schemas.RewardOut:
    r = await get(uow, reward_id, lock=True)
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    if "stock_total" in changes and changes["stock_total"] is not None and changes["stock_total"] < r.redeemed_count:
        raise ValidationFailed(
            f"{r.redeemed_count} are already redeemed: stock_total cannot be less", field="stock_total"
        )
    if "sv_amount" in changes and r.kind != "stored_value":
        raise ValidationFailed("sv_amount is for stored-value rewards", field="sv_amount")
    if changes.get("pickup_branch_id") is not None:
        if r.kind != "gift":
            raise ValidationFailed("only gifts have a pickup branch", field="pickup_branch_id")
        await _check_branch(uow, changes["pickup_branch_id"])
    if "tiers" in changes:
        await _check_tiers(uow, changes["tiers"])
        changes["tier_codes"] = changes.pop("tiers")
    for name, value in changes.items():
        setattr(r, name, value)
    await uow.session.flush()
    return reward_out(r, await template_code(uow, r.coupon_template_id))


@dataclass(frozen=True)
class Desk:
    """The console's rewards page: the catalogue (withdrawn items too), the gifts awaiting pickup (None
    when the reader may not see redemptions) and what the forms offer: branches, active coupon
    templates, and the tiers of the newest programme version."""

    rewards: list[schemas.RewardOut]
    awaiting_pickup: list[Pickup] | None
    branches: list[queries.BranchChoice]
    coupon_templates: list[queries.TemplateChoice]
    tiers: list[tuple[str, str]]


@dataclass(frozen=True)
class Pickup:
    """A gift awaiting pickup, with the member as staff recognise them."""

    redemption: schemas.RedemptionOut
    member: queries.MemberLabel | None


async def desk(db: Database, tenant: uuid.UUID, *, pickups: bool, branch_ids: frozenset[uuid.UUID] | None) -> Desk:
    """``pickups``: include the gifts awaiting pickup (at ``branch_ids`` only, for branch-limited staff)."""
    async with db.uow(tenant) as uow:
        waiting = None
        if pickups:
            found = await _redemptions(uow, member_id=None, status="awaiting_pickup", branch_ids=branch_ids, limit=200)
            labels = await queries.member_labels(uow, sorted({r.member_id for r in found}))
            waiting = [Pickup(r, labels.get(r.member_id)) for r in found]
        _, programme = await latest(uow)
        return Desk(
            await _list(uow),
            waiting,
            await queries.branch_choices(uow),
            await queries.active_coupon_templates(uow),
            [(t.code, t.name) for t in programme.tiers_by_rank()],
        )


# --- redemption ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """What one member can do with a reward right now."""

    affordable: bool
    tier_allowed: bool
    in_stock: bool
    left_for_member: int | None

    @property
    def reason(self) -> str:
        for ok, why in (
            (self.in_stock, "sold out"),
            (self.tier_allowed, "not for this tier"),
            (self.left_for_member != 0, "limit reached"),
            (self.affordable, "not enough points"),
        ):
            if not ok:
                return why
        return ""


async def _redeemed_by(uow: UnitOfWork, reward_id: uuid.UUID, member_id: uuid.UUID) -> int:
    return int(
        await uow.session.scalar(
            select(func.count())
            .select_from(RewardRedemption)
            .where(
                RewardRedemption.reward_id == reward_id,
                RewardRedemption.member_id == member_id,
                RewardRedemption.status != "cancelled",
            )
        )
        or 0
    )


async def _out(
    uow: UnitOfWork, red: RewardRedemption, reward: Reward, *, balance: int | None = None
) -> schemas.RedemptionOut:
    code = await uow.session.scalar(select(Coupon.code).where(Coupon.id == red.coupon_id)) if red.coupon_id else None
    return schemas.RedemptionOut(
        id=red.id,
        reward_id=red.reward_id,
        reward_code=reward.code,
        kind=reward.kind,
        member_id=red.member_id,
        points=red.points,
        status=red.status,
        channel=red.channel,
        coupon_code=code,
        sv_amount=red.sv_amount,
        pickup_branch_id=red.pickup_branch_id,
        created_at=red.created_at,
        picked_up_at=red.picked_up_at,
        cancelled_at=red.cancelled_at,
        points_balance=balance,
    )


async def redeem(
    db: Database,
    tenant: uuid.UUID,
    reward_id: uuid.UUID,
    member_id: uuid.UUID,
    key: str,
    *,
    channel: str,
    actor: str,
    now: datetime | None = None,
) -> tuple[schemas.RedemptionOut, bool]:
    """Buy ``reward_id`` for ``member_id`` with points. Returns (redemption, replayed)."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint("rewards.redeem", str(reward_id), str(member_id))
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        replay = await idempotency.claim(uow, "rewards.redeem", key, fp)
        if replay is not None:
            return msgspec.convert(replay.body, schemas.RedemptionOut), True
        reward = await get(uow, reward_id)
        await rules.require_member(uow, member_id)
        if not reward.active:
            raise RewardInactive(reward=reward.code)
        _, programme = await programme_at(uow, now)
        tier = await rules.member_tier(uow, programme, member_id)
        if reward.tier_codes and tier not in reward.tier_codes:
            raise TierNotAllowed(
                f"{reward.code} is for {', '.join(reward.tier_codes)}", tier=tier, tiers=list(reward.tier_codes)
            )
        if reward.per_member_limit is not None:
            await rules.lock(uow, f"reward:{reward.id}:{member_id}")  # concurrent redemptions of one member queue
            if await _redeemed_by(uow, reward.id, member_id) >= reward.per_member_limit:
                raise RewardLimitReached(limit=reward.per_member_limit)
        taken = await uow.session.execute(
            update(Reward)
            .where(
                Reward.id == reward.id,
                Reward.active.is_(True),
                Reward.stock_total.is_(None) | (Reward.redeemed_count < Reward.stock_total),
            )
            .values(redeemed_count=Reward.redeemed_count + 1)
            .returning(Reward.redeemed_count)
        )
        if taken.first() is None:
            raise RewardSoldOut(stock=reward.stock_total)
        red = RewardRedemption(
            tenant_id=tenant,
            id=uuid.uuid4(),
            reward_id=reward.id,
            member_id=member_id,
            points=reward.points_cost,
            status="delivered",
            channel=channel,
            actor=actor[:200],
            created_at=now,
        )
        try:
            spent = await accounts.spend_points(
                uow,
                member_id,
                reward.points_cost,
                reason="reward_redeemed",
                key=rules.derived_key("reward:", key),
                business_time=now,
                refs={"reward": reward.code, "redemption": str(red.id)},
            )
        except InsufficientFunds as exc:
            raise InsufficientPoints(
                f"{reward.code} costs {reward.points_cost} points",
                needed=reward.points_cost,
                **{k: v for k, v in exc.extra.items() if k in ("balance", "short")},
            ) from None
        red.entry_id = spent.id
        if reward.kind == "coupon":
            assert reward.coupon_template_id is not None
            red.coupon_id = (
                await coupon_svc.issue(uow, reward.coupon_template_id, member_id, source="reward", now=now)
            ).id
        elif reward.kind == "stored_value":
            currency, tz = await accounts.merchant_info(uow)
            mine = await accounts.member_accounts(uow, member_id, currency)
            merchant = await accounts.merchant_accounts(uow, currency)
            credit = await ledger.post(
                uow,
                kind="reward_stored_value",
                business_time=now,
                key=rules.derived_key("reward-sv:", key),
                scope="rewards",
                timezone=tz,
                refs={"redemption": str(red.id)},
                legs=[
                    ledger.Leg(mine.sv_bonus, reward.sv_amount),
                    ledger.Leg(merchant.bonus_expense, -reward.sv_amount),
                ],
            )
            red.sv_entry_id, red.sv_amount = credit.id, reward.sv_amount
        else:
            red.status, red.pickup_branch_id = "awaiting_pickup", reward.pickup_branch_id
        uow.session.add(red)
        await uow.session.flush()
        out = await _out(uow, red, reward, balance=(await accounts.balances(uow, member_id, now)).points)
        await idempotency.store(uow, "rewards.redeem", key, 201, msgspec.to_builtins(out))
        await uow.commit()
        return out, False


async def get_redemption(uow: UnitOfWork, redemption_id: uuid.UUID, *, lock: bool = False) -> RewardRedemption:
    q = select(RewardRedemption).where(RewardRedemption.id == redemption_id)
    if lock:
        q = q.with_for_update()
    red = (await uow.session.scalars(q.execution_options(populate_existing=True))).first()
    if red is None:
        raise NotFound("redemption not found")
    return red


def _check_pickup_branch(red: RewardRedemption, branches: frozenset[uuid.UUID] | None) -> None:
    """Branch-limited staff hand out and call off the gifts of their own branches only."""
    if branches is not None and red.pickup_branch_id not in branches:
        raise Forbidden("this gift is picked up at another branch")


async def deliver(
    db: Database,
    tenant: uuid.UUID,
    redemption_id: uuid.UUID,
    *,
    actor: str,
    branches: frozenset[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> schemas.RedemptionOut:
    """The member picked the gift up. Delivering twice is harmless; a cancelled one cannot be."""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        red = await get_redemption(uow, redemption_id, lock=True)
        _check_pickup_branch(red, branches)
        reward = await get(uow, red.reward_id)
        if red.status == "cancelled":
            raise RedemptionClosed("this redemption was cancelled", redemption_status=red.status)
        if red.status == "awaiting_pickup":
            red.status, red.picked_up_at = "delivered", now
            red.actor = actor[:200]
            await uow.session.flush()
        out = await _out(uow, red, reward)
        await uow.commit()
        return out


async def cancel(
    db: Database,
    tenant: uuid.UUID,
    redemption_id: uuid.UUID,
    *,
    actor: str,
    branches: frozenset[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> schemas.RedemptionOut:
    """Call off a gift not yet picked up: the points come back (a ledger reversal restoring the same
    lots) and the unit goes back to stock. Cancelling twice is harmless; a delivered one cannot be."""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        red = await get_redemption(uow, redemption_id, lock=True)
        _check_pickup_branch(red, branches)
        reward = await get(uow, red.reward_id)
        if red.status == "delivered":
            raise RedemptionClosed("this redemption was delivered", redemption_status=red.status)
        if red.status == "awaiting_pickup":
            _, tz = await accounts.merchant_info(uow)
            back = await ledger.reverse(
                uow,
                red.entry_id,
                key=f"reward-cancel:{red.id}",
                business_time=now,
                timezone=tz,
                memo="reward redemption cancelled",
            )
            await uow.session.execute(
                update(Reward).where(Reward.id == reward.id).values(redeemed_count=Reward.redeemed_count - 1)
            )
            red.status, red.cancelled_at, red.cancel_entry_id = "cancelled", now, back.id
            red.actor = actor[:200]
            await uow.session.flush()
        balance = (await accounts.balances(uow, red.member_id, now)).points
        reward = await get(uow, red.reward_id)
        out = await _out(uow, red, reward, balance=balance)
        await uow.commit()
        return out


async def redemptions(
    db: Database,
    tenant: uuid.UUID,
    *,
    member_id: uuid.UUID | None = None,
    status: str | None = None,
    branch_ids: frozenset[uuid.UUID] | None = None,
    limit: int = 100,
) -> list[schemas.RedemptionOut]:
    """Redemptions, newest first; ``branch_ids`` limits them to gifts picked up at those branches."""
    async with db.uow(tenant) as uow:
        return await _redemptions(uow, member_id=member_id, status=status, branch_ids=branch_ids, limit=limit)


async def _redemptions(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID | None,
    status: str | None,
    branch_ids: frozenset[uuid.UUID] | None,
    limit: int,
) -> list[schemas.RedemptionOut]:
    q = (
        select(RewardRedemption, Reward)
        .join(Reward, (Reward.tenant_id == RewardRedemption.tenant_id) & (Reward.id == RewardRedemption.reward_id))
        .order_by(RewardRedemption.created_at.desc(), RewardRedemption.id)
        .limit(limit)
    )
    if member_id is not None:
        q = q.where(RewardRedemption.member_id == member_id)
    if status is not None:
        q = q.where(RewardRedemption.status == status)
    if branch_ids is not None:
        q = q.where(RewardRedemption.pickup_branch_id.in_(branch_ids))
    return [await _out(uow, row.RewardRedemption, row.Reward) for row in (await uow.session.execute(q)).all()]


async def catalogue(
    db: Database, tenant: uuid.UUID, member_id: uuid.UUID, *, redeemable_only: bool = False, now: datetime | None = None
) -> schemas.CatalogueOut:
    """The active rewards as ``member_id`` sees them: affordable? tier allowed? in stock? limit left?"""
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        await rules.require_member(uow, member_id)
        _, programme = await programme_at(uow, now)
        tier = await rules.member_tier(uow, programme, member_id)
        available = max((await accounts.balances(uow, member_id, now)).points_available, 0)
        taken = await queries.redemptions_by_reward(uow, member_id)
        items = []
        for r in await _list(uow, active=True):
            left = None if r.per_member_limit is None else max(r.per_member_limit - int(taken.get(r.id, 0)), 0)
            s = Standing(
                affordable=available >= r.points_cost,
                tier_allowed=not r.tiers or tier in r.tiers,
                in_stock=r.remaining is None or r.remaining > 0,
                left_for_member=left,
            )
            if redeemable_only and s.reason:
                continue
            items.append(
                schemas.CatalogueItem(
                    reward=r,
                    affordable=s.affordable,
                    tier_allowed=s.tier_allowed,
                    in_stock=s.in_stock,
                    left_for_member=left,
                    can_redeem=not s.reason,
                    reason=s.reason,
                )
            )
    return schemas.CatalogueOut(points_available=available, tier=tier, items=items)
