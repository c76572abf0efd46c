"""A merchant's branches (门店): list, create, rename/move. Codes are unique per merchant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lianka.platform import validate
from lianka.platform.db import Database, UnitOfWork
from lianka.platform.errors import Conflict, NotFound, ValidationFailed
from lianka.tenants.models import Branch

_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class BranchChanges:
    code: str | None = None
    name: str | None = None
    address: str | None = None
    timezone: str | None = None


def _check(c: BranchChanges) -> None:
    if c.code is not None and not (1 <= len(c.code) <= 32 and set(c.code) <= _CODE_CHARS):
        raise ValidationFailed("code: 1-32 letters, digits, '-' or '_'", field="code")
    if c.name is not None and not 1 <= len(c.name.strip()) <= 200:
        raise ValidationFailed("name: 1-200 characters", field="name")
    if c.address is not None and len(c.address) > 400:
        raise ValidationFailed("address: at most 400 characters", field="address")
    if c.timezone is not None:
        validate.time_zone(c.timezone)


async def _list(uow: UnitOfWork, only: frozenset[uuid.UUID] | None = None) -> list[Branch]:
    """Every branch, or only ``only`` (a manager's or branch terminal's own)."""
    q = select(Branch).order_by(Branch.code)
    if only is not None:
        q = q.where(Branch.id.in_(only))
    return list(await uow.session.scalars(q))


async def get_branch(uow: UnitOfWork, branch_id: uuid.UUID) -> Branch:
    b = await uow.session.get(Branch, (uow.tenant_id, branch_id))
    if b is None:
        raise NotFound("Branch not found")
    return b


async def _flush_unique(uow: UnitOfWork, code: str | None) -> None:
    try:
        async with uow.session.begin_nested():
            await uow.session.flush()
    except IntegrityError:
        raise Conflict(f"a branch with code {code!r} exists", field="code") from None


async def _create(uow: UnitOfWork, c: BranchChanges) -> Branch:
    if c.code is None or c.name is None:
        raise ValidationFailed("code and name are required")
    _check(c)
    b = Branch(
        tenant_id=uow.tenant_id,
        code=c.code,
        name=c.name.strip(),
        address=c.address or "",
        timezone=c.timezone or "Asia/Shanghai",
    )
    uow.session.add(b)
    await _flush_unique(uow, c.code)
    return b


async def _update(uow: UnitOfWork, branch_id: uuid.UUID, c: BranchChanges) -> Branch:
    _check(c)
    b = await get_branch(uow, branch_id)
    for name in ("code", "name", "address", "timezone"):
        value = getattr(c, name)
        if value is not None:
            setattr(b, name, value.strip() if name == "name" else value)
    await _flush_unique(uow, c.code)
    return b


# --- use cases (each owns its transaction) ------------------------------------------------------


async def branches(db: Database, tenant: uuid.UUID, only: frozenset[uuid.UUID] | None = None) -> list[Branch]:
    async with db.uow(tenant) as uow:
        return await _list(uow, only)


async def open_branch(db: Database, tenant: uuid.UUID, c: BranchChanges) -> Branch:
    async with db.uow(tenant) as uow:
        b = await _create(uow, c)
        await uow.commit()
        return b


async def change_branch(db: Database, tenant: uuid.UUID, branch_id: uuid.UUID, c: BranchChanges) -> Branch:
    async with db.uow(tenant) as uow:
        b = await _update(uow, branch_id, c)
        await uow.commit()
        return b
