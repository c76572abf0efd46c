"""Alliances: creation, invitations, partners' status, versioned terms, and the till's alliance moves.

An alliance has its own book (its id is the ``tenant_id`` of its ledger rows and of its tables, so
RLS keeps it apart from every merchant). A partner's request runs in the partner's transaction and
switches that transaction into the alliance's book only after checking, through a database function
that answers for the asking merchant alone, that it is an active partner. One transaction, so an
alliance move and the partner's idempotency record commit together or not at all.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from lianka.alliance.alliances.domain import Terms, TermsError, decode
from lianka.alliance.ledger import domain as ledger_domain
from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import clearing
from lianka.alliance.settlement import domain as obligations
from lianka.alliance.settlement.domain import LineKind, fee, money, points_issued, points_redeemed
from lianka.platform import idempotency, validate
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import Conflict, Forbidden, NotFound, RuleViolation, ValidationFailed
from lianka.tenants.domain.programme import ExpiryKind

SINCE_EVER = datetime(2000, 1, 1, tzinfo=UTC)
#: an alliance's code (also the database's check): what ``alliance:<code>`` names on the command line
CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,39}$"
#: longest invitation note, terms note, card number or QR token accepted
NOTE_MAX, TERMS_NOTE_MAX, CARD_MAX = 200, 400, 128


class NotAPartner(NotFound):
    type_slug = "alliance-not-found"
    title = "No such alliance among yours"


class PartnerInactive(RuleViolation):
    type_slug = "partner-inactive"
    title = "This partner is suspended or has left the alliance"


class IssuanceCapReached(RuleViolation):
    type_slug = "issuance-cap-reached"
    title = "The partner's monthly issuance cap is reached"


class CreditLimitExceeded(RuleViolation):
    type_slug = "credit-limit-exceeded"
    title = "The partner owes more than its credit limit: settle before issuing points"


class NotACardholder(NotFound):
    type_slug = "not-a-cardholder"
    title = "This card is not an alliance card"


def points_unit(alliance_id: uuid.UUID) -> str:
    return f"PTS:alliance:{alliance_id.hex}"


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


@dataclass(frozen=True)
class Alliance:
    id: uuid.UUID
    code: str
    name: str
    currency: str
    timezone: str
    role: str
    status: str


async def membership(uow: UnitOfWork, alliance_id: uuid.UUID) -> tuple[str, str]:
    """(role, status) of the unit of work's merchant in the alliance; NotAPartner when it never joined."""
    row = (await uow.session.execute(text(
        "SELECT role, status FROM lianka_my_alliances() WHERE alliance_id = :a"), {"a": alliance_id})).first()
    if row is None:
        raise NotAPartner("alliance not found")
    return row.role, row.status


async def my_alliances(db: Database, merchant: uuid.UUID) -> list[Alliance]:
    async with db.uow(merchant) as uow:
        mine = list(await uow.session.execute(text("SELECT alliance_id, role, status FROM lianka_my_alliances()")))
    out = []
    for r in mine:
        async with db.uow(r.alliance_id) as uow:
            a = (await uow.session.execute(text("SELECT code, name, currency, timezone FROM alliances")) ).one()
        out.append(Alliance(r.alliance_id, a.code, a.name, a.currency, a.timezone, r.role, r.status))
    return sorted(out, key=lambda a: a.code)


async def get(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID) -> Alliance:
    async with db.uow(merchant) as uow:
        role, status = await membership(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        a = (await uow.session.execute(text("SELECT code, name, currency, timezone FROM alliances"))).one()
    return Alliance(alliance_id, a.code, a.name, a.currency, a.timezone, role, status)


async def require_operator(uow: UnitOfWork, alliance_id: uuid.UUID) -> None:
    role, _ = await membership(uow, alliance_id)
    if role != "operator":
        raise Forbidden("only the alliance's operator may do this")


async def create(db: Database, merchant: uuid.UUID, *, code: str, name: str, terms: Terms,
                 currency: str | None = None, timezone: str | None = None) -> Alliance:
    """A merchant founds an alliance and operates it; its terms' first version applies from the start.

    The currency and time zone default to the merchant's; given ones are checked first (an ISO 4217
    currency the ledger books, an IANA zone every month-end close can load), so nothing is written for
    a bad one."""
    if not re.fullmatch(CODE_PATTERN.strip("^$"), code):  # fullmatch: "$" alone lets a final newline through
        raise ValidationFailed("code: 2-40 lowercase letters, digits or '-'", field="code")
    if not name.strip() or len(name) > 200:
        raise ValidationFailed("name: 1-200 characters", field="name")
    if currency is not None:
        validate.currency(currency)
    if timezone is not None:
        validate.time_zone(timezone)
    alliance_id = uuid.uuid4()
    async with db.uow(merchant) as uow:
        m = (await uow.session.execute(text("SELECT name, currency, timezone FROM merchants WHERE id = :m"),
                                       {"m": merchant})).one()
        await uow.set_tenant(alliance_id)
        try:
            async with uow.session.begin_nested():
                await uow.session.execute(text(
                    "INSERT INTO alliances (id, code, name, currency, timezone, operator_merchant_id) "
                    "VALUES (:a, :c, :n, :cur, :tz, :m)"),
                    {"a": alliance_id, "c": code, "n": name, "cur": currency or m.currency,
                     "tz": timezone or m.timezone, "m": merchant})
        except IntegrityError as exc:
            if "uq_alliances_code" in str(exc.orig):
                raise Conflict(f"an alliance with code {code!r} exists", field="code") from None
            raise
        await uow.session.execute(text(
            "INSERT INTO alliance_partners (alliance_id, merchant_id, name, role, status) "
            "VALUES (:a, :m, :n, 'operator', 'active')"), {"a": alliance_id, "m": merchant, "n": m.name})
        await _write_terms(uow, alliance_id, terms, SINCE_EVER, "founding terms")
        await uow.commit()
    return Alliance(alliance_id, code, name, currency or m.currency, timezone or m.timezone, "operator", "active")


async def _write_terms(uow: UnitOfWork, alliance_id: uuid.UUID, terms: Terms, effective_from: datetime,
                       note: str) -> int:
    await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                              {"k": f"alliance-terms:{alliance_id}"})
    version = int(await uow.session.scalar(text(
        "SELECT coalesce(max(version), 0) + 1 FROM alliance_terms WHERE alliance_id = :a"), {"a": alliance_id}))
    await uow.session.execute(text(
        "INSERT INTO alliance_terms (alliance_id, version, effective_from, document, note) "
        "VALUES (:a, :v, :e, CAST(:d AS jsonb), :n)"),
        {"a": alliance_id, "v": version, "e": effective_from,
         "d": msgspec.json.encode(terms).decode(), "n": note})
    return version


async def publish_terms(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, document: object, *,
                        effective_from: datetime | None, note: str = "") -> int:
    """A new terms version from ``effective_from`` (now; never back-dated: past postings keep theirs)."""
    try:
        terms = decode(document)
    except TermsError as exc:
        raise ValidationFailed(str(exc)) from None
    if len(note) > TERMS_NOTE_MAX:
        raise ValidationFailed(f"note: at most {TERMS_NOTE_MAX} characters", field="note")
    now = datetime.now(UTC)
    if effective_from is not None and (effective_from.tzinfo is None or effective_from < now - timedelta(minutes=5)):
        raise ValidationFailed("effective_from needs a time zone and may not be in the past", field="effective_from")
    async with db.uow(merchant) as uow:
        await require_operator(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        version = await _write_terms(uow, alliance_id, terms, effective_from or now, note)
        await uow.commit()
    return version


async def terms_at(uow: UnitOfWork, alliance_id: uuid.UUID, at: datetime) -> tuple[int, Terms]:
    """The terms in force at ``at`` (the unit of work is in the alliance's book)."""
    row = (await uow.session.execute(text(
        "SELECT version, document FROM alliance_terms WHERE alliance_id = :a AND effective_from <= :at "
        "ORDER BY version DESC LIMIT 1"), {"a": alliance_id, "at": at})).first()
    if row is None:
        raise NotFound("the alliance has no terms in force at that time")
    return row.version, decode(row.document)


async def terms_history(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID) -> list[dict[str, Any]]:
    async with db.uow(merchant) as uow:
        await membership(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        rows = await uow.session.execute(text(
            "SELECT version, effective_from, document, note FROM alliance_terms WHERE alliance_id = :a "
            "ORDER BY version DESC"), {"a": alliance_id})
        return [{"version": r.version, "effective_from": r.effective_from, "document": r.document, "note": r.note}
                for r in rows]


async def invite(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, *, note: str = "",
                 days: int = 14) -> tuple[str, datetime]:
    """An invitation code for one merchant to join (shown once; stored hashed)."""
    if not 1 <= days <= 90:
        raise ValidationFailed("an invitation is valid for 1 to 90 days", field="days")
    if len(note) > NOTE_MAX:
        raise ValidationFailed(f"note: at most {NOTE_MAX} characters", field="note")
    code = f"LKA-{secrets.token_urlsafe(18)}"
    expires = datetime.now(UTC) + timedelta(days=days)
    async with db.uow(merchant) as uow:
        await require_operator(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        await uow.session.execute(text(
            "INSERT INTO alliance_invites (alliance_id, code_hash, note, expires_at) VALUES (:a, :h, :n, :e)"),
            {"a": alliance_id, "h": _hash(code), "n": note, "e": expires})
        await uow.commit()
    return code, expires


async def accept(db: Database, merchant: uuid.UUID, code: str) -> Alliance:
    """A merchant admin accepts an invitation: the merchant becomes an active partner."""
    async with db.uow(merchant) as uow:
        found = (await uow.session.execute(text("SELECT alliance_id, invite_id FROM lianka_find_invite(:h)"),
                                           {"h": _hash(code)})).first()
        if found is None:
            raise NotFound("invitation not found, used or expired", field="code")
        name = await uow.session.scalar(text("SELECT name FROM merchants WHERE id = :m"), {"m": merchant})
        await uow.set_tenant(found.alliance_id)
        claimed = await uow.session.execute(text(
            "UPDATE alliance_invites SET accepted_by = :m, accepted_at = now() "
            "WHERE alliance_id = :a AND id = :i AND accepted_by IS NULL AND expires_at > now()"),
            {"m": merchant, "a": found.alliance_id, "i": found.invite_id})
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("invitation not found, used or expired", field="code")
        joined = await uow.session.execute(text(
            "INSERT INTO alliance_partners (alliance_id, merchant_id, name, role, status) "
            "VALUES (:a, :m, :n, 'partner', 'active') "
            "ON CONFLICT (alliance_id, merchant_id) DO UPDATE SET status = 'active', changed_at = now() "
            "WHERE alliance_partners.status = 'left'"), {"a": found.alliance_id, "m": merchant, "n": name})
        if joined.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("this merchant is already in the alliance")
        await uow.commit()
    return await get(db, merchant, found.alliance_id)


async def set_status(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, partner: uuid.UUID,
                     status: str) -> None:
    """The operator suspends or reinstates a partner; a partner leaves (never the operator)."""
    if status not in ("active", "suspended", "left"):
        raise ValidationFailed("status is active, suspended or left", field="status")
    async with db.uow(merchant) as uow:
        role, _ = await membership(uow, alliance_id)
        if status == "left" and partner != merchant and role != "operator":
            raise Forbidden("a partner may only leave itself")
        if status != "left" and role != "operator":
            raise Forbidden("only the operator suspends or reinstates partners")
        await uow.set_tenant(alliance_id)
        row = (await uow.session.execute(text(
            "SELECT role FROM alliance_partners WHERE alliance_id = :a AND merchant_id = :m FOR UPDATE"),
            {"a": alliance_id, "m": partner})).first()
        if row is None:
            raise NotFound("partner not found")
        if row.role == "operator":
            raise RuleViolation("the operator cannot be suspended or leave its own alliance")
        await uow.session.execute(text(
            "UPDATE alliance_partners SET status = :s, changed_at = now() WHERE alliance_id = :a AND merchant_id = :m"),
            {"s": status, "a": alliance_id, "m": partner})
        await uow.commit()


async def partners(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID) -> list[dict[str, Any]]:
    async with db.uow(merchant) as uow:
        await membership(uow, alliance_id)
        await uow.set_tenant(alliance_id)
        rows = await uow.session.execute(text(
            "SELECT merchant_id, name, role, status, joined_at FROM alliance_partners WHERE alliance_id = :a "
            "ORDER BY joined_at"), {"a": alliance_id})
        return [dict(r._mapping) for r in rows]


# --- the till -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Till:
    alliance_id: uuid.UUID
    currency: str
    tz: str
    branch: uuid.UUID
    terms: Terms
    member_points: ledger.Account


async def _enter(uow: UnitOfWork, alliance_id: uuid.UUID, member_id: uuid.UUID, branch_id: uuid.UUID | None,
                 at: datetime) -> _Till:
    """From the partner's transaction into the alliance's book, checking everything on the way."""
    merchant = uow.tenant_id
    assert merchant is not None
    _, status = await membership(uow, alliance_id)
    if status != "active":
        raise PartnerInactive(f"this merchant is {status} in the alliance")
    if branch_id is None:
        raise ValidationFailed("which branch? give branch_id (or use a branch-bound terminal)", field="branch_id")
    branch = (await uow.session.execute(text("SELECT code, name FROM branches WHERE id = :b"),
                                        {"b": branch_id})).first()
    if branch is None:
        raise NotFound("branch not found", field="branch_id")
    if not await uow.session.scalar(text("SELECT lianka_is_cardholder(:a, :m)"), {"a": alliance_id, "m": member_id}):
        raise NotACardholder("not an alliance card", field="member_id")
    await uow.set_tenant(alliance_id)
    a = (await uow.session.execute(text("SELECT currency, timezone FROM alliances"))).one()
    _, terms = await terms_at(uow, alliance_id, at)
    await uow.session.execute(text(
        "INSERT INTO alliance_spokes (alliance_id, branch_id, merchant_id, code, name) VALUES (:a, :b, :m, :c, :n) "
        "ON CONFLICT (alliance_id, branch_id) DO UPDATE SET code = EXCLUDED.code, name = EXCLUDED.name "
        "WHERE alliance_spokes.code <> EXCLUDED.code OR alliance_spokes.name <> EXCLUDED.name"),
        {"a": alliance_id, "b": branch_id, "m": merchant, "c": branch.code, "n": branch.name})
    account = await ledger.open_account(uow, owner_kind="member", owner_id=member_id, kind="alliance_points",
                                        unit=points_unit(alliance_id))
    return _Till(alliance_id, a.currency, a.timezone, branch_id, terms, account)


async def _position(uow: UnitOfWork, alliance_id: uuid.UUID, merchant: uuid.UUID,
                    period: str | None) -> tuple[int, int]:
    """(money position of the partner over all time — negative: it owes —, points it issued in ``period``)."""
    row = (await uow.session.execute(text(
        "SELECT coalesce(sum(p.amount) FILTER (WHERE a.kind LIKE 'clr\\_%'), 0) AS position, "
        "coalesce(-sum(p.amount) FILTER (WHERE a.kind = :q AND e.period = :period), 0) AS issued "
        "FROM alliance_spokes s JOIN ledger_accounts a ON a.tenant_id = :a AND a.owner_kind = 'branch' "
        "AND a.owner_id = s.branch_id JOIN ledger_postings p ON p.tenant_id = :a AND p.account_id = a.id "
        "JOIN ledger_entries e ON e.tenant_id = :a AND e.id = p.entry_id "
        "WHERE s.alliance_id = :a AND s.merchant_id = :m"),
        {"a": alliance_id, "m": merchant, "q": f"{clearing.QTY_PREFIX}{LineKind.POINTS_ISSUED.value}",
         "period": period})).one()
    return int(row.position), int(row.issued)


def _period(at: datetime, tz: str) -> str:
    from zoneinfo import ZoneInfo

    local = at.astimezone(ZoneInfo(tz))
    return f"{local.year:04d}-{local.month:02d}"


async def _balance(uow: UnitOfWork, account: ledger.Account, at: datetime) -> dict[str, int]:
    return {"points": await ledger.balance(uow, account), "available": await ledger.available_points(uow, account, at)}


async def _run(db: Database, merchant: uuid.UUID, action: str, key: str, request: object,
               body: Any) -> tuple[dict[str, Any], bool]:
    """Idempotency in the partner's own scope around ``body(uow)``, which ends back in the partner's book."""
    idempotency.check_key(key)
    fp = idempotency.fingerprint(action, msgspec.to_builtins(request))
    async with db.uow(merchant) as uow:
        replay = await idempotency.claim(uow, action, key, fp)
        if replay is not None:
            return dict(replay.body), True
        out: dict[str, Any] = await body(uow)
        await uow.set_tenant(merchant)
        await idempotency.store(uow, action, key, 201, out)
        await uow.commit()
        return out, False


async def earn(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, *, member_id: uuid.UUID, amount: int,
               branch_id: uuid.UUID | None, key: str, business_time: datetime | None) -> tuple[dict[str, Any], bool]:
    """A purchase at a partner earns alliance points at the partner's rate; the partner owes the operator
    their issue price (and the per-transaction fee) from this moment."""
    if not 0 < amount <= 10**11:
        raise ValidationFailed("amount must be a positive number of fen", field="amount")
    at = business_time or datetime.now(UTC)
    request = {"alliance": str(alliance_id), "member": str(member_id), "amount": amount, "branch": str(branch_id),
               "at": business_time.isoformat() if business_time else None}

    async def body(uow: UnitOfWork) -> dict[str, Any]:
        till = await _enter(uow, alliance_id, member_id, branch_id, at)
        t = till.terms
        points = int((Decimal(amount) / 100 * t.rate_for(str(merchant))).to_integral_value(ROUND_DOWN))
        if points <= 0:
            raise RuleViolation("this purchase earns no alliance points")
        await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                  {"k": f"alliance-issuer:{alliance_id}:{merchant}"})
        position, issued = await _position(uow, alliance_id, merchant, _period(at, till.tz))
        cap, limit = t.cap_for(str(merchant)), t.limit_for(str(merchant))
        if cap and issued + points > cap:
            raise IssuanceCapReached(f"{max(cap - issued, 0)} points left this month")
        cost = money(points, t.issue_price)
        if limit and -(position - cost - t.fee_per_transaction) > limit:
            raise CreditLimitExceeded(f"the partner owes {-position} against a limit of {limit}")
        e = t.expiry
        expires = ledger_domain.expiry_for(at, str(e.kind), months=e.months, extra_years=e.extra_years, tz=till.tz) \
            if e.kind != ExpiryKind.NEVER else None
        spoke = str(till.branch)
        obligations = points_issued(spoke, points, t.issue_price)
        if t.fee_per_transaction:
            obligations += fee(spoke, t.fee_per_transaction)
        legs = [ledger.Leg(till.member_points, points, expires_at=expires, available_at=at)]
        legs += await clearing.quantity_legs(uow, points_unit(alliance_id),
                                             [(till.branch, LineKind.POINTS_ISSUED, -points)])
        legs += await clearing.legs(uow, clearing.Hub("alliance", alliance_id, till.currency), obligations)
        entry = await ledger.post(uow, kind="alliance_points_issued", business_time=at, key=f"earn:{key}",
                                  scope=f"pos:{merchant}", timezone=till.tz, legs=legs,
                                  refs={"merchant": str(merchant), "branch": spoke, "spend": amount})
        return {"alliance_id": str(alliance_id), "member_id": str(member_id), "points": points,
                "issue_cost": cost, "fee": t.fee_per_transaction, "entry_id": str(entry.id), "period": entry.period,
                "late": entry.late, "balance": await _balance(uow, till.member_points, at)}

    return await _run(db, merchant, "alliance.earn", key, request, body)


async def redeem(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, *, member_id: uuid.UUID, points: int,
                 branch_id: uuid.UUID | None, key: str, business_time: datetime | None) -> tuple[dict[str, Any], bool]:
    """Alliance points taken as payment at a partner: the member gets ``member_value`` per point off the
    bill, and the operator owes the partner ``reimbursement_price`` per point."""
    if not 0 < points <= 10**12:
        raise ValidationFailed("points must be positive", field="points")
    at = business_time or datetime.now(UTC)
    request = {"alliance": str(alliance_id), "member": str(member_id), "points": points, "branch": str(branch_id),
               "at": business_time.isoformat() if business_time else None}

    async def body(uow: UnitOfWork) -> dict[str, Any]:
        till = await _enter(uow, alliance_id, member_id, branch_id, at)
        t = till.terms
        spoke = str(till.branch)
        obligations = points_redeemed(spoke, points, t.reimbursement_price)
        if t.fee_per_transaction:
            obligations += fee(spoke, t.fee_per_transaction)
        legs = [ledger.Leg(till.member_points, -points)]
        legs += await clearing.quantity_legs(uow, points_unit(alliance_id),
                                             [(till.branch, LineKind.POINTS_REDEEMED, points)])
        legs += await clearing.legs(uow, clearing.Hub("alliance", alliance_id, till.currency), obligations)
        entry = await ledger.post(uow, kind="alliance_points_redeemed", business_time=at, key=f"redeem:{key}",
                                  scope=f"pos:{merchant}", timezone=till.tz, legs=legs,
                                  refs={"merchant": str(merchant), "branch": spoke})
        return {"alliance_id": str(alliance_id), "member_id": str(member_id), "points": points,
                "discount": money(points, t.member_value), "reimbursement": money(points, t.reimbursement_price),
                "fee": t.fee_per_transaction, "entry_id": str(entry.id), "period": entry.period, "late": entry.late,
                "balance": await _balance(uow, till.member_points, at)}

    return await _run(db, merchant, "alliance.redeem", key, request, body)


async def card_balance(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, member_id: uuid.UUID
                       ) -> dict[str, Any]:
    """What a partner's till may see of an alliance card: its alliance balance, nothing else."""
    async with db.uow(merchant) as uow:
        await membership(uow, alliance_id)
        if not await uow.session.scalar(text("SELECT lianka_is_cardholder(:a, :m)"),
                                        {"a": alliance_id, "m": member_id}):
            raise NotACardholder("not an alliance card", field="member_id")
        await uow.set_tenant(alliance_id)
        account = await ledger.open_account(uow, owner_kind="member", owner_id=member_id, kind="alliance_points",
                                            unit=points_unit(alliance_id))
        now = datetime.now(UTC)
        currency = (await uow.session.execute(text("SELECT currency FROM alliances"))).scalar_one()
        principal, bonus, *_ = await _sv_accounts(uow, alliance_id, member_id, currency)
        out = {"alliance_id": str(alliance_id), "member_id": str(member_id), **await _balance(uow, account, now),
               **await _sv_balances(uow, principal, bonus)}
        await uow.commit()
        return out


# --- alliance stored value ----------------------------------------------------------------------

async def _sv_accounts(uow: UnitOfWork, alliance_id: uuid.UUID, member_id: uuid.UUID, currency: str
                       ) -> tuple[ledger.Account, ledger.Account, ledger.Account, ledger.Account]:
    principal = await ledger.open_account(uow, owner_kind="member", owner_id=member_id, kind="alliance_sv_principal",
                                          unit=currency)
    bonus = await ledger.open_account(uow, owner_kind="member", owner_id=member_id, kind="alliance_sv_bonus",
                                      unit=currency, lots=True)
    float_ = await ledger.open_account(uow, owner_kind="alliance", owner_id=alliance_id, kind="sv_float",
                                       unit=currency, allow_negative=True, tracked=False)
    bonus_expense = await ledger.open_account(uow, owner_kind="alliance", owner_id=alliance_id,
                                              kind="sv_bonus_expense", unit=currency, allow_negative=True,
                                              tracked=False)
    return principal, bonus, float_, bonus_expense


async def _sv_balances(uow: UnitOfWork, principal: ledger.Account, bonus: ledger.Account) -> dict[str, int]:
    return {"sv_principal": await ledger.balance(uow, principal), "sv_bonus": await ledger.balance(uow, bonus)}


async def sv_top_up(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, *, member_id: uuid.UUID, plan: str,
                    branch_id: uuid.UUID | None, key: str, business_time: datetime | None,
                    payment_method: str = "cash") -> tuple[dict[str, Any], bool]:
    """An alliance stored-value plan bought at a partner: the partner took the cash and owes the operator
    the principal; the bonus is the funder's when it is spent."""
    at = business_time or datetime.now(UTC)
    request = {"alliance": str(alliance_id), "member": str(member_id), "plan": plan, "branch": str(branch_id),
               "at": business_time.isoformat() if business_time else None, "pay": payment_method}

    async def body(uow: UnitOfWork) -> dict[str, Any]:
        till = await _enter(uow, alliance_id, member_id, branch_id, at)
        chosen = next((p for p in till.terms.sv.plans if p.code == plan and p.active), None)
        if chosen is None:
            raise NotFound(f"no active alliance stored-value plan {plan!r}", field="plan")
        principal, bonus, float_, expense = await _sv_accounts(uow, alliance_id, member_id, till.currency)
        legs = [ledger.Leg(principal, chosen.pay), ledger.Leg(float_, -chosen.pay)]
        if chosen.bonus:
            legs += [ledger.Leg(bonus, chosen.bonus), ledger.Leg(expense, -chosen.bonus)]
        legs += await clearing.legs(uow, clearing.Hub("alliance", alliance_id, till.currency),
                                    obligations.sv_top_up(str(till.branch), chosen.pay))
        entry = await ledger.post(uow, kind="alliance_sv_top_up", business_time=at, key=f"sv-top-up:{key}",
                                  scope=f"pos:{merchant}", timezone=till.tz, legs=legs,
                                  refs={"merchant": str(merchant), "branch": str(till.branch),
                                        "payment_method": payment_method})
        return {"alliance_id": str(alliance_id), "member_id": str(member_id), "principal": chosen.pay,
                "bonus": chosen.bonus, "entry_id": str(entry.id), "period": entry.period,
                "balance": await _sv_balances(uow, principal, bonus)}

    return await _run(db, merchant, "alliance.sv_top_up", key, request, body)


async def sv_spend(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, *, member_id: uuid.UUID, amount: int,
                   branch_id: uuid.UUID | None, key: str, business_time: datetime | None
                   ) -> tuple[dict[str, Any], bool]:
    """Pay at a partner with alliance stored value (split into principal and bonus by the terms'
    consumption order): the operator owes the partner the principal, the bonus per the funder."""
    from lianka.tenants.domain.pricing import split_stored_value

    if not 0 < amount <= 10**11:
        raise ValidationFailed("amount must be a positive number of fen", field="amount")
    at = business_time or datetime.now(UTC)
    request = {"alliance": str(alliance_id), "member": str(member_id), "amount": amount, "branch": str(branch_id),
               "at": business_time.isoformat() if business_time else None}

    async def body(uow: UnitOfWork) -> dict[str, Any]:
        till = await _enter(uow, alliance_id, member_id, branch_id, at)
        sv = till.terms.sv
        principal, bonus, float_, expense = await _sv_accounts(uow, alliance_id, member_id, till.currency)
        have = await _sv_balances(uow, principal, bonus)
        split = split_stored_value(amount, have["sv_principal"], have["sv_bonus"], sv.consumption)
        legs: list[ledger.Leg] = []
        if split.principal:
            legs += [ledger.Leg(principal, -split.principal), ledger.Leg(float_, split.principal)]
        if split.bonus:
            legs += [ledger.Leg(bonus, -split.bonus), ledger.Leg(expense, split.bonus)]
        refs = {"merchant": str(merchant), "branch": str(till.branch)}
        entry = await ledger.post(uow, kind="alliance_sv_spent", business_time=at, key=f"sv-spend:{key}",
                                  scope=f"pos:{merchant}", timezone=till.tz, legs=legs, refs=refs)
        await clearing.post_consumed(uow, currency=till.currency, tz=till.tz, branch=till.branch,
                                     principal=split.principal, sv_entry=entry, funder=sv.bonus_funder,
                                     key=f"sv-spend:{key}", refs=refs, scope=f"pos:{merchant}",
                                     hub=clearing.Hub("alliance", alliance_id, till.currency))
        return {"alliance_id": str(alliance_id), "member_id": str(member_id), "amount": amount,
                "sv_principal": split.principal, "sv_bonus": split.bonus, "entry_id": str(entry.id),
                "period": entry.period, "balance": await _sv_balances(uow, principal, bonus)}

    return await _run(db, merchant, "alliance.sv_spend", key, request, body)


# --- breakage -------------------------------------------------------------------------------------

async def breakage_hook(uow: UnitOfWork, book: uuid.UUID) -> Any:
    """For the expiry job: the hook that returns an alliance's breakage to the issuers (None for a
    merchant's book). ``uow`` is in system scope."""
    if not await uow.session.scalar(text("SELECT 1 FROM alliances WHERE id = :a"), {"a": book}):
        return None
    return lambda u, entry: return_breakage(u, book, entry)


async def return_breakage(uow: UnitOfWork, alliance_id: uuid.UUID, expiry: ledger.Entry) -> None:
    """Breakage policy ``issuers``: each partner branch that issued now-expired points gets their issue
    price back (the operator keeps nothing of them); policy ``operator``: nothing to do, the liability
    released by the expiry entry is the operator's."""
    from lianka.alliance.alliances.domain import BreakagePolicy
    from lianka.alliance.settlement.domain import points_expired_to_issuers

    _, terms = await terms_at(uow, alliance_id, expiry.business_time)
    if terms.breakage != BreakagePolicy.ISSUERS:
        return
    rows = await uow.session.execute(text(
        "SELECT coalesce(e.refs->>'branch', '') AS issuer, -sum(m.amount) AS points FROM ledger_lot_moves m "
        "JOIN ledger_lots l ON l.tenant_id = m.tenant_id AND l.id = m.lot_id "
        "JOIN ledger_entries e ON e.tenant_id = l.tenant_id AND e.id = l.entry_id "
        "WHERE m.entry_id = :x GROUP BY 1"), {"x": expiry.id})
    by_issuer = {r.issuer: int(r.points) for r in rows if r.issuer and r.points > 0}
    if not by_issuer:
        return
    a = (await uow.session.execute(text("SELECT currency, timezone FROM alliances"))).one()
    unit = points_unit(alliance_id)
    breakage = await ledger.open_account(uow, owner_kind="merchant", owner_id=alliance_id, kind="points_breakage",
                                        unit=unit)
    legs = await clearing.legs(uow, clearing.Hub("alliance", alliance_id, a.currency),
                               points_expired_to_issuers(by_issuer, terms.issue_price))
    legs += await clearing.quantity_legs(uow, unit, [(uuid.UUID(i), LineKind.POINTS_EXPIRED, n)
                                                     for i, n in sorted(by_issuer.items())])
    legs.append(ledger.Leg(breakage, -sum(by_issuer.values())))
    await ledger.post(uow, kind="clearing_breakage", business_time=expiry.business_time, key=f"breakage:{expiry.id}",
                      scope="ledger.expiry", timezone=a.timezone, legs=legs, refs={"expiry": str(expiry.id)})


async def find_card(db: Database, merchant: uuid.UUID, alliance_id: uuid.UUID, *, card: str | None,
                    qr: str | None) -> dict[str, Any]:
    """One card everywhere: a partner's till finds an alliance cardholder by card number or a current QR
    token even when the person is another partner's member — and learns the member id and the alliance
    balances only (no phone, no profile, no purchases)."""
    from lianka.platform.identity.members import is_valid_card_number, parse_qr, qr_matches

    if len(card or "") > CARD_MAX or len(qr or "") > CARD_MAX:
        raise ValidationFailed(f"card and qr: at most {CARD_MAX} characters", field="qr" if qr else "card")
    async with db.uow(merchant) as uow:
        await membership(uow, alliance_id)
    if qr:
        card_no, step, mac = parse_qr(qr)
    elif card:
        card_no, step, mac = card.strip(), 0, ""
    else:
        raise ValidationFailed("give card or qr")
    if not is_valid_card_number(card_no):
        raise NotACardholder("not an alliance card")
    async with db.uow(system=True) as uow:
        row = (await uow.session.execute(text("SELECT id, qr_secret FROM members WHERE card_number = :c"),
                                         {"c": card_no})).first()
    if row is None or (qr and not qr_matches(card_no, bytes(row.qr_secret), step, mac)):
        raise NotACardholder("not an alliance card (or the QR code has expired)")
    return {**await card_balance(db, merchant, alliance_id, row.id), "card_number": card_no}
