"""The head schema as the revisions leave it, for the drift check (`schema check`).

Only what the revisions manage is modelled: the app's other columns and tables are its own
business, so a column the database has and the model lacks is not drift. Columns are compared by
alembic's autogenerate comparison (`compare_metadata`: missing tables and columns, types,
nullability); indexes and constraints by name in the catalog, valid and of the expected kind
(autogenerate cannot compare expression and partial indexes reliably).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from .profile import Profile, short


@dataclass(frozen=True)
class ExpectedIndex:
    name: str
    table: str  # schema.table
    unique: bool
    columns: str  # as pg_get_indexdef shows them, e.g. "lower((email)::text)"


@dataclass(frozen=True)
class ExpectedConstraint:
    name: str
    table: str
    kind: str  # p, f, u, c (pg_constraint.contype)


def _split(table: str) -> tuple[str, str]:
    schema, name = table.split(".", 1)
    return schema, name


def head_metadata(p: Profile) -> sa.MetaData:
    md = sa.MetaData()
    schema, name = _split(p.users_table)
    sa.Table(name, md, sa.Column("id", sa.Text, primary_key=True), schema=schema)
    by_table: dict[str, list[str]] = {}
    for ref in p.references:
        by_table.setdefault(ref.table, []).append(ref.name)
    for table, columns in by_table.items():
        schema, name = _split(table)
        if table == p.users_table:
            continue
        sa.Table(name, md, *(sa.Column(c, sa.Text) for c in columns), schema=schema)
    schema, name = _split(p.blacklist_table)
    sa.Table(
        name,
        md,
        sa.Column("token_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    schema, name = _split(p.actions_table)
    sa.Table(
        name,
        md,
        sa.Column("last_execution_id", sa.BigInteger),
        sa.Column("execution_status", sa.Text),
        sa.Column("execution_started_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    schema, name = _split(p.execution_log_table)
    sa.Table(
        name,
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("action_id", sa.BigInteger, nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
        schema=schema,
    )
    schema, name = _split(p.logs_table)
    sa.Table(
        name,
        md,
        sa.Column("run_id", sa.BigInteger, nullable=False),  # integer in an older table: same
        sa.Column("node_id", sa.Text),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column(p.logs_timestamp_column, sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    return md


def expected_indexes(p: Profile) -> list[ExpectedIndex]:
    return [
        ExpectedIndex(
            f"{short(p.users_table)}_{p.email_column}_lower_key",
            p.users_table,
            True,
            f"lower({p.email_column}",
        ),
        ExpectedIndex(
            f"{short(p.blacklist_table)}_expires_at_idx", p.blacklist_table, False, "expires_at"
        ),
        ExpectedIndex(
            f"{short(p.execution_log_table)}_running_idx",
            p.execution_log_table,
            False,
            "started_at",
        ),
        ExpectedIndex(
            f"{short(p.logs_table)}_run_id_{p.logs_timestamp_column}_idx",
            p.logs_table,
            False,
            f"run_id, {p.logs_timestamp_column}",
        ),
    ]


def expected_constraints(p: Profile) -> list[ExpectedConstraint]:
    out = [ExpectedConstraint(r.constraint, r.table, "f") for r in p.references]
    log, actions = p.execution_log_table, p.actions_table
    out += [
        ExpectedConstraint(f"{short(log)}_action_id_scheduled_for_key", log, "u"),
        ExpectedConstraint(f"{short(log)}_status_check", log, "c"),
        ExpectedConstraint(f"{short(actions)}_execution_status_check", actions, "c"),
        ExpectedConstraint(f"{short(actions)}_last_execution_id_fkey", actions, "f"),
    ]
    return out
