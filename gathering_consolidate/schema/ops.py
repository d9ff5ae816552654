"""Building blocks the revisions share: the timeouts every revision starts with, index builds
outside the transaction, and checks that stop a migration with a clear message.

Names come from a validated profile (lower-case identifiers only, see `profile.py`), so they go
into SQL text as they are. Statements that squawk would flag carry an inline
`-- squawk-ignore <rule>` line with the reason, which reaches the rendered SQL (`schema sql`) that
`schema lint` checks.
"""

from __future__ import annotations

from alembic import op

from .profile import Profile, fill


def timeouts(p: Profile) -> None:
    """Wait at most `lock_timeout` for any lock (a migration queued behind a long transaction
    would block every query queued behind it) and bound each statement."""
    execute("SET lock_timeout = '{t}'", t=p.lock_timeout)
    execute("SET statement_timeout = '{t}'", t=p.statement_timeout)


def execute(template: str, *, ignore: tuple[str, str] | None = None, **names: str) -> None:
    """Run `template` with its `{name}` slots filled (see `sql`); `ignore=(rule, reason)` puts a
    squawk-ignore comment, after its reason, right before the statement."""
    statement = fill(template, **names)
    if ignore is not None:
        rule, reason = ignore
        statement = f"-- {reason}\n-- squawk-ignore {rule}\n{statement}"
    op.execute(statement)


def create_index_concurrently(
    name: str, table: str, columns: str, *, unique: bool = False, where: str = ""
) -> None:
    """Build an index without blocking writes. CREATE INDEX CONCURRENTLY cannot run in a
    transaction, so this commits the revision's earlier steps first (alembic's autocommit
    block); a build that failed earlier leaves an INVALID index behind, hence the drop first,
    which makes the step safe to re-run. Index builds take as long as the table needs: no
    statement timeout here (they hold no lock that blocks reads or writes). `columns` and `where`
    are the revision's constants, with `{name}` slots filled from `names`."""
    with op.get_context().autocommit_block():
        execute("SET statement_timeout = 0")
        execute(
            "DROP INDEX CONCURRENTLY IF EXISTS {schema}.{name}",
            schema=table.split(".", 1)[0],
            name=name,
        )
        kind = "UNIQUE INDEX" if unique else "INDEX"
        predicate = f" WHERE {where}" if where else ""
        execute(
            f"CREATE {kind} CONCURRENTLY IF NOT EXISTS {{name}} ON {{table}} ({columns}){predicate}",
            name=name,
            table=table,
        )


def drop_index_concurrently(name: str, table: str) -> None:
    with op.get_context().autocommit_block():
        execute("SET statement_timeout = 0")
        execute(
            "DROP INDEX CONCURRENTLY IF EXISTS {schema}.{name}",
            schema=table.split(".", 1)[0],
            name=name,
        )


def refuse_if(condition: str, message: str, **names: str) -> None:
    """Stop the migration (rolling back its transaction) when the query `condition` returns rows;
    `{found}` in `message` is replaced by the offending rows' `label` column (at most 10). Both
    are templates filled like `sql`. The message is concatenated, not formatted: a `%` would be
    doubled by the driver's paramstyle in the rendered SQL."""
    message = fill(message.replace("{found}", "\0"), **names).replace("\0", "{found}")
    before, found, after = message.partition("{found}")
    text = f"'{_quote(before)}' || found || '{_quote(after)}'" if found else f"'{_quote(message)}'"
    execute(
        "DO $$\nDECLARE found text;\nBEGIN\n"
        f"    SELECT string_agg(label, ', ') INTO found FROM (SELECT label FROM ({condition})"
        " AS c LIMIT 10) AS s;\n"
        f"    IF found IS NOT NULL THEN\n        RAISE EXCEPTION USING MESSAGE = {_braces(text)};\n"
        "    END IF;\nEND\n$$",
        **names,
    )


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _quote(text: str) -> str:
    return text.replace("'", "''")
