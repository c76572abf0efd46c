"""Enrolment by staff or a till through the API: the platform's person and membership
(:func:`lianka.platform.identity.members.enrol_member`, one transaction) with this merchant's
sign-up rules applied inside it, so a new membership never lacks its bonus."""

from __future__ import annotations

import uuid

from lianka.platform.identity import members
from lianka.platform.identity.runtime import Identity
from lianka.tenants.services import rules


async def enrol(ident: Identity, tenant: uuid.UUID, phone: str, branch_id: uuid.UUID | None) -> members.Enrolled:
    """Use case: enrol the person with ``phone`` at ``branch_id`` (idempotent: a member already is one,
    ``new_membership`` false, and gets no second sign-up award)."""
    return await members.enrol_member(
        ident, tenant, phone, branch_id, on_join=lambda uow, member: rules.on_signup(uow, member, branch_id=branch_id)
    )
