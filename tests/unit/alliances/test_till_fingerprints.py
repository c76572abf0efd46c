"""The till's alliance moves fingerprint their requests exactly as before the area was reshaped
(issue 12): a terminal retrying across a deploy must get its first answer back, not a 409."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from lianka.alliance.alliances.till import _request
from lianka.platform.idempotency import fingerprint

A, M, B = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
AT = datetime(2026, 10, 15, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("action", "move", "before"),
    [
        (
            "alliance.earn",
            {"amount": 8800},
            {"alliance": str(A), "member": str(M), "amount": 8800, "branch": str(B), "at": AT.isoformat()},
        ),
        (
            "alliance.redeem",
            {"points": 120},
            {"alliance": str(A), "member": str(M), "points": 120, "branch": str(B), "at": AT.isoformat()},
        ),
        (
            "alliance.sv_top_up",
            {"plan": "1000-1100", "pay": "cash"},
            {
                "alliance": str(A),
                "member": str(M),
                "plan": "1000-1100",
                "branch": str(B),
                "at": AT.isoformat(),
                "pay": "cash",
            },
        ),
        (
            "alliance.sv_spend",
            {"amount": 550},
            {"alliance": str(A), "member": str(M), "amount": 550, "branch": str(B), "at": AT.isoformat()},
        ),
    ],
)
def test_fingerprints_are_unchanged(action: str, move: dict[str, object], before: dict[str, object]) -> None:
    now = _request(A, M, B, AT, **move)
    assert fingerprint(action, msgspec.to_builtins(now)) == fingerprint(action, msgspec.to_builtins(before))


def test_no_business_time_and_no_branch_are_fingerprinted_as_before() -> None:
    before = {"alliance": str(A), "member": str(M), "amount": 1, "branch": "None", "at": None}
    assert fingerprint("alliance.earn", _request(A, M, None, None, amount=1)) == fingerprint("alliance.earn", before)
