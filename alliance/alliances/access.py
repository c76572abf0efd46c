"""Who may do what in an alliance: the asking merchant's role and status in it.

Read through ``lianka_my_alliances()``, a database function that answers for the unit of work's
merchant alone, before a transaction switches into the alliance's book. Building blocks: they take
the caller's unit of work (in the merchant's book) and never commit.
"""

from __future__ import annotations

import uuid

from lianka.alliance.alliances import queries
from lianka.alliance.alliances.errors import NotAPartner
from lianka.platform.db import UnitOfWork
from lianka.platform.errors import Forbidden


async def membership(uow: UnitOfWork, alliance_id: uuid.UUID) -> tuple[str, str]:
    """(role, status) of the unit of work's merchant in the alliance; NotAPartner when it never joined."""
    found = await queries.my_membership(uow, alliance_id)
    if found is None:
        raise NotAPartner("alliance not found")
    return found.role, found.status


async def require_operator(uow: UnitOfWork, alliance_id: uuid.UUID) -> None:
    role, _ = await membership(uow, alliance_id)
    if role != "operator":
        raise Forbidden("only the alliance's operator may do this")
