"""Managing a merchant's staff: add (or invite) by e-mail, change role and branches, remove.

Rules: only an owner grants, changes or removes the owner role; a merchant keeps at least one
owner; branch lists name the merchant's own branches.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text

from lianka.platform import audit
from lianka.platform.db import UnitOfWork
from lianka.platform.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from lianka.platform.identity.errors import InsufficientPermission
from lianka.platform.identity.models import StaffMembership, StaffUser
from lianka.platform.identity.permissions import Role
from lianka.platform.identity.principal import Principal
from lianka.platform.identity.runtime import Identity
from lianka.platform.identity.services import normalise_email, queue_set_password_mail
from lianka.tenants.models import Merchant

BRANCH_ROLES = {Role.MANAGER, Role.CASHIER}


@dataclass(frozen=True)
class StaffView:
    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    branch_ids: list[uuid.UUID]
    email_verified: bool
    created_at: datetime


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationFailed(f"Unknown role {value!r}", field="role", roles=[r.value for r in Role]) from None


async def _check_branches(uow: UnitOfWork, role: Role, branch_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if role not in BRANCH_ROLES:
        return []
    if role is Role.MANAGER and not branch_ids:
        raise ValidationFailed("A manager needs at least one branch", field="branch_ids")
    unique = sorted(set(branch_ids))
    if unique:
        found = (
            (await uow.session.execute(text("SELECT id FROM branches WHERE id = ANY(:ids)"), {"ids": unique}))
            .scalars()
            .all()
        )
        if len(found) != len(unique):
            raise NotFound("Branch not found", field="branch_ids")
    return unique


def _guard_owner_change(actor: Principal, *roles: Role | None) -> None:
    if Role.OWNER in roles and actor.role is not Role.OWNER:
        raise InsufficientPermission("Only an owner can grant, change or remove the owner role")


async def list_staff(ident: Identity, actor: Principal) -> list[StaffView]:
    async with ident.db.uow(actor.tenant) as uow:
        rows = (
            await uow.session.execute(
                select(StaffMembership, StaffUser)
                .join(StaffUser, StaffUser.id == StaffMembership.user_id)
                .order_by(StaffUser.email)
            )
        ).all()
    return [_view(m, u) for m, u in rows]


def _view(m: StaffMembership, u: StaffUser) -> StaffView:
    return StaffView(
        u.id, u.email, u.display_name, m.role, list(m.branch_ids), u.email_verified_at is not None, m.created_at
    )


async def add_staff(
    ident: Identity,
    actor: Principal,
    email: str,
    role_name: str,
    *,
    branch_ids: list[uuid.UUID],
    display_name: str = "",
) -> StaffView:
    """Add a person by e-mail. An unknown e-mail gets a new account and an invitation to set a
    password; a known one (staff elsewhere) is linked — the answer is the same either way."""
    email = normalise_email(email)
    role = _role(role_name)
    _guard_owner_change(actor, role)
    async with ident.db.uow(system=True) as uow:
        s = uow.session
        user = await s.scalar(select(StaffUser).where(StaffUser.email == email))
        if user is None:
            user = StaffUser(email=email, display_name=display_name.strip())
            s.add(user)
            await s.flush()
        await uow.set_tenant(actor.tenant)
        branches = await _check_branches(uow, role, branch_ids)
        if await s.get(StaffMembership, (actor.tenant, user.id)) is not None:
            raise Conflict("This person is already on your staff", field="email")
        membership = StaffMembership(tenant_id=actor.tenant, user_id=user.id, role=role.value, branch_ids=branches)
        s.add(membership)
        await s.flush()
        await s.refresh(membership)
        if user.password_hash is None:
            name = await s.scalar(select(Merchant.name).where(Merchant.id == actor.tenant)) or ""
            await queue_set_password_mail(uow, ident, user, name)
        view = _view(membership, user)
        await audit.record(
            uow,
            audit.by(actor),
            "staff.invited" if user.password_hash is None else "staff.added",
            object_kind="staff",
            object_id=user.id,
            details={"role": role.value, "branch_ids": branches, "name": user.display_name},
        )
        await uow.commit()
        return view


async def owner_emails(uow: UnitOfWork) -> list[str]:
    """The e-mail addresses of the unit of work's merchant's owners who can sign in (notices to the owner)."""
    rows = await uow.session.scalars(
        text(
            "SELECT u.email FROM staff_memberships m JOIN staff_users u ON u.id = m.user_id "
            "WHERE m.tenant_id = :t AND m.role = 'owner' AND u.disabled_at IS NULL ORDER BY u.email"
        ),
        {"t": uow.tenant_id},
    )
    return list(rows)


async def _owners(uow: UnitOfWork) -> int:
    return int(await uow.session.scalar(text("SELECT count(*) FROM staff_memberships WHERE role = 'owner'")) or 0)


async def update_staff(
    ident: Identity, actor: Principal, user_id: uuid.UUID, role_name: str | None, branch_ids: list[uuid.UUID] | None
) -> StaffView:
    async with ident.db.uow(actor.tenant) as uow:
        s = uow.session
        m = await s.get(StaffMembership, (actor.tenant, user_id), with_for_update=True)
        user = await s.get(StaffUser, user_id)
        if m is None or user is None:
            raise NotFound("Staff member not found")
        new_role = _role(role_name) if role_name is not None else Role(m.role)
        _guard_owner_change(actor, Role(m.role), new_role)
        if m.role == Role.OWNER and new_role is not Role.OWNER and await _owners(uow) <= 1:
            raise RuleViolation("A merchant keeps at least one owner")
        before = {"role": m.role, "branch_ids": sorted(str(b) for b in m.branch_ids)}
        m.role = new_role.value
        m.branch_ids = await _check_branches(uow, new_role, branch_ids if branch_ids is not None else m.branch_ids)
        await s.flush()
        view = _view(m, user)
        after = {"role": m.role, "branch_ids": sorted(str(b) for b in m.branch_ids)}
        if after != before:
            await audit.record(
                uow,
                audit.by(actor),
                "staff.role_changed" if after["role"] != before["role"] else "staff.branches_changed",
                object_kind="staff",
                object_id=user_id,
                details={"before": before, "after": after},
            )
        await uow.commit()
        return view


async def remove_staff(ident: Identity, actor: Principal, user_id: uuid.UUID) -> None:
    async with ident.db.uow(actor.tenant) as uow:
        s = uow.session
        m = await s.get(StaffMembership, (actor.tenant, user_id), with_for_update=True)
        if m is None:
            raise NotFound("Staff member not found")
        _guard_owner_change(actor, Role(m.role))
        if m.role == Role.OWNER and await _owners(uow) <= 1:
            raise RuleViolation("A merchant keeps at least one owner")
        # recorded before the membership goes: the insert looks the person's name up through it
        await audit.record(
            uow, audit.by(actor), "staff.removed", object_kind="staff", object_id=user_id, details={"role": m.role}
        )
        await s.delete(m)
        await uow.commit()
