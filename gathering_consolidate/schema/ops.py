"""Building blocks the revisions share: the timeouts every revision starts with, index builds
outside the transaction, and checks that stop a migration with a clear message.

Names come from a validated profile (lower-case identifiers only, see `profile.py`), so they go
into SQL text as they are. Statements that squawk would flag carry an inline
`-- squawk-ignore <rule>` line with the reason, which reaches the rendered SQL (`schema sql`) that
`schema lint` checks.
"""

from __future__ import annotations

from alembic import op

from .profile import Profile


def timeouts(p: Profile) -> None:
    """Wait at most `lock_timeout` for any lock (a migration queued behind a long transaction
    would block every query queued behind it) and bound each statement."""
    op.execute(f"SET lock_timeout = '{p.lock_timeout}'")
    op.execute(f"SET statement_timeout = '{p.statement_timeout}'")


def execute(sql: str, *, ignore: tuple[str, str] | None = None) -> None:
    """Run `sql`; `ignore=(rule, reason)` puts a squawk-ignore comment right before it."""
    if ignore is not None:
        rule, reason = ignore
        sql = f"-- {reason}\n-- squawk-ignore {rule}\n{sql}"
    op.execute(sql)


def _index_schema(table: str) -> str:
    return table.split(".", 1)[0]


def create_index_concurrently(
    name: str, table: str, columns: str, *, unique: bool = False, where: str = ""
) -> None:
    """Build an index without blocking writes. CREATE INDEX CONCURRENTLY cannot run in a
    transaction, so this commits the revision's earlier steps first (alembic's autocommit
    block); a build that failed earlier leaves an INVALID index behind, hence the drop first,
    which makes the step safe to re-run. Index builds take as long as the table needs: no
    statement timeout here (they hold no lock that blocks reads or writes)."""
    with op.get_context().autocommit_block():
        op.execute("SET statement_timeout = 0")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_index_schema(table)}.{name}")
        kind = "UNIQUE INDEX" if unique else "INDEX"
        predicate = f" WHERE {where}" if where else ""
        op.execute(
            f"CREATE {kind} CONCURRENTLY IF NOT EXISTS {name} ON {table} ({columns}){predicate}"
        )


def drop_index_concurrently(name: str, table: str) -> None:
    with op.get_context().autocommit_block():
        op.execute("SET statement_timeout = 0")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_index_schema(table)}.{name}")


def refuse_if(condition_sql: str, message: str) -> None:
    """Stop the migration (rolling back its transaction) when `condition_sql` returns rows;
    `{found}` in `message` is replaced by the offending rows' `label` column (at most 10). The
    message is concatenated, not formatted: a `%` would be doubled by the driver's paramstyle in
    the rendered SQL."""
    before, _, after = message.partition("{found}")
    text = f"'{_quote(before)}' || found || '{_quote(after)}'" if _ else f"'{_quote(message)}'"
    op.execute(
        "DO $$\nDECLARE found text;\nBEGIN\n"
        f"    SELECT string_agg(label, ', ') INTO found FROM (SELECT label FROM ({condition_sql})"
        " AS c LIMIT 10) AS s;\n"
        f"    IF found IS NOT NULL THEN\n        RAISE EXCEPTION USING MESSAGE = {text};\n"
        "    END IF;\nEND\n$$"
    )


def _quote(text: str) -> str:
    return text.replace("'", "''")
