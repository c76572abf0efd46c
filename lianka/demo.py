"""Demo data for ``make run``: written only into an empty database.

Two merchants — a three-branch tea chain and a single-shop bakery — so the console shows a chain
and a stand-alone merchant side by side. Each business area adds its part of the demo here.
"""

from __future__ import annotations

from sqlalchemy import func, select

from lianka.platform.db import Database
from lianka.platform.settings import Settings
from lianka.tenants.models import Branch, Merchant

DEMO_MERCHANTS = [
    {"slug": "demo-tea", "name": "一点茶 Yidian Tea", "trade": "tea & drinks",
     "branches": [("SH01", "上海人民广场店"), ("SH02", "上海徐家汇店"), ("HZ01", "杭州西湖店")]},
    {"slug": "demo-bakery", "name": "麦香烘焙 Maixiang Bakery", "trade": "bakery",
     "branches": [("BJ01", "北京三里屯店")]},
]

DEMO_BANNER = """
  Lianka is running at {url}
    API docs      {url}/schema
    health        {url}/readyz    metrics {url}/metrics
  Demo merchants: demo-tea (3 branches), demo-bakery (1 branch)
  Press Ctrl-C to stop everything.
"""


async def seed_if_empty(settings: Settings) -> str:
    db = Database.from_settings(settings)
    try:
        async with db.uow(system=True) as uow:
            if await uow.session.scalar(select(func.count()).select_from(Merchant)):
                return "database already has data; demo not seeded"
            merchants = [Merchant(slug=s["slug"], name=s["name"], trade=s["trade"]) for s in DEMO_MERCHANTS]
            uow.session.add_all(merchants)
            await uow.session.flush()
            for m, spec in zip(merchants, DEMO_MERCHANTS, strict=True):
                await uow.set_tenant(m.id)  # branches are tenant data: written in the tenant's scope
                uow.session.add_all(Branch(tenant_id=m.id, code=c, name=n) for c, n in spec["branches"])
                await uow.session.flush()
            await uow.commit()
        return f"demo seeded: {len(DEMO_MERCHANTS)} merchants"
    finally:
        await db.dispose()
