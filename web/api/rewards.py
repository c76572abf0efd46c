"""The rewards catalogue (积分兑换) for staff: items (``programme:write``), redeeming for a member at
the counter (``sales:write``, Idempotency-Key), handing gifts out and calling them off."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from lianka.platform.errors import ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, IdentityService, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.catalogue import schemas
from lianka.tenants.services import rewards
from lianka.web.api.deps import IdempotencyKey, actor_of, created

REDEMPTION_STATUSES = ("awaiting_pickup", "delivered", "cancelled")


class RewardsController(Controller):
    path = "/rewards"
    tags = ("rewards",)

    @post(
        "/",
        guards=[requires(Permission.PROGRAMME_WRITE)],
        summary="Add a reward: a gift (stock, pickup branch), a coupon (template) or stored-value credit",
    )
    async def create(
        self, data: JSONBody[schemas.RewardIn], principal: CurrentPrincipal, ident: IdentityService
    ) -> schemas.RewardOut:
        return await rewards.create(ident.db, principal.tenant, data)

    @get("/", guards=[requires(Permission.PROGRAMME_READ)], summary="The catalogue (active=true|false filters)")
    async def list_rewards(
        self, principal: CurrentPrincipal, ident: IdentityService, active: FromQuery[bool | None] = None
    ) -> list[schemas.RewardOut]:
        return await rewards.list_rewards(ident.db, principal.tenant, active=active)

    @get("/{reward_id:uuid}", guards=[requires(Permission.PROGRAMME_READ)], summary="One reward")
    async def get_reward(
        self, reward_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> schemas.RewardOut:
        return await rewards.reward(ident.db, principal.tenant, reward_id)

    @patch(
        "/{reward_id:uuid}",
        guards=[requires(Permission.PROGRAMME_WRITE)],
        summary="Change a reward: name, cost, stock, tiers, limit, pickup branch; active=false withdraws it",
    )
    async def update(
        self,
        reward_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.RewardPatch],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> schemas.RewardOut:
        return await rewards.update_reward(ident.db, principal.tenant, reward_id, data)

    @post(
        "/{reward_id:uuid}/redemptions",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Redeem a reward for a member with their points (Idempotency-Key)",
    )
    async def redeem(
        self,
        idempotency_key: IdempotencyKey,
        reward_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.RedeemIn],
        principal: CurrentPrincipal,
        ident: IdentityService,
    ) -> Response[schemas.RedemptionOut]:
        out, replayed = await rewards.redeem(
            ident.db,
            principal.tenant,
            reward_id,
            data.member_id,
            idempotency_key,
            channel="staff",
            actor=actor_of(principal),
        )
        return created(out, replayed)

    @get(
        "/redemptions",
        guards=[requires(Permission.SALES_READ)],
        summary="Redemptions, newest first (member_id, status filter; a manager sees its branches' gifts)",
    )
    async def redemptions(
        self,
        principal: CurrentPrincipal,
        ident: IdentityService,
        member_id: FromQuery[uuid.UUID | None] = None,
        status: FromQuery[str | None] = None,
    ) -> list[schemas.RedemptionOut]:
        if status is not None and status not in REDEMPTION_STATUSES:
            raise ValidationFailed(f"status is one of {', '.join(REDEMPTION_STATUSES)}", field="status")
        return await rewards.redemptions(
            ident.db, principal.tenant, member_id=member_id, status=status, branch_ids=principal.branch_ids
        )

    @post(
        "/redemptions/{redemption_id:uuid}/deliver",
        guards=[requires(Permission.SALES_WRITE)],
        status_code=200,
        summary="The member picked the gift up",
    )
    async def deliver(
        self, redemption_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> schemas.RedemptionOut:
        return await rewards.deliver(
            ident.db, principal.tenant, redemption_id, actor=actor_of(principal), branches=principal.branch_ids
        )

    @post(
        "/redemptions/{redemption_id:uuid}/cancel",
        guards=[requires(Permission.SALES_WRITE)],
        status_code=200,
        summary="Call off a gift not yet picked up: points back (ledger reversal), unit back to stock",
    )
    async def cancel(
        self, redemption_id: FromPath[uuid.UUID], principal: CurrentPrincipal, ident: IdentityService
    ) -> schemas.RedemptionOut:
        return await rewards.cancel(
            ident.db, principal.tenant, redemption_id, actor=actor_of(principal), branches=principal.branch_ids
        )
