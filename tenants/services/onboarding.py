"""What the merchant console needs to know about a merchant: its profile (name, currency, time
zone) and how far its set-up has come — read from the real rows, never from a flag that could
drift from them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.errors import NotFound


@dataclass(frozen=True)
class MerchantProfile:
    id: uuid.UUID
    slug: str
    name: str
    trade: str
    currency: str
    timezone: str


@dataclass(frozen=True)
class SetupProgress:
    """Each step of the onboarding checklist, done or not, from the merchant's data."""

    branches: int
    programme_configured: bool
    pos_client: bool
    staff: int
    members: int
    first_sale: bool

    @property
    def staff_invited(self) -> bool:
        """Someone besides the owner who signed up."""
        return self.staff > 1


_PROFILE = "SELECT id, slug, name, trade, currency, timezone FROM merchants WHERE id = :t"

# Row-level security scopes every sub-select to the unit of work's merchant.
_PROGRESS = (
    "SELECT (SELECT count(*) FROM branches) AS branches, "
    "EXISTS (SELECT 1 FROM programme_versions) AS programme_configured, "
    "EXISTS (SELECT 1 FROM api_clients WHERE revoked_at IS NULL AND 'pos' = ANY(scopes) "
    "        AND (expires_at IS NULL OR expires_at > now())) AS pos_client, "
    "(SELECT count(*) FROM staff_memberships) AS staff, "
    "(SELECT count(*) FROM memberships) AS members, "
    "EXISTS (SELECT 1 FROM sales) AS first_sale"
)


async def merchant_profile(db: Database, tenant: uuid.UUID) -> MerchantProfile:
    async with db.uow(tenant) as uow:
        row = (await uow.session.execute(text(_PROFILE), {"t": tenant})).first()
    if row is None:
        raise NotFound("Merchant not found")
    return MerchantProfile(row.id, row.slug, row.name, row.trade, row.currency, row.timezone)


async def setup_progress(db: Database, tenant: uuid.UUID) -> SetupProgress:
    async with db.uow(tenant) as uow:
        row = (await uow.session.execute(text(_PROGRESS))).one()
    return SetupProgress(
        int(row.branches),
        bool(row.programme_configured),
        bool(row.pos_client),
        int(row.staff),
        int(row.members),
        bool(row.first_sale),
    )
