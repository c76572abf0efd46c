"""A merchant set up for the catalogue's API tests: two branches, an owner, a programme, and helpers
to call the API as staff or as a member in the portal, and to read what the database holds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from lianka.platform.db import Database
from lianka.platform.identity.testing import AuthKit, Creds
from lianka.tenants.domain.programme import Programme
from lianka.tenants.queries import Balances
from lianka.tenants.services import accounts
from lianka.tenants.services.programme import set_programme

PROBLEM = "application/problem+json"


@dataclass
class Shop:
    client: AsyncTestClient[Litestar]
    kit: AuthKit
    db: Database
    tenant: uuid.UUID
    slug: str
    sh01: uuid.UUID
    sh02: uuid.UUID
    owner: Creds

    async def call(
        self,
        method: str,
        url: str,
        creds: Creds | None = None,
        json: Any = None,
        key: str | None = None,
        idempotent: bool = False,
    ) -> Any:
        headers = dict((creds or self.owner).headers)
        if key is not None or idempotent:
            headers["Idempotency-Key"] = key or uuid.uuid4().hex
        self.client.cookies.clear()
        kwargs: dict[str, Any] = {"headers": headers}
        if json is not None:
            kwargs["json"] = json
        return await self.client.request(method, f"/api/v1{url}", **kwargs)

    async def ok(
        self, method: str, url: str, creds: Creds | None = None, json: Any = None, status: int = 200, **kw: Any
    ) -> Any:
        r = await self.call(method, url, creds, json, **kw)
        assert r.status_code == status, r.text
        return r.json()

    async def programme(self, p: Programme, since: datetime | None = None) -> None:
        async with self.db.uow(self.tenant) as uow:
            await set_programme(uow, p, effective_from=since or datetime.now(UTC) - timedelta(minutes=1))
            await uow.commit()

    async def member(self) -> Creds:
        """A member of this shop, signed in to the portal."""
        return await self.kit.member(self.tenant)

    async def points(self, member: uuid.UUID) -> int:
        async with self.db.uow(self.tenant) as uow:
            return (await accounts.balances(uow, member, datetime.now(UTC))).points

    async def balances(self, member: uuid.UUID) -> Balances:
        async with self.db.uow(self.tenant) as uow:
            return await accounts.balances(uow, member, datetime.now(UTC))

    async def give_points(self, member: uuid.UUID, points: int) -> None:
        async with self.db.uow(self.tenant) as uow:
            await accounts.award_points(
                uow,
                member,
                points,
                programme=Programme(),
                reason="test",
                key=uuid.uuid4().hex,
                business_time=datetime.now(UTC) - timedelta(seconds=5),
            )
            await uow.commit()

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.uow(self.tenant) as uow:
            return await uow.session.scalar(text(sql), params)

    async def set_tier(self, member: uuid.UUID, tier: str) -> None:
        async with self.db.uow(self.tenant) as uow:
            await uow.session.execute(
                text(
                    "INSERT INTO member_profiles (tenant_id, member_id, tier_code) VALUES (:t, :m, :c) "
                    "ON CONFLICT (tenant_id, member_id) DO UPDATE SET tier_code = EXCLUDED.tier_code"
                ),
                {"t": self.tenant, "m": member, "c": tier},
            )
            await uow.commit()


async def make_shop(
    client: AsyncTestClient[Litestar], kit: AuthKit, db: Database, tenant_factory: Any, name: str = "一点茶"
) -> Shop:
    tenant = await tenant_factory(name)
    async with db.uow(system=True) as uow:
        slug = str(await uow.session.scalar(text("SELECT slug FROM merchants WHERE id = :t"), {"t": tenant}))
    sh01, sh02 = await kit.branch(tenant, "SH01"), await kit.branch(tenant, "SH02")
    return Shop(client, kit, db, tenant, slug, sh01, sh02, await kit.staff(tenant, "owner"))
