"""POS API (scope ``pos`` or a cashier/manager session): quote, sale, top-up, refund, offline batch.

Every write needs an ``Idempotency-Key`` header: a retry returns the first response (200 instead of
201, header ``Idempotent-Replayed: true``); the same key with a different body is a 409 problem.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from lianka.platform.db import Database
from lianka.platform.idempotency import check_key
from lianka.platform.identity.guards import CurrentPrincipal, requires
from lianka.platform.identity.permissions import Permission
from lianka.tenants.pos import schemas, services


def _db(request: Request[Any, Any, Any]) -> Database:
    db: Database = request.app.state.db
    return db


def _key(request: Request[Any, Any, Any]) -> str:
    return check_key(request.headers.get("idempotency-key"))


def _branch(principal: CurrentPrincipal, requested: uuid.UUID | None) -> uuid.UUID | None:
    branch = requested or principal.default_branch()
    if principal.branch_ids is not None:  # branch terminals and managers sell at their branches only
        principal.require_branch(branch)
    return branch


def _created(body: Any, replayed: bool) -> Response[Any]:
    return Response(body, status_code=200 if replayed else 201,
                    headers={"Idempotent-Replayed": "true"} if replayed else {})


class PosController(Controller):
    path = "/pos"
    tags = ("pos",)

    @post("/quote", guards=[requires(Permission.SALES_READ)], status_code=200,
          summary="What a sale would do (discounts, coupons, points to earn, amounts due) — writes nothing")
    async def quote(self, request: Request[Any, Any, Any], data: JSONBody[schemas.Basket],
                    principal: CurrentPrincipal) -> schemas.QuoteOut:
        return await services.quote(_db(request), principal.tenant, data, _branch(principal, data.branch_id))

    @post("/sales", guards=[requires(Permission.SALES_WRITE)],
          summary="Record a sale: coupons, points and stored value paid, points earned, tier (Idempotency-Key)")
    async def sale(self, request: Request[Any, Any, Any], data: JSONBody[schemas.Basket],
                   principal: CurrentPrincipal) -> Response[schemas.SaleOut]:
        out, replayed = await services.sale(_db(request), principal.tenant, data, _key(request),
                                            _branch(principal, data.branch_id))
        return _created(out, replayed)

    @get("/sales/{sale_id:uuid}", guards=[requires(Permission.SALES_READ)],
         summary="A sale with its lines (branch-limited callers: their branches' sales, 404 otherwise)")
    async def get_sale(self, request: Request[Any, Any, Any], sale_id: FromPath[uuid.UUID],
                       principal: CurrentPrincipal) -> dict[str, Any]:
        return await services.get_sale(_db(request), principal.tenant, sale_id, principal.branch_ids)

    @post("/sales/{sale_id:uuid}/refunds", guards=[requires(Permission.SALES_WRITE)],
          summary="Refund all or part of a sale, by amount or by lines (Idempotency-Key); booked at the selling "
                  "branch. Branch-limited callers refund their branches' sales only, unless refunds.anywhere")
    async def refund(self, request: Request[Any, Any, Any], sale_id: FromPath[uuid.UUID],
                     data: JSONBody[schemas.RefundIn], principal: CurrentPrincipal) -> Response[schemas.RefundOut]:
        out, replayed = await services.refund(_db(request), principal.tenant, sale_id, data, _key(request),
                                              principal.branch_ids)
        return _created(out, replayed)

    @post("/top-ups", guards=[requires(Permission.SALES_WRITE)],
          summary="Buy a stored-value plan at the till, e.g. pay ¥1000 get ¥1100 (Idempotency-Key)")
    async def top_up(self, request: Request[Any, Any, Any], data: JSONBody[schemas.TopUpIn],
                     principal: CurrentPrincipal) -> Response[schemas.TopUpOut]:
        out, replayed = await services.top_up(_db(request), principal.tenant, data, _key(request),
                                              _branch(principal, data.branch_id))
        return _created(out, replayed)

    @post("/stored-value/refunds", guards=[requires(Permission.SALES_WRITE)],
          summary="Pay unused stored-value principal back to the member; the bonus is forfeited pro rata")
    async def refund_stored_value(self, request: Request[Any, Any, Any], data: JSONBody[schemas.StoredValueRefundIn],
                                  principal: CurrentPrincipal) -> Response[schemas.StoredValueRefundOut]:
        out, replayed = await services.refund_stored_value(_db(request), principal.tenant, data, _key(request),
                                                           _branch(principal, data.branch_id))
        return _created(out, replayed)

    @post("/offline-batch", guards=[requires(Permission.SALES_WRITE)], status_code=200,
          summary="Upload sales recorded offline; each item carries its own key and business time")
    async def offline_batch(self, request: Request[Any, Any, Any], data: JSONBody[schemas.OfflineBatchIn],
                            principal: CurrentPrincipal) -> schemas.OfflineBatchOut:
        for item in data.items:  # each item may name its branch: all of them must be the caller's
            _branch(principal, item.sale.branch_id)
        return await services.offline_batch(_db(request), principal.tenant, data, principal.default_branch())
