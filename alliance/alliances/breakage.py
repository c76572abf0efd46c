"""An alliance's breakage: what happens to the value of points that expired unspent.

Policy ``operator`` (the default): the liability the expiry entry releases is the operator's, nothing
more to book. Policy ``issuers``: each partner branch that issued now-expired points gets their issue
price back, booked on its clearing accounts in the expiry's own transaction. Building blocks for the
ledger's expiry job: they take its unit of work and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from lianka.alliance.alliances import queries
from lianka.alliance.alliances.domain import BreakagePolicy, points_unit
from lianka.alliance.alliances.terms import terms_at
from lianka.alliance.ledger import queries as ledger_queries
from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import clearing
from lianka.alliance.settlement.domain import LineKind, points_expired_to_issuers
from lianka.platform.db import UnitOfWork

#: what the expiry job calls after each expiry entry it books, in the same transaction
AfterExpiry = Callable[[UnitOfWork, ledger.Entry], Awaitable[None]]


async def breakage_hook(uow: UnitOfWork, book: uuid.UUID) -> AfterExpiry | None:
    """For the expiry job: the hook that returns an alliance's breakage to the issuers (None for a
    merchant's book). ``uow`` is in system scope."""
    if not await queries.is_alliance(uow, book):
        return None

    async def after(u: UnitOfWork, entry: ledger.Entry) -> None:
        await return_breakage(u, book, entry)

    return after


async def return_breakage(uow: UnitOfWork, alliance_id: uuid.UUID, expiry: ledger.Entry) -> None:
    """Breakage policy ``issuers``: each partner branch that issued now-expired points gets their issue
    price back (the operator keeps nothing of them); policy ``operator``: nothing to do, the liability
    released by the expiry entry is the operator's."""
    _, terms = await terms_at(uow, alliance_id, expiry.business_time)
    if terms.breakage != BreakagePolicy.ISSUERS:
        return
    taken = await ledger_queries.taken_by_issuer(uow, expiry.id)
    by_issuer = {issuer: n for issuer, n in taken.items() if issuer and n > 0}
    if not by_issuer:
        return
    a = await queries.alliance(uow)
    unit = points_unit(alliance_id)
    breakage = await ledger.open_account(
        uow, owner_kind="merchant", owner_id=alliance_id, kind="points_breakage", unit=unit
    )
    legs = await clearing.legs(
        uow, clearing.Hub("alliance", alliance_id, a.currency), points_expired_to_issuers(by_issuer, terms.issue_price)
    )
    legs += await clearing.quantity_legs(
        uow, unit, [(uuid.UUID(i), LineKind.POINTS_EXPIRED, n) for i, n in sorted(by_issuer.items())]
    )
    legs.append(ledger.Leg(breakage, -sum(by_issuer.values())))
    await ledger.post(
        uow,
        kind="clearing_breakage",
        business_time=expiry.business_time,
        key=f"breakage:{expiry.id}",
        scope="ledger.expiry",
        timezone=a.timezone,
        legs=legs,
        refs={"expiry": str(expiry.id)},
    )
