"""auth.users: validate the user-id foreign keys, one e-mail per address whatever its case.

Revision ID: 0002_users_constraints
Revises: 0001_users_text_ids
Create Date: 2026-12-02

VALIDATE CONSTRAINT scans the referencing tables under a lock that lets reads and writes go on.
The unique index on lower(email) is built CONCURRENTLY (after a check that no two accounts share
an address in different case, which would make the build fail half-way).

Downgrade: the index goes. Validated foreign keys stay validated (nothing to undo: a NOT VALID
key only skipped the check of old rows).
"""

from gathering_consolidate.schema import ops
from gathering_consolidate.schema.profile import active, short

revision = "0002_users_constraints"
down_revision = "0001_users_text_ids"
branch_labels = None
depends_on = None


def _index(p) -> str:
    return f"{short(p.users_table)}_{p.email_column}_lower_key"


def upgrade() -> None:
    p = active()
    ops.timeouts(p)
    for ref in p.references:
        ops.execute(
            "ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}",
            table=ref.table,
            constraint=ref.constraint,
        )
    ops.refuse_if(
        "SELECT lower({email}) AS label FROM {users} GROUP BY lower({email}) HAVING count(*) > 1",
        "{users} holds e-mails that differ only in case ({found}): merge those accounts"
        " before the case-insensitive unique index can be built",
        users=p.users_table,
        email=p.email_column,
    )
    ops.create_index_concurrently(_index(p), p.users_table, f"lower({p.email_column})", unique=True)


def downgrade() -> None:
    p = active()
    ops.timeouts(p)
    ops.drop_index_concurrently(_index(p), p.users_table)
