"""POS API (scope ``pos`` or a cashier/manager session): quote, sale, top-up, refund, offline batch.

Every write needs an ``Idempotency-Key`` header: a retry returns the first response (200 instead of
201, header ``Idempotent-Replayed: true``); the same key with a different body is a 409 problem.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody

from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.pos import offline, refunds, sales, schemas, stored_value
from lianka.web.api.deps import Db, IdempotencyKey, acting_branch, created


class PosController(Controller):
    path = "/pos"
    tags = ("pos",)

    @post(
        "/quote",
        guards=[requires(Permission.SALES_READ)],
        status_code=200,
        summary="What a sale would do (discounts, coupons, points to earn, amounts due) — writes nothing",
    )
    async def quote(self, db: Db, data: JSONBody[schemas.Basket], principal: CurrentPrincipal) -> schemas.QuoteOut:
        return await sales.quote(db, principal.tenant, data, acting_branch(principal, data.branch_id))

    @post(
        "/sales",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Record a sale: coupons, points and stored value paid, points earned, tier (Idempotency-Key)",
    )
    async def sale(
        self, db: Db, idempotency_key: IdempotencyKey, data: JSONBody[schemas.Basket], principal: CurrentPrincipal
    ) -> Response[schemas.SaleOut]:
        out, replayed = await sales.sale(
            db, principal.tenant, data, idempotency_key, acting_branch(principal, data.branch_id)
        )
        return created(out, replayed)

    @get(
        "/sales/{sale_id:uuid}",
        guards=[requires(Permission.SALES_READ)],
        summary="A sale with its lines (branch-limited callers: their branches' sales, 404 otherwise)",
    )
    async def get_sale(self, db: Db, sale_id: FromPath[uuid.UUID], principal: CurrentPrincipal) -> dict[str, Any]:
        return await refunds.get_sale(db, principal.tenant, sale_id, principal.branch_ids)

    @post(
        "/sales/{sale_id:uuid}/refunds",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Refund all or part of a sale, by amount or by lines (Idempotency-Key); booked at the selling "
        "branch. Branch-limited callers refund their branches' sales only, unless refunds.anywhere",
    )
    async def refund(
        self,
        db: Db,
        idempotency_key: IdempotencyKey,
        sale_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.RefundIn],
        principal: CurrentPrincipal,
    ) -> Response[schemas.RefundOut]:
        out, replayed = await refunds.refund(db, principal.tenant, sale_id, data, idempotency_key, principal.branch_ids)
        return created(out, replayed)

    @post(
        "/top-ups",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Buy a stored-value plan at the till, e.g. pay ¥1000 get ¥1100 (Idempotency-Key)",
    )
    async def top_up(
        self, db: Db, idempotency_key: IdempotencyKey, data: JSONBody[schemas.TopUpIn], principal: CurrentPrincipal
    ) -> Response[schemas.TopUpOut]:
        out, replayed = await stored_value.top_up(
            db, principal.tenant, data, idempotency_key, acting_branch(principal, data.branch_id)
        )
        return created(out, replayed)

    @post(
        "/stored-value/refunds",
        guards=[requires(Permission.SALES_WRITE)],
        summary="Pay unused stored-value principal back to the member; the bonus is forfeited pro rata",
    )
    async def refund_stored_value(
        self,
        db: Db,
        idempotency_key: IdempotencyKey,
        data: JSONBody[schemas.StoredValueRefundIn],
        principal: CurrentPrincipal,
    ) -> Response[schemas.StoredValueRefundOut]:
        out, replayed = await stored_value.refund_stored_value(
            db, principal.tenant, data, idempotency_key, acting_branch(principal, data.branch_id)
        )
        return created(out, replayed)

    @post(
        "/offline-batch",
        guards=[requires(Permission.SALES_WRITE)],
        status_code=200,
        summary="Upload sales recorded offline; each item carries its own key and business time",
    )
    async def offline_batch(
        self, db: Db, data: JSONBody[schemas.OfflineBatchIn], principal: CurrentPrincipal
    ) -> schemas.OfflineBatchOut:
        for item in data.items:  # each item may name its branch: all of them must be the caller's
            acting_branch(principal, item.sale.branch_id)
        return await offline.offline_batch(db, principal.tenant, data, principal.default_branch())
