"""POS use case: the sales a terminal recorded while offline, uploaded as one batch."""

from __future__ import annotations

import uuid

from lianka.platform.db import Database
from lianka.platform.errors import DomainError
from lianka.tenants.pos import schemas
from lianka.tenants.pos.sales import sale


async def offline_batch(
    db: Database, tenant: uuid.UUID, batch: schemas.OfflineBatchIn, branch_id: uuid.UUID | None
) -> schemas.OfflineBatchOut:
    """Sales a terminal recorded offline: each in its own transaction under its own key, keeping its
    business time (late items land in the next open period). Seen keys are duplicates; failures are
    reported per item and do not stop the batch."""
    results: list[schemas.OfflineResult] = []
    for item in batch.items:
        try:
            out, replayed = await sale(db, tenant, item.sale, item.key, branch_id, offline=True)
            results.append(schemas.OfflineResult(item.key, "duplicate" if replayed else "created", out))
        except DomainError as exc:
            results.append(
                schemas.OfflineResult(
                    item.key,
                    "error",
                    problem={
                        "type": exc.type_uri,
                        "title": exc.title,
                        "status": exc.status,
                        "detail": exc.detail,
                        **exc.extra,
                    },
                )
            )
    return schemas.OfflineBatchOut(
        created=sum(r.status == "created" for r in results),
        duplicates=sum(r.status == "duplicate" for r in results),
        errors=sum(r.status == "error" for r in results),
        results=results,
    )
