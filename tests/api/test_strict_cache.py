"""The strict-body hook caches each handler's body type by ``id(handler)``; an id can be reused once
an app (and its handlers) is gone — some tests build their own app — so the cache must not hand a new
handler the type of a dead one (that made valid bodies fail as 400 at random)."""

from __future__ import annotations

import weakref
from typing import Any, cast

from lianka.tenants.catalogue.schemas import RewardIn
from lianka.web import strict


async def test_a_reused_handler_id_does_not_lend_its_body_type(client, app) -> None:
    [otp] = [
        h for r in app.routes if r.path == "/api/v1/portal/otp" for h in r.route_handlers if "POST" in h.http_methods
    ]
    strict._types[id(otp)] = (cast("weakref.ref[Any]", lambda: None), RewardIn)  # a dead handler's entry, same id
    r = await client.post("/api/v1/portal/otp", json={"phone": "13800138000"})
    assert r.status_code == 202, r.text
