"""The member's alliance card: where it works, what it holds, and which partners may recognise it.

A member holds an alliance's card when a merchant they belong to is (or was) a partner of it. The
member chooses, partner by partner, whether that partner may recognise the card; a partner switched
off finds nothing at its alliance till — by card, QR or phone — and cannot earn, redeem or take
stored value on it: the database's ``lianka_is_cardholder`` door, which every till move asks,
answers no for it, exactly as for a stranger's card (decision 0030).

Default: **recognised**. The card is an alliance card because a merchant the member joined is in
the alliance, which is what that membership offers (one card at every partner); a partner's till
learns only the member id and the alliance balances; and a member who never wanted it switches a
partner off here at any time. The member's own merchants always know the card (the membership
itself): their switch is not offered and is refused.

Every change is one appended row (``alliance_recognition``), kept with its time, source and actor;
the latest row per partner is the state. Setting what is already in force writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lianka.alliance.alliances import queries
from lianka.alliance.alliances.domain import points_unit
from lianka.alliance.alliances.errors import NotAPartner
from lianka.alliance.ledger import services as ledger
from lianka.platform.db import Database
from lianka.platform.errors import RuleViolation
from lianka.platform.identity.members import enter_member_scope


class OwnMerchant(RuleViolation):
    type_slug = "own-merchant"
    title = "Your own merchant always recognises your card"


@dataclass(frozen=True)
class Partner:
    merchant_id: uuid.UUID
    name: str
    slug: str
    role: str
    status: str
    branches: int
    #: the member belongs to this merchant (it always knows the card)
    is_member: bool
    recognised: bool


@dataclass(frozen=True)
class Change:
    merchant_id: uuid.UUID
    partner: str
    recognised: bool
    at: datetime
    source: str


@dataclass
class AllianceCard:
    alliance_id: uuid.UUID
    name: str
    currency: str
    partners: list[Partner] = field(default_factory=list)
    points: int = 0
    points_available: int = 0
    sv_principal: int = 0
    sv_bonus: int = 0
    history: list[Change] = field(default_factory=list)

    @property
    def stored_value(self) -> int:
        return self.sv_principal + self.sv_bonus


async def _balances(db: Database, card: AllianceCard, member_id: uuid.UUID) -> None:
    """The member's alliance points and stored value, on the alliance's book (the accounts are opened
    as the till's card look-up opens them)."""
    async with db.uow(card.alliance_id) as uow:
        unit = points_unit(card.alliance_id)
        points = await ledger.open_account(
            uow, owner_kind="member", owner_id=member_id, kind="alliance_points", unit=unit
        )
        principal = await ledger.open_account(
            uow, owner_kind="member", owner_id=member_id, kind="alliance_sv_principal", unit=card.currency
        )
        bonus = await ledger.open_account(
            uow, owner_kind="member", owner_id=member_id, kind="alliance_sv_bonus", unit=card.currency, lots=True
        )
        card.points = await ledger.balance(uow, points)
        card.points_available = await ledger.available_points(uow, points, datetime.now(UTC))
        card.sv_principal = await ledger.balance(uow, principal)
        card.sv_bonus = await ledger.balance(uow, bonus)
        await uow.commit()  # the accounts it opened


async def my_cards(db: Database, member_id: uuid.UUID) -> list[AllianceCard]:
    """Every alliance the member holds the card of: its partners (with the member's choice for each),
    the member's alliance balances, and the history of their choices, newest first."""
    async with db.uow() as uow:
        await enter_member_scope(uow, member_id)
        rows = await queries.my_alliance_cards(uow)
        changes = await queries.recognition_history(uow, member_id)
    cards: dict[uuid.UUID, AllianceCard] = {}
    names: dict[uuid.UUID, str] = {}
    for r in rows:
        card = cards.setdefault(r.alliance_id, AllianceCard(r.alliance_id, r.alliance_name, r.currency))
        card.partners.append(
            Partner(
                r.merchant_id,
                r.merchant_name,
                r.merchant_slug,
                r.role,
                r.status,
                r.branches,
                r.is_member,
                r.recognised or r.is_member,
            )
        )
        names[r.merchant_id] = r.merchant_name
    for c in changes:
        if c.alliance_id in cards:
            cards[c.alliance_id].history.append(
                Change(c.merchant_id, names.get(c.merchant_id, ""), c.recognised, c.changed_at, c.source)
            )
    for card in cards.values():
        await _balances(db, card, member_id)
    return list(cards.values())


async def my_card(db: Database, member_id: uuid.UUID, alliance_id: uuid.UUID) -> AllianceCard:
    """One alliance card of the member's; NotAPartner (404) for any other alliance."""
    found = next((c for c in await my_cards(db, member_id) if c.alliance_id == alliance_id), None)
    if found is None:
        raise NotAPartner("alliance not found")
    return found


async def set_recognition(
    db: Database,
    member_id: uuid.UUID,
    alliance_id: uuid.UUID,
    merchant_id: uuid.UUID,
    recognised: bool,
    *,
    source: str = "portal",
) -> Partner:
    """Let one partner recognise the member's card, or not. 404 (``alliance-not-found``) for an
    alliance or partner the member's card does not reach; 422 ``own-merchant`` for a merchant the
    member belongs to. Idempotent: the same choice again writes nothing."""
    async with db.uow() as uow:
        await enter_member_scope(uow, member_id)
        await queries.lock_recognition(uow, member_id)
        row = next(
            (
                r
                for r in await queries.my_alliance_cards(uow)
                if r.alliance_id == alliance_id and r.merchant_id == merchant_id
            ),
            None,
        )
        if row is None:
            raise NotAPartner("alliance not found")
        if row.is_member:
            raise OwnMerchant("you are this merchant's member: it always recognises your card", field="recognised")
        if row.recognised != recognised:
            await queries.insert_recognition(
                uow, alliance_id, member_id, merchant_id, recognised, source=source, actor=f"member:{member_id}"
            )
            await uow.commit()
    return Partner(
        row.merchant_id,
        row.merchant_name,
        row.merchant_slug,
        row.role,
        row.status,
        row.branches,
        row.is_member,
        recognised,
    )
