"""Programme templates (tenants/domain/templates.py): each is a sound programme in both languages,
exact in minor units, and every trade a merchant can sign up with has its template."""

from __future__ import annotations

import pytest

from lianka.tenants.domain import templates
from lianka.tenants.domain.pricing import CouponKind
from lianka.tenants.domain.programme import RuleKind, validate
from lianka.web.console.auth import TRADES


@pytest.mark.parametrize("tpl", templates.TEMPLATES, ids=lambda t: t.key)
@pytest.mark.parametrize("language", templates.LANGUAGES)
def test_every_template_is_a_valid_programme(tpl: templates.ProgrammeTemplate, language: str) -> None:
    p = validate(tpl.programme(language, "CNY"))
    ranks = [t.threshold for t in p.tiers_by_rank()]
    assert ranks == sorted(ranks) and ranks[0] == 0 and len(set(ranks)) == len(ranks)
    assert p.tiers[0].code == "regular"
    assert p.stored_value.plans and all(plan.get > plan.pay for plan in p.stored_value.plans)
    signup = [r for r in p.rules if r.kind == RuleKind.SIGNUP]
    assert len(signup) == 1 and signup[0].coupon_template == tpl.welcome_code
    welcome = tpl.welcome_terms(language, "CNY")
    assert welcome.code == tpl.welcome_code and welcome.per_member_limit == 1 and welcome.valid_days > 0
    assert (welcome.kind == CouponKind.PERCENT) == bool(welcome.percent_off)
    # texts in the applier's language
    chinese = any("\u4e00" <= ch <= "\u9fff" for ch in p.tiers[0].name + welcome.name + p.stored_value.plans[0].name)
    assert chinese == (language == "zh-CN")


def test_amounts_are_exact_minor_units_of_the_merchants_currency() -> None:
    tea = templates.BY_KEY["tea"]
    cny, jpy = tea.programme("zh-CN", "CNY"), tea.programme("zh-CN", "JPY")
    assert [t.threshold for t in cny.tiers] == [0, 50_000, 150_000]  # ¥500 and ¥1500 in fen
    assert [t.threshold for t in jpy.tiers] == [0, 500, 1500]  # yen have no minor unit
    first = cny.stored_value.plans[0]
    assert (first.code, first.pay, first.get) == ("100-110", 10_000, 11_000)
    assert tea.welcome_terms("en", "CNY").amount_off == 500 and tea.welcome_terms("en", "CNY").min_spend == 2000
    assert tea.programme("en", "CNY").stored_value.plans[0].name == "Pay ¥100, get ¥110"
    assert tea.programme("zh-CN", "CNY").stored_value.plans[0].name == "充100送10"


def test_every_sign_up_trade_has_its_template() -> None:
    assert templates.recommended("tea").key == "tea" and templates.recommended("coffee").key == "tea"
    assert templates.recommended("bakery").key == "bakery" and templates.recommended("beauty").key == "beauty"
    assert templates.recommended("something else").key == "retail"
    assert {t for tpl in templates.TEMPLATES for t in tpl.trades} == set(TRADES)
