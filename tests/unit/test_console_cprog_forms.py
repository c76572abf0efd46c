"""Console forms of the programme editor, coupons and rewards: amounts typed in yuan are read exactly
in fen, the section forms carry every field of the programme document both ways, and a problem's
path finds the input it came from."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import msgspec
import pytest
from litestar.datastructures import FormMultiDict

from lianka.demo import DEMO_PROGRAMME
from lianka.platform.errors import ValidationFailed
from lianka.tenants.domain import programme as doc
from lianka.tenants.services.programme import with_section
from lianka.web.console import form_values as fv
from lianka.web.console import programme_form as pf


@pytest.mark.parametrize(
    ("typed", "fen"),
    [
        ("12.34", 1234),
        ("12.3", 1230),
        ("12", 1200),
        ("0.01", 1),
        ("3,000.50", 300_050),
        ("¥ 5", 500),
        ("3000.00", 300_000),
        ("99999999999.99", 9_999_999_999_999),
    ],
)
def test_amounts_in_yuan_are_exact_fen(typed: str, fen: int) -> None:
    assert fv.minor_units(typed, "amount", "CNY") == fen


@pytest.mark.parametrize(
    "typed", ["12.345", "0.001", "1e3", "NaN", "Infinity", "-1", "12.", ".5", "1 2.3.4", "", "12,34.5.6", "0x10"]
)
def test_anything_else_is_an_error_beside_the_field(typed: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        fv.minor_units(typed, "tiers-2-threshold", "CNY")
    assert refused.value.extra == {"field": "tiers-2-threshold", "reason": "amount"}


def test_other_values() -> None:
    assert fv.minor_units("", "x", "CNY", required=False) is None
    assert fv.minor_units("500", "x", "JPY") == 500
    with pytest.raises(ValidationFailed):
        fv.minor_units("5.5", "x", "JPY")  # no minor unit in yen
    assert fv.whole("42", "n") == 42 and fv.whole("", "n", required=False) is None
    for bad in ("4.0", "-1", "x", ""):
        with pytest.raises(ValidationFailed):
            fv.whole(bad, "n")
    assert fv.rate("0.5", "r") == "0.5"
    with pytest.raises(ValidationFailed):
        fv.rate("1/2", "r")
    at = fv.local_time("2027-01-01T00:00", "effective_at", "Asia/Shanghai")
    assert at.astimezone(UTC) == datetime(2026, 12, 31, 16, tzinfo=UTC)
    for bad in ("2027-01-01", "2027-01-01T00:00+08:00", "soon"):
        with pytest.raises(ValidationFailed):
            fv.local_time(bad, "effective_at", "Asia/Shanghai")


def _posted(form: pf.SectionForm) -> FormMultiDict:
    """The form as a browser posts it: filled inputs, ticked boxes, the row counts."""
    items = [(k, v) for k, v in form.values.items() if v]
    items += [(k, v) for k, values in form.groups.items() for v in values]
    items += [(f"{lst}-rows", str(n)) for lst, n in form.rows.items()]
    return FormMultiDict(items)


RICH = msgspec.structs.replace(
    DEMO_PROGRAMME,
    rules=[
        *DEMO_PROGRAMME.rules,
        doc.EarningRule(
            code="checkin",
            kind=doc.RuleKind.CHECKIN,
            points=5,
            streak_bonus={"7": 20, "30": 100},
            branches=["SH01", "SH02"],
            tiers=["gold"],
            cap_per_day=50,
            cap_total=10_000,
            starts=datetime(2027, 1, 1).date(),
            ends=datetime(2027, 12, 31).date(),
            min_spend=1250,
        ),
    ],
    points=msgspec.structs.replace(
        DEMO_PROGRAMME.points,
        earn_per_major=Decimal("0.5"),
        pending_days=7,
        expiry=doc.ExpiryPolicy(kind=doc.ExpiryKind.END_OF_YEAR),
    ),
    refunds=doc.RefundPolicy(clawback=False, anywhere=True),
    promotions=[
        doc.Promotion(
            code="mj",
            name="满100减10",
            kind=doc.PromotionKind.SPEND_SAVE,
            steps=[doc.SpendStep(10000, 1000), doc.SpendStep(20050, 3000)],
            members_only=True,
            min_tier="gold",
            branches=["hq"],
            starts=date(2026, 1, 1),
            ends=date(2026, 12, 31),
            from_time=time(9, 30),
            until_time=time(21, 0),
            stackable=False,
            limit_per_member=3,
        ),
        doc.Promotion(
            code="wed",
            name="会员日",
            kind=doc.PromotionKind.MEMBER_DAY,
            percent_off=5,
            multiplier=Decimal("2"),
            weekdays=[2],
            skus=["a", "b"],
            categories=["tea"],
            active=False,
        ),
    ],
)


@pytest.mark.parametrize("section", list(pf.SECTIONS))
def test_a_section_goes_through_its_form_unchanged(section: str) -> None:
    shown = pf.from_programme(RICH, section, "CNY")
    again = pf.from_post(_posted(shown), section)
    assert with_section(RICH, section, pf.to_value(again, "CNY")) == RICH


def _fields(struct: type[msgspec.Struct]) -> set[str]:
    return set(struct.__struct_fields__)


def test_the_forms_carry_every_field_of_the_document() -> None:
    """A field the forms did not know would be lost by the first save: every field has an input."""
    specs = {key: {s.name for s in section.fields} for key, section in pf.SECTIONS.items()}
    rows = {lst: {s.name for s in row} for section in pf.SECTIONS.values() for lst, row in section.lists.items()}
    assert {n.split("-")[0] for n in specs["points"]} == _fields(doc.PointsConfig)
    assert {n.split("-")[1] for n in specs["points"] if n.startswith("expiry-")} == _fields(doc.ExpiryPolicy)
    assert {n.split("-")[1] for n in specs["tiers"]} == _fields(doc.TierPolicy)
    assert rows["tiers"] == _fields(doc.Tier)
    assert rows["rules"] == _fields(doc.EarningRule)
    assert specs["join"] == _fields(doc.JoinRules)
    assert specs["stored-value"] | {"plans"} == _fields(doc.StoredValueConfig)
    assert rows["plans"] == _fields(doc.StoredValuePlan)
    assert specs["refunds"] == _fields(doc.RefundPolicy)
    assert rows["promotions"] == _fields(doc.Promotion)


def test_removed_and_blank_rows_are_left_out_and_errors_find_their_row() -> None:
    shown = pf.from_programme(DEMO_PROGRAMME, "tiers", "CNY")  # regular, silver, gold + a blank row
    assert shown.rows["tiers"] == 4 and shown.value("tiers-2-threshold") == "3000.00"
    post = _posted(shown)
    post = FormMultiDict([*post.multi_items(), ("tiers-1-remove", "on")])
    form = pf.from_post(post, "tiers")
    value = pf.to_value(form, "CNY")
    assert [t["code"] for t in value["tiers"]] == ["regular", "gold"]
    assert form.input_for("tiers[1].threshold") == "tiers-2-threshold"  # gold is the second item, third row
    assert form.input_for("tier_policy.window_months") == "tier_policy-window_months"
    assert form.input_for("tiers[5].code") is None

    typed = FormMultiDict([*_posted(shown).multi_items(), ("tiers-3-name", "Platinum")])
    with pytest.raises(ValidationFailed) as refused:  # a new row with a name but no code
        pf.to_value(pf.from_post(typed, "tiers"), "CNY")
    assert refused.value.extra == {"field": "tiers-3-code", "reason": "required"}


def test_a_spend_threshold_is_yuan_and_a_points_threshold_whole_points() -> None:
    shown = pf.from_programme(DEMO_PROGRAMME, "tiers", "CNY")
    post = FormMultiDict(
        [(k, v) for k, v in _posted(shown).multi_items() if k != "tiers-2-threshold"]
        + [("tiers-2-threshold", "3000.005")]
    )
    with pytest.raises(ValidationFailed) as refused:
        pf.to_value(pf.from_post(post, "tiers"), "CNY")
    assert refused.value.extra == {"field": "tiers-2-threshold", "reason": "amount"}
    points = FormMultiDict(
        [(k, v) for k, v in _posted(shown).multi_items() if k not in ("tiers-2-threshold", "tiers-2-qualification")]
        + [("tiers-2-threshold", "800"), ("tiers-2-qualification", "points")]
    )
    gold = pf.to_value(pf.from_post(points, "tiers"), "CNY")["tiers"][2]
    assert (gold["qualification"], gold["threshold"]) == ("points", 800)
