"""Enrolment by staff, a till through the API, or the member's own join link: the platform's person
and membership (:func:`lianka.platform.identity.members.enrol_member`, one transaction) with this
merchant's sign-up rules applied inside it, so a new membership never lacks its bonus."""

from __future__ import annotations

import uuid

from lianka.platform.db import UnitOfWork
from lianka.platform.identity import members
from lianka.platform.identity.runtime import Identity
from lianka.platform.webhooks import services as webhooks
from lianka.tenants.services import rules


async def enrol(
    ident: Identity,
    tenant: uuid.UUID,
    phone: str,
    branch_id: uuid.UUID | None,
    *,
    then: members.OnJoin | None = None,
) -> members.Enrolled:
    """Use case: enrol the person with ``phone`` at ``branch_id`` (idempotent: a member already is one,
    ``new_membership`` false, and gets no second sign-up award). ``then(uow, member_id)`` runs for a new
    membership after the sign-up rules, in the same transaction (the portal's join records its
    profile and consents there)."""

    async def on_join(uow: UnitOfWork, member: uuid.UUID) -> None:
        await rules.on_signup(uow, member, branch_id=branch_id)
        data = {"member_id": str(member), "branch_id": str(branch_id) if branch_id else None}
        await webhooks.emit(uow, "member.joined", data)
        if then is not None:
            await then(uow, member)

    return await members.enrol_member(ident, tenant, phone, branch_id, on_join=on_join)
