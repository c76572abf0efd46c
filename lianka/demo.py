"""Demo data for ``make run``: written only into an empty database.

Two merchants — a three-branch tea chain and a single-shop bakery — so the console shows a chain
and a stand-alone merchant side by side. Each business area adds its part of the demo here.

Identity: an owner per merchant (password :data:`DEMO_PASSWORD`) and a POS client for demo-tea's
first branch. The POS secret is derived from this checkout's ``LIANKA_SECRET_KEY``, so the banner
can print it on every ``make run`` while the database keeps only its hash.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from lianka.platform.db import Database
from lianka.platform.identity import passwords, secrets_box
from lianka.platform.identity.models import ApiClient, StaffMembership, StaffUser
from lianka.platform.settings import Settings
from lianka.tenants.models import Branch, Merchant

DEMO_MERCHANTS = [
    {"slug": "demo-tea", "name": "一点茶 Yidian Tea", "trade": "tea & drinks",
     "branches": [("SH01", "上海人民广场店"), ("SH02", "上海徐家汇店"), ("HZ01", "杭州西湖店")]},
    {"slug": "demo-bakery", "name": "麦香烘焙 Maixiang Bakery", "trade": "bakery",
     "branches": [("BJ01", "北京三里屯店")]},
]
DEMO_PASSWORD = "lianka-demo-password"  # noqa: S105 - development only: the demo is never seeded in production
DEMO_POS_CLIENT_ID = "lkc_demo_tea_sh01"


def demo_owner_email(slug: str) -> str:
    return f"owner@{slug}.example"


def demo_pos_secret(settings: Settings) -> str:
    return "lks_demo_" + secrets_box.mac(settings.secret_key, "lianka:demo-pos", DEMO_POS_CLIENT_ID)[:32]


DEMO_BANNER = """
  Lianka is running at {url}
    API docs      {url}/schema
    health        {url}/readyz    metrics {url}/metrics
  Demo merchants: demo-tea (3 branches), demo-bakery (1 branch)
    staff sign-in   owner@demo-tea.example / owner@demo-bakery.example, password {password}
                    curl -s {url}/api/v1/auth/token -H 'content-type: application/json' \\
                      -d '{{"email":"owner@demo-tea.example","password":"{password}"}}'
    POS client      demo-tea SH01: client_id {client_id}  client_secret {client_secret}
                    curl -s -u {client_id}:{client_secret} -d grant_type=client_credentials {url}/oauth/token
  Press Ctrl-C to stop everything.
"""


def banner(settings: Settings, url: str) -> str:
    return DEMO_BANNER.format(url=url, password=DEMO_PASSWORD, client_id=DEMO_POS_CLIENT_ID,
                              client_secret=demo_pos_secret(settings))


async def seed_if_empty(settings: Settings) -> str:
    db = Database.from_settings(settings)
    pw_hash = await passwords.hash_password(DEMO_PASSWORD)
    try:
        async with db.uow(system=True) as uow:
            if await uow.session.scalar(select(func.count()).select_from(Merchant)):
                return "database already has data; demo not seeded"
            merchants = [Merchant(slug=s["slug"], name=s["name"], trade=s["trade"]) for s in DEMO_MERCHANTS]
            owners = [StaffUser(email=demo_owner_email(str(s["slug"])), display_name=f"Owner of {s['slug']}",
                                password_hash=pw_hash, email_verified_at=datetime.now(UTC)) for s in DEMO_MERCHANTS]
            uow.session.add_all([*merchants, *owners])
            await uow.session.flush()
            for m, owner, spec in zip(merchants, owners, DEMO_MERCHANTS, strict=True):
                await uow.set_tenant(m.id)  # branches are tenant data: written in the tenant's scope
                branches = [Branch(tenant_id=m.id, code=c, name=n) for c, n in spec["branches"]]
                uow.session.add_all(branches)
                uow.session.add(StaffMembership(tenant_id=m.id, user_id=owner.id, role="owner", branch_ids=[]))
                await uow.session.flush()
                if spec["slug"] == "demo-tea":
                    uow.session.add(ApiClient(
                        tenant_id=m.id, client_id=DEMO_POS_CLIENT_ID, name="SH01 till 1", branch_id=branches[0].id,
                        scopes=["pos"], secret_hash=secrets_box.token_hash(demo_pos_secret(settings))))
                    await uow.session.flush()
            await uow.commit()
        return f"demo seeded: {len(DEMO_MERCHANTS)} merchants, their owners and a POS client"
    finally:
        await db.dispose()
