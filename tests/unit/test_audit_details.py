"""What an audit row's ``details`` may hold (decision 0051): no secrets, no contact data, short text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lianka.platform import audit


def test_secrets_and_contact_data_are_dropped_at_any_depth() -> None:
    raw = {
        "client_secret": "lks_x",
        "password_hash": "x",
        "name": "Till 1",
        "member": {"phone": "+8613900000000", "Email": "a@b.c", "tier": "gold", "card_number": "123"},
        "rows": [{"openid": "o", "kept": 1}],
    }
    assert audit.clean(raw) == {"name": "Till 1", "member": {"tier": "gold"}, "rows": [{"kept": 1}]}


def test_values_become_json_and_long_text_is_cut() -> None:
    who = uuid.uuid4()
    at = datetime(2026, 10, 1, tzinfo=UTC)
    out = audit.clean({"id": who, "at": at, "note": "x" * 500, "ids": (who,), "n": 3, "ok": True, "none": None})
    assert out == {
        "id": str(who),
        "at": at.isoformat(),
        "note": "x" * audit.MAX_TEXT,
        "ids": [str(who)],
        "n": 3,
        "ok": True,
        "none": None,
    }


def test_a_queued_job_carries_its_actor_and_an_old_message_is_the_scheduler() -> None:
    person = audit.Actor(audit.ActorKind.STAFF, str(uuid.uuid4()), "王")
    assert audit.decode(audit.encode(person)) == person
    assert audit.decode({}) == audit.SCHEDULED
    assert audit.decode({"by_kind": "root", "by_id": "x"}) == audit.SCHEDULED


def test_filter_slugs() -> None:
    assert audit.SLUG.match("programme.published") and audit.SLUG.match("staff.")
    assert not audit.SLUG.match("DROP TABLE") and not audit.SLUG.match("staff")
