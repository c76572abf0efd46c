"""The ledger's SQL files (alliance/ledger/sql/): their shape, and released versions never change.

A migration loads a function's file by version, so editing a released ``v<N>.sql`` would silently
give a fresh database another function than one upgraded before the edit. The statements are pinned
here by hash (the comments above a statement may change: they are not part of the function).
"""

from __future__ import annotations

import hashlib
import re

import pytest

from lianka.alliance.ledger import sql

#: sha256 of each released statement; a new version gets its line when its migration is written
RELEASED = {
    ("ledger_books_with_due_lots", 1): "f0b9a598e59b31e9186061f303ba37929cc81fc654e7c4a24d377e411be7988d",
    ("ledger_check_balanced", 1): "6d2128ede3323ec80dfa70e09d230fc893afc962767706f8f94c69953a597c91",
    ("ledger_check_balanced", 2): "94a9accea8406bf3987d7aa44fc06a78f465dfbba8194085966221c5999cecf7",
    ("ledger_forbid_change", 1): "c6082e09fc33372ba63907bdcc752e53209666cc2f7851dd1d90f2c535edc1eb",
    ("ledger_post", 1): "74ed3173a18da5134224660ff38b88a6e26a8648c0ba38e3f202498039adbbce",
    ("ledger_post", 2): "0001a4e314e402d105e1a2ae1db4a4729366e644a179e9e0f5e11d9d7cfc8976",
}


def statement(text: str) -> str:
    """The file without the comment lines above its statement."""
    lines = text.splitlines(keepends=True)
    while lines and (lines[0].startswith("--") or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines)


def all_files() -> list[tuple[str, int]]:
    return [(name, v) for name in sql.names() for v in sql.versions(name)]


def test_there_are_files() -> None:
    assert "ledger_post" in sql.names()
    assert sql.newest("ledger_post") >= 2


@pytest.mark.parametrize(("name", "version"), all_files())
def test_each_file_is_one_statement_creating_its_function(name: str, version: int) -> None:
    body = statement(sql.load(name, version))
    assert body.startswith(f"CREATE OR REPLACE FUNCTION {name}("), "a file creates the function it is named after"
    assert body.rstrip().endswith("$$;")
    assert body.count("$$") == 2, "one statement per file (migrations execute it as one)"
    assert len(re.findall(r"\bCREATE\b", body)) == 1


@pytest.mark.parametrize("name", sql.names())
def test_versions_count_up_from_one(name: str) -> None:
    assert sql.versions(name) == list(range(1, sql.newest(name) + 1))


@pytest.mark.parametrize(("name", "version"), all_files())
def test_released_versions_are_never_edited(name: str, version: int) -> None:
    digest = hashlib.sha256(statement(sql.load(name, version)).encode()).hexdigest()
    assert RELEASED.get((name, version)) == digest, (
        f"{name}/v{version}.sql: a released version is never edited; change the function in "
        f"v{sql.newest(name) + 1}.sql and a migration that loads it (then pin its hash here)"
    )


def test_unknown_files_are_lookup_errors() -> None:
    with pytest.raises(LookupError):
        sql.load("ledger_post", 99)
    with pytest.raises(LookupError):
        sql.versions("no_such_function")
