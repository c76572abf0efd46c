"""Members as a merchant sees them (CRM): the list (phones masked), a member's profile and marketing
consent, the member detail (balances, tier progress, coupons, purchases, points history, lifecycle)
and the logged full export.

A member's card works at every branch, so staff of any branch see the merchant's member list; what
is limited by branch is what they may *do* (sell, refund) — see decision 0010.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lianka.alliance.ledger import services as ledger
from lianka.platform import audit, idempotency
from lianka.platform.cells import safe_row
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.webhooks import services as webhooks
from lianka.tenants import crm_queries, queries, referral_queries
from lianka.tenants.crm_queries import ListFilter
from lianka.tenants.domain import lifecycle, tiers
from lianka.tenants.domain.imports import mask_phone, valid_email
from lianka.tenants.domain.rules import base_tier
from lianka.tenants.marketing import queries as marketing_queries
from lianka.tenants.models import ExportLog, MemberProfile
from lianka.tenants.services import accounts
from lianka.tenants.services.programme import programme_at

CHANNELS = frozenset({"sms", "email", "wechat", "push", "phone", "alliance"})
GENDERS = frozenset({"male", "female", "other", "unknown"})
MAX_PAGE = 200
#: the deepest page a list may ask for (PostgreSQL's OFFSET is a bigint; nobody pages a billion rows)
MAX_OFFSET = 10**9


def _check_stage(stage: str | None) -> None:
    if stage is not None and stage not in {s.value for s in lifecycle.Stage}:
        raise ValidationFailed(f"stage is one of {', '.join(s.value for s in lifecycle.Stage)}", field="stage")


def _stage_of(joined: datetime, last: datetime | None, today: date) -> str:
    return lifecycle.stage(joined.date(), last.date() if last else None, today).value


async def list_members(
    uow: UnitOfWork, f: ListFilter, *, limit: int = 50, offset: int = 0, full_phone: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """One page of members (newest first) and the total matching; phones masked unless exporting."""
    if not 1 <= limit <= (10**6 if full_phone else MAX_PAGE):
        raise ValidationFailed(f"limit is 1 to {MAX_PAGE}", field="limit")
    if not 0 <= offset <= MAX_OFFSET:
        raise ValidationFailed(f"offset is 0 to {MAX_OFFSET}", field="offset")
    _check_stage(f.stage)
    _, tz = await accounts.merchant_info(uow)
    today = datetime.now(UTC).astimezone(ZoneInfo(tz)).date()
    rows, total = await crm_queries.member_list(uow, f, today, limit=limit, offset=offset)
    out = []
    for r in rows:
        out.append(
            {
                "member_id": r.member_id,
                "card_number": r.card_number,
                "phone": r.phone if full_phone or not r.phone else mask_phone(r.phone),
                "erased": r.erased_at is not None,
                "name": r.name,
                "tier": r.tier_code,
                "tags": list(r.tags),
                "joined_at": r.joined_at,
                "last_purchase_at": r.last_purchase_at,
                "cumulative_spend": r.spend,
                "purchase_count": r.purchases,
                "source": r.source,
                "stage": _stage_of(r.joined_at, r.last_purchase_at, today),
                **(
                    {"gender": r.gender or "unknown", "birthday": r.birthday, "email": r.email or ""}
                    if full_phone
                    else {}
                ),
            }
        )
    return out, total


@dataclass(frozen=True)
class _Member:
    profile: MemberProfile
    #: the branch the member enrolled at (None: online); set once with the membership, never changed
    join_branch_id: uuid.UUID | None


async def _profile(uow: UnitOfWork, member_id: uuid.UUID, *, lock: bool = False) -> _Member:
    """The member's profile (created on first use) and join branch; NotFound for anyone not a member
    here. The join branch is read from the membership row, written once at enrolment (API, till,
    import, portal): a profile created later, e.g. by a first purchase at another branch, cannot
    move it."""
    joined = await queries.membership(uow, member_id)
    if joined is None:
        raise NotFound("member not found")
    await queries.create_profile(uow, member_id, joined.branch_id, "api")
    profile = await uow.session.get(
        MemberProfile, (uow.tenant_id, member_id), with_for_update=lock, populate_existing=True
    )
    assert profile is not None
    return _Member(profile, joined.branch_id)


def profile_view(member: _Member) -> dict[str, Any]:
    p = member.profile
    return {
        "member_id": p.member_id,
        "name": p.name,
        "gender": p.gender,
        "birthday": p.birthday,
        "email": p.email,
        "address": p.address,
        "tags": list(p.tags),
        "preferences": dict(p.preferences),
        "referrer_member_id": p.referrer_member_id,
        "join_branch_id": member.join_branch_id,
        "source": p.source,
        "consent": dict(p.consent),
        "updated_at": p.updated_at,
        "erased_at": p.erased_at,
    }


async def get_profile(uow: UnitOfWork, member_id: uuid.UUID) -> dict[str, Any]:
    return profile_view(await _profile(uow, member_id))


#: what a PATCH may name; ``join_branch_id`` only with the value it has (a client sending the profile back)
PROFILE_FIELDS = (
    "name",
    "gender",
    "birthday",
    "email",
    "address",
    "tags",
    "preferences",
    "referrer_member_id",
    "join_branch_id",
)
_WRITABLE = tuple(f for f in PROFILE_FIELDS if f != "join_branch_id")


#: a tag is a short label (the column is ``varchar(40)[]``: PostgreSQL would cut a longer one silently)
MAX_TAG = 40
MAX_TAGS = 50


def _check_texts(changes: dict[str, Any]) -> None:
    """The text fields' rules, each refused with its field before anything is read or written (a value
    the column cannot hold would otherwise be cut, or refused by the database without a field)."""
    if "name" in changes and len(changes["name"] or "") > 100:
        raise ValidationFailed("name: at most 100 characters", field="name")
    email = changes.get("email") or ""
    if email and (len(email) > 320 or not valid_email(email)):
        raise ValidationFailed("email: not an e-mail address", field="email")
    if len(changes.get("address") or "") > 400:
        raise ValidationFailed("address: at most 400 characters", field="address")
    tags = changes.get("tags") or []
    if len(tags) > MAX_TAGS:
        raise ValidationFailed(f"tags: at most {MAX_TAGS}", field="tags")
    for tag in tags:
        if not 1 <= len(tag.strip()) <= MAX_TAG or tag != tag.strip() or any(ord(c) < 32 for c in tag):
            raise ValidationFailed(
                f"tags: each 1 to {MAX_TAG} characters, no surrounding spaces or control characters", field="tags"
            )


async def update_profile(uow: UnitOfWork, member_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Change the fields in ``changes`` (those a PATCH sent; see :data:`PROFILE_FIELDS`)."""
    _check_texts(changes)
    if "tags" in changes and changes["tags"] is not None:
        changes = {**changes, "tags": list(dict.fromkeys(changes["tags"]))}  # a tag once, first place kept
    member = await _profile(uow, member_id, lock=True)
    p = member.profile
    if "join_branch_id" in changes and changes["join_branch_id"] != member.join_branch_id:
        raise ValidationFailed("join_branch_id is where the member enrolled; it never changes", field="join_branch_id")
    if "gender" in changes and changes["gender"] not in GENDERS:
        raise ValidationFailed(f"gender is one of {', '.join(sorted(GENDERS))}", field="gender")
    if changes.get("birthday") and changes["birthday"] > datetime.now(UTC).date():
        raise ValidationFailed("birthday is in the future", field="birthday")
    if changes.get("referrer_member_id") is not None:
        ref = changes["referrer_member_id"]
        if ref == member_id:
            raise ValidationFailed("a member cannot refer themselves", field="referrer_member_id")
        if not await queries.is_member(uow, ref):
            raise NotFound("referrer not found", field="referrer_member_id")
        if member_id in await referral_queries.referral_chain(uow, ref):  # A refers B: B never refers A
            raise ValidationFailed("this referrer was referred by the member: a loop", field="referrer_member_id")
    for name in _WRITABLE:
        if name in changes:
            setattr(p, name, changes[name])
    p.updated_at = datetime.now(UTC)
    await uow.session.flush()
    return profile_view(member)


async def set_consent(
    uow: UnitOfWork, member_id: uuid.UUID, channel: str, granted: bool, *, source: str, actor: str
) -> dict[str, Any]:
    """Marketing consent per channel: the current state and its full history, each change timestamped."""
    if channel not in CHANNELS:
        raise ValidationFailed(f"channel is one of {', '.join(sorted(CHANNELS))}", field="channel")
    p = (await _profile(uow, member_id, lock=True)).profile
    now = datetime.now(UTC).isoformat()
    consent = {k: dict(v) for k, v in (p.consent or {}).items()}  # type: ignore[call-overload]
    entry = consent.get(channel, {"history": []})
    history = list(entry.get("history", []))
    history.append({"granted": granted, "at": now, "source": source[:40], "actor": actor[:100]})
    consent[channel] = {"granted": granted, "at": now, "history": history}
    p.consent = consent
    p.updated_at = datetime.now(UTC)
    await uow.session.flush()
    return consent


async def detail(uow: UnitOfWork, member_id: uuid.UUID) -> dict[str, Any]:
    """Everything staff need at one glance."""
    now = datetime.now(UTC)
    member = await _profile(uow, member_id)
    p = member.profile
    ident = await crm_queries.member_identity(uow, member_id)
    currency, tz = await accounts.merchant_info(uow)
    today = now.astimezone(ZoneInfo(tz)).date()
    bal = await accounts.balances(uow, member_id, now)
    _, programme = await programme_at(uow, now)
    window = now - timedelta(days=30 * programme.tier_policy.window_months)
    standing = await queries.standing_in_window(uow, member_id, window)
    coupons = [asdict(r) for r in await crm_queries.member_coupon_rows(uow, member_id)]
    purchases = [asdict(r) for r in await crm_queries.purchases(uow, member_id)]
    mine = await accounts.member_accounts(uow, member_id, currency)
    history = [asdict(r) for r in await crm_queries.points_history(uow, mine.points.id)]
    sv_history = [
        asdict(r) for r in await crm_queries.stored_value_history(uow, mine.sv_principal.id, mine.sv_bonus.id)
    ]
    lots = await ledger.lots(uow, mine.points)
    expiring = sorted((lot for lot in lots if lot.expires_at), key=lambda lot: lot.expires_at or now)
    # points still in their return window, each lot with the time it becomes spendable
    pending = sorted((lot for lot in lots if lot.available_at > now), key=lambda lot: lot.available_at)
    return {
        "member_id": member_id,
        "card_number": ident.card_number,
        "phone": mask_phone(ident.phone) if ident.phone else "",
        "joined_at": ident.joined_at,
        "profile": profile_view(member),
        "balances": {
            "points": bal.points,
            "points_available": bal.points_available,
            "points_pending": bal.points_pending,
            "points_debt": max(0, -bal.points),
            "sv_principal": bal.sv_principal,
            "sv_bonus": bal.sv_bonus,
            "currency": currency,
        },
        "tier": {
            "code": p.tier_code,
            "since": p.tier_since,
            "floor": p.tier_floor,
            "floor_until": p.tier_floor_until,
            "progress": tiers.progress(programme, p.tier_code, standing),
            "keep": tiers.retention(programme, p.tier_code, standing),
        },
        "next_expiry": {"points": expiring[0].remaining, "at": expiring[0].expires_at} if expiring else None,
        "pending_points": [{"points": lot.remaining, "available_at": lot.available_at} for lot in pending],
        "coupons": coupons,
        "purchases": purchases,
        "points_history": history,
        "stored_value_history": sv_history,
        "stage": _stage_of(ident.joined_at, p.last_purchase_at, today),
        "cumulative_spend": p.cumulative_spend,
        "purchase_count": p.purchase_count,
        "rfm": await _rfm(uow, member_id),
    }


async def _rfm(uow: UnitOfWork, member_id: uuid.UUID) -> dict[str, int] | None:
    """The nightly RFM scores (``tenants/marketing``), or None when the member bought nothing in 12 months."""
    row = await marketing_queries.member_rfm(uow, member_id)
    return None if row is None else {"recency": row.recency, "frequency": row.frequency, "monetary": row.monetary}


EXPORT_COLUMNS = [
    "card_number",
    "phone",
    "name",
    "gender",
    "birthday",
    "email",
    "tier",
    "tags",
    "joined_at",
    "last_purchase_at",
    "cumulative_spend",
    "purchase_count",
    "stage",
    "source",
]


async def export_csv(uow: UnitOfWork, f: ListFilter, *, actor: str, who: audit.Actor) -> tuple[bytes, int]:
    """Every matching member with the full phone number; written to the export log and the audit log
    (``export.downloaded`` by ``who``) in the same transaction (no log, no file)."""
    rows, total = await list_members(uow, f, limit=max(1, 10**6), full_phone=True)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(EXPORT_COLUMNS)
    for r in rows:  # every text cell neutralised: a member named "=HYPERLINK(…)" must not run in Excel
        w.writerow(
            safe_row(
                [
                    r["card_number"],
                    r["phone"],
                    r["name"],
                    r["gender"],
                    r["birthday"] or "",
                    r["email"],
                    r["tier"] or "",
                    ";".join(r["tags"]),
                    r["joined_at"].isoformat(),
                    r["last_purchase_at"].isoformat() if r["last_purchase_at"] else "",
                    r["cumulative_spend"],
                    r["purchase_count"],
                    r["stage"],
                    r["source"],
                ]
            )
        )
    filters = {k: str(v) for k, v in f.__dict__.items() if v not in (None, "")}
    uow.session.add(
        ExportLog(tenant_id=uow.tenant_id, actor=actor[:200], kind="members_full", filters=filters, row_count=len(rows))
    )
    await uow.session.flush()
    await audit.record(
        uow,
        who,
        "export.downloaded",
        object_kind="export",
        object_id="members_full",
        details={"filters": filters, "rows": len(rows)},
    )
    return ("\ufeff" + buf.getvalue()).encode(), total


async def set_manual_tier(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    tier: str,
    *,
    until: date | None,
    reason: str,
    actor: str,
    who: audit.Actor,
) -> dict[str, Any]:
    """Grant a tier by hand (an invitation, a VIP): the member moves up to it now if it is higher, and it
    acts as a floor — no review takes the member below it — until ``until`` (for good when omitted).
    Recorded in the tier history with the reason and who did it (``actor``), and in the audit log
    as ``tier.granted`` by ``who``."""
    from lianka.tenants.models import TierChangeRecord

    now = datetime.now(UTC)
    _, programme = await programme_at(uow, now)
    granted = programme.tier(tier)
    if granted is None:
        raise ValidationFailed(f"the programme has no tier {tier!r}", field="tier")
    _, tz = await accounts.merchant_info(uow)
    if until is not None and until < now.astimezone(ZoneInfo(tz)).date():
        raise ValidationFailed("until is in the past", field="until")
    if not reason.strip():
        raise ValidationFailed("say why (the reason is kept in the tier history)", field="reason")
    p = (await _profile(uow, member_id, lock=True)).profile
    current = programme.tier(p.tier_code)
    old = p.tier_code
    if current is None or granted.rank >= current.rank:
        p.tier_code, p.tier_since = granted.code, now
    p.tier_floor, p.tier_floor_until = granted.code, until
    p.updated_at = now
    uow.session.add(
        TierChangeRecord(
            tenant_id=uow.tenant_id,
            member_id=member_id,
            old_tier=old,
            new_tier=p.tier_code,
            reason=f"manual: {reason.strip()}"[:200],
            actor=actor[:100],
        )
    )
    await uow.session.flush()
    if p.tier_code != old:
        await webhooks.tier_changed(uow, member_id, old or base_tier(programme), p.tier_code, "staff")
    await audit.record(
        uow,
        who,
        "tier.granted",
        object_kind="member",
        object_id=member_id,
        details={
            "before": {"tier": old},
            "after": {"tier": p.tier_code, "floor": granted.code, "floor_until": until},
            "reason": reason.strip(),
        },
    )
    return {"tier": p.tier_code, "floor": p.tier_floor, "floor_until": p.tier_floor_until}


async def tier_history(uow: UnitOfWork, member_id: uuid.UUID) -> list[dict[str, Any]]:
    await _profile(uow, member_id)
    return [asdict(r) for r in await crm_queries.tier_changes(uow, member_id)]


# --- use cases (each owns its transaction; reading a profile creates it on first look, so they commit) --


async def members_page(
    db: Database, tenant: uuid.UUID, f: ListFilter, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    async with db.uow(tenant) as uow:
        return await list_members(uow, f, limit=limit, offset=offset)


async def export_members(db: Database, tenant: uuid.UUID, f: ListFilter, *, actor: str, who: audit.Actor) -> bytes:
    """The full export as CSV bytes, logged in the same transaction (:func:`export_csv`)."""
    async with db.uow(tenant) as uow:
        body, _ = await export_csv(uow, f, actor=actor, who=who)
        await uow.commit()
        return body


async def member_detail(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    async with db.uow(tenant) as uow:
        out = await detail(uow, member_id)
        await uow.commit()  # a profile row created on first look
        return out


async def member_profile(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    async with db.uow(tenant) as uow:
        out = await get_profile(uow, member_id)
        await uow.commit()
        return out


async def change_profile(
    db: Database, tenant: uuid.UUID, member_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    async with db.uow(tenant) as uow:
        out = await update_profile(uow, member_id, changes)
        await uow.commit()
        return out


async def write_once(
    db: Database,
    tenant: uuid.UUID,
    work: Callable[[UnitOfWork], Awaitable[dict[str, Any]]],
    *,
    key: str | None,
    scope: str,
    request: Sequence[object],
) -> dict[str, Any]:
    """One write in one transaction. With an Idempotency-Key (a console form carries one, made when
    it was rendered) a second request with that key — a double click, a retry after a lost answer —
    gets the first answer and writes nothing (``platform.idempotency.once``): no second history
    entry, no second import job. Without one (the API) every call writes."""
    if key is not None:
        out, _ = await idempotency.once(db, tenant, scope, key, request, dict[str, Any], work)
        return out
    async with db.uow(tenant) as uow:
        out = await work(uow)
        await uow.commit()
        return out


async def change_consent(
    db: Database,
    tenant: uuid.UUID,
    member_id: uuid.UUID,
    channel: str,
    granted: bool,
    *,
    source: str,
    actor: str,
    key: str | None = None,
) -> dict[str, Any]:
    async def work(uow: UnitOfWork) -> dict[str, Any]:
        return await set_consent(uow, member_id, channel, granted, source=source, actor=actor)

    return await write_once(
        db, tenant, work, key=key, scope="members.consent", request=(str(member_id), channel, granted)
    )


async def grant_tier(
    db: Database,
    tenant: uuid.UUID,
    member_id: uuid.UUID,
    tier: str,
    *,
    until: date | None,
    reason: str,
    actor: str,
    who: audit.Actor,
    key: str | None = None,
) -> dict[str, Any]:
    async def work(uow: UnitOfWork) -> dict[str, Any]:
        return await set_manual_tier(uow, member_id, tier, until=until, reason=reason, actor=actor, who=who)

    return await write_once(
        db, tenant, work, key=key, scope="members.tier", request=(str(member_id), tier, str(until), reason)
    )


async def tier_change_history(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> list[dict[str, Any]]:
    async with db.uow(tenant) as uow:
        out = await tier_history(uow, member_id)
        await uow.commit()
        return out
