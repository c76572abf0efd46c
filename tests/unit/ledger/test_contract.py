"""Python and ``ledger_post`` agree on the JSON between them (alliance/ledger/contract.py).

The SQL side is read from the newest ``ledger_post`` file: every field it reads from the entry
(``p->>'…'``, ``p->'…'``, ``p ? '…'``) and from a leg (``l``, ``x.l``, ``leg``) is a field of
``PostEntry`` / ``PostLeg`` and the other way round; the keys of the objects it returns are
``PostResult``'s, and those of an LK001's DETAIL are ``Shortfall``'s. Then a round trip: whatever the
structures hold survives encoding as ``ledger_post`` receives it.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lianka.alliance.ledger import contract, sql

ENTRY = "p"
LEGS = ("l", "x.l", "leg")  # the names ledger_post gives a leg: its loops' variables
POSITIONAL = ("m",)  # a (lot, amount) pair: read by position
_ACCESS = re.compile(r"([A-Za-z_][\w.]*)\s*(?:->>|->|\?)\s*'(\w+)'")
_POSITION = re.compile(r"([A-Za-z_][\w.]*)\s*->>\s*[0-9]")


def source() -> str:
    """The newest ledger_post, without its comments (a comment may mention a field)."""
    text = sql.load("ledger_post", sql.newest("ledger_post"))
    return re.sub(r"--[^\n]*", "", text)


def reads() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for var, name in _ACCESS.findall(source()):
        found.setdefault(var, set()).add(name)
    return found


def built_objects(prefix: str) -> list[set[str]]:
    """The keys of every ``<prefix> jsonb_build_object(…)`` in ledger_post (keys are its only quoted
    strings)."""
    return [
        set(re.findall(r"'(\w+)'", args))
        for args in re.findall(prefix + r"\s*jsonb_build_object\((.*?)\)(?:::text)?;", source(), re.S)
    ]


def fields(struct: type[msgspec.Struct]) -> set[str]:
    return set(struct.__struct_fields__)


def test_the_sql_reads_only_the_entry_and_its_legs() -> None:
    """Every quoted-key access is on the entry or a leg, so the comparisons below see them all."""
    assert set(reads()) <= {ENTRY, *LEGS}, "ledger_post reads JSON through a variable this test does not know"
    assert set(_POSITION.findall(source())) <= set(POSITIONAL)


def test_every_entry_field_is_read_and_every_read_is_a_field() -> None:
    assert reads()[ENTRY] == fields(contract.PostEntry)


def test_every_leg_field_is_read_and_every_read_is_a_field() -> None:
    read = set().union(*(reads().get(v, set()) for v in LEGS))
    assert read == fields(contract.PostLeg)


def test_fields_tested_for_presence_are_left_out_when_unset() -> None:
    """``p ? 'moves'`` and ``leg ? 'restore'`` switch behaviour on presence: the structures must leave
    them out (default None, omitted) unless the caller sets them."""
    tested = {(var, name) for var, name in re.findall(r"([\w.]+)\s*\?\s*'(\w+)'", source())}
    assert tested == {(ENTRY, "moves"), ("leg", "restore")}
    for struct, name in ((contract.PostEntry, "moves"), (contract.PostLeg, "restore")):
        assert struct.__struct_config__.omit_defaults
        assert {f.name: f.default for f in msgspec.structs.fields(struct)}[name] is None
    leg = contract.PostLeg(uuid.uuid4(), "PTS:x", 5, True, True)
    assert b"restore" not in msgspec.json.encode(leg)
    assert b'"restore":[]' in msgspec.json.encode(msgspec.structs.replace(leg, restore=[]))


def test_every_result_key_is_a_field_and_the_other_way_round() -> None:
    returned = built_objects("RETURN")
    assert len(returned) == 2  # a booking and a replay
    assert set().union(*returned) == fields(contract.PostResult)
    required = {f.name for f in msgspec.structs.fields(contract.PostResult) if f.required}
    assert required == {"id", "replayed"}
    assert all(required <= keys for keys in returned), "a field without a default is in every answer"


def test_every_shortfall_key_is_a_field_and_the_other_way_round() -> None:
    details = built_objects("DETAIL =")
    assert len(details) == 2  # the floor, the lots
    assert set().union(*details) == fields(contract.Shortfall)
    assert all({"account", "required"} <= keys for keys in details)


# --- round trip ------------------------------------------------------------------------------------

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets)
amounts = st.integers(-(10**15), 10**15).filter(bool)
pairs = st.lists(st.tuples(st.uuids(), amounts), max_size=3)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
legs = st.builds(
    contract.PostLeg,
    account=st.uuids(),
    unit=st.sampled_from(["CNY", "PTS:x", "PTS:alliance:1"]),
    amount=amounts,
    tracked=st.booleans(),
    lots=st.booleans(),
    overdraw=st.booleans(),
    expires_at=st.none() | moments,
    available_at=st.none() | moments,
    restore=st.none() | pairs,
    prefer=st.lists(st.uuids(), max_size=3),
    lenient=st.booleans(),
)
entries = st.builds(
    contract.PostEntry,
    scope=st.text(min_size=1, max_size=20),
    key=st.text(min_size=1, max_size=200),
    hash=st.text(max_size=64),
    kind=st.text(min_size=1, max_size=60),
    business_time=moments,
    tz=st.sampled_from(["Asia/Shanghai", "UTC", "Europe/Paris"]),
    legs=st.lists(legs, max_size=4),
    memo=st.text(max_size=50),
    period=st.none() | st.from_regex(r"\A20[0-9]{2}-(0[1-9]|1[0-2])\Z"),
    refs=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    reverses=st.none() | st.uuids(),
    moves=st.none() | pairs,
)


@given(entries)
@settings(max_examples=300)
def test_an_entry_survives_encoding(entry: contract.PostEntry) -> None:
    raw = contract.encode(entry)
    assert msgspec.json.decode(raw, type=contract.PostEntry) == entry
    plain = msgspec.json.decode(raw)
    for leg, sent in zip(entry.legs, plain["legs"], strict=True):
        assert sent["account"] == str(leg.account)  # what (l->>'account')::uuid reads
        assert type(sent["amount"]) is int
    if entry.moves is not None:
        assert plain["moves"] == [[str(lot), n] for lot, n in entry.moves]  # m->>0, m->>1


@given(st.uuids(), moments, st.from_regex(r"\A20[0-9]{2}-(0[1-9]|1[0-2])\Z"), st.booleans())
def test_a_result_is_read_as_the_database_writes_it(
    entry_id: uuid.UUID, posted: datetime, period: str, late: bool
) -> None:
    """``jsonb_build_object`` writes a uuid as text and a timestamptz as ISO 8601; from a bare driver it
    comes as text, through SQLAlchemy already parsed."""
    as_db = {"id": str(entry_id), "posted_at": posted.isoformat(), "period": period, "late": late, "replayed": False}
    expected = contract.PostResult(entry_id, False, posted, period, late)
    assert contract.result(msgspec.json.encode(as_db).decode()) == expected
    assert contract.result(as_db) == expected
    assert contract.result({"id": str(entry_id), "replayed": True}) == contract.PostResult(entry_id, True)


def test_a_shortfall_becomes_problem_fields() -> None:
    account = uuid.uuid4()
    assert contract.shortfall(f'{{"account": "{account}", "balance": 5, "required": 8}}') == {
        "account": str(account),
        "balance": 5,
        "required": 8,
    }
    assert contract.shortfall(f'{{"account": "{account}", "short": 3, "required": 8}}') == {
        "account": str(account),
        "short": 3,
        "required": 8,
    }


def test_amounts_are_integers_and_defaults_are_left_out() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(
            b'{"account": "%s", "unit": "CNY", "amount": 1.5, "tracked": true, "lots": false}'
            % str(uuid.uuid4()).encode(),
            type=contract.PostLeg,
        )
    bare = contract.PostEntry("s", "k", "h", "earn", datetime(2026, 1, 1, tzinfo=UTC), "UTC", [])
    assert contract.encode(bare) == (
        '{"scope":"s","key":"k","hash":"h","kind":"earn","business_time":"2026-01-01T00:00:00Z","tz":"UTC","legs":[]}'
    )
