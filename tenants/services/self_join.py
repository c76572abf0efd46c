"""Self-join from a merchant's join link (the member portal, issue 14).

A person opens ``/join/<merchant>`` (or ``/join/<merchant>/<branch>``), proves the phone with a join
code (``platform.identity.join_codes``), accepts the privacy notice and chooses marketing consents per
channel, optionally a name and birthday, and is then either

* **enrolled** at once (``joined``) — the programme's join rule is free: the membership, the sign-up
  rules' awards (``enrolment.enrol``), the profile and the consent history, in one transaction; or
* a **prospect** — the join rule asks for a qualifying purchase: the person's choices wait in
  ``self_joins`` until the till's first qualifying sale enrols them (:func:`take_prospect`, called by
  the POS sale inside its own transaction), so the purchase rule is the till's, never a second copy.

The same phone is one person: a member who joins again is just signed in (``already``). Every join
keeps its row in ``self_joins`` — the record of when the privacy notice was accepted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import NotFound, ValidationFailed
from lianka.platform.identity import join_codes
from lianka.platform.identity.errors import MerchantNotFound
from lianka.platform.identity.members import _find_or_create_person, enter_member_scope
from lianka.platform.identity.runtime import Identity
from lianka.platform.identity.services import resolve_merchant_ref
from lianka.tenants import queries
from lianka.tenants.domain.lifecycle import join_eligibility
from lianka.tenants.domain.programme import JoinPolicy, JoinRules
from lianka.tenants.models import Branch, Merchant, SelfJoin
from lianka.tenants.services import crm, enrolment, referrals
from lianka.tenants.services.programme import programme_at

#: the marketing channels a join offers (``crm.CHANNELS`` has more; staff record those)
JOIN_CHANNELS = ("sms", "email", "wechat")
CONSENT_SOURCE = "portal"


@dataclass(frozen=True)
class JoinTarget:
    """What the join page shows: the merchant, the branch of the link, and the join rule."""

    merchant_id: uuid.UUID
    slug: str
    name: str
    currency: str
    timezone: str
    branch_id: uuid.UUID | None
    branch_name: str | None
    rule: JoinRules

    @property
    def needs_purchase(self) -> bool:
        return self.rule.policy == JoinPolicy.QUALIFYING_PURCHASE


@dataclass(frozen=True)
class JoinForm:
    """The join's choices (the phone and its code travel beside it)."""

    privacy_accepted: bool
    consents: dict[str, bool] = field(default_factory=dict)
    name: str = ""
    birthday: date | None = None
    #: the invitation code of a friend's link (``?ref=``; see ``referrals``)
    ref: str = ""


@dataclass(frozen=True)
class Joined:
    member_id: uuid.UUID
    merchant_id: uuid.UUID
    slug: str
    #: ``joined`` (a member now), ``prospect`` (after a qualifying purchase) or ``already`` (was one)
    status: str
    #: what became of the invitation (``referrals.Outcome``); None when the join carried none
    referral: str | None = None


async def _branch(uow: UnitOfWork, ref: str | None) -> Branch | None:
    """The branch of a link, by its code or its id (NotFound for a stranger's or an unknown one)."""
    if not ref:
        return None
    found = (await uow.session.scalars(select(Branch).where(Branch.code == ref))).first()
    if found is None:
        try:
            found = await uow.session.get(Branch, (uow.tenant_id, uuid.UUID(ref)))
        except ValueError:
            found = None
    if found is None:
        raise NotFound("branch not found", field="branch")
    return found


async def join_target(db: Database, merchant_ref: str, branch_ref: str | None = None) -> JoinTarget:
    """Read use case of the join page: 404 for an unknown merchant or branch."""
    tenant = await resolve_merchant_ref(db, merchant_ref)
    async with db.uow(tenant) as uow:
        merchant = await uow.session.get(Merchant, tenant)
        if merchant is None:
            raise MerchantNotFound()
        branch = await _branch(uow, branch_ref)
        _, programme = await programme_at(uow)
        return JoinTarget(
            tenant,
            merchant.slug,
            merchant.name,
            merchant.currency,
            merchant.timezone,
            branch.id if branch else None,
            branch.name if branch else None,
            programme.join,
        )


def check_form(form: JoinForm, rule: JoinRules, today: date) -> None:
    """The join's own rules, refused with their field before the code is used."""
    if not form.privacy_accepted:
        raise ValidationFailed("accept the privacy notice to join", field="privacy")
    unknown = set(form.consents) - set(JOIN_CHANNELS)
    if unknown:
        raise ValidationFailed(f"consent channels are {', '.join(JOIN_CHANNELS)}", field="consents")
    if len(form.name) > 100 or any(ord(c) < 32 for c in form.name):
        raise ValidationFailed("name: at most 100 characters", field="name")
    if form.birthday is not None and form.birthday > today:
        raise ValidationFailed("birthday is in the future", field="birthday")
    if rule.min_age:  # the join rule's age limit (入会门槛) applies online as at the till
        verdict = join_eligibility(JoinRules(min_age=rule.min_age), birthday=form.birthday, today=today)
        if not verdict.eligible:
            raise ValidationFailed(verdict.reason, field="birthday")


async def request_code(ident: Identity, merchant_ref: str, phone: str, ip: str) -> str:
    """Use case: text a join code (the merchant must exist); returns the phone in E.164."""
    await resolve_merchant_ref(ident.db, merchant_ref)
    return await join_codes.request_join_code(ident, phone, ip)


async def _apply_choices(uow: UnitOfWork, member_id: uuid.UUID, row: SelfJoin) -> None:
    """The join's name, birthday and consents on the member's profile (building block)."""
    changes: dict[str, Any] = {}
    if row.name:
        changes["name"] = row.name
    if row.birthday is not None:
        changes["birthday"] = row.birthday
    if changes:
        await crm.update_profile(uow, member_id, changes)
    for channel in JOIN_CHANNELS:
        if channel in row.consents:
            granted = bool(row.consents[channel])
            await crm.set_consent(uow, member_id, channel, granted, source=CONSENT_SOURCE, actor=f"member:{member_id}")


def _row(tenant: uuid.UUID, member_id: uuid.UUID, branch: uuid.UUID | None, form: JoinForm, status: str) -> SelfJoin:
    now = datetime.now(UTC)
    return SelfJoin(
        tenant_id=tenant,
        member_id=member_id,
        branch_id=branch,
        status=status,
        name=form.name,
        birthday=form.birthday,
        consents={c: bool(v) for c, v in form.consents.items()},
        privacy_accepted_at=now,
        confirmed_at=now if status == "member" else None,
    )


async def join(
    ident: Identity, merchant_ref: str, branch_ref: str | None, phone: str, code: str, form: JoinForm, ip: str
) -> Joined:
    """Use case: join from the link (see the module docstring). The form is checked before the code
    is used; a wrong code is the join code's 401 (and its lockout)."""
    target = await join_target(ident.db, merchant_ref, branch_ref)
    check_form(form, target.rule, datetime.now(UTC).astimezone(ZoneInfo(target.timezone)).date())
    phone = await join_codes.verify_join_code(ident, phone, code, ip)
    if target.needs_purchase:
        return await _prospect(ident, target, phone, form)

    invited: list[str | None] = [referrals.Outcome.REFUSED if form.ref else None]  # unless a new member

    async def then(uow: UnitOfWork, member_id: uuid.UUID) -> None:
        await queries.create_profile(uow, member_id, target.branch_id, CONSENT_SOURCE)
        row = _row(target.merchant_id, member_id, target.branch_id, form, "member")
        # a prospect from when the join rule asked for a purchase, joining now that it does not
        waiting = await uow.session.get(SelfJoin, (target.merchant_id, member_id), with_for_update=True)
        if waiting is not None:
            for name in ("branch_id", "status", "name", "birthday", "consents", "privacy_accepted_at", "confirmed_at"):
                setattr(waiting, name, getattr(row, name))
            row = waiting
        else:
            uow.session.add(row)
        await uow.session.flush()
        await _apply_choices(uow, member_id, row)
        referrer = await referrals.referrer_by_code(uow, form.ref) if form.ref else None
        if form.ref and referrer is None:
            invited[0] = referrals.Outcome.UNKNOWN
        else:
            invited[0] = await referrals.link(uow, member_id, referrer or row.referrer_member_id)

    enrolled = await enrolment.enrol(ident, target.merchant_id, phone, target.branch_id, then=then)
    return Joined(
        enrolled.member.member_id,
        target.merchant_id,
        target.slug,
        "joined" if enrolled.new_membership else "already",
        invited[0],
    )


async def _prospect(ident: Identity, target: JoinTarget, phone: str, form: JoinForm) -> Joined:
    """The person (a card of their own, to sign in with) and the waiting choices; no membership yet."""
    async with ident.db.uow(system=True) as uow:
        member_id = await _find_or_create_person(uow, phone)
        await uow.set_tenant(target.merchant_id)
        if await queries.membership(uow, member_id) is not None:
            already = referrals.Outcome.REFUSED if form.ref else None
            return Joined(member_id, target.merchant_id, target.slug, "already", already)
        referrer = await referrals.referrer_by_code(uow, form.ref) if form.ref else None
        invited: str | None = referrals.Outcome.UNKNOWN if form.ref and referrer is None else None
        if referrer is not None:
            why = await referrals.loop_or_self(uow, member_id, referrer)
            invited, referrer = (referrals.Outcome.REFUSED, None) if why else (referrals.Outcome.LINKED, referrer)
        existing = await uow.session.get(SelfJoin, (target.merchant_id, member_id), with_for_update=True)
        if existing is None:
            row = _row(target.merchant_id, member_id, target.branch_id, form, "prospect")
            row.referrer_member_id = referrer  # kept until the till enrols them
            uow.session.add(row)
        elif existing.status == "prospect":  # joining again before the purchase: the latest choices count
            fresh = _row(target.merchant_id, member_id, target.branch_id or existing.branch_id, form, "prospect")
            for name in ("branch_id", "name", "birthday", "consents", "privacy_accepted_at"):
                setattr(existing, name, getattr(fresh, name))
            if existing.referrer_member_id is not None and referrer not in (None, existing.referrer_member_id):
                invited = referrals.Outcome.REFUSED  # the first friend's invitation stands
            existing.referrer_member_id = existing.referrer_member_id or referrer
        await uow.commit()
    return Joined(member_id, target.merchant_id, target.slug, "prospect", invited)


async def prospect_branch(uow: UnitOfWork, member_id: uuid.UUID) -> uuid.UUID | None:
    """The join branch a waiting prospect chose by their link (None: no prospect, or no branch)."""
    row = await uow.session.get(SelfJoin, (uow.tenant_id, member_id))
    return row.branch_id if row is not None and row.status == "prospect" else None


async def take_prospect(uow: UnitOfWork, member_id: uuid.UUID) -> bool:
    """Building block for the till's join (inside the sale's transaction, after the membership is
    written): a waiting prospect's name, birthday and consents go onto the new member's profile and
    the join is ``confirmed``. False when the person had not joined online."""
    row = await uow.session.get(SelfJoin, (uow.tenant_id, member_id), with_for_update=True)
    if row is None or row.status != "prospect":
        return False
    await _apply_choices(uow, member_id, row)
    await referrals.link(uow, member_id, row.referrer_member_id)  # the friend who invited them
    row.status, row.confirmed_at = "confirmed", datetime.now(UTC)
    await uow.session.flush()
    return True


@dataclass(frozen=True)
class Prospect:
    merchant_slug: str
    merchant_name: str
    since: datetime
    rule: JoinRules
    currency: str


async def my_prospects(db: Database, member_id: uuid.UUID) -> list[Prospect]:
    """The merchants where the member waits for a qualifying purchase (the card page says so): the
    member's own rows in their portal scope, then each merchant's name and join rule in its scope."""
    async with db.uow() as uow:
        await enter_member_scope(uow, member_id)
        rows = (
            await uow.session.execute(
                select(SelfJoin.tenant_id, SelfJoin.created_at)
                .where(SelfJoin.status == "prospect")
                .order_by(SelfJoin.created_at)
            )
        ).all()
    out = []
    for r in rows:
        async with db.uow(r.tenant_id) as uow:
            merchant = await uow.session.get(Merchant, r.tenant_id)
            _, programme = await programme_at(uow)
        if merchant is not None:
            out.append(Prospect(merchant.slug, merchant.name, r.created_at, programme.join, merchant.currency))
    return out
