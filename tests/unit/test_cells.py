from __future__ import annotations

import pytest

from lianka.platform.cells import safe_cell, safe_row


@pytest.mark.parametrize("text", ["=1+2", "+86 138", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'])
def test_formula_triggers_become_text(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["张三", "tea lover", "", "1=1", 12, -1200, None, 0])
def test_other_values_unchanged(value: object) -> None:
    assert safe_cell(value) == value


def test_row() -> None:
    assert safe_row(["=x", -5, "ok"]) == ["'=x", -5, "ok"]
