"""The alembic environment of gathering-consolidate's schema revisions.

It is run by `gathering_consolidate.schema.migrations` (never by a bare `alembic` command line),
which passes in `config.attributes`: `profile` (the table names), `connection` (online mode) and
`on_version_apply` (progress). Each revision runs in its own transaction
(`transaction_per_migration`), so an autocommit block (CREATE INDEX CONCURRENTLY) commits only its
own revision's earlier steps, and the version table is the profile's (not the app's
alembic_version).
"""

from __future__ import annotations

from alembic import context

from gathering_consolidate.schema import profile as profiles

config = context.config
profile = config.attributes.get("profile") or profiles.active()
callbacks = (
    [config.attributes["on_version_apply"]] if "on_version_apply" in config.attributes else []
)
common = {
    "transaction_per_migration": True,
    "version_table": profile.version_table,
    "version_table_schema": profile.version_table_schema,
    "on_version_apply": callbacks,
}

with profiles.use(profile):
    if context.is_offline_mode():
        context.configure(dialect_name="postgresql", literal_binds=True, **common)
        with context.begin_transaction():
            context.run_migrations()
    else:
        from gathering_consolidate.schema.models import head_metadata

        context.configure(
            connection=config.attributes["connection"],
            target_metadata=head_metadata(profile),
            **common,
        )
        with context.begin_transaction():
            context.run_migrations()
