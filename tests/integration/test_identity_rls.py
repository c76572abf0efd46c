"""Identity tables under row-level security: global tables are reachable only in system scope (or,
read-only, by the tenant that employs/enrols the person, or by the member themself)."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from sqlalchemy import CursorResult, text
from sqlalchemy.exc import DBAPIError

from lianka.platform.db import Database
from lianka.platform.identity import members
from lianka.platform.identity.runtime import Identity

pytestmark = pytest.mark.integration


@pytest.fixture
async def ident(db, settings):
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)
    yield Identity.create(db, settings, redis)
    await redis.aclose()


async def _user(db: Database, tenant: uuid.UUID, role: str = "cashier") -> uuid.UUID:
    async with db.uow(system=True) as uow:
        uid = await uow.session.scalar(
            text("INSERT INTO staff_users (email) VALUES (:e) RETURNING id"),
            {"e": f"u-{uuid.uuid4().hex[:8]}@example.com"},
        )
        await uow.set_tenant(tenant)
        await uow.session.execute(
            text("INSERT INTO staff_memberships (tenant_id, user_id, role) VALUES (:t, :u, :r)"),
            {"t": tenant, "u": uid, "r": role},
        )
        await uow.commit()
    assert isinstance(uid, uuid.UUID)
    return uid


async def test_a_tenant_reads_only_its_own_staff_and_writes_none(db: Database, two_tenants) -> None:
    a, b = two_tenants
    ua, ub = await _user(db, a), await _user(db, b)
    async with db.uow(a) as uow:
        ids = set((await uow.session.execute(text("SELECT id FROM staff_users"))).scalars())
        assert ua in ids and ub not in ids
        res = cast(
            "CursorResult[Any]",
            await uow.session.execute(text("UPDATE staff_users SET display_name = 'x' WHERE id = :u"), {"u": ua}),
        )
        assert res.rowcount == 0  # reads yes, writes only in system scope
    async with db.uow() as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM staff_users")) == 0


@pytest.mark.parametrize("table", ["auth_sessions", "signing_keys", "oidc_identities"])
async def test_system_only_tables_are_invisible_to_tenants(db: Database, two_tenants, table: str) -> None:
    a, _ = two_tenants
    await _user(db, a)
    async with db.uow(system=True) as uow:
        await uow.session.execute(
            text(
                "INSERT INTO auth_sessions (kind, subject_id, method, expires_at) VALUES ('staff', gen_random_uuid(), "
                "'password', now() + interval '1 hour')"
            )
        )
        await uow.commit()
    async with db.uow(a) as uow:
        assert await uow.session.scalar(text(f"SELECT count(*) FROM {table}")) == 0
    async with db.uow(system=True) as uow:
        if table == "auth_sessions":
            assert await uow.session.scalar(text(f"SELECT count(*) FROM {table}")) > 0


async def test_signing_keys_cannot_be_deleted_by_the_app(db: Database) -> None:
    async with db.uow(system=True) as uow:
        with pytest.raises(DBAPIError, match="permission denied"):
            await uow.session.execute(text("DELETE FROM signing_keys"))


async def test_members_are_seen_through_memberships_only(ident: Identity, two_tenants) -> None:
    a, b = two_tenants
    only_a = await members.enrol_member(ident, a, f"135{uuid.uuid4().int % 10**8:08d}")
    both = await members.enrol_member(ident, a, f"135{uuid.uuid4().int % 10**8:08d}")
    await members.enrol_member(ident, b, "+86" + (await _phone_of(ident.db, both.member.member_id))[3:])
    async with ident.db.uow(b) as uow:
        seen = set((await uow.session.execute(text("SELECT id FROM members"))).scalars())
        assert both.member.member_id in seen and only_a.member.member_id not in seen
        assert await uow.session.scalar(text("SELECT count(*) FROM memberships WHERE tenant_id = :a"), {"a": a}) == 0
        res = cast(
            "CursorResult[Any]",
            await uow.session.execute(
                text("UPDATE members SET phone = '+8613000000000' WHERE id = :m"), {"m": both.member.member_id}
            ),
        )
        assert res.rowcount == 0


async def _phone_of(db: Database, member_id: uuid.UUID) -> str:
    async with db.uow(system=True) as uow:
        return str(await uow.session.scalar(text("SELECT phone FROM members WHERE id = :m"), {"m": member_id}))


async def test_member_scope_sees_only_that_member(ident: Identity, two_tenants) -> None:
    a, b = two_tenants
    me = await members.enrol_member(ident, a, f"134{uuid.uuid4().int % 10**8:08d}")
    other = await members.enrol_member(ident, b, f"134{uuid.uuid4().int % 10**8:08d}")
    async with ident.db.uow() as uow:
        await members.enter_member_scope(uow, me.member.member_id)
        assert set((await uow.session.execute(text("SELECT id FROM members"))).scalars()) == {me.member.member_id}
        assert set((await uow.session.execute(text("SELECT tenant_id FROM memberships"))).scalars()) == {a}
        assert set((await uow.session.execute(text("SELECT id FROM merchants"))).scalars()) == {a}
        assert (
            await uow.session.scalar(text("SELECT count(*) FROM members WHERE id = :o"), {"o": other.member.member_id})
            == 0
        )
        assert await uow.session.scalar(text("SELECT count(*) FROM staff_users")) == 0
        with pytest.raises(DBAPIError, match="row-level security"):
            await uow.session.execute(
                text("INSERT INTO memberships (tenant_id, member_id) VALUES (:b, :m)"),
                {"b": b, "m": me.member.member_id},
            )


async def test_card_numbers_are_unique_platform_wide(ident: Identity, tenant_factory, owner_engine) -> None:
    tenant = await tenant_factory()
    for _ in range(30):
        await members.enrol_member(ident, tenant, f"133{uuid.uuid4().int % 10**8:08d}")
    async with owner_engine.connect() as conn:
        dupes = await conn.scalar(
            text("SELECT count(*) FROM (SELECT card_number FROM members GROUP BY 1 HAVING count(*) > 1) d")
        )
        invalid = (await conn.execute(text("SELECT card_number FROM members"))).scalars().all()
    assert dupes == 0
    assert all(members.is_valid_card_number(c) for c in invalid)


async def test_prune_job_drops_old_sessions_and_expired_revocations(db: Database, two_tenants) -> None:
    import inspect

    from lianka.platform.identity import jobs

    a, _ = two_tenants
    async with db.uow(system=True) as uow:
        old = await uow.session.scalar(
            text(
                "INSERT INTO auth_sessions (kind, subject_id, method, expires_at) VALUES ('staff', gen_random_uuid(), "
                "'password', now() - interval '40 days') RETURNING id"
            )
        )
        live = await uow.session.scalar(
            text(
                "INSERT INTO auth_sessions (kind, subject_id, method, expires_at) VALUES ('staff', gen_random_uuid(), "
                "'password', now() + interval '1 hour') RETURNING id"
            )
        )
        await uow.set_tenant(a)
        await uow.session.execute(
            text(
                "INSERT INTO revoked_tokens (tenant_id, jti, expires_at) VALUES (:a, 'old', now() - interval '1 minute'),"
                " (:a, 'live', now() + interval '1 hour')"
            ),
            {"a": a},
        )
        await uow.commit()
    async with db.uow(system=True) as uow:
        await inspect.unwrap(jobs.prune_identity.fn)(uow)
        await uow.commit()
    async with db.uow(system=True) as uow:
        ids = set(
            (
                await uow.session.execute(
                    text("SELECT id FROM auth_sessions WHERE id IN (:o, :l)"), {"o": old, "l": live}
                )
            ).scalars()
        )
        jtis = set(
            (await uow.session.execute(text("SELECT jti FROM revoked_tokens WHERE tenant_id = :a"), {"a": a})).scalars()
        )
    assert ids == {live} and jtis == {"live"}
