"""The Citus statement check (tests/sqlcheck.py): which joins Citus can run co-located."""

from __future__ import annotations

import pytest

from tests.sqlcheck import Recorder, check, normalise, report

PLACEMENT = {
    "sales": "distributed",
    "sale_lines": "distributed",
    "coupons": "distributed",
    "coupon_templates": "distributed",
    "memberships": "distributed",
    "merchants": "reference",
    "members": "reference",
    "outbox": "local",
}

TIED = [
    "SELECT * FROM sales s JOIN sale_lines l ON l.tenant_id = s.tenant_id AND l.sale_id = s.id",
    "SELECT * FROM sales s JOIN sale_lines l ON l.sale_id = s.id WHERE s.tenant_id = $1 AND l.tenant_id = $1",
    "SELECT * FROM sales s JOIN sale_lines l ON l.sale_id = s.id WHERE s.tenant_id = $1 AND l.tenant_id = CAST($1 AS uuid)",
    "SELECT * FROM sales JOIN sale_lines USING (tenant_id, sale_id)",
    "SELECT * FROM sales s JOIN members p ON p.id = s.member_id JOIN merchants m ON m.id = s.tenant_id",
    "SELECT * FROM coupons c WHERE c.tenant_id = $1 AND EXISTS "
    "(SELECT 1 FROM coupon_templates t WHERE t.id = c.template_id AND t.tenant_id = c.tenant_id)",
    "SELECT * FROM sales s WHERE s.tenant_id = $1 AND s.member_id IN (SELECT member_id FROM memberships WHERE tenant_id = $1)",
    "SELECT * FROM sales s JOIN (SELECT tenant_id, member_id FROM memberships) m "
    "ON m.tenant_id = s.tenant_id AND m.member_id = s.member_id",
    "INSERT INTO sale_lines (tenant_id, sale_id) SELECT s.tenant_id, s.id FROM sales s WHERE s.id = $1",
    "UPDATE sales SET gross = 1 FROM sale_lines l WHERE l.sale_id = sales.id AND l.tenant_id = sales.tenant_id",
    "WITH x AS (SELECT id FROM sales WHERE tenant_id = $1) SELECT * FROM x JOIN sale_lines l ON l.sale_id = x.id",
    "SELECT 1 FROM sales UNION ALL SELECT 2 FROM sale_lines",
    "INSERT INTO outbox (tenant_id, actor) VALUES ($1, $2)",
]

LOOSE = [
    ("SELECT * FROM sales s JOIN sale_lines l ON l.sale_id = s.id WHERE s.tenant_id = $1", "not tied"),
    (
        "SELECT * FROM sales s JOIN sale_lines l ON l.sale_id = s.id WHERE s.tenant_id = $1 AND l.tenant_id = $2",
        "not tied",
    ),
    (
        "SELECT * FROM coupons c WHERE c.tenant_id = $1 AND EXISTS "
        "(SELECT 1 FROM coupon_templates t WHERE t.id = c.template_id)",
        "not tied",
    ),
    (
        "SELECT (SELECT count(*) FROM sale_lines l WHERE l.sale_id = s.id) FROM sales s WHERE s.tenant_id = $1",
        "not tied",
    ),
    ("INSERT INTO sale_lines (tenant_id, sale_id) SELECT $2, s.id FROM sales s WHERE s.id = $1", "not tied"),
    ("SELECT * FROM sales s JOIN outbox o ON o.tenant_id = s.tenant_id", "coordinator-local outbox"),
]


@pytest.mark.parametrize("sql", TIED)
def test_joins_tied_by_tenant_pass(sql: str) -> None:
    assert check(sql, PLACEMENT) == []


@pytest.mark.parametrize(("sql", "problem"), LOOSE)
def test_joins_not_tied_by_tenant_are_found(sql: str, problem: str) -> None:
    found = check(sql, PLACEMENT)
    assert found and problem in found[0].problem, found


def test_recorded_statements_are_normalised_counted_and_reported() -> None:
    rec = Recorder()
    for sql in (
        "SELECT * FROM sales s\n  JOIN sale_lines l ON l.sale_id = s.id WHERE s.id IN ($1, $2)",
        TIED[0],
        TIED[0],
    ):
        rec._seen(None, None, sql)
    assert normalise("SELECT  1\n FROM x WHERE a IN ($1, $2, $3)") == "SELECT 1 FROM x WHERE a IN ($1 /* , … */)"
    assert rec.dump().splitlines()[0] == f"2\t{TIED[0]}"
    text = report(rec.statements, PLACEMENT)
    assert text.startswith("2 distinct statements, 1 with findings")
    assert "WHERE s.id IN ($1 /* , … */)" in text and "[sale_lines l] | [sales s]" in text
