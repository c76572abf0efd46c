"""Alliance cross-marketing's pure rules (decision 0044): the funder's counts are suppressed below 20,
the target's segment always requires consent to alliance offers and never names anything but tiers and
stages, voucher codes are derived (stable per offer and member, distinct otherwise), and the discount
respects the minimum spend."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from lianka.tenants.domain.lifecycle import Stage
from lianka.tenants.marketing import domain as segment_domain
from lianka.tenants.marketing.offer_domain import (
    CODE_ALPHABET,
    SMALL_COUNT,
    Audience,
    discount_for,
    suppressed,
    voucher_code,
)


@given(st.integers(0, 10_000))
def test_counts_below_the_threshold_are_never_shown(n: int) -> None:
    c = suppressed(n)
    if n < SMALL_COUNT:
        assert c.exact is None and c.shown == "< 20"
    else:
        assert c.exact == n and c.shown == str(n)


def test_the_segment_requires_alliance_consent_and_only_shareable_attributes() -> None:
    rules = Audience(("gold", "vip"), (Stage.ACTIVE,)).rules()
    decoded = segment_domain.decode(rules)  # a valid segment document
    kinds = [c["kind"] for c in rules["root"]["conditions"]]
    assert kinds == ["consent", "tier", "stage"]
    assert rules["root"]["conditions"][0] == {"kind": "consent", "channel": "alliance", "granted": True}
    assert decoded.root.op == "and"
    everyone = Audience().rules()["root"]["conditions"]
    assert everyone == [{"kind": "consent", "channel": "alliance", "granted": True}]


def test_voucher_codes_are_stable_and_distinct() -> None:
    offer, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    code = voucher_code("s3cret", offer, a)
    assert code == voucher_code("s3cret", offer, a)
    assert len(code) == 13 and code[0] == "X" and set(code[1:]) <= set(CODE_ALPHABET)
    assert len({code, voucher_code("s3cret", offer, b), voucher_code("s3cret", uuid.uuid4(), a),
                voucher_code("other", offer, a)}) == 4  # fmt: skip


def test_discount_needs_the_minimum_spend_and_never_exceeds_the_sale() -> None:
    assert discount_for(4_999, 1_000, 5_000) is None
    assert discount_for(5_000, 1_000, 5_000) == 1_000
    assert discount_for(600, 1_000, 0) == 600
