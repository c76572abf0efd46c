"""How Lianka's tables map onto Citus, read from the migrated schema (``infra/citus/``, decision 0048).

Every table is exactly one of:

* **distributed** by ``tenant_id`` (the default for a table that has the column), all in one
  co-location group anchored on ``branches``. A book's ``tenant_id`` is a merchant's id or an
  alliance's id (architecture §4), so an alliance's ledger, closes and statements are co-located by
  the same hash as any merchant's book — there is no separate alliance key;
* **reference** — copied to every worker: small, global, and the target of foreign keys from
  tenant tables or joined with them (:data:`REFERENCE`, each with its reason);
* **local** — a Citus *local* table on the coordinator (``citus_add_local_table_to_metadata``):
  platform bookkeeping never joined on a worker (:data:`LOCAL`, each with its reason).

Citus's rule for distributed tables: the primary key, every unique constraint or unique index and
every exclusion constraint contain the distribution column; a foreign key between two distributed
tables maps distribution column to distribution column; a distributed table may reference a
reference table, never a local one; a reference table references only reference tables.
:func:`violations` checks it on the live catalog; :data:`EXCEPTIONS` names the tenant tables that
break it today, each with the fix proposed — they are kept local until then.

``python -m lianka.platform.citus`` prints ``distribute.sql`` for the migrated database in
``DATABASE_URL``; a test compares it with the committed ``infra/citus/distribute.sql``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from typing import Any

DISTRIBUTION_COLUMN = "tenant_id"
ANCHOR = "branches"

#: copied to every worker, and why
REFERENCE: dict[str, str] = {
    "merchants": "the tenant registry: every tenant table's foreign key points here; one row per merchant",
    "billing_plans": "Lianka's price list (a handful of rows); billing_accounts references it",
    "members": (
        "people, platform-wide (phone, card number, QR secret): a member is found by phone or card before "
        "any merchant is known (portal sign-in, alliance cards) and memberships, self_joins, erasure_requests "
        "and alliance_recognition reference it; one narrow row per person (see the capacity math)"
    ),
    "staff_users": "staff accounts across merchants (sign-in by e-mail); staff_memberships references it",
    "alliances": (
        "an alliance's identity and operator: few rows, read with partners' own data; the alliance's *book* "
        "(ledger, closes, statements, payouts) is distributed by tenant_id = the alliance's id"
    ),
    "alliance_partners": (
        "who is in which alliance: joined with partners' tenant data on merchant_id (= their tenant_id), "
        "not on the alliance's key, so a copy on every worker keeps those joins local; tens of rows per alliance"
    ),
    "alliance_spokes": "the partners' branches in an alliance: small, read with alliance_partners",
    "alliance_terms": "an alliance's versioned terms: a few rows per alliance",
    "alliance_invites": "invitation codes: a few rows per alliance, looked up by code hash before joining",
    "alliance_recognition": (
        "which partners may recognise a member's alliance card: append-only choices (rare writes), read by "
        "(alliance, member, partner) from any partner's till; its key is a sequence, not a book"
    ),
}

#: kept on the coordinator (Citus local tables), and why
LOCAL: dict[str, str] = {
    "alembic_version": "the migration head",
    "auth_sessions": "staff and member sessions, found by token hash before a tenant is known; never joined",
    "oidc_identities": "staff single sign-on links (issuer, subject) -> staff user; never joined with tenant data",
    "signing_keys": "JWT signing keys of the platform",
    "job_runs": "the periodic jobs' run records, across merchants",
}

#: tenant tables that break Citus's rule today: (what breaks, the fix proposed); kept local meanwhile
EXCEPTIONS: dict[str, tuple[str, str]] = {
    "outbox": (
        "primary key (id); tenant_id nullable (platform messages have none)",
        "tenant_id NOT NULL (a nil id for platform messages), primary key (tenant_id, id), the relay polling "
        "each shard — until then every transaction that enqueues also writes the coordinator (2PC)",
    ),
    "processed_messages": (
        "primary key (message_id); tenant_id nullable",
        "primary key (tenant_id, message_id) once the outbox carries a tenant on every message",
    ),
    "billing_events": (
        "primary key (id), unique (provider, event_id): Stripe webhook events are stored before the merchant is known",
        "stays local: Lianka's own billing inbox, a few events per merchant a month, never on the till's path",
    ),
    "billing_accounts": (
        "unique (stripe_customer_id): webhooks find the merchant by its Stripe customer",
        "stays local (one row per merchant), or unique (tenant_id, stripe_customer_id) plus the tenant in "
        "Stripe's metadata",
    ),
    "delivery_receipts": (
        "primary key (id), unique (provider, message_id, phone); tenant_id nullable: SMS receipts arrive by "
        "provider message id",
        "primary key (tenant_id, id) with the tenant resolved from campaign_messages before the insert",
    ),
    "sms_replies": (
        "primary key (id); tenant_id nullable: a reply arrives by phone and provider before the merchant is "
        "known (one row per merchant it reaches, none when unmatched)",
        "primary key (tenant_id, id) with unmatched replies under a nil tenant, like delivery_receipts",
    ),
    "payout_accounts": (
        "unique (stripe_account_id): Connect webhooks find the payee by account",
        "stays local with the payouts (low volume), or unique (tenant_id, stripe_account_id)",
    ),
    "payout_attempts": (
        "unique (stripe_transfer_id): transfer webhooks find the attempt by transfer id",
        "stays local with payouts (a foreign key from a local table may only point at a local or reference "
        "table), or unique (tenant_id, stripe_transfer_id) with the tenant in the transfer's metadata",
    ),
}
#: local because an exception above is local and references them (a local table may only reference
#: local or reference tables)
LOCAL_WITH_EXCEPTIONS: dict[str, str] = {
    "payouts": "kept on the coordinator with payout_attempts, which references it (one row per statement line a month)",
}


@dataclass(frozen=True)
class Constraint:
    name: str
    kind: str  # p (primary key) | u (unique) | x (exclusion) | i (unique index) | f (foreign key)
    columns: tuple[str, ...]
    references: str | None = None
    ref_columns: tuple[str, ...] = ()


@dataclass
class Table:
    name: str
    columns: tuple[str, ...]
    constraints: list[Constraint] = field(default_factory=list)

    @property
    def tenant(self) -> bool:
        return DISTRIBUTION_COLUMN in self.columns


_TABLES = """
SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
GROUP BY c.relname ORDER BY c.relname
"""
_CONSTRAINTS = """
SELECT rel.relname, con.conname, con.contype::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       ref.relname,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
JOIN pg_namespace n ON n.oid = rel.relnamespace LEFT JOIN pg_class ref ON ref.oid = con.confrelid
WHERE n.nspname = 'public' AND con.contype IN ('p', 'u', 'x', 'f')
ORDER BY rel.relname, con.conname
"""
#: unique indexes that no constraint owns (CREATE UNIQUE INDEX, partial ones included)
_UNIQUE_INDEXES = """
SELECT rel.relname, idx.relname,
       ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_index i JOIN pg_class rel ON rel.oid = i.indrelid JOIN pg_class idx ON idx.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = rel.relnamespace
WHERE n.nspname = 'public' AND i.indisunique
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
ORDER BY 1, 2
"""


async def read_schema(conn: Any) -> dict[str, Table]:
    """The public schema's tables with their keys, from an asyncpg connection."""
    tables = {name: Table(name, tuple(cols)) for name, cols in await conn.fetch(_TABLES)}
    for table, name, kind, cols, ref, ref_cols in await conn.fetch(_CONSTRAINTS):
        if table in tables:
            tables[table].constraints.append(Constraint(name, kind, tuple(cols), ref, tuple(ref_cols)))
    for table, name, cols in await conn.fetch(_UNIQUE_INDEXES):
        if table in tables:  # an expression index has no column for its expression: it cannot hold the key
            tables[table].constraints.append(Constraint(name, "i", tuple(cols)))
    return tables


def placement(tables: dict[str, Table]) -> dict[str, str]:
    """Each table -> distributed | reference | local | unplaced (a table no list names)."""
    out = {}
    for name, t in tables.items():
        if name in REFERENCE:
            out[name] = "reference"
        elif name in LOCAL or name in LOCAL_WITH_EXCEPTIONS or name in EXCEPTIONS:
            out[name] = "local"
        elif t.tenant:
            out[name] = "distributed"
        else:
            out[name] = "unplaced"
    return out


def rule_breaks(table: Table) -> list[str]:
    """Where a tenant table breaks Citus's rule if it were distributed by tenant_id (whatever its placement)."""
    out = []
    for c in table.constraints:
        if c.kind in "puxi" and DISTRIBUTION_COLUMN not in c.columns:
            out.append(f"{table.name}.{c.name}: {c.kind} {c.columns} lacks {DISTRIBUTION_COLUMN}")
    return out


def violations(tables: dict[str, Table]) -> dict[str, list[str]]:
    """Every breach of the placement rules, by table (see the module docstring)."""
    where = placement(tables)
    out: dict[str, list[str]] = {}

    def add(table: str, what: str) -> None:
        out.setdefault(table, []).append(what)

    for name, t in tables.items():
        kind = where[name]
        if kind == "unplaced":
            add(name, "no tenant_id and in no reference or local list")
        if kind == "distributed":
            for what in rule_breaks(t):
                add(name, what)
        for c in t.constraints:
            if c.kind != "f" or c.references is None:
                continue
            target = where.get(c.references, "unplaced")
            if kind == "distributed" and target == "distributed":
                pairs = dict(zip(c.columns, c.ref_columns, strict=True))
                if pairs.get(DISTRIBUTION_COLUMN) != DISTRIBUTION_COLUMN:
                    add(name, f"{name}.{c.name}: foreign key to {c.references} does not map tenant_id to tenant_id")
            elif kind == "distributed" and target == "local":
                add(name, f"{name}.{c.name}: distributed table references local {c.references}")
            elif kind == "reference" and target != "reference":
                add(name, f"{name}.{c.name}: reference table references {target} {c.references}")
            elif kind == "local" and target == "distributed":
                add(name, f"{name}.{c.name}: local table references distributed {c.references}")
    return out


def _order(tables: dict[str, Table], names: list[str]) -> list[str]:
    """``names`` with every table after the tables of ``names`` it references (then alphabetical)."""
    chosen, done, out = set(names), set[str](), []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done or name in path:
            return
        for c in tables[name].constraints:
            if c.kind == "f" and c.references in chosen and c.references != name:
                visit(c.references, (*path, name))
        done.add(name)
        out.append(name)

    for name in sorted(names, key=lambda n: (n != ANCHOR, n)):
        visit(name, ())
    return out


def distribute_sql(tables: dict[str, Table]) -> str:
    """The script that distributes a migrated single-node database on a Citus coordinator."""
    where = placement(tables)
    by_kind = {k: [n for n, w in where.items() if w == k] for k in ("reference", "local", "distributed")}
    lines = [
        "-- Distribute Lianka's tables on a Citus coordinator. GENERATED from the migrated schema by",
        "-- `python -m lianka.platform.citus` (lianka/platform/citus.py says why each table goes where);",
        "-- tests/integration/test_citus_schema.py fails when it is stale. Run it as the owner, once, after",
        "-- `lianka db upgrade` on the coordinator (see infra/citus/README.md).",
        "\\set ON_ERROR_STOP on",
        "BEGIN;",
        "SET LOCAL citus.multi_shard_modify_mode TO 'sequential';",
    ]
    lines.append("\n-- reference tables: a copy on every worker")
    for name in _order(tables, by_kind["reference"]):
        lines.append(f"SELECT create_reference_table('{name}');")
    lines.append("\n-- local tables: on the coordinator, known to Citus")
    for name in _order(tables, by_kind["local"]):
        lines.append(f"SELECT citus_add_local_table_to_metadata('{name}');")
    lines.append(f"\n-- distributed by {DISTRIBUTION_COLUMN}, co-located with {ANCHOR} (referenced tables first)")
    for name in _order(tables, by_kind["distributed"]):
        colocate = "default" if name == ANCHOR else ANCHOR
        lines.append(
            f"SELECT create_distributed_table('{name}', '{DISTRIBUTION_COLUMN}', colocate_with => '{colocate}');"
        )
    lines += [
        "COMMIT;",
        "\n-- the tenant reaches the workers with each transaction's SET LOCAL (row-level security there too)",
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET citus.propagate_set_commands = %L',",
        "  current_database(), 'local'); END $$;",
    ]
    return "\n".join(lines) + "\n"


async def _main(url: str) -> str:
    import asyncpg

    from lianka.platform.db import asyncpg_params

    conn = await asyncpg.connect(**asyncpg_params(url))
    try:
        return distribute_sql(await read_schema(conn))
    finally:
        await conn.close()


if __name__ == "__main__":
    url = os.environ.get("DATABASE_URL") or (sys.argv[1] if len(sys.argv) > 1 else "")
    if not url:
        sys.exit("usage: DATABASE_URL=… python -m lianka.platform.citus > infra/citus/distribute.sql")
    sys.stdout.write(asyncio.run(_main(url)))
