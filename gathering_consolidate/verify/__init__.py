"""Runtime verification: start the (migrated) app on a real PostgreSQL and prove it works."""
