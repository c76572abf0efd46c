"""The ledger engine's SQL, one readable file per database function and version.

``<name>/v<N>.sql`` holds one ``CREATE OR REPLACE FUNCTION`` statement (comments above it say what
the function is for and which migration introduced that version). Migrations load them **by
version**: the migration that introduced ``v2`` keeps loading ``v2`` forever, so a fresh database
and an upgraded one get the same functions, and the highest version is what the database runs.

A released version is never edited. To change a function, copy its newest file to ``v<N+1>.sql``,
change the copy, and add a migration that runs ``load(name, N + 1)`` (decision 0017). The
integration tests check that every ledger function in a migrated database is exactly its newest
file (``tests/integration/ledger/test_sql_files.py``).
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

_VERSION = re.compile(r"^v([1-9][0-9]*)\.sql$")


def _root() -> Traversable:
    return files(__name__)


def names() -> list[str]:
    """Every function that has SQL files here."""
    return sorted(p.name for p in _root().iterdir() if p.is_dir() and not p.name.startswith("_"))


def versions(name: str) -> list[int]:
    """The versions of a function, oldest first."""
    folder = _root().joinpath(name)
    if not folder.is_dir():
        raise LookupError(f"no SQL files for {name!r} in {__name__}")
    found = (_VERSION.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def newest(name: str) -> int:
    """The highest version of a function: what a database migrated to head runs."""
    return versions(name)[-1]


def load(name: str, version: int) -> str:
    """The text of ``<name>/v<version>.sql``: one statement, for ``op.execute``."""
    path = _root().joinpath(name, f"v{version}.sql")
    if not path.is_file():
        raise LookupError(f"no SQL file {name}/v{version}.sql in {__name__}")
    return path.read_text(encoding="utf-8")
