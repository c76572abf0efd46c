"""Pure identity rules: roles → permissions, scopes, branch limits, phone numbers, secrets."""

from __future__ import annotations

import uuid

import pytest

from lianka.platform.errors import Forbidden, ValidationFailed
from lianka.platform.identity import secrets_box
from lianka.platform.identity.members import mask_phone, normalise_phone
from lianka.platform.identity.permissions import (
    ROLE_PERMISSIONS,
    SCOPE_PERMISSIONS,
    Permission,
    Role,
    permissions_for_scopes,
)
from lianka.platform.identity.principal import Kind, Principal
from lianka.web.api.auth import _safe_next


def test_roles() -> None:
    P = Permission
    assert ROLE_PERMISSIONS[Role.OWNER] == frozenset(Permission)
    assert P.BILLING_MANAGE not in ROLE_PERMISSIONS[Role.ADMIN]
    assert P.PROGRAMME_WRITE not in ROLE_PERMISSIONS[Role.CASHIER]  # a cashier cannot change the programme
    assert all(p.value.endswith(":read") for p in ROLE_PERMISSIONS[Role.ANALYST])  # an analyst cannot write
    assert P.SALES_WRITE in ROLE_PERMISSIONS[Role.CASHIER]
    assert P.CLIENTS_WRITE not in SCOPE_PERMISSIONS["admin"] and P.STAFF_WRITE not in SCOPE_PERMISSIONS["admin"]
    assert permissions_for_scopes(frozenset({"members:read", "unknown"})) == {P.MEMBERS_READ}


def test_branch_limits() -> None:
    b1, b2 = uuid.uuid4(), uuid.uuid4()
    manager = Principal(kind=Kind.STAFF, subject_id=uuid.uuid4(), tenant_id=uuid.uuid4(), branch_ids=frozenset({b1}))
    assert manager.can_access_branch(b1) and not manager.can_access_branch(b2)
    assert not manager.can_access_branch(None)  # merchant-wide data is not a branch's
    assert manager.default_branch() == b1
    with pytest.raises(Forbidden):
        manager.require_branch(b2)
    admin = Principal(kind=Kind.STAFF, subject_id=uuid.uuid4(), tenant_id=uuid.uuid4())
    assert admin.can_access_branch(b2) and admin.can_access_branch(None)
    with pytest.raises(Forbidden):
        _ = Principal(kind=Kind.MEMBER, subject_id=uuid.uuid4()).tenant


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("+1 415 555 2671", "+14155552671"),
        ("0086 13800138000", "+8613800138000"),
    ],
)
def test_phone_numbers(raw: str, e164: str) -> None:
    assert normalise_phone(raw) == e164
    assert mask_phone(e164).count("*") == 4


@pytest.mark.parametrize("raw", ["", "12345", "+86 1380013800", "phone", "+999 1234567"])
def test_bad_phone_numbers(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        normalise_phone(raw)


def test_secrets_box() -> None:
    box = secrets_box.encrypt("key-1", b"private pem")
    assert secrets_box.decrypt("key-1", box) == b"private pem"
    with pytest.raises(RuntimeError):
        secrets_box.decrypt("key-2", box)
    assert secrets_box.mac("k", "a", "m") != secrets_box.mac("k", "b", "m")  # purposes never collide


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("/console", "/console"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        (None, "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_next_paths(given: str | None, safe: str) -> None:
    assert _safe_next(given) == safe
