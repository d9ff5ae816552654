"""Schema profiles: the names the revisions work on come from a TOML file, checked whole."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from gathering_consolidate.schema import migrations
from gathering_consolidate.schema.profile import ProfileError, fill, load_profile, profiles_dir


def _variant(tmp_path: Path, **changes: str) -> Path:
    text = (profiles_dir() / "gathering.toml").read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "variant.toml"
    path.write_text(text)
    return path


def test_default_profile_is_the_fixture_apps():
    profile = load_profile()
    assert profile.users_table == "auth.users"
    assert [r.column for r in profile.references] == [
        "auth.revoked_tokens.user_id",
        "auth.audit_log.user_id",
        "circle.circles.owner_id",
        "circle.members.user_id",
    ]
    assert not profile.password_hash_needs_widening
    assert json.dumps(profile.to_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({'table = "auth.users"': 'table = "auth.users; DROP TABLE x"'}, "[users] table"),
        ({'lock_timeout = "5s"': 'lock_timeout = "soon"'}, "lock_timeout must look like"),
        ({'password_hash_type = "text"': 'password_hash_type = "blob"'}, "password_hash_type"),
        ({'on_delete = "CASCADE"': 'on_delete = "EXPLODE"'}, "on_delete must be one of"),
        ({"[scheduler]": "[schedulr]"}, "unknown section(s) schedulr"),
    ],
)
def test_bad_profiles_name_the_key(tmp_path, change, message):
    with pytest.raises(ProfileError) as info:
        load_profile(_variant(tmp_path, **change))
    assert message in str(info.value)
    assert "variant.toml" in str(info.value)


def test_fill_refuses_anything_but_names():
    assert fill("ALTER TABLE {t} ADD COLUMN x text", t="auth.users") == (
        "ALTER TABLE auth.users ADD COLUMN x text"
    )
    for bad in ("users; DROP TABLE x", "Users", "a b", "x'--", ""):
        with pytest.raises(ValueError, match="not a lower-case SQL name"):
            fill("SELECT * FROM {t}", t=bad)


@pytest.mark.postgres
def test_a_profile_with_a_log_array_and_a_short_password_column(before_db, tmp_path):
    """An app that keeps run logs in a JSONB array on the runs row and its hashes in a
    varchar(128): the array is copied into log rows, the column widened (and narrowed back)."""
    profile = load_profile(
        _variant(
            tmp_path,
            **{
                'runs_log_column = ""': 'runs_log_column = "log_lines"',
                'password_hash_type = "text"': 'password_hash_type = "varchar(128)"',
            },
        )
    )
    assert profile.password_hash_needs_widening
    with psycopg.connect(before_db) as conn:
        conn.execute("ALTER TABLE auth.users ALTER COLUMN password_hash TYPE varchar(128)")
        conn.execute("ALTER TABLE circle.pipeline_runs ADD COLUMN log_lines jsonb")
        run = conn.execute(
            "INSERT INTO circle.pipeline_runs (pipeline_id, status, log_lines)"
            " SELECT min(id), 'completed', %s::jsonb FROM circle.pipelines RETURNING id",
            (
                json.dumps(
                    [
                        {"node_id": "a", "message": "started", "timestamp": "2026-12-01T10:00:00Z"},
                        {"node_id": "b", "level": "error", "message": "failed"},
                    ]
                ),
            ),
        ).fetchone()[0]
    migrations.upgrade(before_db, profile=profile)
    assert migrations.check(before_db, profile=profile).ok
    with psycopg.connect(before_db) as conn:
        rows = conn.execute(
            "SELECT node_id, level, message FROM circle.pipeline_run_logs WHERE run_id = %s"
            " ORDER BY id",
            (run,),
        ).fetchall()
        kind = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'auth'"
            " AND table_name = 'users' AND column_name = 'password_hash'"
        ).fetchone()[0]
    assert rows == [("a", "info", "started"), ("b", "error", "failed")]
    assert kind == "text"
    migrations.downgrade(before_db, "base", profile=profile)
    with psycopg.connect(before_db) as conn:
        kind = conn.execute(
            "SELECT character_maximum_length FROM information_schema.columns WHERE"
            " table_schema = 'auth' AND table_name = 'users' AND column_name = 'password_hash'"
        ).fetchone()[0]
    assert kind == 128
