"""Programme templates: a complete starting programme for each kind of shop, chosen at onboarding.

A merchant who never read the API documentation should not have to invent tiers, an earn rate, a
points expiry, stored-value plans and a welcome offer. Each template is plain data — what a shop of
that trade typically runs in China — turned into a :class:`Programme` (and the welcome coupon's
terms) by :meth:`ProgrammeTemplate.programme`. Publishing it is a use case
(:mod:`lianka.tenants.services.programme_templates`): a new programme version like any other, so
the merchant edits it afterwards like any other.

Texts the template writes into the merchant's data (tier, plan and coupon names) exist in Chinese
and English; the language of the person who applies the template decides which one is stored —
they are the merchant's own texts from then on, shown to its members. Amounts are written here in
major units (¥) and converted with the merchant's currency's minor digits, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from lianka.platform.money import Money
from lianka.tenants.domain.pricing import CouponKind
from lianka.tenants.domain.programme import (
    EarningRule,
    ExpiryKind,
    ExpiryPolicy,
    JoinRules,
    PointsConfig,
    Programme,
    RuleKind,
    StoredValueConfig,
    StoredValuePlan,
    Tier,
    TierPolicy,
    validate,
)

#: the languages a template speaks (BCP 47 tags, as the console uses them)
LANGUAGES = ("zh-CN", "en")


@dataclass(frozen=True)
class Text:
    """A text in Chinese and English."""

    zh: str
    en: str

    def in_(self, language: str) -> str:
        return self.en if language == "en" else self.zh


@dataclass(frozen=True)
class TierSpec:
    code: str
    name: Text
    #: cumulative qualifying spend within the tier window, in major units (¥)
    threshold: int = 0
    points_multiplier: str = "1"
    discount_percent: int = 0
    birthday_multiplier: str = "1"


@dataclass(frozen=True)
class PlanSpec:
    """A stored-value plan: pay ``pay`` (¥), get ``get`` (¥) to spend."""

    pay: int
    get: int

    @property
    def code(self) -> str:
        return f"{self.pay}-{self.get}"

    def name(self, language: str) -> str:
        bonus = self.get - self.pay
        if language == "en":
            return f"Pay ¥{self.pay}, get ¥{self.get}" if bonus else f"Top up ¥{self.pay}"
        return f"充{self.pay}送{bonus}" if bonus else f"储值{self.pay}"


@dataclass(frozen=True)
class WelcomeCoupon:
    """The coupon every new member receives (a fixed amount off, or a percentage with a cap)."""

    name: Text
    amount_off: int = 0  # ¥
    percent_off: int = 0
    cap: int | None = None  # ¥, for a percentage
    min_spend: int = 0  # ¥
    valid_days: int = 30

    @property
    def kind(self) -> CouponKind:
        return CouponKind.PERCENT if self.percent_off else CouponKind.FIXED


@dataclass(frozen=True)
class WelcomeTerms:
    """The welcome coupon template to create, in the merchant's minor units."""

    code: str
    name: str
    kind: CouponKind
    amount_off: int
    percent_off: int
    cap: int | None
    min_spend: int
    valid_days: int
    per_member_limit: int = 1


@dataclass(frozen=True)
class ProgrammeTemplate:
    key: str
    title: Text
    summary: Text
    #: the sign-up trades this template is recommended for
    trades: tuple[str, ...]
    tiers: tuple[TierSpec, ...]
    plans: tuple[PlanSpec, ...]
    welcome: WelcomeCoupon
    #: points per ¥1 of qualifying spend
    earn_per_yuan: str = "1"
    expiry: ExpiryPolicy = field(default_factory=ExpiryPolicy)
    #: points as cash: the value of one point (¥) and the largest share of a bill points may pay
    point_value: str = "0.01"
    points_max_share: int = 30
    tier_window_months: int = 12
    signup_points: int = 0
    referral_points: int = 0
    checkin_points: int = 0

    @property
    def welcome_code(self) -> str:
        """The welcome coupon template's code (one per template: applying another template creates
        its own welcome coupon instead of reusing a different offer)."""
        return f"welcome-{self.key}"

    def welcome_terms(self, language: str, currency: str, code: str | None = None) -> WelcomeTerms:
        w = self.welcome
        return WelcomeTerms(
            code=code or self.welcome_code,
            name=w.name.in_(language),
            kind=w.kind,
            amount_off=_minor(w.amount_off, currency),
            percent_off=w.percent_off,
            cap=_minor(w.cap, currency) if w.cap is not None else None,
            min_spend=_minor(w.min_spend, currency),
            valid_days=w.valid_days,
        )

    def programme(self, language: str, currency: str, coupon_code: str | None = None) -> Programme:
        """The programme document this template publishes; the sign-up rule issues the welcome coupon
        ``coupon_code`` (the template's own code unless the caller had to pick another)."""
        rules = [
            EarningRule(
                code="welcome",
                kind=RuleKind.SIGNUP,
                points=self.signup_points,
                coupon_template=coupon_code or self.welcome_code,
            )
        ]
        if self.referral_points:
            rules.append(
                EarningRule(
                    code="referral",
                    kind=RuleKind.REFERRAL,
                    points=self.referral_points,
                    min_spend=_minor(self.welcome.min_spend, currency),
                )
            )
        if self.checkin_points:
            rules.append(
                EarningRule(
                    code="checkin",
                    kind=RuleKind.CHECKIN,
                    points=self.checkin_points,
                    streak_bonus={"7": self.checkin_points * 4},
                )
            )
        return validate(
            Programme(
                points=PointsConfig(
                    name="points" if language == "en" else "积分",
                    earn_per_major=Decimal(self.earn_per_yuan),
                    expiry=self.expiry,
                    cash_value_per_point=Decimal(self.point_value),
                    cash_max_share_percent=self.points_max_share,
                ),
                tiers=[
                    Tier(
                        code=t.code,
                        name=t.name.in_(language),
                        rank=rank,
                        threshold=_minor(t.threshold, currency),
                        points_multiplier=Decimal(t.points_multiplier),
                        discount_percent=t.discount_percent,
                        birthday_multiplier=Decimal(t.birthday_multiplier),
                    )
                    for rank, t in enumerate(self.tiers)
                ],
                tier_policy=TierPolicy(window_months=self.tier_window_months),
                rules=rules,
                join=JoinRules(),
                stored_value=StoredValueConfig(
                    plans=[
                        StoredValuePlan(
                            code=p.code, name=p.name(language), pay=_minor(p.pay, currency), get=_minor(p.get, currency)
                        )
                        for p in self.plans
                    ]
                ),
            )
        )


def _minor(major: int, currency: str) -> int:
    return Money.of(major, currency).minor


_MEMBER = Text("普通会员", "Member")
_SILVER = Text("银卡会员", "Silver")
_GOLD = Text("金卡会员", "Gold")

TEMPLATES: tuple[ProgrammeTemplate, ...] = (
    ProgrammeTemplate(
        key="tea",
        title=Text("茶饮 · 咖啡", "Tea and coffee"),
        summary=Text(
            "客单价低、回头客多：积分快速累积，充值有赠送，签到领积分。",
            "Small tickets, frequent visits: points add up fast, top-ups come with a bonus, "
            "members check in for points.",
        ),
        trades=("tea", "coffee"),
        tiers=(
            TierSpec("regular", _MEMBER),
            TierSpec("silver", _SILVER, threshold=500, points_multiplier="1.2"),
            TierSpec(
                "gold", _GOLD, threshold=1500, points_multiplier="1.5", discount_percent=5, birthday_multiplier="2"
            ),
        ),
        plans=(PlanSpec(100, 110), PlanSpec(200, 230), PlanSpec(500, 600)),
        welcome=WelcomeCoupon(Text("新人立减券 ¥5", "Welcome ¥5 off"), amount_off=5, min_spend=20, valid_days=30),
        expiry=ExpiryPolicy(kind=ExpiryKind.ROLLING_MONTHS, months=12),
        signup_points=50,
        referral_points=100,
        checkin_points=5,
    ),
    ProgrammeTemplate(
        key="bakery",
        title=Text("烘焙 · 餐饮", "Bakery and food"),
        summary=Text(
            "常客储值、会员折扣：金卡享九折，生日双倍积分。",
            "Regulars prepay and save: gold members get 10% off and double points on their birthday.",
        ),
        trades=("bakery", "restaurant"),
        tiers=(
            TierSpec("regular", _MEMBER),
            TierSpec("silver", _SILVER, threshold=800, discount_percent=5),
            TierSpec("gold", _GOLD, threshold=2000, discount_percent=10, birthday_multiplier="2"),
        ),
        plans=(PlanSpec(200, 220), PlanSpec(500, 580), PlanSpec(1000, 1200)),
        welcome=WelcomeCoupon(Text("新人立减券 ¥10", "Welcome ¥10 off"), amount_off=10, min_spend=50, valid_days=30),
        expiry=ExpiryPolicy(kind=ExpiryKind.END_OF_YEAR, extra_years=1),
        signup_points=100,
        referral_points=200,
    ),
    ProgrammeTemplate(
        key="retail",
        title=Text("零售", "Retail"),
        summary=Text(
            "四个等级按消费升级，高等级积分加倍；新人九折券。",
            "Four tiers by spend, higher tiers earn more points; a 10% welcome coupon.",
        ),
        trades=("retail", "other"),
        tiers=(
            TierSpec("regular", _MEMBER),
            TierSpec("silver", _SILVER, threshold=2000, points_multiplier="1.2"),
            TierSpec("gold", _GOLD, threshold=5000, points_multiplier="1.5", discount_percent=5),
            TierSpec(
                "platinum",
                Text("铂金会员", "Platinum"),
                threshold=10000,
                points_multiplier="2",
                discount_percent=8,
                birthday_multiplier="2",
            ),
        ),
        plans=(PlanSpec(500, 530), PlanSpec(1000, 1080)),
        welcome=WelcomeCoupon(
            Text("新人九折券", "Welcome 10% off"), percent_off=10, cap=50, min_spend=100, valid_days=30
        ),
        expiry=ExpiryPolicy(kind=ExpiryKind.END_OF_YEAR, extra_years=1),
        point_value="0.01",
        points_max_share=20,
        signup_points=100,
        referral_points=200,
    ),
    ProgrammeTemplate(
        key="beauty",
        title=Text("美容 · 美发 · 健身", "Beauty, salon and fitness"),
        summary=Text(
            "以储值卡为主：充得多送得多，钻石会员八五折，积分两年有效。",
            "Built around prepaid cards: bigger top-ups earn bigger bonuses, diamond members get "
            "15% off, points last two years.",
        ),
        trades=("beauty", "fitness"),
        tiers=(
            TierSpec("regular", _MEMBER),
            TierSpec("silver", _SILVER, threshold=3000, discount_percent=5),
            TierSpec("gold", _GOLD, threshold=8000, points_multiplier="1.5", discount_percent=10),
            TierSpec(
                "diamond",
                Text("钻石会员", "Diamond"),
                threshold=20000,
                points_multiplier="2",
                discount_percent=15,
                birthday_multiplier="2",
            ),
        ),
        plans=(PlanSpec(1000, 1200), PlanSpec(3000, 3800), PlanSpec(5000, 6500)),
        welcome=WelcomeCoupon(
            Text("新客体验券 ¥30", "First visit ¥30 off"), amount_off=30, min_spend=200, valid_days=60
        ),
        expiry=ExpiryPolicy(kind=ExpiryKind.ROLLING_MONTHS, months=24),
        signup_points=200,
        referral_points=500,
    ),
)
BY_KEY: dict[str, ProgrammeTemplate] = {t.key: t for t in TEMPLATES}


def recommended(trade: str | None) -> ProgrammeTemplate:
    """The template for a merchant's trade (the one it chose at sign-up); retail for anything else."""
    return next((t for t in TEMPLATES if trade in t.trades), BY_KEY["retail"])
