"""The till's alliance moves at a partner: earn and pay with alliance points, buy and spend alliance
stored value, find a card and read its alliance balances.

A move runs in the partner's own transaction: it claims the idempotency key in the partner's scope,
checks that the partner is active and the member holds an alliance card, switches into the
alliance's book to post (the points or stored value and their clearing, one entry), and switches back
to store the answer under the key. One transaction, so the move and the partner's idempotency record
commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from lianka.alliance.alliances import queries
from lianka.alliance.alliances.access import membership
from lianka.alliance.alliances.domain import Terms, points_earned, points_unit
from lianka.alliance.alliances.errors import CreditLimitExceeded, IssuanceCapReached, NotACardholder, PartnerInactive
from lianka.alliance.alliances.terms import terms_at
from lianka.alliance.ledger import domain as ledger_domain
from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import clearing
from lianka.alliance.settlement import domain as obligations
from lianka.alliance.settlement.domain import LineKind, fee, money, period_of, points_issued, points_redeemed
from lianka.platform import idempotency
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, RuleViolation, ValidationFailed
from lianka.tenants.domain.programme import ExpiryKind

#: longest card number or QR token accepted
CARD_MAX = 128


@dataclass(frozen=True)
class _Till:
    """Where a move happens: the alliance (its book), the partner's branch, the terms in force, and
    the member's alliance points account."""

    alliance_id: uuid.UUID
    book: queries.AllianceRow
    branch: uuid.UUID
    terms: Terms
    member_points: ledger.Account

    @property
    def hub(self) -> clearing.Hub:
        return clearing.Hub("alliance", self.alliance_id, self.book.currency)


# --- building blocks (take the caller's unit of work, never commit) --------------------------------


async def _enter(
    uow: UnitOfWork, alliance_id: uuid.UUID, member_id: uuid.UUID, branch_id: uuid.UUID | None, at: datetime
) -> _Till:
    """From the partner's transaction into the alliance's book, checking everything on the way."""
    merchant = uow.tenant_id
    assert merchant is not None
    _, status = await membership(uow, alliance_id)
    if status != "active":
        raise PartnerInactive(f"this merchant is {status} in the alliance")
    if branch_id is None:
        raise ValidationFailed("which branch? give branch_id (or use a branch-bound terminal)", field="branch_id")
    branch = await queries.branch(uow, branch_id)
    if branch is None:
        raise NotFound("branch not found", field="branch_id")
    if not await queries.is_cardholder(uow, alliance_id, member_id):
        raise NotACardholder("not an alliance card", field="member_id")
    await uow.set_tenant(alliance_id)
    book = await queries.alliance(uow)
    _, terms = await terms_at(uow, alliance_id, at)
    await queries.record_spoke(uow, queries.SpokeRow(alliance_id, branch_id, merchant, branch.code, branch.name))
    account = await ledger.open_account(
        uow, owner_kind="member", owner_id=member_id, kind="alliance_points", unit=points_unit(alliance_id)
    )
    return _Till(alliance_id, book, branch_id, terms, account)


async def _balance(uow: UnitOfWork, account: ledger.Account, at: datetime) -> dict[str, int]:
    return {"points": await ledger.balance(uow, account), "available": await ledger.available_points(uow, account, at)}


async def _sv_accounts(
    uow: UnitOfWork, alliance_id: uuid.UUID, member_id: uuid.UUID, currency: str
) -> tuple[ledger.Account, ledger.Account, ledger.Account, ledger.Account]:
    """The member's alliance stored value (principal, bonus in lots), the alliance's float and bonus expense."""
    principal = await ledger.open_account(
        uow, owner_kind="member", owner_id=member_id, kind="alliance_sv_principal", unit=currency
    )
    bonus = await ledger.open_account(
        uow, owner_kind="member", owner_id=member_id, kind="alliance_sv_bonus", unit=currency, lots=True
    )
    float_ = await ledger.open_account(
        uow,
        owner_kind="alliance",
        owner_id=alliance_id,
        kind="sv_float",
        unit=currency,
        allow_negative=True,
        tracked=False,
    )
    bonus_expense = await ledger.open_account(
        uow,
        owner_kind="alliance",
        owner_id=alliance_id,
        kind="sv_bonus_expense",
        unit=currency,
        allow_negative=True,
        tracked=False,
    )
    return principal, bonus, float_, bonus_expense


async def _sv_balances(uow: UnitOfWork, principal: ledger.Account, bonus: ledger.Account) -> dict[str, int]:
    return {"sv_principal": await ledger.balance(uow, principal), "sv_bonus": await ledger.balance(uow, bonus)}


def _check_amount(amount: int) -> None:
    if not 0 < amount <= 10**11:
        raise ValidationFailed("amount must be a positive number of fen", field="amount")


def _request(
    alliance_id: uuid.UUID,
    member_id: uuid.UUID,
    branch_id: uuid.UUID | None,
    business_time: datetime | None,
    **move: object,
) -> dict[str, object]:
    """What the idempotency fingerprint of a move covers."""
    return {
        "alliance": str(alliance_id),
        "member": str(member_id),
        **move,
        "branch": str(branch_id),
        "at": business_time.isoformat() if business_time else None,
    }


# --- use cases (each owns its transaction) -----------------------------------------------------------


async def _idempotent(
    db: Database,
    merchant: uuid.UUID,
    action: str,
    key: str,
    request: object,
    body: Callable[[UnitOfWork], Awaitable[dict[str, Any]]],
) -> tuple[dict[str, Any], bool]:
    """The transaction of every move: idempotency in the partner's own scope around ``body(uow)``,
    which ends in the alliance's book; the answer is stored back in the partner's."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint(action, msgspec.to_builtins(request))
    async with db.uow(merchant) as uow:
        replay = await idempotency.claim(uow, action, key, fp)
        if replay is not None:
            return dict(replay.body), True
        out = await body(uow)
        await uow.set_tenant(merchant)
        await idempotency.store(uow, action, key, 201, out)
        await uow.commit()
        return out, False


async def earn(
    db: Database,
    merchant: uuid.UUID,
    alliance_id: uuid.UUID,
    *,
    member_id: uuid.UUID,
    amount: int,
    branch_id: uuid.UUID | None,
    key: str,
    business_time: datetime | None,
) -> tuple[dict[str, Any], bool]:
    """A purchase at a partner earns alliance points at the partner's rate; the partner owes the operator
    their issue price (and the per-transaction fee) from this moment."""
    _check_amount(amount)
    at = business_time or datetime.now(UTC)

    async def body(uow: UnitOfWork) -> dict[str, Any]:
        till = await _enter(uow, alliance_id, member_id, branch_id, at)
        t = till.terms
        points = points_earned(amount, t.rate_for(str(merchant)))
        if points <= 0:
            raise RuleViolation("this purchase earns no alliance points")
        await queries.lock_issuer(uow, alliance_id, merchant)
        position, issued = await queries.position(
            uow,
            alliance_id,
            merchant,
            period=period_of(at, till.book.timezone),
            issued_kind=clearing.quantity_kind(LineKind.POINTS_ISSUED),
        )
        cap, limit = t.cap_for(str(merchant)), t.limit_for(str(merchant))
        if cap and issued + points > cap:
            raise IssuanceCapReached(f"{max(cap - issued, 0)} points left this month")
        cost = money(points, t.issue_price)
        if limit and -(position - cost - t.fee_per_transaction) > limit:
            raise CreditLimitExceeded(f"the partner owes {-position} against a limit of {limit}")
        e = t.expiry
        expires = (
            None
            if e.kind == ExpiryKind.NEVER
            else ledger_domain.expiry_for(
                at, str(e.kind), months=e.months, extra_years=e.extra_years, tz=till.book.timezone
            )
        )
        spoke = str(till.branch)
        owed = points_issued(spoke, points, t.issue_price)
        if t.fee_per_transaction:
            owed += fee(spoke, t.fee_per_transaction)
        legs = [ledger.Leg(till.member_points, points, expires_at=expires, available_at=at)]
        legs += await clearing.quantity_legs(
            uow, points_unit(alliance_id), [(till.branch, LineKind.POINTS_ISSUED, -points)]
        )
        legs += await clearing.legs(uow, till.hub, owed)
        entry = await ledger.post(
            uow,
            kind="alliance_points_issued",
            business_time=at,
            key=f"earn:{key}",
            scope=f"pos:{merchant}",
            timezone=till.book.timezone,
            legs=legs,
            refs={"merchant": str(merchant), "branch": spoke, "spend": amount},
        )
        return {
            "alliance_id": str(alliance_id),
            "member_id": str(member_id),
            "points": points,
            "issue_cost": cost,
            "fee": t.fee_per_transaction,
            "entry_id": str(entry.id),
            "period": entry.period,
            "late": entry.late,
            "balance": await _balance(uow, till.member_points, at),
        }

    return await _idempotent(
        db,
        merchant,
        "alliance.earn",
        key,
        _request(alliance_id, member_id, branch_id, business_time, amount=amount),
        body,
    )


async def redeem(
    db: Database,
    merchant: uuid.UUID,
    alliance_id: uuid.UUID,
    *,
    member_id: uuid.UUID,
    points: int,
    branch_id: uuid.UUID | None,
    key: str,
    business_time: datetime | None,
) -> tuple[dict[str, Any], bool]:
    """Alliance points taken as payment at a partner: the member gets ``member_value`` per point off the
    bill, and the operator owes the partner ``reimbursement_price`` per point."""
    if not 0 < points <= 10**12:
        raise ValidationFailed("points must be positive", field="points")
    at = business_time or datetime.now(UTC)

    async def body(uow: UnitOfWork) -> dict[str, Any]:
        till = await _enter(uow, alliance_id, member_id, branch_id, at)
        t = till.terms
        spoke = str(till.branch)
        owed = points_redeemed(spoke, points, t.reimbursement_price)
        if t.fee_per_transaction:
            owed += fee(spoke, t.fee_per_transaction)
        legs = [ledger.Leg(till.member_points, -points)]
        legs += await clearing.quantity_legs(
            uow, points_unit(alliance_id), [(till.branch, LineKind.POINTS_REDEEMED, points)]
        )
        legs += await clearing.legs(uow, till.hub, owed)
        entry = await ledger.post(
            uow,
            kind="alliance_points_redeemed",
            business_time=at,
            key=f"redeem:{key}",
            scope=f"pos:{merchant}",
            timezone=till.book.timezone,
            legs=legs,
            refs={"merchant": str(merchant), "branch": spoke},
        )
        return {
            "alliance_id": str(alliance_id),
            "member_id": str(member_id),
            "points": points,
            "discount": money(points, t.member_value),
            "reimbursement": money(points, t.reimbursement_price),
            "fee": t.fee_per_transaction,
            "entry_id": str(entry.id),
            "period": entry.period,
            "late": entry.late,
            "balance": await _balance(uow, till.member_points, at),
        }

    return await _idempotent(
        db,
        merchant,
        "alliance.redeem",
        key,
        _request(alliance_id, member_id, branch_id, business_time, points=points),
        body,
    )


async def sv_top_up(
    db: Database,
    merchant: uuid.UUID,
    alliance_id: uuid.UUID,
    *,
    member_id: uuid.UUID,
    plan: str,
    branch_id: uuid.UUID | None,
    key: str,
    business_time: datetime | None,
    payment_method: str = "cash",
) -> tuple[dict[str, Any], bool]:
    """An alliance stored-value plan bought at a partner: the partner took the cash and owes the operator
    the principal; the bonus is the funder's when it is spent."""
    at = business_time or datetime.now(UTC)

    async def body(uow: UnitOfWork) -> dict[str, Any]:
        till = await _enter(uow, alliance_id, member_id, branch_id, at)
        chosen = next((p for p in till.terms.sv.plans if p.code == plan and p.active), None)
        if chosen is None:
            raise NotFound(f"no active alliance stored-value plan {plan!r}", field="plan")
        principal, bonus, float_, expense = await _sv_accounts(uow, alliance_id, member_id, till.book.currency)
        legs = [ledger.Leg(principal, chosen.pay), ledger.Leg(float_, -chosen.pay)]
        if chosen.bonus:
            legs += [ledger.Leg(bonus, chosen.bonus), ledger.Leg(expense, -chosen.bonus)]
        legs += await clearing.legs(uow, till.hub, obligations.sv_top_up(str(till.branch), chosen.pay))
        entry = await ledger.post(
            uow,
            kind="alliance_sv_top_up",
            business_time=at,
            key=f"sv-top-up:{key}",
            scope=f"pos:{merchant}",
            timezone=till.book.timezone,
            legs=legs,
            refs={"merchant": str(merchant), "branch": str(till.branch), "payment_method": payment_method},
        )
        return {
            "alliance_id": str(alliance_id),
            "member_id": str(member_id),
            "principal": chosen.pay,
            "bonus": chosen.bonus,
            "entry_id": str(entry.id),
            "period": entry.period,
            "balance": await _sv_balances(uow, principal, bonus),
        }

    return await _idempotent(
        db,
        merchant,
        "alliance.sv_top_up",
        key,
        _request(alliance_id, member_id, branch_id, business_time, plan=plan, pay=payment_method),
        body,
    )


async def sv_spend(
    db: Database,
    merchant: uuid.UUID,
    alliance_id: uuid.UUID,
    *,
    member_id: uuid.UUID,
    amount: int,
    branch_id: uuid.UUID | None,
    key: str,
    business_time: datetime | None,
) -> tuple[dict[str, Any], bool]:
    """Pay at a partner with alliance stored value (split into principal and bonus by the terms'
    consumption order): the operator owes the partner the principal, the bonus per the funder."""
    from lianka.tenants.domain.pricing import split_stored_value

    _check_amount(amount)
    at = business_time or datetime.now(UTC)

    async def body(uow: UnitOfWork) -> dict[str, Any]:
        till = await _enter(uow, alliance_id, member_id, branch_id, at)
        sv = till.terms.sv
        principal, bonus, float_, expense = await _sv_accounts(uow, alliance_id, member_id, till.book.currency)
        have = await _sv_balances(uow, principal, bonus)
        split = split_stored_value(amount, have["sv_principal"], have["sv_bonus"], sv.consumption)
        legs: list[ledger.Leg] = []
        if split.principal:
            legs += [ledger.Leg(principal, -split.principal), ledger.Leg(float_, split.principal)]
        if split.bonus:
            legs += [ledger.Leg(bonus, -split.bonus), ledger.Leg(expense, split.bonus)]
        refs = {"merchant": str(merchant), "branch": str(till.branch)}
        entry = await ledger.post(
            uow,
            kind="alliance_sv_spent",
            business_time=at,
            key=f"sv-spend:{key}",
            scope=f"pos:{merchant}",
            timezone=till.book.timezone,
            legs=legs,
            refs=refs,
        )
        await clearing.post_consumed(
            uow,
            currency=till.book.currency,
            tz=till.book.timezone,
            branch=till.branch,
            principal=split.principal,
            sv_entry=entry,
            funder=sv.bonus_funder,
            key=f"sv-spend:{key}",
            refs=refs,
            scope=f"pos:{merchant}",
            hub=till.hub,
        )
        return {
            "alliance_id": str(alliance_id),
            "member_id": str(member_id),
            "amount": amount,
            "sv_principal": split.principal,
            "sv_bonus": split.bonus,
            "entry_id": str(entry.id),
            "period": entry.period,
            "balance": await _sv_balances(uow, principal, bonus),
        }

    return await _idempotent(
        db,
        merchant,
        "alliance.sv_spend",
        key,
        _request(alliance_id, member_id, branch_id, business_time, amount=amount),
        body,
    )


async def card_balance(
    db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, member_id: uuid.UUID
) -> dict[str, Any]:
    """What a partner's till may see of an alliance card: its alliance balances, nothing else."""
    async with db.uow(merchant) as uow:
        await membership(uow, alliance_id)
        if not await queries.is_cardholder(uow, alliance_id, member_id):
            raise NotACardholder("not an alliance card", field="member_id")
        await uow.set_tenant(alliance_id)
        account = await ledger.open_account(
            uow, owner_kind="member", owner_id=member_id, kind="alliance_points", unit=points_unit(alliance_id)
        )
        now = datetime.now(UTC)
        currency = (await queries.alliance(uow)).currency
        principal, bonus, *_ = await _sv_accounts(uow, alliance_id, member_id, currency)
        out = {
            "alliance_id": str(alliance_id),
            "member_id": str(member_id),
            **await _balance(uow, account, now),
            **await _sv_balances(uow, principal, bonus),
        }
        await uow.commit()  # the accounts it opened
        return out


async def find_card(
    db: Database,
    merchant: uuid.UUID,
    alliance_id: uuid.UUID,
    *,
    card: str | None,
    qr: str | None,
    phone: str | None = None,
) -> dict[str, Any]:
    """One card everywhere: a partner's till finds an alliance cardholder by card number, a current QR
    token or the phone the customer gives, even when the person is another partner's member — and
    learns the member id and the alliance balances only (no phone, no profile, no purchases). A
    partner the member switched off (``recognition``) gets the stranger's 404, whichever way it asks."""
    from lianka.platform.identity.members import is_valid_card_number, normalise_phone, parse_qr, qr_matches

    if len(card or "") > CARD_MAX or len(qr or "") > CARD_MAX or len(phone or "") > CARD_MAX:
        raise ValidationFailed(
            f"card, qr and phone: at most {CARD_MAX} characters", field="qr" if qr else "phone" if phone else "card"
        )
    async with db.uow(merchant) as uow:
        await membership(uow, alliance_id)
    if qr:
        card_no, step, mac = parse_qr(qr)
    elif card:
        card_no, step, mac = card.strip(), 0, ""
    elif phone:
        e164 = normalise_phone(phone)
        async with db.uow(system=True) as uow:
            by_phone = await queries.member_by_phone(uow, e164)
        if by_phone is None:
            raise NotACardholder("not an alliance card")
        return await card_balance(db, merchant, alliance_id, by_phone.id)
    else:
        raise ValidationFailed("give card, qr or phone")
    if not is_valid_card_number(card_no):
        raise NotACardholder("not an alliance card")
    async with db.uow(system=True) as uow:
        found = await queries.member_by_card(uow, card_no)
    if found is None or (qr and not qr_matches(card_no, found.qr_secret, step, mac)):
        raise NotACardholder("not an alliance card (or the QR code has expired)")
    return {**await card_balance(db, merchant, alliance_id, found.id), "card_number": card_no}
