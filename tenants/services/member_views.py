"""What the merchant console's member pages read, each page in one transaction.

The console shows more on one page than one API call answers: the list with its filter choices and
the counts its charts draw; a member's detail with the tier history and the programme's tiers (to
grant one). These read use cases compose the CRM's building blocks (``crm.list_members``,
``crm.detail``) — the rules (masking, lifecycle, balances, tier progress) are those of the API, never
a second implementation — and add only the facts the API has no call for.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from lianka.platform.db import Database
from lianka.tenants import crm_queries
from lianka.tenants.crm_queries import BranchChoice, ListFilter, TierCount
from lianka.tenants.domain.programme import Tier
from lianka.tenants.services import accounts, crm
from lianka.tenants.services.programme import programme_at


@dataclass(frozen=True)
class MembersOverview:
    """One page of the member list (phones masked) and what the page shows around it."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    #: the programme's tiers in force, lowest first (filter choices, names for codes)
    tiers: list[Tier]
    branches: list[BranchChoice]
    tags: list[str]
    #: members per lifecycle stage and per tier code (charts); empty when not asked for
    stages: dict[str, int] = field(default_factory=dict)
    tier_counts: list[TierCount] = field(default_factory=list)


async def members_overview(
    db: Database, tenant: uuid.UUID, f: ListFilter, *, limit: int, offset: int, counts: bool = True
) -> MembersOverview:
    """Read use case of the member list page; ``counts`` False skips the charts' counts (a page of
    results swapped in as the filters change)."""
    async with db.uow(tenant) as uow:
        items, total = await crm.list_members(uow, f, limit=limit, offset=offset)
        _, programme = await programme_at(uow)
        out = MembersOverview(
            items,
            total,
            limit,
            offset,
            programme.tiers_by_rank(),
            await crm_queries.branch_choices(uow),
            await crm_queries.tags_in_use(uow),
        )
        if counts:
            _, tz = await accounts.merchant_info(uow)
            today = datetime.now(UTC).astimezone(ZoneInfo(tz)).date()
            out.stages.update(await crm_queries.stage_counts(uow, today))
            out.tier_counts.extend(await crm_queries.tier_counts(uow))
        return out


@dataclass(frozen=True)
class MemberPage:
    """A member as their page shows them: the API's detail (``GET /members/{id}/detail``), every tier
    change, the programme's tiers and the branch they joined at (None: online)."""

    detail: dict[str, Any]
    tier_changes: list[dict[str, Any]]
    tiers: list[Tier]
    join_branch: BranchChoice | None


async def member_page(db: Database, tenant: uuid.UUID, member_id: uuid.UUID) -> MemberPage:
    """Read use case of the member page; another merchant's member is NotFound like an unknown id.
    Commits because the first look at a member creates their profile row (as ``crm.member_detail``)."""
    async with db.uow(tenant) as uow:
        detail = await crm.detail(uow, member_id)
        changes = [asdict(r) for r in await crm_queries.tier_changes(uow, member_id)]
        _, programme = await programme_at(uow)
        joined = detail["profile"]["join_branch_id"]
        branch = next((b for b in await crm_queries.branch_choices(uow) if b.id == joined), None)
        await uow.commit()
        return MemberPage(detail, changes, programme.tiers_by_rank(), branch)
