"""The named parts statements are composed of use exactly the placeholders they are given, and the
POS's finished statements bind one contiguous run of parameters: composition never needs a
placeholder rewritten (decision 0019)."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from lianka.tenants import queries
from lianka.tenants.pos import queries as pos_queries

_PLACEHOLDER = re.compile(r"\$(\d+)")


def _used(sql: str) -> set[int]:
    return {int(n) for n in _PLACEHOLDER.findall(sql)}


@pytest.mark.parametrize("first", [1, 5, 31])
def test_balances_part_uses_the_four_placeholders_it_is_given(first: int) -> None:
    assert _used(queries.balances_sql(first)) == set(range(first, first + 4))


@pytest.mark.parametrize("at", [1, 3, 12])
def test_version_part_uses_the_one_placeholder_it_is_given(at: int) -> None:
    assert _used(queries.version_at_sql(at)) == {at}


def test_sale_statements_bind_the_sale_row_in_one_contiguous_run() -> None:
    n = len(fields(pos_queries.SaleRow))
    assert _used(pos_queries._GUEST_SALE_SQL) == set(range(1, n + 1))
    # balances' four, the sale row, then set_tier, tier, body and key
    assert _used(pos_queries._MEMBER_SALE_SQL) == set(range(1, 4 + n + 4 + 1))
    assert _used(pos_queries._BALANCES_AND_STANDING_SQL) == set(range(1, 7))
    for lock in (True, False):
        for claim in (True, False):  # the Idempotency-Key's scope, key and hash after the context's four
            context = pos_queries._context_sql(lock, claim)
            assert _used(context) == ({1, 2, 3, 4, 5, 6, 7} if claim else {1, 2, 3, 4})
            assert ("FOR UPDATE" in context) is lock
            assert ("INSERT INTO idempotency_keys" in context) is claim
        assert ("FOR UPDATE" in pos_queries._PROFILE_SQL[lock]) is lock
    # a sale's read with its balances and standing: the points unit and the window's start come last
    assert _used(pos_queries._context_sql(True, True, True)) == set(range(1, 10))


def test_the_profile_row_type_is_what_the_context_selects() -> None:
    for flags in ((True, True, True), (True, True, False), (True, False, False), (False, False, False)):
        for column in (f.name for f in fields(pos_queries.Profile)):
            assert f"p.{column}" in pos_queries._context_sql(*flags)
