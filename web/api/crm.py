"""Members (CRM): the list (phones masked), profile and consent, member detail, the logged full export,
and CSV imports with progress. Enrolment and look-up at the till are in ``members.py``."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.platform import audit
from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.crm_queries import ListFilter
from lianka.tenants.services import crm, member_imports
from lianka.web.api.deps import Db, actor_of


class ProfilePatch(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = msgspec.field(default=None)
    gender: str | None = None
    birthday: date | None = None
    email: str | None = None
    address: str | None = None
    tags: list[str] | None = None
    preferences: dict[str, Any] | None = None
    referrer_member_id: uuid.UUID | None = None
    join_branch_id: uuid.UUID | None = None


class ConsentIn(msgspec.Struct, forbid_unknown_fields=True):
    granted: bool
    source: str = "staff"


class ManualTierIn(msgspec.Struct, forbid_unknown_fields=True):
    tier: str
    reason: str
    until: date | None = None


class ImportIn(msgspec.Struct, forbid_unknown_fields=True):
    csv: str
    mode: str = "skip_invalid"


class MemberPage(msgspec.Struct):
    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]]


def _filter(q: str, tier: str | None, tag: str | None, stage: str | None, branch_id: uuid.UUID | None) -> ListFilter:
    return ListFilter(q=q[:64], tier=tier, tag=tag, stage=stage, branch_id=branch_id)


class CrmController(Controller):
    path = "/members"
    tags = ("members",)

    @get(
        "/",
        guards=[requires(Permission.MEMBERS_READ)],
        summary="Members, newest first; phones masked. Filters: q (name, card, last 4+ phone digits), tier, tag, "
        "stage (new/active/at_risk/dormant), branch_id",
    )
    async def list_members(
        self,
        db: Db,
        principal: CurrentPrincipal,
        q: FromQuery[str] = "",
        tier: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        stage: FromQuery[str | None] = None,
        branch_id: FromQuery[uuid.UUID | None] = None,
        limit: FromQuery[int] = 50,
        offset: FromQuery[int] = 0,
    ) -> MemberPage:
        items, total = await crm.members_page(
            db, principal.tenant, _filter(q, tier, tag, stage, branch_id), limit=limit, offset=offset
        )
        return MemberPage(total, limit, offset, items)

    @get(
        "/export.csv",
        media_type="text/csv",
        guards=[requires(Permission.MEMBERS_EXPORT)],
        summary="Full export with phone numbers (owners and admins; every export is logged)",
    )
    async def export(
        self,
        db: Db,
        principal: CurrentPrincipal,
        q: FromQuery[str] = "",
        tier: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        stage: FromQuery[str | None] = None,
        branch_id: FromQuery[uuid.UUID | None] = None,
    ) -> Response[bytes]:
        body = await crm.export_members(
            db,
            principal.tenant,
            _filter(q, tier, tag, stage, branch_id),
            actor=actor_of(principal),
            who=audit.by(principal),
        )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%MZ")
        return Response(
            body,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="members-{stamp}.csv"'},
        )

    @get(
        "/{member_id:uuid}/detail",
        guards=[requires(Permission.MEMBERS_READ)],
        summary="Balances, tier and progress, coupons, purchases, points history with expiry, lifecycle stage",
    )
    async def detail(self, db: Db, member_id: FromPath[uuid.UUID], principal: CurrentPrincipal) -> dict[str, Any]:
        return await crm.member_detail(db, principal.tenant, member_id)

    @get("/{member_id:uuid}/profile", guards=[requires(Permission.MEMBERS_READ)])
    async def get_profile(self, db: Db, member_id: FromPath[uuid.UUID], principal: CurrentPrincipal) -> dict[str, Any]:
        return await crm.member_profile(db, principal.tenant, member_id)

    @patch(
        "/{member_id:uuid}/profile",
        guards=[requires(Permission.MEMBERS_WRITE)],
        summary="Change profile fields (only those sent)",
    )
    async def patch_profile(
        self,
        db: Db,
        request: Request[Any, Any, Any],
        member_id: FromPath[uuid.UUID],
        data: JSONBody[ProfilePatch],
        principal: CurrentPrincipal,
    ) -> dict[str, Any]:
        sent = msgspec.json.decode(await request.body())  # which fields the client sent (null included)
        changes = {k: getattr(data, k) for k in sent if k in crm.PROFILE_FIELDS}
        return await crm.change_profile(db, principal.tenant, member_id, changes)

    @put(
        "/{member_id:uuid}/consent/{channel:str}",
        guards=[requires(Permission.MEMBERS_WRITE)],
        summary="Grant or withdraw marketing consent on a channel (history kept)",
    )
    async def consent(
        self,
        db: Db,
        member_id: FromPath[uuid.UUID],
        channel: FromPath[str],
        data: JSONBody[ConsentIn],
        principal: CurrentPrincipal,
    ) -> dict[str, Any]:
        return await crm.change_consent(
            db, principal.tenant, member_id, channel, data.granted, source=data.source, actor=actor_of(principal)
        )

    @put(
        "/{member_id:uuid}/tier",
        guards=[requires(Permission.PROGRAMME_WRITE)],
        summary="Grant a tier by hand (invitation, VIP): moves up now, and is a floor until `until`",
    )
    async def manual_tier(
        self, db: Db, member_id: FromPath[uuid.UUID], data: JSONBody[ManualTierIn], principal: CurrentPrincipal
    ) -> dict[str, Any]:
        return await crm.grant_tier(
            db,
            principal.tenant,
            member_id,
            data.tier,
            until=data.until,
            reason=data.reason,
            actor=actor_of(principal),
            who=audit.by(principal),
        )

    @get(
        "/{member_id:uuid}/tier-changes",
        guards=[requires(Permission.MEMBERS_READ)],
        summary="Every tier change with its reason (qualified, review, manual, …)",
    )
    async def tier_changes(
        self, db: Db, member_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> list[dict[str, Any]]:
        return await crm.tier_change_history(db, principal.tenant, member_id)

    @post(
        "/imports",
        guards=[requires(Permission.MEMBERS_IMPORT)],
        status_code=202,
        summary="Import members from CSV (validated first; all_or_nothing or skip_invalid); runs as a job",
    )
    async def start_import(self, db: Db, data: JSONBody[ImportIn], principal: CurrentPrincipal) -> dict[str, Any]:
        return await member_imports.start(
            db, principal.tenant, data.csv.encode(), mode=data.mode, actor=actor_of(principal)
        )

    @get(
        "/imports/{import_id:uuid}",
        guards=[requires(Permission.MEMBERS_READ)],
        summary="An import's status, progress and row report",
    )
    async def get_import(self, db: Db, import_id: FromPath[uuid.UUID], principal: CurrentPrincipal) -> dict[str, Any]:
        return await member_imports.status(db, principal.tenant, import_id)
