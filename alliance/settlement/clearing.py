"""Clearing postings: every obligation between a spoke and its hub, booked at posting time.

An :class:`~lianka.alliance.settlement.domain.Obligation` becomes one leg on the spoke's clearing
account for that line (``clr_<line>``, owner the branch) and the opposite leg on the hub's clearing
account (``clr_hub``, owner the chain's merchant or the alliance). Month end sums these accounts per
period (``close.py``) and never looks at a sale.

Spokes are always branches — a chain's branches in the merchant's book, partners' branches in an
alliance's book — so a partner that is itself a chain gets one net from the alliance (the sum of its
branches) and its HQ sees the split without a second calculation.

Points that cross entities in an alliance are tracked the same way in the alliance's point unit on
``qty_<line>`` accounts per spoke, so statements can say how many points a line is about.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lianka.alliance.ledger import queries as ledger_queries
from lianka.alliance.ledger import services as ledger
from lianka.alliance.settlement import queries
from lianka.alliance.settlement.domain import LineKind, Obligation, consumed, pro_rata, sv_refund, sv_top_up
from lianka.platform.db import UnitOfWork
from lianka.platform.money import largest_remainder
from lianka.tenants.domain.programme import BonusFunder

HUB_KIND = "clr_hub"
SPOKE_PREFIX = "clr_"
QTY_PREFIX = "qty_"
#: stored-value bonus is kept in lots on these accounts (a chain's, an alliance's)
BONUS_KINDS = ("sv_bonus", "alliance_sv_bonus")


@dataclass(frozen=True)
class Hub:
    """Who a book's spokes settle with: a chain's merchant (its HQ) or an alliance (its operator)."""

    owner_kind: str  # "merchant" | "alliance"
    owner_id: uuid.UUID
    currency: str


def spoke_kind(line: LineKind) -> str:
    return f"{SPOKE_PREFIX}{line.value}"


def quantity_kind(line: LineKind) -> str:
    return f"{QTY_PREFIX}{line.value}"


def line_of(kind: str) -> tuple[str, bool]:
    """(line, is money) of a clearing account kind: ``clr_<line>`` money, ``qty_<line>`` points."""
    if kind.startswith(SPOKE_PREFIX):
        return LineKind(kind.removeprefix(SPOKE_PREFIX)).value, True
    return LineKind(kind.removeprefix(QTY_PREFIX)).value, False


async def _spoke_account(
    uow: UnitOfWork,
    spoke: uuid.UUID,
    line: LineKind,
    unit: str,
    *,
    prefix: str = SPOKE_PREFIX,
    owner_kind: str = "branch",
) -> ledger.Account:
    return await ledger.open_account(
        uow,
        owner_kind=owner_kind,
        owner_id=spoke,
        kind=f"{prefix}{line.value}",
        unit=unit,
        allow_negative=True,
        tracked=False,
    )


async def hub_account(uow: UnitOfWork, hub: Hub) -> ledger.Account:
    return await ledger.open_account(
        uow,
        owner_kind=hub.owner_kind,
        owner_id=hub.owner_id,
        kind=HUB_KIND,
        unit=hub.currency,
        allow_negative=True,
        tracked=False,
    )


async def legs(
    uow: UnitOfWork, hub: Hub, obligations: Iterable[Obligation], *, owner_kind: str = "branch"
) -> list[ledger.Leg]:
    """The legs that book ``obligations`` (one per spoke account, netted, plus the hub's opposite).
    Spokes are branches; an alliance partner's own lines (its monthly fee) have ``owner_kind="partner"``."""
    by_account: dict[tuple[uuid.UUID, LineKind], int] = defaultdict(int)
    for o in obligations:
        by_account[(uuid.UUID(o.entity), o.kind)] += o.amount
    out: list[ledger.Leg] = []
    total = 0
    for (spoke, line), amount in sorted(by_account.items(), key=lambda kv: (str(kv[0][0]), kv[0][1].value)):
        if amount:
            out.append(ledger.Leg(await _spoke_account(uow, spoke, line, hub.currency, owner_kind=owner_kind), amount))
            total += amount
    if total:
        out.append(ledger.Leg(await hub_account(uow, hub), -total))
    return out


async def quantity_legs(
    uow: UnitOfWork, unit: str, moves: Sequence[tuple[uuid.UUID, LineKind, int]]
) -> list[ledger.Leg]:
    """Point-unit legs recording which spoke issued (negative) or accepted (positive) how many points;
    the caller adds the other side (the member's alliance points account)."""
    return [
        ledger.Leg(await _spoke_account(uow, spoke, line, unit, prefix=QTY_PREFIX), points)
        for spoke, line, points in moves
        if points
    ]


# --- chain stored value -------------------------------------------------------------------------


async def chain_hub(uow: UnitOfWork, currency: str) -> Hub:
    assert uow.tenant_id is not None
    return Hub("merchant", uow.tenant_id, currency)


async def top_up_legs(uow: UnitOfWork, currency: str, branch: uuid.UUID, principal: int) -> list[ledger.Leg]:
    """Added to the top-up's own entry: the branch took the cash, so it owes HQ the principal."""
    return await legs(uow, await chain_hub(uow, currency), sv_top_up(str(branch), principal))


async def bonus_issuers(uow: UnitOfWork, entry_id: uuid.UUID) -> dict[str, int]:
    """Which branch issued the stored-value bonus an entry consumed (bonus is kept in lots; a lot's
    issuer is the ``branch`` of the entry that created it; '' when it has none, e.g. a reward)."""
    taken = await ledger_queries.taken_by_issuer(uow, entry_id, BONUS_KINDS)
    return {issuer: n for issuer, n in taken.items() if n > 0}


async def post_consumed(
    uow: UnitOfWork,
    *,
    currency: str,
    tz: str,
    branch: uuid.UUID,
    principal: int,
    sv_entry: ledger.Entry,
    funder: BonusFunder,
    key: str,
    refs: dict[str, Any],
    hub: Hub | None = None,
    scope: str = "pos",
) -> ledger.Entry | None:
    """Stored value spent at ``branch`` (the entry ``sv_entry``): the hub (HQ, or an alliance's
    operator) owes the branch the principal, and the bonus is paid to it by whoever funds bonuses.
    Its own entry, same transaction and business time as the spend."""
    issuers = await bonus_issuers(uow, sv_entry.id)
    booked = await legs(uow, hub or await chain_hub(uow, currency), consumed(str(branch), principal, issuers, funder))
    if not booked:
        return None
    return await ledger.post(
        uow,
        kind="clearing_sv_consumed",
        business_time=sv_entry.business_time,
        key=f"{key}:clearing",
        scope=scope,
        timezone=tz,
        refs={**refs, "branch": str(branch)},
        legs=booked,
    )


async def post_restored(
    uow: UnitOfWork,
    *,
    currency: str,
    tz: str,
    original: uuid.UUID,
    principal: int,
    bonus: int,
    orig_principal: int,
    orig_bonus: int,
    key: str,
    business_time: datetime,
    refs: dict[str, Any],
) -> ledger.Entry | None:
    """A refund gave back stored value a sale consumed: undo that share of the sale's clearing.

    Principal lines scale by ``principal / orig_principal``, bonus lines by ``bonus / orig_bonus``;
    each line's total is exact and split over its spokes by largest remainder, so a full refund is
    the exact negation and a partial one never leaves a fen unaccounted."""
    rows = await queries.spoke_postings(uow, original, HUB_KIND)
    if not rows:
        return None
    by_line: dict[str, list[queries.SpokePosting]] = defaultdict(list)
    for r in rows:
        by_line[r.kind].append(r)
    obligations: list[Obligation] = []
    for kind, group in by_line.items():
        line = LineKind(kind.removeprefix(SPOKE_PREFIX))
        num, den = (principal, orig_principal) if line == LineKind.SV_CONSUMED else (bonus, orig_bonus)
        if not num or not den:
            continue
        line_total = sum(r.amount for r in group)  # one sign per line: paid to, or charged to spokes
        shares = largest_remainder(pro_rata(abs(line_total), num, den), [abs(r.amount) for r in group])
        sign = -1 if line_total > 0 else 1  # undo
        obligations += [Obligation(str(r.owner_id), line, sign * s) for r, s in zip(group, shares, strict=True)]
    booked = await legs(uow, await chain_hub(uow, currency), obligations)
    if not booked:
        return None
    return await ledger.post(
        uow,
        kind="clearing_sv_restored",
        business_time=business_time,
        key=f"{key}:clearing",
        scope="pos",
        timezone=tz,
        refs=refs,
        legs=booked,
    )


async def sv_refund_legs(uow: UnitOfWork, currency: str, branch: uuid.UUID, principal: int) -> list[ledger.Leg]:
    """Unused principal handed back to a member at ``branch``: HQ reimburses the branch."""
    return await legs(uow, await chain_hub(uow, currency), sv_refund(str(branch), principal))
