"""The SQL the app runs, recorded during a test session, and a check that Citus can run it co-located.

**Recording.** ``LIANKA_RECORD_SQL=/path/file.sql`` (or ``pytest --record-sql=/path/file.sql``)
installs a SQLAlchemy ``before_cursor_execute`` hook on every engine: each statement is normalised
(whitespace collapsed, ``IN``-lists of parameters folded) and counted; at the end of the session the
file gets one statement per line with its count, and ``<file>.citus.txt`` gets the findings of
:func:`check` against the placement in ``lianka.platform.citus``. Statements sent through a raw
driver connection (not through SQLAlchemy) are not seen.

**The check.** Citus runs a statement on one shard (or pushes a join down to co-located shards)
when the distributed tables it touches are tied together by ``tenant_id``: ``a.tenant_id =
b.tenant_id``, or each ``tenant_id = $1`` with the same value. Within one *unit* (a statement, with
its subqueries in ``FROM``/``WHERE``; each CTE body and each arm of a ``UNION`` is a unit of its
own) equalities between columns, parameters and constants are merged into classes; every
distributed table occurrence's ``tenant_id`` must fall into one class. A finding names the
occurrences that do not, and a distributed table joined with a coordinator-local one.
Row-level security's own predicate does not count: on Citus the tie must be in the SQL.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pglast
import pglast.ast
import pglast.enums

# the parse tree is walked generically (getattr over slots): typed as Any on purpose
ast: Any = pglast.ast
SetOperation: Any = pglast.enums.SetOperation
SubLinkType: Any = pglast.enums.SubLinkType
parse_sql: Any = pglast.parse_sql

_SPACE = re.compile(r"\s+")
_IN_LIST = re.compile(r"\((\$\d+)(?:\s*,\s*\$\d+)+\)")


def normalise(sql: str) -> str:
    return _IN_LIST.sub(r"(\1 /* , … */)", _SPACE.sub(" ", sql).strip())


class Recorder:
    """Counts the statements every SQLAlchemy engine of the process executes."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()

    def install(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements[normalise(statement)] += 1

    def dump(self) -> str:
        return "".join(f"{n}\t{s}\n" for s, n in sorted(self.statements.items(), key=lambda x: (-x[1], x[0])))


# --- the check ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    statement: str
    problem: str


@dataclass
class _Rel:
    table: str
    alias: str
    n: int


@dataclass
class _Unit:
    rels: list[_Rel] = field(default_factory=list)
    parent: dict[Any, Any] = field(default_factory=dict)

    def find(self, x: Any) -> Any:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Any, b: Any) -> None:
        self.parent[self.find(a)] = self.find(b)


class _Scope:
    def __init__(self, outer: _Scope | None) -> None:
        self.outer = outer
        self.names: dict[str, _Rel | dict[str, Any]] = {}  # alias -> table occurrence, or a derived table's outputs

    def resolve(self, fields: list[str]) -> Any:
        scope: _Scope | None = self
        while scope is not None:
            if len(fields) >= 2:
                hit = scope.names.get(fields[-2])
                if isinstance(hit, _Rel):
                    return ("col", hit.n, fields[-1])
                if isinstance(hit, dict):
                    return hit.get(fields[-1], ("derived", id(hit), fields[-1]))
            elif len(scope.names) == 1:
                (hit,) = scope.names.values()
                if isinstance(hit, _Rel):
                    return ("col", hit.n, fields[0])
                return hit.get(fields[0], ("derived", id(hit), fields[0]))
            scope = scope.outer
        return ("unknown", ".".join(fields))


def _fields(ref: Any) -> list[str]:
    return [f.sval for f in ref.fields if isinstance(f, ast.String)]


class _Checker:
    def __init__(self, placement: dict[str, str]) -> None:
        self.placement = placement
        self.units: list[_Unit] = []
        self.ctes: set[str] = set()
        self.counter = 0

    # terms: a column occurrence, a parameter, a constant
    def term(self, node: Any, scope: _Scope) -> Any:
        if isinstance(node, ast.TypeCast):
            return self.term(node.arg, scope)
        if isinstance(node, ast.ColumnRef):
            return scope.resolve(_fields(node))
        if isinstance(node, ast.ParamRef):
            return ("param", node.number)
        if isinstance(node, ast.A_Const):
            return ("const", repr(node.val))
        return None

    def conjuncts(self, node: Any, unit: _Unit, scope: _Scope) -> None:
        """Merge the equalities ANDed in ``node``; walk its subqueries."""
        if node is None:
            return
        if isinstance(node, ast.BoolExpr) and node.boolop == 0:  # AND
            for arg in node.args:
                self.conjuncts(arg, unit, scope)
            return
        if isinstance(node, ast.A_Expr) and node.kind == 0 and [n.sval for n in node.name] == ["="]:
            left, right = self.term(node.lexpr, scope), self.term(node.rexpr, scope)
            if left is not None and right is not None:
                unit.union(left, right)
        self.subqueries(node, unit, scope)

    def subqueries(self, node: Any, unit: _Unit, scope: _Scope) -> None:
        for child in [node] if isinstance(node, ast.SubLink) else _children(node):
            if isinstance(child, ast.SubLink):
                inner = _Scope(scope)
                self.select(child.subselect, unit, inner)
                if child.testexpr is not None and child.subLinkType == SubLinkType.ANY_SUBLINK:  # x IN (SELECT y …)
                    out = _outputs(child.subselect, self, inner)
                    left = self.term(child.testexpr, scope)
                    if left is not None and len(out) == 1:
                        unit.union(left, next(iter(out.values())))
            elif isinstance(child, ast.Node):
                self.subqueries(child, unit, scope)

    def from_item(self, node: Any, unit: _Unit, scope: _Scope) -> None:
        if isinstance(node, ast.RangeVar):
            if node.relname in self.ctes and not node.schemaname:
                scope.names[node.alias.aliasname if node.alias else node.relname] = {}
                return
            self.counter += 1
            rel = _Rel(node.relname, node.alias.aliasname if node.alias else node.relname, self.counter)
            unit.rels.append(rel)
            scope.names[rel.alias] = rel
        elif isinstance(node, ast.JoinExpr):
            self.from_item(node.larg, unit, scope)
            self.from_item(node.rarg, unit, scope)
            if node.usingClause:
                left, right = _rel_names(node.larg), _rel_names(node.rarg)
                for col in node.usingClause:
                    for a in left:
                        for b in right:
                            unit.union(scope.resolve([a, col.sval]), scope.resolve([b, col.sval]))
            self.conjuncts(node.quals, unit, scope)
        elif isinstance(node, ast.RangeSubselect) and node.subquery is not None:
            inner = _Scope(scope if node.lateral else None)
            self.select(node.subquery, unit, inner)
            if node.alias is not None:
                scope.names[node.alias.aliasname] = _outputs(node.subquery, self, inner)
        elif isinstance(node, ast.RangeFunction) and node.alias is not None:
            scope.names[node.alias.aliasname] = {}

    def with_clause(self, node: Any) -> None:
        if node is None:
            return
        for cte in node.ctes:
            self.ctes.add(cte.ctename)
            self.statement(cte.ctequery)

    def select(self, node: Any, unit: _Unit, scope: _Scope) -> None:
        if not isinstance(node, ast.SelectStmt):
            return
        self.with_clause(node.withClause)
        if node.op is not None and node.op != SetOperation.SETOP_NONE:
            self.statement(node.larg)
            self.statement(node.rarg)
            return
        for item in node.fromClause or ():
            self.from_item(item, unit, scope)
        self.conjuncts(node.whereClause, unit, scope)
        self.conjuncts(node.havingClause, unit, scope)
        for target in node.targetList or ():
            self.subqueries(target, unit, scope)
        for values in node.valuesLists or ():
            for v in values:
                self.subqueries(v, unit, scope)

    def statement(self, node: Any) -> None:
        unit, scope = _Unit(), _Scope(None)
        self.units.append(unit)
        if isinstance(node, ast.SelectStmt):
            self.select(node, unit, scope)
        elif isinstance(node, ast.InsertStmt):
            self.with_clause(node.withClause)
            target = self._target(node.relation, unit, scope)
            if isinstance(node.selectStmt, ast.SelectStmt) and node.cols:
                inner = _Scope(None)
                sub = node.selectStmt
                if sub.valuesLists:
                    for values in sub.valuesLists:
                        for col, v in zip(node.cols, values, strict=False):
                            t = self.term(v, scope)
                            if t is not None:
                                unit.union(("col", target.n, col.name), t)
                            self.subqueries(v, unit, scope)
                else:
                    self.select(sub, unit, inner)
                    for col, res in zip(node.cols, sub.targetList or (), strict=False):
                        t = self.term(res.val, inner)
                        if t is not None:
                            unit.union(("col", target.n, col.name), t)
        elif isinstance(node, ast.UpdateStmt):
            self.with_clause(node.withClause)
            self._target(node.relation, unit, scope)
            for item in node.fromClause or ():
                self.from_item(item, unit, scope)
            self.conjuncts(node.whereClause, unit, scope)
            for target in node.targetList or ():
                self.subqueries(target, unit, scope)
        elif isinstance(node, ast.DeleteStmt):
            self.with_clause(node.withClause)
            self._target(node.relation, unit, scope)
            for item in node.usingClause or ():
                self.from_item(item, unit, scope)
            self.conjuncts(node.whereClause, unit, scope)

    def _target(self, rv: Any, unit: _Unit, scope: _Scope) -> _Rel:
        self.counter += 1
        rel = _Rel(rv.relname, rv.alias.aliasname if rv.alias else rv.relname, self.counter)
        unit.rels.append(rel)
        scope.names[rel.alias] = rel
        return rel

    def findings(self, sql: str) -> list[Finding]:
        out = []
        for unit in self.units:
            dist = [r for r in unit.rels if self.placement.get(r.table) == "distributed"]
            local = [r for r in unit.rels if self.placement.get(r.table) == "local"]
            if dist and local:
                out.append(
                    Finding(
                        sql,
                        "distributed "
                        + ", ".join(sorted({r.table for r in dist}))
                        + " with coordinator-local "
                        + ", ".join(sorted({r.table for r in local})),
                    )
                )
            classes: dict[Any, list[_Rel]] = {}
            for r in dist:
                classes.setdefault(unit.find(("col", r.n, "tenant_id")), []).append(r)
            if len(classes) > 1:
                groups = sorted(" = ".join(sorted(f"{r.table} {r.alias}" for r in g)) for g in classes.values())
                out.append(Finding(sql, "tenant_id not tied between: " + " | ".join(f"[{g}]" for g in groups)))
        return out


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from ([item] if isinstance(item, ast.Node) else _children(item))
        return
    if not isinstance(node, ast.Node):
        return
    for name in node:
        value = getattr(node, name)
        if isinstance(value, ast.Node):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _children(value)


def _rel_names(node: Any) -> list[str]:
    if isinstance(node, ast.RangeVar):
        return [node.alias.aliasname if node.alias else node.relname]
    if isinstance(node, ast.JoinExpr):
        return [*_rel_names(node.larg), *_rel_names(node.rarg)]
    return []


def _outputs(select: Any, checker: _Checker, scope: _Scope) -> dict[str, Any]:
    """A subquery's output columns that are plain terms: name -> term."""
    out: dict[str, Any] = {}
    if not isinstance(select, ast.SelectStmt):
        return out
    for res in select.targetList or ():
        term = checker.term(res.val, scope)
        name = res.name or (_fields(res.val)[-1] if isinstance(res.val, ast.ColumnRef) and _fields(res.val) else None)
        if term is not None and name:
            out[name] = term
    return out


def check(sql: str, placement: dict[str, str]) -> list[Finding]:
    """Where ``sql`` would not run co-located on Citus (see the module docstring); [] when it would."""
    try:
        parsed = parse_sql(sql)
    except Exception:  # a statement pglast cannot parse is reported, not fatal
        return [Finding(sql, "not parsed")]
    checker = _Checker(placement)
    for raw in parsed:
        checker.statement(raw.stmt)
    return checker.findings(sql)


def report(statements: Counter[str], placement: dict[str, str]) -> str:
    """The findings over recorded statements, worst (most executed) first."""
    lines, flagged = [], 0
    for sql, n in sorted(statements.items(), key=lambda x: (-x[1], x[0])):
        found = check(sql, placement)
        if found:
            flagged += 1
            lines.append(f"{n}× {sql}\n" + "".join(f"    - {f.problem}\n" for f in found))
    head = f"{len(statements)} distinct statements, {flagged} with findings\n\n"
    return head + "\n".join(lines)


def write(path: str, recorder: Recorder, database_url: str) -> None:
    """The statements file and ``<path>.citus.txt`` (placement read from the migrated schema)."""
    import asyncio

    import asyncpg

    from lianka.platform import citus
    from lianka.platform.db import asyncpg_params

    async def placement() -> dict[str, str]:
        conn = await asyncpg.connect(**asyncpg_params(database_url))
        try:
            return citus.placement(await citus.read_schema(conn))
        finally:
            await conn.close()

    with open(path, "w") as fh:
        fh.write(recorder.dump())
    with open(path + ".citus.txt", "w") as fh:
        fh.write(report(recorder.statements, asyncio.run(placement())))
