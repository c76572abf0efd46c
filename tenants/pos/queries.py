"""Every SQL statement of the POS, each behind a typed function.

The sale is the hot path (decision 0011): a handful of statements through the driver, several of them
doing more than one thing. They are kept exactly as measured and only made readable here:

* a statement is composed of *named parts* — the columns of a row type, :func:`balances_sql` and
  :func:`version_at_sql` from ``tenants/queries.py`` — each told which placeholder numbers it uses;
  a finished statement is never edited (no placeholder rewriting);
* the sale row's many parameters are the fields of :class:`SaleRow`, bound in field order.

Statements the POS shares with the rest of the area (a branch's code, "is this a member here", a
missing profile row) are in ``tenants/queries.py``.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from lianka.platform import idempotency
from lianka.platform.db import UnitOfWork
from lianka.tenants.domain import tiers
from lianka.tenants.queries import Balances, MemberAccountIds, balances_over, balances_sql, version_at_sql


@dataclass
class Profile:
    """Row type: the ``member_profiles`` fields a sale reads (the row is locked for a sale). Mutable: the
    sale moves ``tier_code`` before writing it back with the sale row."""

    birthday: date | None
    tier_code: str | None
    tier_floor: str | None
    tier_floor_until: date | None
    purchase_count: int
    referrer_member_id: uuid.UUID | None


_PROFILE_COLUMNS = [f.name for f in fields(Profile)]
_PROFILE_SELECT = ", ".join(_PROFILE_COLUMNS)
_PROFILE_SQL = {
    lock: f"SELECT {_PROFILE_SELECT} FROM member_profiles WHERE member_id = $1" + (" FOR UPDATE" if lock else "")
    for lock in (True, False)
}


async def profile(uow: UnitOfWork, member_id: uuid.UUID, *, lock: bool) -> Profile | None:
    row = await (await uow.driver()).fetchrow(_PROFILE_SQL[lock], member_id)
    return None if row is None else Profile(**dict(row))


@dataclass(frozen=True)
class ContextRow:
    """Row type of :func:`sale_context`: what a sale needs to know before pricing."""

    currency: str
    timezone: str
    #: None: no such branch here
    branch_code: str | None
    #: in force at the business time; 0 is the built-in default programme
    programme_version: int
    #: whether the member asked for (if any) is a member here
    member_known: bool
    #: the member's profile (locked for a sale); None when the member has none yet, or no member was named
    profile: Profile | None
    #: the member's live paid-membership term at the business time: its id, product code and perks
    #: (``membership_terms``, billing's table — read here so the sale needs no extra round trip)
    paid: PaidTerm | None = None
    #: the webhook event types an active subscription of the merchant wants (read with the context)
    hooked: frozenset[str] = frozenset()
    #: False when the sale's Idempotency-Key was already claimed (a replay, or a conflict): the key's
    #: claim rides on this read (``idempotency.claim_sql``); True when this request owns it or claimed nothing
    claimed: bool = True
    #: the member's balances and tier standing, when the read was asked for them (``Prefetch``)
    prefetched: Prefetched | None = None


@dataclass(frozen=True)
class Prefetch:
    """What a sale's context read needs to read the member's balances and tier standing too: the
    merchant's points unit (the points account's) and the tier window's start, as the caller expects
    the programme in force to set it — the caller checks that guess once the programme is known."""

    points_unit: str
    window_start: datetime


@dataclass(frozen=True)
class Prefetched:
    """Row type: the balances and standing the context read found, the accounts they are of, and
    whether they are current — ``fresh`` is False when a sale of the same member committed while this
    statement waited for the profile's lock (the balances were read before it, in the statement's
    snapshot; the locked row is the newest version, so their ``xmin`` differ)."""

    accounts: MemberAccountIds | None
    balances: Balances
    standing: tiers.Standing
    window_start: datetime
    fresh: bool


@dataclass(frozen=True)
class PaidTerm:
    """Row type: the ``membership_terms`` fields pricing needs (``perks`` is the term's JSON copy of the
    product's perks, see ``billing/membership/domain.py``)."""

    term_id: uuid.UUID
    product: str
    perks: dict[str, Any]

    @classmethod
    def of(cls, value: object) -> PaidTerm | None:
        if value is None:
            return None
        data = json.loads(value) if isinstance(value, str | bytes) else dict(value)  # type: ignore[call-overload]
        return cls(uuid.UUID(data["term"]), str(data["product"]), dict(data["perks"]))


#: one indexed probe (``ix_membership_terms_member``) for the member's live term, newest start first
_PAID_SQL = (
    "(SELECT jsonb_build_object('term', t.id, 'product', t.product_code, 'perks', t.perks) "
    "FROM membership_terms t WHERE t.member_id = $4 AND t.status IN ('active', 'canceled') "
    "AND t.starts_at <= $3 AND t.ends_at > $3 ORDER BY t.starts_at DESC LIMIT 1) AS paid"
)


#: the event types some active webhook subscription of the merchant wants: the sale's webhooks need no
#: round trip of their own when nobody listens (``platform.webhooks.services.emit``'s ``subscribed``)
_HOOKED_SQL = (
    "(SELECT coalesce(array_agg(DISTINCT e), '{}') FROM webhook_subscriptions s, unnest(s.events) e "
    "WHERE s.tenant_id = $1 AND s.active) AS hooked"
)


def _account_sql(kind: str, unit: str) -> str:
    return (
        f"(SELECT id FROM ledger_accounts WHERE tenant_id = $1 AND owner_kind = 'member' AND owner_id = $4 "
        f"AND kind = '{kind}' AND unit = {unit})"
    )


def _prefetch_sql() -> tuple[str, str]:
    """(columns, joins) that read, with a ``Prefetch`` ($8 the points unit, $9 the tier window's start),
    the member's accounts (found by owner: their ids are not known before the merchant's currency),
    balances and standing, and the profile row's version as the statement's snapshot saw it and as
    locked (``Prefetched.fresh``)."""
    columns = (
        "acc.pa, acc.sa, acc.ba, b.points, b.principal, b.bonus, b.available, b.pending, st.spend, st.pts, "
        "(SELECT xmin::text FROM member_profiles WHERE tenant_id = $1 AND member_id = $4) AS seen_version, "
        "p.version AS locked_version, "
    )
    joins = (
        f"LEFT JOIN LATERAL (SELECT {_account_sql('points', '$8')} AS pa, "
        f"{_account_sql('sv_principal', 'm.currency')} AS sa, {_account_sql('sv_bonus', 'm.currency')} AS ba) acc ON true "
        f"LEFT JOIN LATERAL ({balances_over('acc.pa', 'acc.sa', 'acc.ba', '$3')}) b ON true "
        f"LEFT JOIN LATERAL ({_standing_over('$4', '$9')}) st ON true "
    )
    return columns, joins


@functools.cache
def _context_sql(lock: bool, claim: bool, prefetch: bool = False) -> str:
    """Parameters: $1 the merchant, $2 the branch, $3 the business time, $4 the member (or NULL); with
    ``claim``, $5–$7 the Idempotency-Key's scope, key and request hash, claimed by a data-modifying CTE
    in the same statement; with ``prefetch`` (a sale: ``lock`` and ``claim`` too), $8 and $9 of a
    :class:`Prefetch` (decision 0053: each saves the sale a round trip)."""
    assert not prefetch or (lock and claim)
    columns, joins = _prefetch_sql() if prefetch else ("", "")
    claiming = f"WITH claim AS ({idempotency.claim_sql(1, 5)}) " if claim else ""
    claimed = "(SELECT true FROM claim)" if claim else "true"
    return (
        f"{claiming}SELECT m.currency, m.timezone, (SELECT code FROM branches WHERE id = $2) AS branch_code, "
        f"({version_at_sql(3)}) AS programme_version, "
        "(SELECT true FROM memberships WHERE member_id = $4) AS member_known, "
        f"{_PAID_SQL}, {_HOOKED_SQL}, coalesce({claimed}, false) AS claimed, {columns}"
        f"p.found AS profile_found, {', '.join('p.' + c for c in _PROFILE_COLUMNS)} "
        f"FROM merchants m LEFT JOIN LATERAL (SELECT true AS found, {'xmin::text AS version, ' if prefetch else ''}"
        f"{_PROFILE_SELECT} FROM member_profiles WHERE member_id = $4{' FOR UPDATE' if lock else ''}) p ON true "
        f"{joins}WHERE m.id = $1"
    )


async def sale_context(
    uow: UnitOfWork,
    branch_id: uuid.UUID,
    at: datetime,
    member_id: uuid.UUID | None,
    *,
    lock: bool,
    claim: idempotency.Claim | None = None,
    prefetch: Prefetch | None = None,
) -> ContextRow | None:
    """The merchant's currency and zone, the branch's code, the programme version in force at ``at``,
    whether ``member_id`` is a member here and their profile (locked for a sale), their paid term and
    the webhook events anyone subscribed to — and, for a sale, the claim of its Idempotency-Key and
    (``prefetch``) the member's balances and tier standing — in one round trip; None when the
    merchant is not visible. RLS scopes every part to the merchant. Nothing but the balances and the
    standing changes with a concurrent sale of the same member, so the statement's snapshot, taken
    before the lock, is good enough for the rest; ``Prefetched.fresh`` says whether it is for those.
    A twin holding the key makes the claim wait for its transaction, as a claim of its own would."""
    args: tuple[object, ...] = (uow.tenant_id, branch_id, at, member_id)
    if claim is not None:
        args += claim.args
    if prefetch is not None:
        assert claim is not None and lock
        args += (prefetch.points_unit, prefetch.window_start)
    row = await (await uow.driver()).fetchrow(_context_sql(lock, claim is not None, prefetch is not None), *args)
    if row is None:
        return None
    prefetched = None
    if prefetch is not None and row["profile_found"]:
        ids = (row["pa"], row["sa"], row["ba"])
        prefetched = Prefetched(
            accounts=MemberAccountIds(*ids) if all(i is not None for i in ids) else None,
            balances=Balances.of(row),
            standing=tiers.Standing(spend=int(row["spend"]), points_earned=int(row["pts"])),
            window_start=prefetch.window_start,
            fresh=row["seen_version"] is not None and row["seen_version"] == row["locked_version"],
        )
    return ContextRow(
        currency=str(row["currency"]),
        timezone=str(row["timezone"]),
        branch_code=None if row["branch_code"] is None else str(row["branch_code"]),
        programme_version=int(row["programme_version"]),
        member_known=bool(row["member_known"]),
        profile=Profile(**{c: row[c] for c in _PROFILE_COLUMNS}) if row["profile_found"] else None,
        paid=PaidTerm.of(row["paid"]),
        hooked=frozenset(row["hooked"]),
        claimed=bool(row["claimed"]),
        prefetched=prefetched,
    )


async def member_by_card(uow: UnitOfWork, card: str) -> uuid.UUID | None:
    found = await uow.session.scalar(
        text("SELECT ms.member_id FROM memberships ms JOIN members m ON m.id = ms.member_id WHERE m.card_number = :c"),
        {"c": card},
    )
    return None if found is None else uuid.UUID(str(found))


def _standing_sql(first: int) -> str:
    """The member's spend and points earned in the tier window, counting refunds pro rata; parameters
    ``$first`` the member and ``$first+1`` the window's start."""
    return _standing_over(f"${first}", f"${first + 1}")


def _standing_over(member: str, start: str) -> str:
    """:func:`_standing_sql` over SQL expressions for the member and the window's start."""
    return (
        "SELECT coalesce(sum(qualifying_spend * (gross - promotion_discount - member_discount - coupon_total - refunded) "
        "/ nullif(gross - promotion_discount - member_discount - coupon_total, 0)), 0) AS spend, coalesce(sum(points_earned), 0) AS pts "
        f"FROM sales WHERE member_id = {member} AND business_time > {start}"
    )


_BALANCES_AND_STANDING_SQL = f"SELECT * FROM ({balances_sql(1)}) b, ({_standing_sql(5)}) st"


async def balances_and_standing(
    uow: UnitOfWork, accounts: MemberAccountIds, at: datetime, member_id: uuid.UUID, window_start: datetime
) -> tuple[Balances, tiers.Standing]:
    """The member's balances at ``at`` and tier-window standing, in one round trip (after the lock)."""
    row = await (await uow.driver()).fetchrow(
        _BALANCES_AND_STANDING_SQL,
        accounts.points,
        accounts.sv_principal,
        accounts.sv_bonus,
        at,
        member_id,
        window_start,
    )
    return Balances.of(row), tiers.Standing(spend=int(row["spend"]), points_earned=int(row["pts"]))


async def record_tier_change(
    uow: UnitOfWork, member_id: uuid.UUID, old: str | None, new: str | None, reason: str
) -> None:
    await (await uow.driver()).execute(
        "INSERT INTO tier_changes (tenant_id, member_id, old_tier, new_tier, reason, actor) "
        "VALUES ($1, $2, $3, $4, $5, 'pos')",
        uow.tenant_id,
        member_id,
        old,
        new,
        reason,
    )


async def promotion_uses(uow: UnitOfWork, member_id: uuid.UUID, codes: list[str]) -> dict[str, int]:
    """How many of the member's sales not wholly refunded got each of the promotions ``codes`` (those
    with a per-member limit; read only when the programme has one, after the profile lock)."""
    rows = await (await uow.driver()).fetch(
        "SELECT p->>'code' AS code, count(*) AS n FROM sales s, jsonb_array_elements(s.applied_promotions) p "
        "WHERE s.member_id = $1 AND s.status <> 'refunded' AND p->>'code' = ANY($2::text[]) GROUP BY 1",
        member_id,
        codes,
    )
    return {str(r["code"]): int(r["n"]) for r in rows}


# --- the sale row ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaleRow:
    """A new ``sales`` row and its ``sale_lines``, as one statement binds them: the fields in this order
    are the statement's parameters (``refunded`` starts at 0, ``status`` is ``completed``). ``entries``,
    ``coupons``, ``promotions`` and ``applied_promotions`` are JSON text; the lines are four parallel arrays."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    member_id: uuid.UUID | None
    branch_id: uuid.UUID
    business_time: datetime
    currency: str
    gross: int
    promotion_discount: int
    member_discount: int
    coupon_total: int
    points_redeemed: int
    points_cash: int
    sv_principal: int
    sv_bonus: int
    due: int
    qualifying_spend: int
    points_earned: int
    payment_method: str
    programme_version: int
    offline: bool
    entries: str
    coupons: str
    promotions: str
    applied_promotions: str
    alliance_voucher: str | None
    skus: list[str]
    categories: list[str]
    qtys: list[int]
    unit_prices: list[int]


_SALE_FIELDS = tuple(f.name for f in fields(SaleRow))


def _params(row: SaleRow) -> list[Any]:
    return [getattr(row, name) for name in _SALE_FIELDS]


def _sale_ctes(first: int) -> str:
    """CTEs ``s`` (the sale) and ``l`` (its lines) of a :class:`SaleRow` bound from ``$first`` on."""
    p = {name: f"${first + i}" for i, name in enumerate(_SALE_FIELDS)}
    values = ", ".join(p[n] for n in _SALE_FIELDS[: _SALE_FIELDS.index("payment_method")])
    return (
        "WITH s AS (INSERT INTO sales (tenant_id, id, member_id, branch_id, business_time, currency, gross, "
        "promotion_discount, member_discount, coupon_total, points_redeemed, points_cash, sv_principal, sv_bonus, due, qualifying_spend, "
        "points_earned, refunded, payment_method, programme_version, status, offline, entries, coupons, promotions, "
        "applied_promotions, alliance_voucher) "
        f"VALUES ({values}, 0, {p['payment_method']}, {p['programme_version']}, 'completed', {p['offline']}, "
        f"{p['entries']}::jsonb, {p['coupons']}::jsonb, {p['promotions']}::jsonb, "
        f"{p['applied_promotions']}::jsonb, {p['alliance_voucher']}::jsonb)), "
        "l AS (INSERT INTO sale_lines (tenant_id, sale_id, line_no, sku, category, qty, unit_price, refunded_qty) "
        f"SELECT {p['tenant_id']}, {p['id']}, k - 1, sku, category, qty, price, 0 "
        f"FROM unnest({p['skus']}::text[], {p['categories']}::text[], {p['qtys']}::int[], "
        f"{p['unit_prices']}::bigint[]) "
        "WITH ORDINALITY AS x(sku, category, qty, price, k)) "
    )


_GUEST_SALE_SQL = _sale_ctes(1) + "SELECT 1"


async def insert_guest_sale(uow: UnitOfWork, sale: SaleRow) -> None:
    """A sale with no member: the row and its lines."""
    await (await uow.driver()).execute(_GUEST_SALE_SQL, *_params(sale))


def _member_sale_sql() -> str:
    """$1 … $4: the balances' accounts and time (:func:`balances_sql`); $5 … $33: the :class:`SaleRow`;
    then whether the tier changes, the tier, the response body (JSON) and the idempotency key."""
    first = 5
    p = {name: f"${first + i}" for i, name in enumerate(_SALE_FIELDS)}
    set_tier, tier, body, key = (f"${first + len(_SALE_FIELDS) + i}" for i in range(4))
    at, member = p["business_time"], p["member_id"]
    return (
        _sale_ctes(first)
        + f", p AS (UPDATE member_profiles SET cumulative_spend = cumulative_spend + {p['qualifying_spend']}, "
        f"purchase_count = purchase_count + 1, first_purchase_at = coalesce(first_purchase_at, {at}), "
        f"last_purchase_at = greatest(coalesce(last_purchase_at, {at}), {at}), "
        f"tier_code = CASE WHEN {set_tier} THEN {tier} ELSE tier_code END, "
        f"tier_since = CASE WHEN {set_tier} THEN {at} ELSE tier_since END, "
        f"updated_at = now() WHERE member_id = {member}), "
        f"b AS ({balances_sql(1)}), "
        f"k AS (UPDATE idempotency_keys SET status = 201, body = {body}::jsonb || jsonb_build_object('balances', "
        "(SELECT jsonb_build_object('points', coalesce(points, 0), 'points_available', available, "
        "'points_pending', pending, 'sv_principal', coalesce(principal, 0), 'sv_bonus', coalesce(bonus, 0)) FROM b)) "
        f"WHERE tenant_id = {p['tenant_id']} AND scope = 'pos.sale' AND key = {key}) "
        "SELECT * FROM b"
    )


_MEMBER_SALE_SQL = _member_sale_sql()


async def insert_member_sale(
    uow: UnitOfWork,
    sale: SaleRow,
    *,
    accounts: MemberAccountIds,
    set_tier: bool,
    tier: str | None,
    body_json: str,
    key: str,
) -> Balances:
    """A member's sale in one statement: the row and its lines, the profile's counters and tier (set only
    when ``set_tier``), the balances after it (the ledger entries are already posted) and the stored
    idempotent response — ``body_json`` with those balances added under ``balances``. Returns the
    balances."""
    row = await (await uow.driver()).fetchrow(
        _MEMBER_SALE_SQL,
        accounts.points,
        accounts.sv_principal,
        accounts.sv_bonus,
        sale.business_time,
        *_params(sale),
        set_tier,
        tier,
        body_json,
        key,
    )
    return Balances.of(row)


# --- enrolment at the till ---------------------------------------------------------------------------


async def person_by_phone(uow: UnitOfWork, phone: str) -> uuid.UUID | None:
    """System scope: the global person row with this (normalised) phone."""
    found = await uow.session.scalar(text("SELECT id FROM members WHERE phone = :p"), {"p": phone})
    return None if found is None else uuid.UUID(str(found))


async def insert_person(uow: UnitOfWork, phone: str, card_number: str, qr_secret: bytes) -> uuid.UUID | None:
    """System scope: a new person row; None when the phone or the card number is taken (look again)."""
    found = await uow.session.scalar(
        text(
            "INSERT INTO members (phone, card_number, qr_secret) VALUES (:p, :c, :q) ON CONFLICT DO NOTHING "
            "RETURNING id"
        ),
        {"p": phone, "c": card_number, "q": qr_secret},
    )
    return None if found is None else uuid.UUID(str(found))


async def join_at_till(uow: UnitOfWork, member_id: uuid.UUID, branch_id: uuid.UUID) -> None:
    """The membership at this branch and its profile (source ``till``), unless the person had already
    joined: then both stay as they were (the join branch is the first enrolment's)."""
    await uow.session.execute(
        text("INSERT INTO memberships (tenant_id, member_id, branch_id) VALUES (:t, :m, :b) ON CONFLICT DO NOTHING"),
        {"t": uow.tenant_id, "m": member_id, "b": branch_id},
    )
    await uow.session.execute(
        text(
            "INSERT INTO member_profiles (tenant_id, member_id, join_branch_id, source) SELECT :t, :m, branch_id, 'till' "
            "FROM memberships WHERE tenant_id = :t AND member_id = :m ON CONFLICT DO NOTHING"
        ),
        {"t": uow.tenant_id, "m": member_id},
    )


# --- refunds ----------------------------------------------------------------------------------------


async def sale_branch(uow: UnitOfWork, sale_id: uuid.UUID) -> uuid.UUID | None:
    """The selling branch of this merchant's sale ``sale_id``; None for an unknown (or another's) sale."""
    branch = await uow.session.scalar(text("SELECT branch_id FROM sales WHERE id = :s"), {"s": sale_id})
    return None if branch is None else uuid.UUID(str(branch))


async def reduce_spend(uow: UnitOfWork, member_id: uuid.UUID, amount: int) -> None:
    """A refund takes its qualifying spend off the member's cumulative spend (never below 0)."""
    await uow.session.execute(
        text(
            "UPDATE member_profiles SET cumulative_spend = greatest(cumulative_spend - :q, 0), updated_at = now() "
            "WHERE member_id = :m"
        ),
        {"q": amount, "m": member_id},
    )


# --- what a paid membership saved (billing's ``membership_savings``, written with the sale) -----------


@dataclass(frozen=True)
class SavingRow:
    """A ``membership_savings`` row: what the live term's perks saved on one sale (minor units, points)."""

    sale_id: uuid.UUID
    member_id: uuid.UUID
    term_id: uuid.UUID
    business_time: datetime
    discount: int
    extra_points: int
    points_value: int
    coupons: int


async def insert_saving(uow: UnitOfWork, row: SavingRow) -> None:
    await (await uow.driver()).execute(
        "INSERT INTO membership_savings (tenant_id, sale_id, member_id, term_id, business_time, discount, "
        "extra_points, points_value, coupons) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        uow.tenant_id,
        *(getattr(row, f.name) for f in fields(SavingRow)),
    )
