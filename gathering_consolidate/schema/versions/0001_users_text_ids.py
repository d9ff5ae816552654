"""auth.users: text ids (the API's UUID strings), case-insensitive e-mails prepared, the token
blacklist table.

Revision ID: 0001_users_text_ids
Revises:
Create Date: 2026-12-02

The API hands out uuid4 strings as user ids while the table had SERIAL integers: the id (and every
column holding a user id) becomes text, existing integers kept as their text ('7'), new rows get a
UUID string by default. Foreign keys come back NOT VALID (they still check every new row) and are
validated, without blocking writes, in 0002. The token blacklist moves into a table of its own,
filled from the older revoked-token table.

Downgrade: back to integer ids, refused (nothing changed) while any id is not an integer (accounts
created since the upgrade); the blacklist's rows go back into the revoked-token table.
"""

from gathering_consolidate.schema import ops
from gathering_consolidate.schema.profile import active, short

revision = "0001_users_text_ids"
down_revision = None
branch_labels = None
depends_on = None

_TYPE_CHANGE = (
    "changing-column-type",
    "the user id's type must change (the API's ids are strings) and there is no rename-free"
    " expand/contract for a primary key; the users table holds accounts only, small, and"
    " lock_timeout bounds the wait for its lock",
)


def upgrade() -> None:
    p = active()
    ops.timeouts(p)
    users = p.users_table
    for ref in p.references:
        ops.execute(
            "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}",
            table=ref.table,
            constraint=ref.constraint,
            ignore=(
                "ban-drop-constraint",
                "the key is added back (NOT VALID, checking every new row) in this same"
                " transaction, once both sides are text: no client sees it missing",
            ),
        )
    ops.execute(
        "ALTER TABLE {users} ALTER COLUMN id DROP DEFAULT",
        users=users,
        ignore=(
            "ban-drop-default",
            "the SERIAL default is replaced by a UUID default in this same transaction",
        ),
    )
    ops.execute(
        "ALTER TABLE {users} ALTER COLUMN id TYPE text USING id::text",
        users=users,
        ignore=_TYPE_CHANGE,
    )
    ops.execute(
        "ALTER TABLE {users} ALTER COLUMN id SET DEFAULT gen_random_uuid()::text", users=users
    )
    for ref in p.references:
        ops.execute(
            "ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING {column}::text",
            table=ref.table,
            column=ref.name,
            ignore=_TYPE_CHANGE,
        )
    for ref in p.references:
        ops.execute(
            "ALTER TABLE {table} ADD CONSTRAINT {constraint} FOREIGN KEY ({column})"
            " REFERENCES {users} (id) ON DELETE {on_delete} NOT VALID",
            table=ref.table,
            constraint=ref.constraint,
            column=ref.name,
            users=users,
            on_delete=ref.on_delete,
        )
    if p.password_hash_needs_widening:
        ops.execute(
            "ALTER TABLE {users} ALTER COLUMN {column} TYPE text",
            users=users,
            column=p.password_hash_column,
            ignore=(
                "changing-column-type",
                "varchar(n) to text is binary coercible: no table rewrite, no index rebuild",
            ),
        )
    blacklist = p.blacklist_table
    ops.execute(
        "CREATE TABLE IF NOT EXISTS {blacklist} (\n"
        "    token_id text PRIMARY KEY,\n"
        "    user_id text,\n"
        "    expires_at timestamptz NOT NULL,\n"
        "    revoked_at timestamptz NOT NULL DEFAULT now()\n"
        ")",
        blacklist=blacklist,
    )
    ops.execute(
        "CREATE INDEX IF NOT EXISTS {index} ON {blacklist} (expires_at)",
        index=f"{short(blacklist)}_expires_at_idx",
        blacklist=blacklist,
        ignore=(
            "require-concurrent-index-creation",
            "the table is created empty in this same transaction: nobody can be blocked",
        ),
    )
    if p.blacklist_backfill_from:
        token, user, expires, revoked = p.blacklist_backfill_columns
        ops.execute(
            "INSERT INTO {blacklist} (token_id, user_id, expires_at, revoked_at)\n"
            "SELECT {token}, {user}::text, {expires}, coalesce({revoked}, now()) FROM {source}\n"
            "ON CONFLICT (token_id) DO NOTHING",
            blacklist=blacklist,
            source=p.blacklist_backfill_from,
            token=token,
            user=user,
            expires=expires,
            revoked=revoked,
        )


def downgrade() -> None:
    p = active()
    ops.timeouts(p)
    users = p.users_table
    ops.refuse_if(
        "SELECT id AS label FROM {users} WHERE id !~ '^[0-9]{{1,9}}$'",
        "cannot downgrade {users} to integer ids: it holds ids that are not integers ({found});"
        " move those accounts out first",
        users=users,
    )
    blacklist = p.blacklist_table
    if p.blacklist_backfill_from:
        token, user, expires, revoked = p.blacklist_backfill_columns
        # Tokens revoked since the upgrade stay revoked: they go back to the older table.
        ops.execute(
            "INSERT INTO {source} ({token}, {user}, {expires}, {revoked})\n"
            "SELECT b.token_id, b.user_id, b.expires_at, b.revoked_at FROM {blacklist} AS b\n"
            "WHERE length(b.token_id) <= 64 AND (b.user_id IS NULL OR EXISTS"
            " (SELECT 1 FROM {users} AS u WHERE u.id = b.user_id))\n"
            "ON CONFLICT ({token}) DO NOTHING",
            source=p.blacklist_backfill_from,
            blacklist=blacklist,
            users=users,
            token=token,
            user=user,
            expires=expires,
            revoked=revoked,
        )
    ops.execute("DROP TABLE IF EXISTS {blacklist}", blacklist=blacklist)
    if p.password_hash_needs_widening:
        length = p.password_hash_type.split("(")[1].rstrip(")")
        ops.refuse_if(
            "SELECT id AS label FROM {users} WHERE length({column}) > {length}",
            "cannot narrow {users}.{column} back to {kind}: longer hashes are stored"
            " (users {found})",
            users=users,
            column=p.password_hash_column,
            length=length,
            kind=p.password_hash_type,
        )
        ops.execute(
            "ALTER TABLE {users} ALTER COLUMN {column} TYPE {kind}",
            users=users,
            column=p.password_hash_column,
            kind=p.password_hash_type,
        )
    for ref in p.references:
        ops.execute(
            "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}",
            table=ref.table,
            constraint=ref.constraint,
        )
    ops.execute("ALTER TABLE {users} ALTER COLUMN id DROP DEFAULT", users=users)
    for ref in p.references:
        ops.execute(
            "ALTER TABLE {table} ALTER COLUMN {column} TYPE integer USING {column}::integer",
            table=ref.table,
            column=ref.name,
        )
    ops.execute("ALTER TABLE {users} ALTER COLUMN id TYPE integer USING id::integer", users=users)
    ops.execute(
        "ALTER TABLE {users} ALTER COLUMN id SET DEFAULT nextval('{sequence}'::regclass)",
        users=users,
        sequence=p.users_id_sequence,
    )
    for ref in p.references:
        ops.execute(
            "ALTER TABLE {table} ADD CONSTRAINT {constraint} FOREIGN KEY ({column})"
            " REFERENCES {users} (id) ON DELETE {on_delete}",
            table=ref.table,
            constraint=ref.constraint,
            column=ref.name,
            users=users,
            on_delete=ref.on_delete,
        )
