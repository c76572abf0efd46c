"""Alliance cross-marketing (decision 0044): a partner funds an offer for another partner's members.

The funder gets counts only — suppressed below 20 ("< 20") — and never a member; the target accepts
or declines (accepting delivers it through its own campaigns); the funder's till redeems a voucher
(Idempotency-Key). Another merchant's offer, or an alliance the merchant is not in, is a 404."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody

from lianka.platform.errors import ValidationFailed
from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.marketing import offers
from lianka.tenants.marketing.offer_domain import Count
from lianka.web.api.deps import Db, IdempotencyKey, acting_branch, created

Code40 = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Amount = Annotated[int, msgspec.Meta(ge=0, le=10**9)]


class AudienceIn(msgspec.Struct, forbid_unknown_fields=True):
    target_merchant_id: uuid.UUID
    tiers: Annotated[list[Code40], msgspec.Meta(max_length=20)] = []
    stages: Annotated[list[Code40], msgspec.Meta(max_length=4)] = []


class OfferIn(msgspec.Struct, forbid_unknown_fields=True):
    target_merchant_id: uuid.UUID
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    discount: Amount
    valid_until: datetime
    tiers: Annotated[list[Code40], msgspec.Meta(max_length=20)] = []
    stages: Annotated[list[Code40], msgspec.Meta(max_length=4)] = []
    channels: Annotated[list[Code40], msgspec.Meta(max_length=3)] = msgspec.field(default_factory=lambda: ["portal"])
    min_spend: Amount = 0
    fee: Amount = 0


class VoucherIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    sale_amount: int
    branch_id: uuid.UUID | None = None
    business_time: datetime | None = None


class CountOut(msgspec.Struct):
    """``count`` is null below the threshold; ``shown`` is what to display ("< 20")."""

    count: int | None
    shown: str


class OfferOut(msgspec.Struct):
    id: uuid.UUID
    alliance_id: uuid.UUID
    role: str
    funder_merchant_id: uuid.UUID
    target_merchant_id: uuid.UUID
    name: str
    message: str
    tiers: list[str]
    stages: list[str]
    channels: list[str]
    discount: int
    min_spend: int
    fee: int
    currency: str
    valid_until: datetime
    status: str
    created_at: datetime
    decided_at: datetime | None
    audience: CountOut | None = None


class ResultsOut(msgspec.Struct):
    sent: CountOut
    redeemed: int
    attributed_sales: int
    discounts: int
    fees: int
    cost: int


def _count(c: Count) -> CountOut:
    return CountOut(c.exact, c.shown)


def offer_out(v: offers.OfferView) -> OfferOut:
    o = v.offer
    return OfferOut(
        o.id, o.alliance_id, v.role, o.funder_merchant_id, o.target_merchant_id, o.name, o.message, list(o.tiers),
        list(o.stages), list(o.channels), o.discount, o.min_spend, o.fee, o.currency, o.valid_until, o.status,
        o.created_at, o.decided_at, _count(v.audience) if v.audience else None,
    )  # fmt: skip


class AllianceOffersController(Controller):
    path = "/alliances/{alliance_id:uuid}/offers"
    tags = ("alliances",)

    @post("/estimate", guards=[requires(Permission.CAMPAIGNS_READ)], status_code=200,
          summary="How many of the target's members an audience selects (suppressed below 20)")  # fmt: skip
    async def estimate(
        self, db: Db, alliance_id: FromPath[uuid.UUID], data: JSONBody[AudienceIn], principal: CurrentPrincipal
    ) -> CountOut:
        return _count(
            await offers.estimate(
                db, principal.tenant, alliance_id, data.target_merchant_id, tuple(data.tiers), tuple(data.stages)
            )
        )

    @post("/", guards=[requires(Permission.CAMPAIGNS_WRITE)], summary="Propose a funded offer to a partner's members")
    async def create(
        self, db: Db, alliance_id: FromPath[uuid.UUID], data: JSONBody[OfferIn], principal: CurrentPrincipal
    ) -> OfferOut:
        view = await offers.create_offer(
            db,
            principal.tenant,
            alliance_id,
            offers.OfferIn(
                data.target_merchant_id, data.name, data.message, data.discount, data.valid_until,
                tuple(data.tiers), tuple(data.stages), tuple(data.channels), data.min_spend, data.fee,
            ),
        )  # fmt: skip
        return offer_out(view)

    @get("/{offer_id:uuid}", guards=[requires(Permission.CAMPAIGNS_READ)])
    async def get_offer(
        self, db: Db, alliance_id: FromPath[uuid.UUID], offer_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> OfferOut:
        return offer_out(await offers.get_offer(db, principal.tenant, alliance_id, offer_id))

    @get("/{offer_id:uuid}/results", guards=[requires(Permission.CAMPAIGNS_READ)],
         summary="The funder's results: sent (suppressed), redeemed, attributed sales, cost")  # fmt: skip
    async def results(
        self, db: Db, alliance_id: FromPath[uuid.UUID], offer_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> ResultsOut:
        r = await offers.results(db, principal.tenant, alliance_id, offer_id)
        return ResultsOut(_count(r.sent), r.redeemed, r.attributed_sales, r.discounts, r.fees, r.cost)

    @post("/{offer_id:uuid}/accept", guards=[requires(Permission.CAMPAIGNS_WRITE)], status_code=200,
          summary="The target accepts: the offer goes to its consenting members")  # fmt: skip
    async def accept(
        self, db: Db, alliance_id: FromPath[uuid.UUID], offer_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> OfferOut:
        return offer_out(await offers.decide(db, principal.tenant, alliance_id, offer_id, accept=True))

    @post("/{offer_id:uuid}/decline", guards=[requires(Permission.CAMPAIGNS_WRITE)], status_code=200)
    async def decline(
        self, db: Db, alliance_id: FromPath[uuid.UUID], offer_id: FromPath[uuid.UUID], principal: CurrentPrincipal
    ) -> OfferOut:
        return offer_out(await offers.decide(db, principal.tenant, alliance_id, offer_id, accept=False))

    @post("/vouchers/redeem", guards=[requires(Permission.SALES_WRITE)],
          summary="Use a voucher at this funder's till: the discount to give (Idempotency-Key)")  # fmt: skip
    async def redeem(
        self,
        db: Db,
        idempotency_key: IdempotencyKey,
        alliance_id: FromPath[uuid.UUID],
        data: JSONBody[VoucherIn],
        principal: CurrentPrincipal,
    ) -> Response[dict[str, Any]]:
        branch = acting_branch(principal, data.branch_id)
        if branch is None:
            raise ValidationFailed("which branch? give branch_id", field="branch_id")
        return created(
            *await offers.redeem(
                db,
                principal.tenant,
                alliance_id,
                offers.RedeemIn(data.code, data.sale_amount, branch, data.business_time),
                idempotency_key,
            )
        )


class MyOffersController(Controller):
    path = "/alliance-offers"
    tags = ("alliances",)

    @get("/", guards=[requires(Permission.CAMPAIGNS_READ)], summary="Offers this merchant funds or receives")
    async def mine(self, db: Db, principal: CurrentPrincipal) -> list[OfferOut]:
        return [offer_out(v) for v in await offers.list_offers(db, principal.tenant)]
