"""The ledger (issue 4): accounts, journal entries, postings, balances, point lots, periods.

Revision ID: 0003
Revises: 0002

Enforced in the database, not only in Python:
- entries, postings and lot moves are append-only: the app role has no UPDATE/DELETE, and a trigger
  refuses UPDATE/DELETE/TRUNCATE for everybody, owner included;
- per entry and unit the postings sum to zero: a deferred constraint trigger checks it at commit;
- a posting's account exists in its book with the posting's unit (checked at commit, without the
  row lock a foreign key would take on hot accounts);
- a balance row never passes its floor unless the entry carries an explicit override (clawback).

The functions (the posting engine ``ledger_post`` and the triggers' functions) are SQL files,
``alliance/ledger/sql/<name>/v<N>.sql``; this migration loads the versions it introduced.
"""

from __future__ import annotations

from alembic import op

from lianka.alliance.ledger import sql
from lianka.platform import rls

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DDL = r"""
CREATE TABLE ledger_accounts (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_kind text NOT NULL CHECK (owner_kind IN ('platform','merchant','branch','alliance','partner','member')),
    owner_id uuid,
    kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,39}$'),
    unit text NOT NULL CHECK (unit ~ '^([A-Z]{3}|PTS:[A-Za-z0-9:_-]{1,60})$'),
    allow_negative boolean NOT NULL DEFAULT false,
    tracked boolean NOT NULL DEFAULT false,
    lots boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ledger_accounts PRIMARY KEY (tenant_id, id),
    CONSTRAINT uq_ledger_accounts_unit UNIQUE (tenant_id, id, unit),
    CONSTRAINT uq_ledger_accounts_owner UNIQUE NULLS NOT DISTINCT (tenant_id, owner_kind, owner_id, kind, unit),
    CONSTRAINT ck_ledger_accounts_lots_tracked CHECK (NOT lots OR tracked)
);

CREATE TABLE ledger_periods (
    tenant_id uuid NOT NULL,
    period text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open','closing','closed')),
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ledger_periods PRIMARY KEY (tenant_id, period)
);

CREATE TABLE ledger_entries (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    idempotency_scope text NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash text NOT NULL,
    kind text NOT NULL,
    memo text NOT NULL DEFAULT '',
    business_time timestamptz NOT NULL,
    posted_at timestamptz NOT NULL DEFAULT now(),
    period text NOT NULL,
    late boolean NOT NULL DEFAULT false,
    reverses_id uuid,
    refs jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pk_ledger_entries PRIMARY KEY (tenant_id, id),
    CONSTRAINT uq_ledger_entries_idempotency UNIQUE (tenant_id, idempotency_scope, idempotency_key),
    CONSTRAINT fk_ledger_entries_reverses FOREIGN KEY (tenant_id, reverses_id) REFERENCES ledger_entries (tenant_id, id)
);
CREATE UNIQUE INDEX uq_ledger_entries_one_reversal ON ledger_entries (tenant_id, reverses_id) WHERE reverses_id IS NOT NULL;
CREATE INDEX ix_ledger_entries_period ON ledger_entries (tenant_id, period);

CREATE TABLE ledger_postings (
    tenant_id uuid NOT NULL,
    entry_id uuid NOT NULL,
    seq smallint NOT NULL,
    account_id uuid NOT NULL,
    unit text NOT NULL,
    amount bigint NOT NULL CHECK (amount <> 0 AND amount BETWEEN -1000000000000000 AND 1000000000000000),
    posted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ledger_postings PRIMARY KEY (tenant_id, entry_id, seq),
    CONSTRAINT fk_ledger_postings_entry FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id)
    -- no foreign key to ledger_accounts: its KEY SHARE lock would make every posting to a hot account
    -- (an alliance pool) fight over one row's multixact; ledger_check_posting checks it at commit
);
CREATE INDEX ix_ledger_postings_account ON ledger_postings (tenant_id, account_id, posted_at);

CREATE TABLE ledger_balances (
    tenant_id uuid NOT NULL,
    account_id uuid NOT NULL,
    balance bigint NOT NULL DEFAULT 0,
    floor bigint,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ledger_balances PRIMARY KEY (tenant_id, account_id),
    CONSTRAINT fk_ledger_balances_account FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
);

CREATE TABLE ledger_lots (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    account_id uuid NOT NULL,
    entry_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    remaining bigint NOT NULL CHECK (remaining >= 0),
    earned_at timestamptz NOT NULL,
    available_at timestamptz NOT NULL,
    expires_at timestamptz,
    CONSTRAINT pk_ledger_lots PRIMARY KEY (tenant_id, id),
    CONSTRAINT ck_ledger_lots_remaining CHECK (remaining <= amount),
    CONSTRAINT fk_ledger_lots_account FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id),
    CONSTRAINT fk_ledger_lots_entry FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id)
);
CREATE INDEX ix_ledger_lots_open ON ledger_lots (tenant_id, account_id, expires_at) WHERE remaining > 0;
CREATE INDEX ix_ledger_lots_due ON ledger_lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

CREATE TABLE ledger_lot_moves (
    tenant_id uuid NOT NULL,
    entry_id uuid NOT NULL,
    lot_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount <> 0),
    CONSTRAINT pk_ledger_lot_moves PRIMARY KEY (tenant_id, entry_id, lot_id),
    CONSTRAINT fk_ledger_lot_moves_entry FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id),
    CONSTRAINT fk_ledger_lot_moves_lot FOREIGN KEY (tenant_id, lot_id) REFERENCES ledger_lots (tenant_id, id)
);
CREATE INDEX ix_ledger_lot_moves_lot ON ledger_lot_moves (tenant_id, lot_id);

CREATE TABLE ledger_snapshots (
    tenant_id uuid NOT NULL,
    account_id uuid NOT NULL,
    as_of timestamptz NOT NULL,
    balance bigint NOT NULL,
    CONSTRAINT pk_ledger_snapshots PRIMARY KEY (tenant_id, account_id, as_of),
    CONSTRAINT fk_ledger_snapshots_account FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
);
"""

#: the ledger's functions at the versions this migration introduced: alliance/ledger/sql/<name>/v<N>.sql
FUNCTIONS = (
    ("ledger_forbid_change", 1),
    ("ledger_check_balanced", 1),
    ("ledger_post", 1),
    ("ledger_books_with_due_lots", 1),
)

AFTER_FUNCTIONS = r"""
REVOKE ALL ON FUNCTION ledger_books_with_due_lots(timestamptz) FROM PUBLIC;

CREATE CONSTRAINT TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
"""

APPEND_ONLY = ("ledger_entries", "ledger_postings", "ledger_lot_moves")


def statements(script: str) -> list[str]:
    """One statement at a time (asyncpg prepares each): blocks are separated by blank lines; a block
    holding a function body (``$$``) is one statement, other blocks may hold several."""
    out: list[str] = []
    for raw in script.strip().split("\n\n"):
        block = "\n".join(ln for ln in raw.splitlines() if not ln.startswith("--")).strip()
        if not block:
            continue
        parts = [block] if "$$" in block else block.split(";\n")
        out.extend(x.strip().rstrip(";") for x in parts if x.strip())
    return out


def upgrade() -> None:
    for statement in statements(DDL):
        op.execute(statement)
    for name, version in FUNCTIONS:
        op.execute(sql.load(name, version))
    for statement in statements(AFTER_FUNCTIONS):
        op.execute(statement)
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()"
        )
        for s in rls.tenant_table(table, append_only=True):
            op.execute(s)
    for table in ("ledger_accounts", "ledger_snapshots"):
        for s in rls.tenant_table(table, append_only=True):
            op.execute(s)
    for table in ("ledger_balances", "ledger_lots", "ledger_periods"):
        for s in rls.tenant_table(table):
            op.execute(s)
    op.execute("GRANT EXECUTE ON FUNCTION ledger_books_with_due_lots(timestamptz) TO lianka_app")
    op.execute("GRANT EXECUTE ON FUNCTION ledger_post(jsonb) TO lianka_app")
    # balances and lots change only through their own columns; never deleted by the app
    op.execute("REVOKE DELETE ON ledger_balances, ledger_lots, ledger_periods FROM lianka_app")


def downgrade() -> None:
    for table in (
        "ledger_snapshots",
        "ledger_lot_moves",
        "ledger_lots",
        "ledger_balances",
        "ledger_postings",
        "ledger_entries",
        "ledger_periods",
        "ledger_accounts",
    ):
        op.execute(f"DROP TABLE {table} CASCADE")
    for fn in (
        "ledger_post(jsonb)",
        "ledger_check_balanced()",
        "ledger_forbid_change()",
        "ledger_books_with_due_lots(timestamptz)",
    ):
        op.execute(f"DROP FUNCTION {fn}")
