"""A database laid out and filled like the before app's: its schema files applied in order, then
rows in every table the revisions touch (users with integer ids and everything pointing at them,
revoked tokens, scheduled actions and their runs, pipeline runs and their logs)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.conftest import FIXTURE_APP

SCHEMA_FILES = sorted((FIXTURE_APP / "schema").glob("*.sql"))

# Every table of the before schema: the round trip must leave each row count as it was.
TABLES = (
    "auth.users",
    "auth.revoked_tokens",
    "auth.audit_log",
    "agent.agents",
    "agent.skills",
    "agent.usage",
    "circle.circles",
    "circle.members",
    "circle.pipelines",
    "circle.pipeline_runs",
    "circle.pipeline_run_logs",
    "orchestration.scheduled_actions",
    "orchestration.action_runs",
    "orchestration.events",
)

SEED = """
INSERT INTO auth.users (email, name, password_hash, is_admin) VALUES
  ('ada@example.com', 'Ada', '$2b$12$abcdefghijklmnopqrstuuN5Qx8eG2b1q7lJm8x0v5wF2yH9mKQe', true),
  ('bob@example.com', 'Bob', '$2b$12$abcdefghijklmnopqrstuuN5Qx8eG2b1q7lJm8x0v5wF2yH9mKQf', false),
  ('cy@example.com', 'Cy', '$2b$12$abcdefghijklmnopqrstuuN5Qx8eG2b1q7lJm8x0v5wF2yH9mKQg', false);
INSERT INTO auth.revoked_tokens (jti, user_id, expires_at)
  SELECT 'jti-' || id, id, now() + interval '1 hour' FROM auth.users;
INSERT INTO auth.audit_log (user_id, event) SELECT id, 'login' FROM auth.users;
INSERT INTO auth.audit_log (user_id, event) VALUES (NULL, 'anonymous');
INSERT INTO agent.agents (name, role) VALUES ('writer', 'author'), ('critic', 'reviewer');
INSERT INTO agent.skills (name) VALUES ('summarise');
INSERT INTO agent.usage (agent_id, tokens_in, tokens_out) SELECT id, 10, 20 FROM agent.agents;
INSERT INTO circle.circles (name, owner_id) SELECT 'team-' || id, id FROM auth.users;
INSERT INTO circle.members (circle_id, agent_id, user_id)
  SELECT c.id, a.id, c.owner_id FROM circle.circles c CROSS JOIN agent.agents a;
INSERT INTO circle.pipelines (name, circle_id) SELECT 'p-' || id, id FROM circle.circles;
INSERT INTO circle.pipeline_runs (pipeline_id, status) SELECT id, 'completed' FROM circle.pipelines;
INSERT INTO circle.pipeline_run_logs (run_id, node_id, message)
  SELECT r.id, 'n' || g, 'line ' || g FROM circle.pipeline_runs r CROSS JOIN generate_series(1, 3) g;
INSERT INTO orchestration.scheduled_actions (name, action_type, interval_seconds)
  VALUES ('nightly', 'run_pipeline', 86400), ('hourly', 'emit_event', 3600);
INSERT INTO orchestration.action_runs (action_id, status) SELECT id, 'completed' FROM orchestration.scheduled_actions;
INSERT INTO orchestration.events (event_type) VALUES ('boot'), ('tick');
"""


def apply_before_schema(url: str, *, seed: bool = True) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for path in SCHEMA_FILES:
            conn.execute(path.read_text(encoding="utf-8"))
        if seed:
            conn.execute(SEED)


def snapshot(url: str) -> dict[str, object]:
    """Row counts of every before table, and the user ids (as text) with what points at them."""
    with psycopg.connect(url) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        users = conn.execute("SELECT id::text, email FROM auth.users ORDER BY email").fetchall()
        owners = conn.execute(
            "SELECT name, owner_id::text FROM circle.circles ORDER BY name"
        ).fetchall()
        revoked = conn.execute(
            "SELECT jti, user_id::text FROM auth.revoked_tokens ORDER BY jti"
        ).fetchall()
    return {"counts": counts, "users": users, "owners": owners, "revoked": revoked}


@pytest.fixture
def before_db(fresh_database: str) -> str:
    apply_before_schema(fresh_database)
    return fresh_database


def schema_dir() -> Path:
    return FIXTURE_APP / "schema"
