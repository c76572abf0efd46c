"""The lucky draw (抽奖, issue 16; decision 0042): staff define draws and their prizes, members draw.

One draw is one transaction, exactly-once under its Idempotency-Key: the draw must be open; a free
draw takes the member's free draw of the merchant's local day (an advisory lock per member and draw
queues a member's concurrent draws, and a partial unique index backs it), a paid one spends the points
on the ledger (the balance floor refuses an overdraft: nothing is written). The prize is chosen from
the basis-point chances with ``secrets`` randomness (:mod:`draw_domain`). Winning takes one unit of the
prize's stock and its value from the budget by conditional ``UPDATE``s, then delivers the prize —
points awarded on the ledger or a coupon issued — inside a savepoint: when stock, budget or the coupon
template has run out, the savepoint is rolled back and the draw records "no prize", its cost still
spent. Every draw is recorded (``lucky_draw_entries``, never changed).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from sqlalchemy.exc import IntegrityError

from lianka.alliance.ledger.errors import InsufficientFunds
from lianka.platform import idempotency
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound
from lianka.tenants import queries as tenant_queries
from lianka.tenants.domain.pricing import InsufficientPoints
from lianka.tenants.marketing import draw_domain as dd
from lianka.tenants.marketing import draw_queries as q
from lianka.tenants.marketing.errors import AlreadyDrawnToday, BadDraw, DrawClosed, DrawNameTaken, DrawNotFound
from lianka.tenants.marketing.models import LuckyDraw, LuckyDrawEntry, LuckyDrawPrize
from lianka.tenants.models import CouponTemplate
from lianka.tenants.services import accounts, rules
from lianka.tenants.services import coupons as coupon_svc
from lianka.tenants.services.programme import programme_at

SCOPE = "draws.draw"


class PrizeIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    kind: str
    #: basis points of 10 000 (1 % = 100); what all prizes leave is "no prize"
    chance_bp: int
    stock: int
    points: int = 0
    #: the coupon template's code, for coupon prizes
    coupon_template: str | None = None
    gift: str = ""
    #: what one unit costs the merchant, fen (counted against the draw's budget)
    value: int = 0


class DrawIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    starts_at: datetime
    ends_at: datetime
    prizes: list[PrizeIn]
    #: points per draw; 0 = free, once per member per local day
    cost_points: int = 0
    #: fen; None = no budget
    budget: int | None = None


class DrawPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: str | msgspec.UnsetType = msgspec.UNSET
    ends_at: datetime | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class PrizeOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    chance_bp: int
    stock: int
    stock_total: int
    won: int
    points: int
    coupon_template: str | None
    gift: str
    value: int


class DrawOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    starts_at: datetime
    ends_at: datetime
    cost_points: int
    free_daily: bool
    budget: int | None
    budget_used: int
    active: bool
    draws: int
    prizes: list[PrizeOut]
    created_at: datetime


class PrizeWon(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    points: int
    coupon_code: str | None
    gift: str


class DrawResult(msgspec.Struct):
    entry_id: uuid.UUID
    draw_id: uuid.UUID
    won: bool
    prize: PrizeWon | None
    cost_points: int
    free: bool
    points_balance: int
    created_at: datetime


def _spec(data: DrawIn) -> dd.DrawSpec:
    return dd.DrawSpec(
        name=data.name,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        cost_points=data.cost_points,
        budget=data.budget,
        prizes=[
            dd.PrizeSpec(
                name=p.name,
                kind=p.kind,
                chance_bp=p.chance_bp,
                stock=p.stock,
                points=p.points,
                coupon_template=p.coupon_template,
                gift=p.gift,
                value=p.value,
            )
            for p in data.prizes
        ],
    )


async def _codes(uow: UnitOfWork, prizes: list[LuckyDrawPrize]) -> dict[uuid.UUID, str]:
    ids = {p.coupon_template_id for p in prizes if p.coupon_template_id is not None}
    return {t.id: t.code for t in await coupon_svc.list_templates(uow) if t.id in ids}


async def _out(uow: UnitOfWork, d: LuckyDraw, prizes: list[LuckyDrawPrize] | None = None) -> DrawOut:
    prizes = prizes if prizes is not None else await q.prizes(uow, [d.id])
    counts = await q.counts(uow, d.id)
    codes = await _codes(uow, prizes)
    return DrawOut(
        id=d.id,
        name=d.name,
        starts_at=d.starts_at,
        ends_at=d.ends_at,
        cost_points=d.cost_points,
        free_daily=d.free_daily,
        budget=d.budget,
        budget_used=d.budget_used,
        active=d.active,
        draws=counts.draws,
        prizes=[
            PrizeOut(
                id=p.id,
                name=p.name,
                kind=p.kind,
                chance_bp=p.chance_bp,
                stock=p.stock,
                stock_total=p.stock_total,
                won=counts.won.get(p.id, 0),
                points=p.points,
                coupon_template=codes.get(p.coupon_template_id) if p.coupon_template_id else None,
                gift=p.gift,
                value=p.value,
            )
            for p in prizes
        ],
        created_at=d.created_at,
    )


async def _get(uow: UnitOfWork, draw_id: uuid.UUID) -> LuckyDraw:
    d = await q.draw(uow, draw_id)
    if d is None:
        raise DrawNotFound()
    return d


# --- staff ---------------------------------------------------------------------------------------


async def create_draw(db: Database, tenant: uuid.UUID, data: DrawIn) -> DrawOut:
    """A new draw with its prizes; a broken rule is a 400 naming the field, nothing is written."""
    spec = _spec(data)
    try:
        dd.check(spec)
    except dd.DrawError as e:
        raise BadDraw(str(e), field=e.field) from None
    async with db.uow(tenant) as uow:
        if await q.name_taken(uow, data.name):
            raise DrawNameTaken(field="name")
        templates: dict[int, CouponTemplate] = {}
        for i, p in enumerate(data.prizes):
            if p.coupon_template:
                t = await coupon_svc.get_template_by_code(uow, p.coupon_template)
                if t is None or not t.active:
                    raise NotFound(
                        f"no active coupon template {p.coupon_template!r}", field=f"prizes[{i}].coupon_template"
                    )
                templates[i] = t
        d = LuckyDraw(
            tenant_id=tenant,
            id=uuid.uuid4(),
            name=data.name.strip(),
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            cost_points=data.cost_points,
            free_daily=data.cost_points == 0,
            budget=data.budget,
            budget_used=0,
            active=True,
        )
        uow.session.add(d)
        try:
            async with uow.session.begin_nested():
                await uow.session.flush()
        except IntegrityError:
            raise DrawNameTaken(field="name") from None
        prizes = [
            LuckyDrawPrize(
                tenant_id=tenant,
                id=uuid.uuid4(),
                draw_id=d.id,
                position=i,
                name=p.name.strip(),
                kind=p.kind,
                points=p.points,
                coupon_template_id=templates[i].id if i in templates else None,
                gift=p.gift.strip(),
                chance_bp=p.chance_bp,
                stock=p.stock,
                stock_total=p.stock,
                value=p.value,
            )
            for i, p in enumerate(data.prizes)
        ]
        uow.session.add_all(prizes)
        await uow.session.flush()
        await uow.session.refresh(d)
        out = await _out(uow, d, prizes)
        await uow.commit()
        return out


async def list_draws(db: Database, tenant: uuid.UUID) -> list[DrawOut]:
    async with db.uow(tenant) as uow:
        found = await q.draws(uow)
        by_draw: dict[uuid.UUID, list[LuckyDrawPrize]] = {d.id: [] for d in found}
        for p in await q.prizes(uow, list(by_draw)) if by_draw else []:
            by_draw[p.draw_id].append(p)
        return [await _out(uow, d, by_draw[d.id]) for d in found]


@dataclass(frozen=True)
class OpenDraw:
    id: uuid.UUID
    name: str
    ends_at: datetime


async def open_draws(db: Database, tenant: uuid.UUID, now: datetime | None = None) -> list[OpenDraw]:
    """The draws a member can open now (active, within their window) — the portal links to them."""
    async with db.uow(tenant) as uow:
        return [OpenDraw(d.id, d.name, d.ends_at) for d in await q.open_draws(uow, now or datetime.now(UTC))]


async def get_draw(db: Database, tenant: uuid.UUID, draw_id: uuid.UUID) -> DrawOut:
    async with db.uow(tenant) as uow:
        return await _out(uow, await _get(uow, draw_id))


async def update_draw(db: Database, tenant: uuid.UUID, draw_id: uuid.UUID, patch: DrawPatch) -> DrawOut:
    """Rename, move the end, or switch a draw off (``active=false``) and on; prizes stay as drawn."""
    async with db.uow(tenant) as uow:
        d = await _get(uow, draw_id)
        if isinstance(patch.name, str):
            name = patch.name.strip()
            if not name or len(name) > 100:
                raise BadDraw("a name of 1 to 100 characters", field="name")
            if name != d.name and await q.name_taken(uow, name):
                raise DrawNameTaken(field="name")
            d.name = name
        if isinstance(patch.ends_at, datetime):
            if patch.ends_at.tzinfo is None or patch.ends_at <= d.starts_at:
                raise BadDraw("ends_at must be after starts_at, with a time zone", field="ends_at")
            d.ends_at = patch.ends_at
        if isinstance(patch.active, bool):
            d.active = patch.active
        await uow.session.flush()
        out = await _out(uow, d)
        await uow.commit()
        return out


# --- members -------------------------------------------------------------------------------------


class _Gone(Exception):
    """The prize drawn has no stock or budget left: the draw gives no prize."""


async def _deliver(
    uow: UnitOfWork,
    d: LuckyDraw,
    p: LuckyDrawPrize,
    member_id: uuid.UUID,
    key: str,
    entry: LuckyDrawEntry,
    now: datetime,
) -> str | None:
    """Take the prize's unit and budget and hand it over; the coupon code when it is a coupon."""
    if not await q.take_prize(uow, p.id) or not await q.spend_budget(uow, d.id, p.value):
        raise _Gone
    if p.kind == "points":
        _, programme = await programme_at(uow, now)
        award = await accounts.award_points(
            uow,
            member_id,
            p.points,
            programme=programme,
            reason="lucky_draw_prize",
            key=rules.derived_key("draw-prize:", key),
            business_time=now,
            refs={"draw": str(d.id), "draw_entry": str(entry.id)},
        )
        entry.award_entry_id = award.id
    elif p.kind == "coupon":
        assert p.coupon_template_id is not None
        coupon = await coupon_svc.issue(uow, p.coupon_template_id, member_id, source="lucky_draw", now=now)
        entry.coupon_id = coupon.id
        return coupon.code
    return None


async def draw(
    db: Database,
    tenant: uuid.UUID,
    draw_id: uuid.UUID,
    member_id: uuid.UUID,
    key: str,
    *,
    now: datetime | None = None,
    randbelow: dd.RandBelow | None = None,
) -> tuple[DrawResult, bool]:
    """``member_id`` draws once. Returns (result, replayed); a replay of ``key`` draws nothing."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint(SCOPE, str(draw_id), str(member_id))
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        replay = await idempotency.claim(uow, SCOPE, key, fp)
        if replay is not None:
            return msgspec.convert(replay.body, DrawResult), True
        d = await _get(uow, draw_id)
        await rules.require_member(uow, member_id)
        if not dd.is_open(d.starts_at, d.ends_at, d.active, now):
            raise DrawClosed(starts_at=d.starts_at.isoformat(), ends_at=d.ends_at.isoformat())
        _, tz = await accounts.merchant_info(uow)
        entry = LuckyDrawEntry(
            tenant_id=tenant,
            id=uuid.uuid4(),
            draw_id=d.id,
            member_id=member_id,
            prize_id=None,
            cost_points=d.cost_points,
            free=d.free_daily,
            local_day=dd.local_day(now, tz),
            created_at=now,
        )
        if d.free_daily:
            await rules.lock(uow, f"draw:{d.id}:{member_id}")  # one member's concurrent free draws queue
            if await q.drew_free(uow, d.id, member_id, entry.local_day):
                raise AlreadyDrawnToday(day=entry.local_day.isoformat())
        else:
            try:
                spent = await accounts.spend_points(
                    uow,
                    member_id,
                    d.cost_points,
                    reason="lucky_draw",
                    key=rules.derived_key("draw:", key),
                    business_time=now,
                    refs={"draw": str(d.id), "draw_entry": str(entry.id)},
                )
            except InsufficientFunds as exc:
                raise InsufficientPoints(
                    f"one draw costs {d.cost_points} points",
                    needed=d.cost_points,
                    **{k: v for k, v in exc.extra.items() if k in ("balance", "short")},
                ) from None
            entry.spend_entry_id = spent.id
        prizes = await q.prizes(uow, [d.id])
        picked = dd.choose([p.chance_bp for p in prizes], randbelow or secrets.randbelow)
        won: PrizeWon | None = None
        if picked is not None:
            p = prizes[picked]
            # read before the savepoint: rolling one back expires what the session holds
            prize = PrizeWon(id=p.id, name=p.name, kind=p.kind, points=p.points, coupon_code=None, gift=p.gift)
            spend_entry = entry.spend_entry_id
            try:
                async with uow.session.begin_nested():
                    prize.coupon_code = await _deliver(uow, d, p, member_id, key, entry, now)
                entry.prize_id, won = prize.id, prize
            except (_Gone, coupon_svc.CouponSoldOut, coupon_svc.CouponLimitReached, coupon_svc.CouponTemplateInactive):
                entry.spend_entry_id, entry.award_entry_id, entry.coupon_id = spend_entry, None, None
        uow.session.add(entry)
        await uow.session.flush()
        out = DrawResult(
            entry_id=entry.id,
            draw_id=draw_id,
            won=won is not None,
            prize=won,
            cost_points=entry.cost_points,
            free=entry.free,
            points_balance=(await accounts.balances(uow, member_id, now)).points,
            created_at=now,
        )
        await idempotency.store(uow, SCOPE, key, 201, msgspec.to_builtins(out))
        await uow.commit()
        return out, False


class PortalDraw(msgspec.Struct):
    """A draw as the member's portal shows it: the prizes (names and chances), whether a draw is
    possible now and why not, the member's points and their latest draws."""

    draw: DrawOut
    open: bool
    can_draw: bool
    reason: str
    points_available: int
    mine: list[DrawResult]


async def portal_view(
    db: Database, tenant: uuid.UUID, draw_id: uuid.UUID, member_id: uuid.UUID, now: datetime | None = None
) -> PortalDraw:
    now = now or datetime.now(UTC)
    async with db.uow(tenant) as uow:
        await rules.require_member(uow, member_id)
        d = await _get(uow, draw_id)
        out = await _out(uow, d)
        _, tz = await accounts.merchant_info(uow)
        bal = await accounts.balances(uow, member_id, now)
        available = max(bal.points_available, 0)
        is_open = dd.is_open(d.starts_at, d.ends_at, d.active, now)
        reason = ""
        if not is_open:
            reason = "closed"
        elif d.free_daily and await q.drew_free(uow, d.id, member_id, dd.local_day(now, tz)):
            reason = "drawn_today"
        elif not d.free_daily and available < d.cost_points:
            reason = "not_enough_points"
        names = {p.id: p for p in out.prizes}
        mine = []
        for e in await q.member_entries(uow, d.id, member_id):
            p = names.get(e.prize_id) if e.prize_id else None
            prize = (
                PrizeWon(id=p.id, name=p.name, kind=p.kind, points=p.points, coupon_code=None, gift=p.gift)
                if p
                else None
            )
            mine.append(DrawResult(e.id, d.id, p is not None, prize, e.cost_points, e.free, bal.points, e.created_at))
        return PortalDraw(out, is_open, not reason, reason, available, mine)


async def coupon_choices(db: Database, tenant: uuid.UUID) -> list[tenant_queries.TemplateChoice]:
    """The active coupon templates a coupon prize may name (the console's form)."""
    async with db.uow(tenant) as uow:
        return await tenant_queries.active_coupon_templates(uow)
