"""Alliance cross-marketing, the pure part (decision 0044).

A partner (the *funder*) offers a discount valid at its own branches to another partner's (the
*target's*) members. It may choose them only by **shareable attributes** — tier codes and lifecycle
stages — never by anything that identifies a person, and it only ever sees counts, suppressed below
:data:`SMALL_COUNT` so that nobody can be singled out by narrowing a segment.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

from lianka.tenants.domain.lifecycle import Stage

#: counts under this are shown as "< 20" to the funder (k-anonymity of the audience)
SMALL_COUNT = 20
#: the channels an offer may go out on: the portal inbox always, plus the member's consented ones
OFFER_CHANNELS = ("portal", "sms", "email")
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass(frozen=True)
class Audience:
    """The only attributes a funder may pick the target's members by."""

    tiers: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ()

    def rules(self) -> dict[str, Any]:
        """The target's segment document: these attributes AND consent to alliance offers."""
        conditions: list[dict[str, Any]] = [{"kind": "consent", "channel": "alliance", "granted": True}]
        if self.tiers:
            conditions.append({"kind": "tier", "tiers": list(self.tiers)})
        if self.stages:
            conditions.append({"kind": "stage", "stages": [str(s) for s in self.stages]})
        return {"version": 1, "root": {"kind": "group", "op": "and", "conditions": conditions}}


@dataclass(frozen=True)
class Count:
    """A count as the funder sees it: ``exact`` only at or above :data:`SMALL_COUNT` (else None)."""

    exact: int | None
    shown: str


def suppressed(n: int, threshold: int = SMALL_COUNT) -> Count:
    """``n`` for the funder: the number itself, or "< 20" when fewer (0 included: that too is a fact
    about a small group)."""
    if n >= threshold:
        return Count(n, str(n))
    return Count(None, f"< {threshold}")


def voucher_code(secret: str, offer_id: uuid.UUID, member_id: uuid.UUID) -> str:
    """The recipient's voucher code: derived (HMAC) from the offer and the member, so the target's
    delivery can print it without reading the alliance's book, and it cannot be guessed from either
    id. 12 characters of an unambiguous alphabet (60 bits)."""
    digest = hmac.new(secret.encode(), f"xmkt:{offer_id}:{member_id}".encode(), hashlib.sha256).digest()
    n = int.from_bytes(digest[:8], "big")
    out = []
    for _ in range(12):
        n, r = divmod(n, len(CODE_ALPHABET))
        out.append(CODE_ALPHABET[r])
    return "X" + "".join(out)


def discount_for(sale_amount: int, discount: int, min_spend: int) -> int | None:
    """What the voucher takes off a sale of ``sale_amount`` at the funder: the discount (never more
    than the sale), or None when the sale is under the minimum spend."""
    if sale_amount < min_spend:
        return None
    return min(discount, sale_amount)
