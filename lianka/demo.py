"""Demo data for ``make run``: written only into an empty database.

Two merchants — a three-branch tea chain and a single-shop bakery — so the console shows a chain
and a stand-alone merchant side by side. Each business area adds its part of the demo here.

Programme and members: demo-tea has tiers (gold earns double), double points on Tuesdays, a
"pay ¥1000 get ¥1100" plan, a ¥100 joining threshold, and five members who joined at the till.

Alliance: demo-tea operates ``demo-coalition``; demo-bakery joined, and two tea members joined the
bakery too; three weeks of alliance points earned at each partner and paid with at the other (the
alliance dashboard's flows both ways), rolled up for the dashboard.

Marketing: sixty more demo-tea members are gold, said yes to SMS and hold points that expire this
month (earned under the programme's 12-month expiry), and a ¥10 coupon template "回馈券" is ready —
what issue 16's walkthrough (README, "Marketing: the first campaign") needs: a segment "gold members
with points expiring this month", an SMS campaign with the coupon and a 10 % control group.

Identity: an owner per merchant (password :data:`DEMO_PASSWORD`) and a POS client for demo-tea's
first branch. The POS secret is derived from this checkout's ``LIANKA_SECRET_KEY``, so the banner
can print it on every ``make run`` while the database keeps only its hash.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
from sqlalchemy import func, select, text

from lianka.platform import audit
from lianka.platform.db import Database
from lianka.platform.identity import passwords, secrets_box
from lianka.platform.identity.models import ApiClient, StaffMembership, StaffUser
from lianka.platform.settings import Settings
from lianka.tenants.domain.programme import (
    EarningRule,
    JoinPolicy,
    JoinRules,
    Programme,
    Promotion,
    PromotionKind,
    RuleKind,
    SpendStep,
    StoredValueConfig,
    StoredValuePlan,
    Tier,
)
from lianka.tenants.models import Branch, Merchant
from lianka.tenants.services.programme import set_programme

DEMO_MERCHANTS = [
    {
        "slug": "demo-tea",
        "name": "一点茶 Yidian Tea",
        "trade": "tea & drinks",
        "branches": [("SH01", "上海人民广场店"), ("SH02", "上海徐家汇店"), ("HZ01", "杭州西湖店")],
    },
    {
        "slug": "demo-bakery",
        "name": "麦香烘焙 Maixiang Bakery",
        "trade": "bakery",
        "branches": [("BJ01", "北京三里屯店")],
    },
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
  Demo merchants: demo-tea (3 branches, a programme, 65 members), demo-bakery (1 branch)
    marketing       60 gold members with points expiring this month; the demo shopper buys every minute
                    (README "Marketing: the first campaign"; .venv/bin/lianka demo shop for more sales now)
    alliance        demo-coalition (demo-tea operates it, demo-bakery is a partner)
                    .venv/bin/lianka settlement close --scope alliance:demo-coalition --period YYYY-MM
    staff sign-in   owner@demo-tea.example / owner@demo-bakery.example, password {password}
                    curl -s {url}/api/v1/auth/token -H 'content-type: application/json' \\
                      -d '{{"email":"owner@demo-tea.example","password":"{password}"}}'
    POS client      demo-tea SH01: client_id {client_id}  client_secret {client_secret}
                    curl -s -u {client_id}:{client_secret} -d grant_type=client_credentials {url}/oauth/token
    member portal   join {url}/join/demo-tea (posters: {url}/console/join-posters), card {url}/m
  Press Ctrl-C to stop everything.
"""


DEMO_PROGRAMME = Programme(
    tiers=[
        Tier(code="regular", name="普通会员", rank=0),
        Tier(code="silver", name="银卡", rank=1, threshold=100_000, discount_percent=5),
        Tier(
            code="gold",
            name="金卡",
            rank=2,
            threshold=300_000,
            discount_percent=10,
            points_multiplier=Decimal(2),
            birthday_multiplier=Decimal(2),
            perks=["生日双倍积分"],
        ),
    ],
    rules=[EarningRule(code="tuesday-double", kind=RuleKind.PROMOTION, multiplier=Decimal(2), weekdays=[1])],
    join=JoinRules(policy=JoinPolicy.QUALIFYING_PURCHASE, single_purchase_min=10_000, cumulative_min=30_000),
    stored_value=StoredValueConfig(
        plans=[
            StoredValuePlan(code="500", name="储值500", pay=50_000, get=50_000),
            StoredValuePlan(code="1000-1100", name="储值1000送100", pay=100_000, get=110_000),
        ]
    ),
)
#: the price promotions (decision 0043) the demo shows at the till: 满100减10 for everyone, every day,
#: and a Wednesday member day (5 % off, double points). Published as the programme's second version at
#: the end of the seed, so the seeded history keeps the prices it was rung up with and every sale from
#: `make run` on (the till, the POS client, the demo shopper) gets them.
DEMO_PROMOTIONS = [
    Promotion(code="mj100", name="满100减10", kind=PromotionKind.SPEND_SAVE, steps=[SpendStep(10_000, 1_000)]),
    Promotion(
        code="wed-member-day",
        name="周三会员日",
        kind=PromotionKind.MEMBER_DAY,
        weekdays=[2],
        percent_off=5,
        multiplier=Decimal(2),
    ),
]
DEMO_MEMBERS = [
    ("+8613800000001", "张伟"),
    ("+8613800000002", "王芳"),
    ("+8613800000003", "李娜"),
    ("+8613800000004", "刘洋"),
    ("+8613800000005", "陈静"),
]


async def _seed_programme_and_members(db: Database, tenant: uuid.UUID) -> int:
    """demo-tea's programme, five members joining at the till after a qualifying purchase, a top-up
    and some spending — through the same services the POS API uses."""
    from lianka.tenants.pos import sales, schemas, stored_value

    async with db.uow(tenant) as uow:
        await set_programme(uow, DEMO_PROGRAMME, note="demo programme")
        branch = await uow.session.scalar(select(Branch.id).where(Branch.code == "SH01"))
        await uow.commit()
    for i, (phone, _name) in enumerate(DEMO_MEMBERS):
        joined, _ = await sales.sale(
            db, tenant, schemas.Basket(amount=10_000 + 5_000 * i, join_phone=phone), f"demo-join-{i}", branch
        )
        assert joined.member_id is not None
        if i == 0:
            await stored_value.top_up(
                db, tenant, schemas.TopUpIn(member_id=joined.member_id, plan="1000-1100"), "demo-top-up-0", branch
            )
            await sales.sale(
                db,
                tenant,
                schemas.Basket(amount=8_800, member_id=joined.member_id, stored_value=8_800),
                "demo-sv-0",
                branch,
            )
    async with db.uow(tenant) as uow:
        for phone, name in DEMO_MEMBERS:
            await uow.session.execute(
                text("UPDATE member_profiles p SET name = :n FROM members m WHERE m.id = p.member_id AND m.phone = :p"),
                {"n": name, "p": phone},
            )
        await uow.commit()
    return len(DEMO_MEMBERS)


#: four weeks of till history for the dashboard's charts: this many sales a day at every branch,
#: every other one a member's (who earns points), rung up through the POS service like any sale.
HISTORY_DAYS, HISTORY_SALES_PER_DAY = 28, 4


async def _seed_history(db: Database, tenant: uuid.UUID) -> int:
    """demo-tea's last four weeks at the till (real sales with their ledger entries: points earned,
    the branches' clearing), then its dashboard rollups. Returns how many sales it rang up."""
    from lianka.tenants.pos import sales, schemas
    from lianka.tenants.reports import rollups

    async with db.uow(tenant) as uow:
        branches = list((await uow.session.scalars(select(Branch.id).order_by(Branch.code))).all())
        members = list((await uow.session.scalars(text("SELECT member_id FROM memberships ORDER BY member_id"))).all())
    now = datetime.now(UTC)
    count = 0
    for day in range(HISTORY_DAYS, 0, -1):
        for k, branch in enumerate(branches):
            for n in range(HISTORY_SALES_PER_DAY):
                member = members[(day * 7 + n + k) % len(members)] if (day + n) % 2 == 0 else None
                basket = schemas.Basket(
                    amount=1_800 + ((day * 37 + n * 53 + k * 11) % 40) * 100,
                    member_id=member,
                    business_time=now - timedelta(days=day, hours=1 + (n * 3 + day) % 10),
                )
                await sales.sale(db, tenant, basket, f"demo-history-{day}-{k}-{n}", branch)
                count += 1
    await rollups.refresh(db, tenant)
    return count


async def _seed_paid_membership(db: Database, tenant: uuid.UUID) -> None:
    """demo-tea sells a yearly paid membership (付费会员); its first member bought one at SH01."""
    from lianka.billing.membership import products, schemas, terms

    await products.create_product(
        db,
        tenant,
        schemas.ProductIn(
            code="plus",
            name="PLUS 年卡",
            period="yearly",
            price=19_900,
            extra_discount_percent=5,
            points_multiplier=Decimal("1.5"),
            gifts=["免费加料"],
        ),
    )
    async with db.uow(tenant) as uow:
        branch = await uow.session.scalar(select(Branch.id).where(Branch.code == "SH01"))
        member = await uow.session.scalar(
            text("SELECT m.id FROM members m JOIN memberships ms ON ms.member_id = m.id WHERE m.phone = :p"),
            {"p": DEMO_MEMBERS[0][0]},
        )
    await terms.buy_at_till(
        db, tenant, schemas.TillPurchaseIn(member_id=member, product="plus"), "demo-membership-0", branch
    )


DEMO_ALLIANCE = "demo-coalition"


#: the demo alliance's history: this many days back, each with earns at both partners and
#: redemptions of each other's points (the alliance dashboard's Sankey has flows both ways)
ALLIANCE_DAYS = 21
#: the demo members who also joined demo-bakery (the alliance's shared members)
SHARED_MEMBERS = 2


async def _seed_alliance(db: Database, tea: uuid.UUID, bakery: uuid.UUID) -> None:
    """demo-tea operates an alliance that demo-bakery joined; two of the tea shop's members joined the
    bakery too. Three weeks of alliance points earned at both partners and paid with at the other
    (cross-partner flows both ways), then 张伟 earns at the tea shop and pays with some at the bakery
    today; the alliance dashboard's rollups last."""
    from lianka.alliance.alliances import membership as alliances
    from lianka.alliance.alliances import till
    from lianka.alliance.alliances.domain import Terms
    from lianka.alliance.reports import rollups as alliance_rollups

    terms = Terms(fee_per_transaction=20, credit_limit=5_000)
    a = await alliances.create(db, tea, code=DEMO_ALLIANCE, name="城市生活联盟 City Life Alliance", terms=terms)
    code, _ = await alliances.invite(db, tea, a.id, note="demo-bakery")
    await alliances.accept(db, bakery, code)
    async with db.uow(system=True) as uow:
        people = [
            await uow.session.scalar(text("SELECT id FROM members WHERE phone = :p"), {"p": phone})
            for phone, _ in DEMO_MEMBERS
        ]
        await uow.set_tenant(bakery)
        for member in people[:SHARED_MEMBERS]:
            await uow.session.execute(
                text("INSERT INTO memberships (tenant_id, member_id) VALUES (:t, :m)"), {"t": bakery, "m": member}
            )
        await uow.commit()
    member = people[0]
    branches = {}
    for tenant, branch_code in ((tea, "SH01"), (bakery, "BJ01")):
        async with db.uow(tenant) as uow:
            branches[tenant] = await uow.session.scalar(select(Branch.id).where(Branch.code == branch_code))
    now = datetime.now(UTC)
    for day in range(ALLIANCE_DAYS, 0, -1):
        at = now - timedelta(days=day, hours=2 + day % 5)
        for k, (issuer, other) in enumerate(((tea, bakery), (bakery, tea))):
            who = people[(day + k) % len(people)]
            await till.earn(
                db,
                issuer,
                a.id,
                member_id=who,
                amount=3_000 + (day * 41 + k * 17) % 30 * 100,
                branch_id=branches[issuer],
                key=f"demo-alliance-earn-{day}-{k}",
                business_time=at,
            )
            if day % 3 != k:  # most days, the other partner takes some of them as payment
                await till.redeem(
                    db,
                    other,
                    a.id,
                    member_id=who,
                    points=10 + (day * 7 + k * 3) % 20,
                    branch_id=branches[other],
                    key=f"demo-alliance-redeem-{day}-{k}",
                    business_time=at + timedelta(hours=1),
                )
    await till.earn(
        db,
        tea,
        a.id,
        member_id=member,
        amount=26_800,
        branch_id=branches[tea],
        key="demo-alliance-earn-0",
        business_time=None,
    )
    await till.redeem(
        db,
        bakery,
        a.id,
        member_id=member,
        points=100,
        branch_id=branches[bakery],
        key="demo-alliance-redeem-0",
        business_time=None,
    )
    await alliance_rollups.refresh(db, a.id)


#: demo-tea's marketing audience: gold, SMS consent, points expiring this month
MARKETING_MEMBERS = 60
_SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"


def expiring_this_month_earned(now: datetime, tz: str, i: int) -> datetime:
    """When points must have been earned (under a 12-month rolling expiry) to expire between today
    and the end of this month in ``tz`` (member ``i`` spread over the days left)."""
    from zoneinfo import ZoneInfo

    from lianka.alliance.ledger.domain import add_months

    today = now.astimezone(ZoneInfo(tz)).date()
    last = (today.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    first = min(today + timedelta(days=1), last)  # not today: they would be gone at midnight
    last_valid_day = first + timedelta(days=i % ((last - first).days + 1))  # expires at the end of it
    earned = add_months(last_valid_day, -12)
    return datetime.combine(earned, datetime.min.time(), ZoneInfo(tz)) + timedelta(hours=12)


async def seed_marketing_audience(db: Database, tenant: uuid.UUID) -> int:
    """Sixty gold members with SMS consent and points expiring this month, joined at the till; a ¥10
    coupon for the campaign. Through the POS, CRM, ledger and coupon services."""
    from lianka.tenants.catalogue import schemas as catalogue
    from lianka.tenants.domain.pricing import CouponKind
    from lianka.tenants.pos import sales, schemas
    from lianka.tenants.services import accounts, coupon_admin, crm

    async with db.uow(tenant) as uow:
        branch = await uow.session.scalar(select(Branch.id).where(Branch.code == "SH02"))
        _, tz = await accounts.merchant_info(uow)
    now = datetime.now(UTC)
    for i in range(MARKETING_MEMBERS):
        phone = f"+861380001{i:04d}"
        joined, _ = await sales.sale(
            db, tenant, schemas.Basket(amount=12_000 + 700 * i, join_phone=phone), f"demo-mkt-join-{i}", branch
        )
        member = joined.member_id
        assert member is not None
        await crm.grant_tier(
            db, tenant, member, "gold", until=None, reason="demo: gold member", actor="demo", who=audit.system("demo")
        )
        await crm.change_consent(db, tenant, member, "sms", True, source="demo", actor="demo")
        async with db.uow(tenant) as uow:
            await accounts.award_points(
                uow, member, 200 + 10 * i, programme=DEMO_PROGRAMME, reason="demo: last year's bonus",
                key=f"demo-mkt-points-{i}", business_time=expiring_this_month_earned(now, tz, i),
            )  # fmt: skip
            await uow.session.execute(
                text("UPDATE member_profiles SET name = :n WHERE member_id = :m"),
                {"n": _SURNAMES[i % len(_SURNAMES)] + _GIVEN[(i * 7) % len(_GIVEN)], "m": member},
            )
            await uow.commit()
    await coupon_admin.create_template(
        db,
        tenant,
        catalogue.TemplateIn(
            code="HUIKUI10",
            name="回馈券 ¥10",
            kind=CouponKind.FIXED,
            amount_off=1_000,
            min_spend=3_000,
            valid_days=30,
            per_member_limit=1,
        ),
    )
    return MARKETING_MEMBERS


def banner(settings: Settings, url: str) -> str:
    return DEMO_BANNER.format(
        url=url, password=DEMO_PASSWORD, client_id=DEMO_POS_CLIENT_ID, client_secret=demo_pos_secret(settings)
    )


async def _seed_promotions(db: Database, tenant: uuid.UUID) -> None:
    """demo-tea's programme version 2: the demo programme with :data:`DEMO_PROMOTIONS`, from now on."""
    async with db.uow(tenant) as uow:
        await set_programme(
            uow, msgspec.structs.replace(DEMO_PROGRAMME, promotions=DEMO_PROMOTIONS), note="demo promotions"
        )
        await uow.commit()


async def seed_if_empty(settings: Settings) -> str:
    db = Database.from_settings(settings)
    pw_hash = await passwords.hash_password(DEMO_PASSWORD)
    try:
        async with db.uow(system=True) as uow:
            if await uow.session.scalar(select(func.count()).select_from(Merchant)):
                return "database already has data; demo not seeded"
            merchants = [Merchant(slug=s["slug"], name=s["name"], trade=s["trade"]) for s in DEMO_MERCHANTS]
            owners = [
                StaffUser(
                    email=demo_owner_email(str(s["slug"])),
                    display_name=f"Owner of {s['slug']}",
                    password_hash=pw_hash,
                    email_verified_at=datetime.now(UTC),
                )
                for s in DEMO_MERCHANTS
            ]
            uow.session.add_all([*merchants, *owners])
            await uow.session.flush()
            for m, owner, spec in zip(merchants, owners, DEMO_MERCHANTS, strict=True):
                await uow.set_tenant(m.id)  # branches are tenant data: written in the tenant's scope
                branches = [Branch(tenant_id=m.id, code=c, name=n) for c, n in spec["branches"]]
                uow.session.add_all(branches)
                uow.session.add(StaffMembership(tenant_id=m.id, user_id=owner.id, role="owner", branch_ids=[]))
                await uow.session.flush()
                if spec["slug"] == "demo-tea":
                    uow.session.add(
                        ApiClient(
                            tenant_id=m.id,
                            client_id=DEMO_POS_CLIENT_ID,
                            name="SH01 till 1",
                            branch_id=branches[0].id,
                            scopes=["pos"],
                            secret_hash=secrets_box.token_hash(demo_pos_secret(settings)),
                        )
                    )
                    await uow.session.flush()
            await uow.commit()
        tea = merchants[0]
        members = await _seed_programme_and_members(db, tea.id)
        await _seed_paid_membership(db, tea.id)
        await _seed_alliance(db, tea.id, merchants[1].id)
        await _seed_history(db, tea.id)
        marketing = await seed_marketing_audience(db, tea.id)
        await _seed_promotions(db, tea.id)
        # the nightly RFM scores and the dashboard's member snapshot, once now (the job runs at night)
        from lianka.tenants.marketing.services import rfm_scores

        await rfm_scores(db, tea.id, datetime.now(UTC))
        return (
            f"demo seeded: {len(DEMO_MERCHANTS)} merchants, their owners, a POS client, demo-tea's programme "
            f"and {members} members with some purchases, a paid membership, alliance {DEMO_ALLIANCE}, four weeks of sales for the dashboard, "
            f"{marketing} gold members with SMS consent and points expiring this month, "
            "promotions 满100减10 and a Wednesday member day"
        )
    finally:
        await db.dispose()
