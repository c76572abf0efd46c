"""Every SQL statement of the tenants area outside the POS, each behind a typed function.

The POS's own statements (the sale's one-round-trip hot path) are in ``tenants/pos/queries.py``; it
composes two named parts from here (:func:`balances_sql`, :func:`version_at_sql`). The CRM's reads
(the member list, the member detail) are in ``tenants/crm_queries.py``. Why three query modules, and
where the line between SQL and the ORM runs, is decision 0019.

Rules of this module:

* Only bound parameters reach SQL. A statement composed of parts names its placeholders through the
  part's arguments (``balances_sql(5)`` uses ``$5`` … ``$8``); a finished statement is never edited.
* A function that returns rows returns a documented row type (a frozen dataclass per row shape), not
  a driver row. Tables with an ORM model (``tenants/models.py``) are still queried here when the
  statement is SQL rather than ORM.
* Functions take the unit of work and never commit: they are building blocks of the use cases.
* Statements on the session (``text``, ``:name`` parameters) are the ordinary path; statements on
  ``uow.driver()`` (``$1`` parameters) are the ones a hot path shares (balances, the programme version).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import text

from lianka.platform.db import UnitOfWork
from lianka.tenants.domain import tiers
from lianka.tenants.domain.imports import MemberRow

R = TypeVar("R")


async def rows_as(uow: UnitOfWork, row_type: type[R], sql: str, params: dict[str, Any]) -> list[R]:
    """Every row of ``sql`` as a ``row_type`` (a dataclass whose fields are the statement's columns)."""
    return [row_type(**r._mapping) for r in await uow.session.execute(text(sql), params)]


# --- merchants and branches ----------------------------------------------------------------------


async def merchant_currency_and_zone(uow: UnitOfWork) -> tuple[str, str]:
    """(currency, time zone) of the unit of work's merchant."""
    row = (
        await uow.session.execute(text("SELECT currency, timezone FROM merchants WHERE id = :m"), {"m": uow.tenant_id})
    ).one()
    return str(row.currency), str(row.timezone)


async def merchant_id_by_slug(uow: UnitOfWork, slug: str) -> uuid.UUID | None:
    """Platform-level (system scope): the merchant with this slug."""
    found = await uow.session.scalar(text("SELECT id FROM merchants WHERE slug = :s"), {"s": slug})
    return found if isinstance(found, uuid.UUID) else None


async def merchants_and_zones(uow: UnitOfWork) -> list[tuple[uuid.UUID, str]]:
    """Platform-level (system scope): every merchant's (id, time zone), in id order."""
    rows = (await uow.session.execute(text("SELECT id, timezone FROM merchants ORDER BY id"))).all()
    return [(row.id, str(row.timezone)) for row in rows]


async def branch_code(uow: UnitOfWork, branch_id: uuid.UUID) -> str | None:
    """The code of this merchant's branch ``branch_id``; None for an unknown (or another merchant's) id."""
    code = await uow.session.scalar(text("SELECT code FROM branches WHERE id = :b"), {"b": branch_id})
    return None if code is None else str(code)


async def known_branch_codes(uow: UnitOfWork, codes: list[str]) -> set[str]:
    """Which of ``codes`` are this merchant's branch codes."""
    return {
        str(c)
        for c in (
            await uow.session.execute(text("SELECT code FROM branches WHERE code = ANY(:c)"), {"c": codes})
        ).scalars()
    }


async def branch_ids_by_code(uow: UnitOfWork) -> dict[str, uuid.UUID]:
    return {str(r.code): r.id for r in await uow.session.execute(text("SELECT code, id FROM branches"))}


async def advisory_lock(uow: UnitOfWork, key: str) -> None:
    """A transaction-scoped advisory lock on ``key`` (callers put the tenant in the key)."""
    await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


# --- memberships and profiles ---------------------------------------------------------------------


async def is_member(uow: UnitOfWork, member_id: uuid.UUID) -> bool:
    """Is ``member_id`` a member of this merchant (RLS: another merchant's member is not)?"""
    found = await uow.session.scalar(text("SELECT 1 FROM memberships WHERE member_id = :m"), {"m": member_id})
    return found is not None


@dataclass(frozen=True)
class MembershipRow:
    """``memberships``: the branch a member enrolled at (None: online); written once, never moved."""

    branch_id: uuid.UUID | None


async def membership(uow: UnitOfWork, member_id: uuid.UUID) -> MembershipRow | None:
    row = (
        await uow.session.execute(text("SELECT branch_id FROM memberships WHERE member_id = :m"), {"m": member_id})
    ).first()
    return None if row is None else MembershipRow(row.branch_id)


async def add_membership(uow: UnitOfWork, member_id: uuid.UUID, branch_id: uuid.UUID | None) -> bool:
    """Enrol ``member_id`` here at ``branch_id`` unless already a member; True when this enrolled them."""
    return bool(
        await uow.session.scalar(
            text(
                "INSERT INTO memberships (tenant_id, member_id, branch_id) VALUES (:t, :m, :b) "
                "ON CONFLICT (tenant_id, member_id) DO NOTHING RETURNING true"
            ),
            {"t": uow.tenant_id, "m": member_id, "b": branch_id},
        )
    )


#: a member's profile row when it is missing, with the membership's branch as the join branch (never the
#: branch of whatever created the profile later)
_ENSURE_PROFILE_SQL = (
    "INSERT INTO member_profiles (tenant_id, member_id, join_branch_id) "
    "SELECT $1, $2, branch_id FROM memberships WHERE tenant_id = $1 AND member_id = $2 ON CONFLICT DO NOTHING"
)


async def ensure_profile(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    """Create the member's profile row if it does not exist yet (a member enrolled by the API or the
    portal has none until first needed)."""
    await (await uow.driver()).execute(_ENSURE_PROFILE_SQL, uow.tenant_id, member_id)


async def create_profile(uow: UnitOfWork, member_id: uuid.UUID, join_branch_id: uuid.UUID | None, source: str) -> None:
    """The profile row if missing, with the join branch the caller read from the membership."""
    await uow.session.execute(
        text(
            "INSERT INTO member_profiles (tenant_id, member_id, join_branch_id, source) VALUES (:t, :m, :b, :s) "
            "ON CONFLICT DO NOTHING"
        ),
        {"t": uow.tenant_id, "m": member_id, "b": join_branch_id, "s": source},
    )


async def member_tier_code(uow: UnitOfWork, member_id: uuid.UUID) -> str | None:
    tier = await uow.session.scalar(
        text("SELECT tier_code FROM member_profiles WHERE member_id = :m"), {"m": member_id}
    )
    return str(tier) if tier else None


async def members_born_on(uow: UnitOfWork, month: int, day: int) -> list[uuid.UUID]:
    return list(
        (
            await uow.session.execute(
                text(
                    "SELECT member_id FROM member_profiles WHERE extract(month from birthday) = :m "
                    "AND extract(day from birthday) = :d"
                ),
                {"m": month, "d": day},
            )
        ).scalars()
    )


async def merge_imported_profile(uow: UnitOfWork, member_id: uuid.UUID, row: MemberRow, consent_json: str) -> None:
    """Write an imported row into the member's profile: a new profile takes the file's fields (its join
    branch is the membership's); an existing one keeps what it has and only fills empty fields, adds the
    tags and the consent it lacks."""
    await uow.session.execute(
        text(
            "INSERT INTO member_profiles (tenant_id, member_id, name, gender, birthday, email, tags, join_branch_id, "
            "source, consent) SELECT :t, :m, :n, :g, :bd, :e, :tags, ms.branch_id, 'import', CAST(:c AS jsonb) "
            "FROM memberships ms WHERE ms.tenant_id = :t AND ms.member_id = :m "
            "ON CONFLICT (tenant_id, member_id) DO UPDATE SET "
            "name = CASE WHEN member_profiles.name = '' THEN EXCLUDED.name ELSE member_profiles.name END, "
            "gender = CASE WHEN member_profiles.gender = 'unknown' THEN EXCLUDED.gender ELSE member_profiles.gender END, "
            "birthday = coalesce(member_profiles.birthday, EXCLUDED.birthday), "
            "email = CASE WHEN member_profiles.email = '' THEN EXCLUDED.email ELSE member_profiles.email END, "
            "tags = coalesce((SELECT array_agg(DISTINCT t ORDER BY t) "
            "FROM unnest(member_profiles.tags || EXCLUDED.tags) t), '{}'), "
            "consent = EXCLUDED.consent || member_profiles.consent, updated_at = now()"
        ),
        {
            "t": uow.tenant_id,
            "m": member_id,
            "n": row.name,
            "g": row.gender,
            "bd": row.birthday,
            "e": row.email,
            "tags": list(row.tags),
            "c": consent_json,
        },
    )


# --- member imports -------------------------------------------------------------------------------


async def record_import_batch(
    uow: UnitOfWork, import_id: uuid.UUID, *, before: int, processed: int, created: int, errors_json: str
) -> None:
    """Move the import's committed pointer from ``before`` to ``processed`` (no-op if another worker
    moved it), counting the members this batch created and the row report so far."""
    await uow.session.execute(
        text(
            "UPDATE member_imports SET processed = :p, created_members = created_members + :c, errors = "
            "CAST(:e AS jsonb) WHERE id = :i AND processed = :before"
        ),
        {"p": processed, "c": created, "e": errors_json, "i": import_id, "before": before},
    )


async def finish_import(uow: UnitOfWork, import_id: uuid.UUID) -> None:
    await uow.session.execute(
        text("UPDATE member_imports SET status = 'done', finished_at = coalesce(finished_at, now()) WHERE id = :i"),
        {"i": import_id},
    )


async def ledger_entry_exists(uow: UnitOfWork, key: str, scope: str = "ledger") -> bool:
    return bool(
        await uow.session.scalar(
            text("SELECT 1 FROM ledger_entries WHERE idempotency_scope = :s AND idempotency_key = :k"),
            {"s": scope, "k": key},
        )
    )


# --- balances and standing (shared with the POS hot path) ------------------------------------------


@dataclass(frozen=True)
class Balances:
    """Row type of :func:`balances_sql`: a member's balances at a time."""

    points: int  # may be negative: a clawback debt, shown to staff
    points_available: int
    points_pending: int
    sv_principal: int
    sv_bonus: int

    @property
    def stored_value(self) -> int:
        return self.sv_principal + self.sv_bonus

    @classmethod
    def of(cls, row: Any) -> Balances:
        """From a row with :func:`balances_sql`'s columns (points, principal, bonus, available, pending)."""
        return cls(
            int(row["points"] or 0),
            int(row["available"]),
            int(row["pending"]),
            int(row["principal"] or 0),
            int(row["bonus"] or 0),
        )


def balances_sql(first: int) -> str:
    """One row (points, principal, bonus, available, pending) of a member's balances at a time, for the
    member's points, principal and bonus account ids and the time as parameters ``$first`` … ``$first+3``
    (so a hot path can make it part of a larger statement)."""
    p, sp, sb, at = (f"${first + i}" for i in range(4))
    return balances_over(p, sp, sb, at)


def balances_over(p: str, sp: str, sb: str, at: str) -> str:
    """:func:`balances_sql` over SQL expressions for the three account ids and the time (a parameter,
    or a column of an enclosing statement's row)."""
    return (
        f"SELECT (SELECT balance FROM ledger_balances WHERE account_id = {p}) AS points, "
        f"(SELECT balance FROM ledger_balances WHERE account_id = {sp}) AS principal, "
        f"(SELECT balance FROM ledger_balances WHERE account_id = {sb}) AS bonus, "
        f"coalesce(sum(remaining) FILTER (WHERE available_at <= {at} AND (expires_at IS NULL OR expires_at > {at})), "
        f"0) AS available, coalesce(sum(remaining) FILTER (WHERE available_at > {at}), 0) AS pending "
        f"FROM ledger_lots WHERE account_id = {p} AND remaining > 0"
    )


_BALANCES_SQL = balances_sql(1)


@dataclass(frozen=True)
class MemberAccountIds:
    """The ledger account ids of one member's points, stored-value principal and bonus."""

    points: uuid.UUID
    sv_principal: uuid.UUID
    sv_bonus: uuid.UUID


async def balances(uow: UnitOfWork, accounts: MemberAccountIds, at: datetime) -> Balances:
    row = await (await uow.driver()).fetchrow(
        _BALANCES_SQL, accounts.points, accounts.sv_principal, accounts.sv_bonus, at
    )
    return Balances.of(row)


async def standing_in_window(uow: UnitOfWork, member_id: uuid.UUID, since: datetime) -> tiers.Standing:
    """Spend and points earned since ``since`` (inclusive) over every sale, for the member detail."""
    row = (
        await uow.session.execute(
            text(
                "SELECT coalesce(sum(qualifying_spend), 0) AS spend, coalesce(sum(points_earned), 0) AS pts "
                "FROM sales WHERE member_id = :m AND business_time >= :w"
            ),
            {"m": member_id, "w": since},
        )
    ).one()
    return tiers.Standing(int(row.spend), int(row.pts))


async def standing_for_review(uow: UnitOfWork, member_id: uuid.UUID, since: datetime) -> tiers.Standing:
    """Spend and points earned after ``since`` over the sales not wholly refunded, for the tier review."""
    row = (
        await uow.session.execute(
            text(
                "SELECT coalesce(sum(qualifying_spend), 0) AS spend, coalesce(sum(points_earned), 0) AS pts "
                "FROM sales WHERE member_id = :m AND business_time > :since AND status <> 'refunded'"
            ),
            {"m": member_id, "since": since},
        )
    ).one()
    return tiers.Standing(int(row.spend), int(row.pts))


# --- the programme ---------------------------------------------------------------------------------


def version_at_sql(at: int) -> str:
    """The number of the programme version in force at parameter ``$at`` (0 when none: the built-in
    default), as an expression a larger statement can embed."""
    return (
        f"coalesce((SELECT version FROM programme_versions WHERE effective_from <= ${at} "
        "ORDER BY effective_from DESC, version DESC LIMIT 1), 0)"
    )


_VERSION_AT_SQL = f"SELECT {version_at_sql(1)}"


async def programme_version_at(uow: UnitOfWork, at: datetime) -> int:
    return int(await (await uow.driver()).fetchval(_VERSION_AT_SQL, at))


async def programme_document(uow: UnitOfWork, version: int) -> Any:
    """The stored document of version ``version`` (JSON text or already decoded), None when missing."""
    return await (await uow.driver()).fetchval("SELECT document FROM programme_versions WHERE version = $1", version)


async def known_coupon_template_codes(uow: UnitOfWork, codes: list[str]) -> set[str]:
    return {
        str(c)
        for c in (
            await uow.session.execute(text("SELECT code FROM coupon_templates WHERE code = ANY(:c)"), {"c": codes})
        ).scalars()
    }


# --- earning rules ---------------------------------------------------------------------------------


async def rule_award_sums(uow: UnitOfWork, rule_code: str, member_id: uuid.UUID, day: date) -> tuple[int, int]:
    """(points on ``day``, points ever) the rule has awarded the member."""
    row = (
        await uow.session.execute(
            text(
                "SELECT coalesce(sum(points) FILTER (WHERE day = :d), 0) AS today, coalesce(sum(points), 0) AS mine "
                "FROM rule_awards WHERE rule_code = :r AND member_id = :m"
            ),
            {"r": rule_code, "m": member_id, "d": day},
        )
    ).one()
    return int(row.today), int(row.mine)


async def lock_rule_counter(uow: UnitOfWork, rule_code: str) -> int:
    """Lock the rule's ``rule_counters`` row (created at 0 if missing) until the transaction ends and
    return the points awarded so far: concurrent capped awards of one rule queue here."""
    await uow.session.execute(
        text("INSERT INTO rule_counters (tenant_id, rule_code) VALUES (:t, :r) ON CONFLICT DO NOTHING"),
        {"t": uow.tenant_id, "r": rule_code},
    )
    return int(
        await uow.session.scalar(
            text("SELECT points FROM rule_counters WHERE rule_code = :r FOR UPDATE"), {"r": rule_code}
        )
        or 0
    )


async def count_rule_award(uow: UnitOfWork, rule_code: str, points: int) -> None:
    """One more award of ``points`` on the rule's counter (locked by :func:`lock_rule_counter`)."""
    await uow.session.execute(
        text("UPDATE rule_counters SET points = points + :p, awards = awards + 1 WHERE rule_code = :r"),
        {"p": points, "r": rule_code},
    )


async def redemptions_by_reward(uow: UnitOfWork, member_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """How many of each reward the member holds (cancelled redemptions not counted)."""
    return {
        row.reward_id: int(row.n)
        for row in await uow.session.execute(
            text(
                "SELECT reward_id, count(*) AS n FROM reward_redemptions WHERE member_id = :m AND status <> 'cancelled' "
                "GROUP BY reward_id"
            ),
            {"m": member_id},
        )
    }


# --- daily maintenance -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiringPoints:
    """Row type: a member's points that expire on one day (the day at 00:00 UTC, as ``date_trunc``)."""

    member_id: uuid.UUID
    day: datetime
    points: int


async def points_expiring(uow: UnitOfWork, now: datetime, until: datetime) -> list[ExpiringPoints]:
    """Unspent points whose lots expire after ``now`` and by ``until``, per member and day."""
    rows = (
        await uow.session.execute(
            text(
                "SELECT a.owner_id AS member_id, date_trunc('day', l.expires_at) AS day, sum(l.remaining) AS points "
                "FROM ledger_lots l JOIN ledger_accounts a ON a.tenant_id = l.tenant_id AND a.id = l.account_id "
                "WHERE l.remaining > 0 AND l.expires_at > :now AND l.expires_at <= :until AND a.kind = 'points' "
                "GROUP BY 1, 2"
            ),
            {"now": now, "until": until},
        )
    ).all()
    return [ExpiringPoints(r.member_id, r.day, int(r.points)) for r in rows]


async def expire_coupons(uow: UnitOfWork, now: datetime) -> int:
    """Issued coupons past their validity become ``expired``; how many."""
    result = await uow.session.execute(
        text("UPDATE coupons SET status = 'expired' WHERE status = 'issued' AND valid_until <= :now"), {"now": now}
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- what the console's forms offer to choose from --------------------------------------------------


@dataclass(frozen=True)
class BranchChoice:
    """Row type: a branch as a form lists it."""

    id: uuid.UUID
    code: str
    name: str


async def branch_choices(uow: UnitOfWork, only: frozenset[uuid.UUID] | None = None) -> list[BranchChoice]:
    """This merchant's branches by code (``only``: a manager's own)."""
    rows = await rows_as(uow, BranchChoice, "SELECT id, code, name FROM branches ORDER BY code", {})
    return [b for b in rows if only is None or b.id in only]


@dataclass(frozen=True)
class TemplateChoice:
    """Row type: an active coupon template as a form lists it."""

    code: str
    name: str


async def active_coupon_templates(uow: UnitOfWork) -> list[TemplateChoice]:
    return await rows_as(uow, TemplateChoice, "SELECT code, name FROM coupon_templates WHERE active ORDER BY code", {})


async def coupons_redeemed_by_template(uow: UnitOfWork) -> dict[uuid.UUID, int]:
    """How many coupons of each template were used in a sale (and not given back by a refund)."""
    return {
        row.template_id: int(row.n)
        for row in await uow.session.execute(
            text("SELECT template_id, count(*) AS n FROM coupons WHERE status = 'redeemed' GROUP BY template_id")
        )
    }


@dataclass(frozen=True)
class MemberLabel:
    """Row type: how staff recognise a member at the counter (card number and name)."""

    member_id: uuid.UUID
    card_number: str
    name: str


async def member_labels(uow: UnitOfWork, member_ids: list[uuid.UUID]) -> dict[uuid.UUID, MemberLabel]:
    rows = await rows_as(
        uow,
        MemberLabel,
        (
            "SELECT ms.member_id, m.card_number, coalesce(p.name, '') AS name FROM memberships ms "
            "JOIN members m ON m.id = ms.member_id "
            "LEFT JOIN member_profiles p ON p.tenant_id = ms.tenant_id AND p.member_id = ms.member_id "
            "WHERE ms.member_id = ANY(:ids)"
        ),
        {"ids": member_ids},
    )
    return {r.member_id: r for r in rows}
