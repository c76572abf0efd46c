"""The member's own privacy rights (PIPL) and profile, for the portal's pages and its JSON API alike
(decision 0029):

- **profile** at one merchant: name, birthday (set once by the member: a wrong one is corrected by
  staff), e-mail, address, preferences — through the CRM's ``update_profile`` rules, in one write
  (``crm.write_once``); **consents** per channel through ``crm.set_consent`` (source ``portal``,
  actor ``member:<id>``), their history kept;
- **data download**: everything about the member at every merchant they belong to, read in each
  merchant's scope for the member's own id (``crm.detail``, redemptions, the join record, erasure
  requests) and their card from the member's portal scope — as JSON, or as CSV (one row per value);
- **erasure**, at one merchant or everywhere, at once (no job): each merchant's personal data about
  the member is removed (``privacy_queries.erase_merchant_data``) and recorded in
  ``erasure_requests`` with its time and completion; everywhere also pseudonymises the phone and
  revokes the portal's sessions (``members.erase_person``). Balances, purchases and the ledger stay:
  entries keep the account, not the person. Everywhere is refused while stored value is left at a
  merchant (the money could never be spent or refunded after); at one merchant the card keeps working,
  so the balance stays the member's.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from sqlalchemy import select

from lianka.platform.cells import safe_row
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import Conflict, ValidationFailed
from lianka.platform.identity import members
from lianka.platform.identity.members import enter_member_scope
from lianka.platform.identity.runtime import Identity
from lianka.platform.identity.services import member_merchant
from lianka.tenants import privacy_queries
from lianka.tenants.models import ErasureRequest, Merchant
from lianka.tenants.services import accounts, crm, rewards

#: what the member may change about themselves at a merchant
MEMBER_FIELDS = ("name", "birthday", "email", "address", "preferences")
#: the channels the portal offers (as the join form)
PORTAL_CHANNELS = ("sms", "email", "wechat", "alliance")
MAX_PREFERENCE = 200
MAX_PREFERENCES = 20


@dataclass(frozen=True)
class MyProfile:
    """The member's profile page at one merchant."""

    merchant_slug: str
    merchant_name: str
    timezone: str
    profile: dict[str, Any]

    @property
    def birthday_locked(self) -> bool:
        return self.profile["birthday"] is not None

    def consent(self, channel: str) -> dict[str, Any]:
        """The channel's state and history (newest first), times as datetimes (kept as ISO text)."""
        entry = dict(self.profile["consent"].get(channel) or {})
        history = [{**h, "at": datetime.fromisoformat(str(h["at"]))} for h in reversed(list(entry.get("history", [])))]
        return {"granted": bool(entry.get("granted")), "history": history}


async def _merchant(uow: UnitOfWork) -> Merchant:
    merchant = await uow.session.get(Merchant, uow.tenant_id)
    assert merchant is not None
    return merchant


async def my_profile(db: Database, merchant_ref: str, member_id: uuid.UUID) -> MyProfile:
    """Read use case of the profile page: NotFound unless the member belongs to the merchant."""
    tenant = await member_merchant(db, merchant_ref, member_id)
    async with db.uow(tenant) as uow:
        merchant = await _merchant(uow)
        profile = await crm.get_profile(uow, member_id)
        await uow.commit()  # a profile row created on first look
    return MyProfile(merchant.slug, merchant.name, merchant.timezone, profile)


def _check_member_changes(changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(MEMBER_FIELDS)
    if unknown:
        raise ValidationFailed(f"a member may change {', '.join(MEMBER_FIELDS)}", field=sorted(unknown)[0])
    prefs = changes.get("preferences")
    if prefs is not None:
        if not isinstance(prefs, dict) or len(prefs) > MAX_PREFERENCES:
            raise ValidationFailed(f"preferences: at most {MAX_PREFERENCES} entries", field="preferences")
        for k, v in prefs.items():
            if not isinstance(v, str) or not 1 <= len(str(k)) <= 40 or len(v) > MAX_PREFERENCE:
                raise ValidationFailed(
                    f"preferences: short names, texts of at most {MAX_PREFERENCE} characters", field="preferences"
                )
    if "name" in changes and changes["name"] is None:
        changes["name"] = ""
    for field in ("email", "address"):
        if field in changes and changes[field] is None:
            changes[field] = ""


async def change_my_profile(
    db: Database, merchant_ref: str, member_id: uuid.UUID, changes: dict[str, Any], *, key: str | None = None
) -> dict[str, Any]:
    """The member changes their profile at one merchant (the CRM's rules, ``crm.update_profile``).
    The birthday is the member's to set once (a birthday reward hangs on it): a second, different
    one is refused beside the field; sending the same again is fine."""
    changes = dict(changes)
    _check_member_changes(changes)
    tenant = await member_merchant(db, merchant_ref, member_id)

    async def work(uow: UnitOfWork) -> dict[str, Any]:
        current = await crm.get_profile(uow, member_id)
        if "birthday" in changes and current["birthday"] is not None and changes["birthday"] != current["birthday"]:
            raise ValidationFailed("birthday: set once; ask the merchant to correct it", field="birthday")
        return await crm.update_profile(uow, member_id, changes)

    request = (str(member_id), *(f"{k}={changes[k]!r}" for k in sorted(changes)))
    return await crm.write_once(db, tenant, work, key=key, scope="portal.profile", request=request)


async def change_my_consent(
    db: Database, merchant_ref: str, member_id: uuid.UUID, channel: str, granted: bool, *, key: str | None = None
) -> dict[str, Any]:
    """The member grants or withdraws marketing consent on a channel (``crm.change_consent``:
    source ``portal``, actor ``member:<id>``; each change kept with its time)."""
    tenant = await member_merchant(db, merchant_ref, member_id)
    return await crm.change_consent(
        db, tenant, member_id, channel, granted, source="portal", actor=f"member:{member_id}", key=key
    )


# --- the data download ---------------------------------------------------------------------------


async def _memberships(db: Database, member_id: uuid.UUID) -> tuple[dict[str, Any], list[tuple[uuid.UUID, datetime]]]:
    """The member's card (their own row) and the merchants they belong to, in their portal scope."""
    async with db.uow() as uow:
        await enter_member_scope(uow, member_id)
        card = await privacy_queries.my_card(uow)
        joined = await privacy_queries.my_memberships(uow)
    return asdict(card), [(j.tenant_id, j.joined_at) for j in joined]


async def my_data(db: Database, member_id: uuid.UUID) -> dict[str, Any]:
    """Everything about the member: their card and, at every merchant they belong to, the
    membership, profile, consents with their history, balances, tier, purchases, points history,
    coupons, redemptions, the join record and erasure requests. Only the member's own rows: each
    merchant is read in its scope for ``member_id`` alone."""
    identity, joined = await _memberships(db, member_id)
    merchants = []
    for tenant, joined_at in joined:
        async with db.uow(tenant) as uow:
            merchant = await _merchant(uow)
            detail = await crm.detail(uow, member_id)
            join = await privacy_queries.self_join_record(uow, member_id)
            erasures = [asdict(r) for r in await privacy_queries.erasures(uow, member_id=member_id)]
            await uow.commit()
        redemptions = await rewards.redemptions(db, tenant, member_id=member_id, limit=10_000)
        profile = detail.pop("profile")
        merchants.append(
            {
                "merchant": {"slug": merchant.slug, "name": merchant.name},
                "membership": {"joined_at": joined_at, "card_number": detail.pop("card_number")},
                "profile": {k: v for k, v in profile.items() if k != "consent"},
                "consents": profile["consent"],
                "balances": detail.pop("balances"),
                "tier": detail.pop("tier"),
                "purchases": detail.pop("purchases"),
                "points_history": detail.pop("points_history"),
                "coupons": detail.pop("coupons"),
                "redemptions": [msgspec.to_builtins(r) for r in redemptions],
                "join": join,
                "erasure_requests": erasures,
            }
        )
    return {"exported_at": datetime.now(UTC), "identity": identity, "merchants": merchants}


def _plain(value: Any) -> Any:
    """JSON-ready: ids, times and dates as text (msgspec's own rules)."""
    return msgspec.to_builtins(value)


def data_json(data: dict[str, Any]) -> bytes:
    return msgspec.json.format(msgspec.json.encode(_plain(data)), indent=2)


def _leaves(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(f"{prefix}.{k}" if prefix else str(k), v)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(f"{prefix}[{i}]", v)] or [(prefix, "")]
    return [(prefix, "" if value is None else str(value))]


def data_csv(data: dict[str, Any]) -> bytes:
    """The download as one CSV (opens in Excel/WPS): ``merchant, section, field, value`` — a row for
    every value of the JSON, each text cell neutralised (a name like ``=HYPERLINK(…)`` stays text)."""
    plain = _plain(data)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["merchant", "section", "field", "value"])
    for field, value in _leaves("", plain["identity"]):
        w.writerow(safe_row(["", "identity", field, value]))
    for m in plain["merchants"]:
        slug = m["merchant"]["slug"]
        for section, body in m.items():
            if section == "merchant":
                continue
            for field, value in _leaves("", body):
                w.writerow(safe_row([slug, section, field, value]))
    return ("\ufeff" + buf.getvalue()).encode()


# --- erasure -------------------------------------------------------------------------------------


Erasure = privacy_queries.ErasureRow


class StoredValueLeft(Conflict):
    """Erasing everywhere while stored value is left: the money could never be spent or refunded."""

    type_slug = "stored-value-left"
    title = "Stored value is left on the card: spend it or ask the merchant for a refund first"


async def _stored_value_left(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> int:
    async with db.uow(tenant) as uow:
        bal = await accounts.balances(uow, member_id, datetime.now(UTC))
    return int(bal.sv_principal) + int(bal.sv_bonus)


async def _erase_at(db: Database, tenant: uuid.UUID, member_id: uuid.UUID, scope: str) -> Erasure:
    """Erase one merchant's personal data about the member and record it (``done``). Idempotent: the
    merchant's request of that scope already done is the answer (its data erased again, in case the
    member entered some since); no second row."""
    async with db.uow(tenant) as uow:
        await crm.get_profile(uow, member_id)  # NotFound for a non-member; creates the profile row
        row = await uow.session.scalar(
            select(ErasureRequest)
            .where(ErasureRequest.member_id == member_id, ErasureRequest.scope == scope)
            .where(ErasureRequest.status == "done")
            .order_by(ErasureRequest.requested_at.desc())
            .limit(1)
        )
        if row is None:
            row = ErasureRequest(tenant_id=tenant, member_id=member_id, scope=scope, status="requested")
            uow.session.add(row)
            await uow.session.flush()
            await privacy_queries.erase_merchant_data(uow, member_id)
            row.status, row.completed_at = "done", datetime.now(UTC)
        else:
            await privacy_queries.erase_merchant_data(uow, member_id)
        await uow.session.flush()
        out = await privacy_queries.erasure(uow, row.id)
        await uow.commit()
    return out


async def _refuse(db: Database, tenants: list[uuid.UUID], member_id: uuid.UUID, reason: str) -> None:
    for tenant in tenants:
        async with db.uow(tenant) as uow:
            uow.session.add(
                ErasureRequest(
                    tenant_id=tenant,
                    member_id=member_id,
                    scope="everywhere",
                    status="refused",
                    reason=reason,
                    completed_at=datetime.now(UTC),
                )
            )
            await uow.commit()


async def request_erasure(
    ident: Identity, member_id: uuid.UUID, *, merchant_ref: str | None, confirm_phone: str
) -> list[Erasure]:
    """The member asks for erasure at ``merchant_ref``, or everywhere when it is None, confirming by
    re-typing their phone. Runs at once; one ``erasure_requests`` row per merchant concerned. A
    person already erased everywhere gets those requests again (nothing is left to confirm with)."""
    if await members.is_erased(ident, member_id):
        return [e for e in await my_erasures(ident.db, member_id) if e.scope == "everywhere" and e.status == "done"]
    if not await members.phone_matches(ident, member_id, confirm_phone):
        raise ValidationFailed("type your own phone number to confirm", field="phone")
    db = ident.db
    if merchant_ref is not None:
        tenant = await member_merchant(db, merchant_ref, member_id)
        return [await _erase_at(db, tenant, member_id, "merchant")]
    _, joined = await _memberships(db, member_id)
    tenants = [t for t, _ in joined]
    if any([await _stored_value_left(db, t, member_id) > 0 for t in tenants]):
        await _refuse(db, tenants, member_id, "stored-value-left")
        raise StoredValueLeft(field="scope")
    done = [await _erase_at(db, t, member_id, "everywhere") for t in tenants]
    await members.erase_person(ident, member_id)
    return done


async def my_erasures(db: Database, member_id: uuid.UUID) -> list[Erasure]:
    """The member's erasure requests at every merchant (their portal scope), newest first."""
    async with db.uow() as uow:
        await enter_member_scope(uow, member_id)
        return await privacy_queries.my_erasures(uow)


async def merchant_erasures(db: Database, tenant: uuid.UUID) -> list[privacy_queries.ErasureRow]:
    """The console's list: the merchant's erasure requests with their times, newest first."""
    async with db.uow(tenant) as uow:
        return await privacy_queries.erasures(uow)


def parse_birthday(value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("birthday: a date such as 1990-05-31", field="birthday") from None
