"""Only bound parameters carry runtime values into SQL (decision 0005).

Row-level security trusts ``app.tenant_id``, a setting the application role may change itself; a
piece of SQL built from a runtime value could change it (``'; SELECT set_config('app.tenant_id',
…)``) and read another merchant's rows. So SQL text must be constant, with values bound as
parameters (``text("… WHERE id = :id")``, ``{"id": value}``; SQLAlchemy expressions bind by
themselves). This test reads the code (AST) and fails on SQL built from strings with interpolated
parts — f-strings, ``%``, ``.format``, ``+``, ``.join`` — passed to ``text()``, ``execute``,
``exec_driver_sql``, ``scalar(s)`` or asyncpg's ``fetch*``, unless every interpolated part is:

- a literal, or ``int(…)``;
- a name bound at module level to a literal (a string, or a tuple/list/set/dict of literals) —
  **the allow-list idiom**: put the fragments a query may use in a module-level constant, e.g.
  ``_ORDER = {"new": "joined_at DESC", "old": "joined_at"}`` and interpolate ``_ORDER[key]``; a
  subscript of, or a loop over (``.items()``/``.keys()``/``.values()`` included), such a constant
  counts as constant;
- a local name whose every assignment in the function is itself made of the above;
- or listed in :data:`ALLOWED` below, with the reason it can only be a constant (reviewed like code).

The scan follows names within one function and module constants; SQL built inside a helper that
*returns* it is not followed — keep such helpers returning entries of a constant table.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCANNED = ("platform", "tenants", "alliance", "billing", "web")
SQL_METHODS = {
    "execute",
    "exec_driver_sql",
    "executemany",
    "scalar",
    "scalars",
    "stream",
    "stream_scalars",
    "fetch",
    "fetchrow",
    "fetchval",
    "copy_from_query",
}

#: (file, interpolated expression) → why it can only be a constant. Keep entries few and specific.
ALLOWED: dict[tuple[str, str], str] = {
    (
        "tenants/crm_queries.py",
        "where",
    ): "_member_filter joins fixed clause strings (the lifecycle clause from a literal dict keyed by an "
    "enum-checked stage); every value it filters by is a bound parameter",
    (
        "platform/db.py",
        "query",
    ): "ScopedConnection.execute appends the prelude to SQLAlchemy's own BEGIN: the prelude is scope_sql's "
    "set_config statement, whose tenant is re-rendered from uuid.UUID and whose scope is '' or 'system' "
    "(anything else raises) — decision 0053",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    expression: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: SQL built from `{self.expression}`"


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _module_constants(tree: ast.Module) -> set[str]:
    """Names bound at module level (once) to a literal."""
    bound: dict[str, list[ast.AST]] = {}
    for stmt in tree.body:
        targets: list[ast.expr] = []
        value: ast.AST | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        for t in targets:
            if isinstance(t, ast.Name) and value is not None:
                bound.setdefault(t.id, []).append(value)
    return {name for name, values in bound.items() if len(values) == 1 and _is_literal(values[0])}


class _Scope:
    """Assignments to each local name in one function (or the module body)."""

    def __init__(self, node: ast.AST, constants: set[str]) -> None:
        self.constants = constants
        self.assigned: dict[str, list[ast.AST]] = {}
        self.params: set[str] = set()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            self.params = {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
            self.params |= {p.arg for p in (a.vararg, a.kwarg) if p}
        for sub in _walk_own(node):
            if isinstance(sub, ast.Assign):
                for t in sub.targets:
                    self._bind(t, sub.value)
            elif isinstance(sub, ast.AnnAssign) and sub.value is not None:
                self._bind(sub.target, sub.value)
            elif isinstance(sub, ast.AugAssign) and isinstance(sub.target, ast.Name):
                self.assigned.setdefault(sub.target.id, []).append(sub.value)
            elif isinstance(sub, ast.For | ast.AsyncFor | ast.comprehension):
                self._bind(sub.target, _Iterated(sub.iter))
            elif isinstance(sub, ast.NamedExpr):
                self._bind(sub.target, sub.value)

    def _bind(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.assigned.setdefault(target.id, []).append(value)
        elif isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:  # unpacking: constant only if the whole value is
                self._bind(elt, _Unpacked(value))


class _Iterated(ast.AST):
    def __init__(self, iterable: ast.AST) -> None:
        super().__init__()
        self.iterable = iterable


class _Unpacked(ast.AST):
    def __init__(self, value: ast.AST) -> None:
        super().__init__()
        self.value = value


def _walk_own(node: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``node``'s body that is not inside a nested function or class."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield child
        yield from _walk_own(child)


class _Checker:
    def __init__(self, path: str, scope: _Scope) -> None:
        self.path = path
        self.scope = scope
        self.findings: list[Finding] = []
        self._resolving: set[str] = set()

    def _constant_table(self, node: ast.AST) -> bool:
        """A module-level literal, or ``.items()``/``.keys()``/``.values()`` of one."""
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and not node.args
            and node.func.attr in {"items", "keys", "values"}
        ):
            node = node.func.value
        return (isinstance(node, ast.Name) and node.id in self.scope.constants) or _is_literal(node)

    def value(self, node: ast.AST) -> bool:
        """Is this interpolated value a constant? Records a finding at the first part that is not."""
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"int", "len"}:
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"replace", "strip", "lower", "upper"}
            and all(map(_is_literal, node.args))
        ):
            return self.value(node.func.value)  # a str method with literal arguments on a constant
        if isinstance(node, ast.Subscript) and self._constant_table(node.value):
            return True
        if isinstance(node, ast.IfExp):
            return _every([self.value(node.body), self.value(node.orelse)])
        if isinstance(node, ast.Tuple | ast.List):
            return _every([self.value(e) for e in node.elts])
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.JoinedStr | ast.BinOp) or _is_format(node) or _is_join(node):
            return self.sql(node)
        return self._flag(node)

    def _name(self, node: ast.Name) -> bool:
        if node.id in self.scope.constants:
            return True
        if node.id in self._resolving:  # ``q = q + …``: the other assignments decide
            return True
        values = self.scope.assigned.get(node.id)
        if node.id in self.scope.params or not values:
            return self._flag(node)
        self._resolving.add(node.id)
        try:
            results = []
            for v in values:
                if isinstance(v, _Iterated):
                    results.append(self._constant_table(v.iterable) or self._flag(node))
                elif isinstance(v, _Unpacked):
                    inner = v.value.iterable if isinstance(v.value, _Iterated) else v.value
                    results.append(self._constant_table(inner) or self._flag(node))
                else:
                    results.append(self.value(v))
            return _every(results)
        finally:
            self._resolving.discard(node.id)

    def sql(self, node: ast.AST) -> bool:
        """The SQL argument itself: a string expression whose parts must all be constant."""
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return _every([self.value(v.value) for v in node.values if isinstance(v, ast.FormattedValue)])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return _every([self.value(node.left), self.value(node.right)])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            right = node.right
            parts = right.values if isinstance(right, ast.Dict) else [right]
            return _every([self.value(node.left), *[self.value(p) for p in parts if p is not None]])
        if _is_format(node) or _is_join(node):
            assert isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            args = [*node.args, *(k.value for k in node.keywords)]
            return _every([self.value(node.func.value), *[self.value(a) for a in args]])
        if isinstance(node, ast.Name):
            # a SQL string kept in a variable; names bound to non-strings (select(…)) are not SQL text
            values = self.scope.assigned.get(node.id, [])
            if node.id in self.scope.constants or not any(_stringy(v) for v in values):
                return True
            return self._name(node)
        return True  # an expression object (select(…), text(…) already checked), not SQL text

    def _flag(self, node: ast.AST) -> bool:
        expression = ast.unparse(node)
        if (self.path, expression) not in ALLOWED:
            self.findings.append(Finding(self.path, getattr(node, "lineno", 0), expression))
        return False


def _every(results: list[bool]) -> bool:
    """``all`` over results already computed: every part is checked, so every finding is reported."""
    return all(results)


def _is_format(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def _is_join(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and isinstance(node.func.value, ast.Constant)
    )


def _stringy(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.JoinedStr | ast.BinOp)
        or _is_format(node)
        or _is_join(node)
        or (isinstance(node, ast.Constant) and isinstance(node.value, str))
    )


def _sql_argument(call: ast.Call) -> ast.AST | None:
    func = call.func
    is_text = (isinstance(func, ast.Name) and func.id == "text") or (
        isinstance(func, ast.Attribute)
        and func.attr == "text"
        and isinstance(func.value, ast.Name)
        and func.value.id in {"sa", "sqlalchemy"}
    )
    is_method = isinstance(func, ast.Attribute) and func.attr in SQL_METHODS
    if not (is_text or is_method):
        return None
    if call.args:
        return call.args[0]
    for k in call.keywords:
        if k.arg in {"statement", "query", "sql", "text"}:
            return k.value
    return None


def scan_source(path: str, source: str) -> list[Finding]:
    tree = ast.parse(source)
    constants = _module_constants(tree)
    findings: list[Finding] = []
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))]
    for node in scopes:
        checker = _Checker(path, _Scope(node, constants))
        for sub in _walk_own(node):
            if isinstance(sub, ast.Call) and (arg := _sql_argument(sub)) is not None:
                checker.sql(arg)
        findings += checker.findings
    return findings


def scan(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for top in SCANNED:
        for file in sorted((root / top).rglob("*.py")):
            rel = file.relative_to(root).as_posix()
            findings += scan_source(rel, file.read_text())
    return findings


def test_no_sql_is_built_from_runtime_values(project_root: Path) -> None:
    findings = scan(project_root)
    assert not findings, (
        "SQL text built from runtime values (bind them as parameters, or see this "
        "test's docstring for the allow-list idiom):\n" + "\n".join(map(str, findings))
    )


def test_every_allow_list_entry_is_still_needed(project_root: Path) -> None:
    """A stale entry would silently allow the same expression in new code."""
    used: set[tuple[str, str]] = set()
    for path, expression in list(ALLOWED):
        source = (project_root / path).read_text()
        saved = ALLOWED.pop((path, expression))
        try:
            if any(f.expression == expression for f in scan_source(path, source)):
                used.add((path, expression))
        finally:
            ALLOWED[(path, expression)] = saved
    assert used == set(ALLOWED), sorted(set(ALLOWED) - used)


# --- the scanner itself --------------------------------------------------------------------------

BAD = {
    "f-string": 'async def f(s, x):\n    await s.execute(text(f"SELECT * FROM t WHERE a = {x}"))\n',
    "percent": 'async def f(conn, x):\n    await conn.fetch("SELECT * FROM t WHERE a = %s" % x)\n',
    "format": 'async def f(s, x):\n    await s.execute(text("SELECT {}".format(x)))\n',
    "concatenation": 'async def f(s, x):\n    await s.scalar(text("SELECT * FROM t WHERE a = " + x))\n',
    "via a variable": "async def f(s, x):\n    q = f\"DELETE FROM t WHERE a = '{x}'\"\n    await s.execute(text(q))\n",
    "augmented": 'async def f(s, x):\n    q = "SELECT 1"\n    q += f" AND {x}"\n    await s.execute(text(q))\n',
    "driver sql": "def f(c, x):\n    c.exec_driver_sql(f\"SET app.tenant_id = '{x}'\")\n",
    "join": 'async def f(s, cols):\n    await s.execute(text("SELECT " + ", ".join(cols)))\n',
    "unpacked call": 'async def f(s, x):\n    a, b = g(x)\n    await s.execute(text(f"SELECT {a}"))\n',
}
GOOD = {
    "bound parameters": 'async def f(s, x):\n    await s.execute(text("SELECT * FROM t WHERE a = :a"), {"a": x})\n',
    "constant table": '_O = {"new": "a DESC", "old": "a"}\nasync def f(s, k):\n'
    '    await s.execute(text(f"SELECT * FROM t ORDER BY {_O[k]}"))\n',
    "loop over constants": 'async def f(s):\n    for t in ("a", "b"):\n'
    '        await s.scalar(text(f"SELECT count(*) FROM {t}"))\n',
    "items of a constant": 'C = {"x": "SELECT 1"}\nasync def f(s, n):\n    for k, q in C.items():\n'
    '        await s.execute(text(f"{q} LIMIT {int(n)}"))\n',
    "expression objects": "async def f(s, x):\n    stmt = select(T).where(T.a == x)\n    await s.execute(stmt)\n",
    "local constants": 'async def f(s, flag):\n    w = " AND b" if flag else ""\n'
    '    await s.execute(text("SELECT 1" + w))\n',
}


def test_the_scanner_catches_each_form() -> None:
    for name, source in BAD.items():
        assert scan_source("x.py", source), name
    for name, source in GOOD.items():
        assert not scan_source("x.py", source), (name, scan_source("x.py", source))
