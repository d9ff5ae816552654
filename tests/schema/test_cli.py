"""The `schema` commands end to end: exit codes, one-line errors, masked URLs, database left as it
was on bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from gathering_consolidate.cli import app
from tests.conftest import FIXTURE_APP
from tests.schema.conftest import snapshot

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["schema", *args])


def test_unreachable_database_is_one_masked_line():
    result = _run("current", "--database-url", "postgresql://app:s3cr3t@127.0.0.1:1/gathering")
    assert result.exit_code == 2
    assert "s3cr3t" not in result.output
    assert "error: cannot connect to postgresql://app:***@127.0.0.1:1/gathering" in result.output
    assert "connection refused" in result.output
    assert "Traceback" not in result.output


def test_sql_prints_every_revision():
    result = _run("sql")
    assert result.exit_code == 0
    assert "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_lower_key" in result.output
    assert "UNIQUE (action_id, scheduled_for)" in result.output


def test_lint_own_is_clean_and_bad_revision_fails(tmp_path):
    assert _run("lint").exit_code == 0
    (tmp_path / "bad.py").write_text(
        textwrap.dedent(
            """
            from alembic import op
            import sqlalchemy as sa
            revision = "b"
            down_revision = None
            def upgrade():
                op.add_column("t", sa.Column("c", sa.Text(), nullable=False))
                op.create_index("i", "t", ["c"])
            """
        )
    )
    result = _run("lint", str(tmp_path), "--format", "json")
    assert result.exit_code == 1
    rules = json.loads(result.stdout)["by_rule"]
    assert rules["adding-required-field"] == 1
    assert rules["require-concurrent-index-creation"] == 1
    text = _run("lint", str(tmp_path))
    assert f"{tmp_path / 'bad.py'}:7: adding-required-field" in text.output
    assert _run("lint", str(tmp_path / "missing")).exit_code == 2


def test_unknown_profile_is_a_usage_error():
    result = _run("sql", "--profile", "nope")
    assert result.exit_code == 2
    assert "unknown schema profile 'nope' (known: gathering)" in result.output


@pytest.mark.postgres
def test_upgrade_check_downgrade_through_the_cli(before_db):
    up = _run("upgrade", "--database-url", before_db)
    assert up.exit_code == 0, up.output
    assert "base -> 0005_pipeline_run_logs (5 revisions" in up.output
    assert (
        _run("upgrade", "--database-url", before_db)
        .output.strip()
        .endswith("already at 0005_pipeline_run_logs, nothing to do")
    )
    check = _run("check", "--database-url", before_db, "--format", "json")
    assert check.exit_code == 0 and json.loads(check.stdout)["ok"] is True
    with psycopg.connect(before_db) as conn:
        conn.execute("DROP INDEX circle.pipeline_run_logs_run_id_created_at_idx")
    drift = _run("check", "--database-url", before_db)
    assert drift.exit_code == 1
    assert "index: circle.pipeline_run_logs_run_id_created_at_idx: missing" in drift.output
    down = _run("downgrade", "base", "--database-url", before_db, "--format", "json")
    assert down.exit_code == 0
    assert next(s["revision"] for s in json.loads(down.stdout)["steps"]) == "0005_pipeline_run_logs"


@pytest.mark.postgres
def test_unknown_revision_exit_2_database_untouched(before_db):
    assert _run("upgrade", "0002", "--database-url", before_db).exit_code == 0
    with psycopg.connect(before_db) as conn:
        conn.execute("UPDATE public.gathering_consolidate_revision SET version_num = 'abc123'")
    before = snapshot(before_db)
    result = _run("upgrade", "--database-url", before_db)
    assert result.exit_code == 2
    assert (
        "is at revision 'abc123', which this gathering-consolidate does not know" in result.output
    )
    assert snapshot(before_db) == before


@pytest.mark.postgres
def test_import_users_dump_with_case_duplicates(before_db, tmp_path):
    assert _run("upgrade", "--database-url", before_db).exit_code == 0
    before = snapshot(before_db)
    hash_ = "$2b$04$" + "a" * 53
    dump = tmp_path / "users.json"
    dump.write_text(
        json.dumps(
            {
                "new@example.com": {
                    "id": "u-1",
                    "email": "new@example.com",
                    "password_hash": hash_,
                },
                "New@Example.com": {
                    "id": "u-2",
                    "email": "New@Example.com",
                    "password_hash": hash_,
                },
            }
        )
    )
    result = _run("import-users", "--from", str(dump), "--database-url", before_db)
    assert result.exit_code == 2
    assert (
        "record #1 (key 'new@example.com') and record #2 (key 'New@Example.com')" in result.output
    )
    assert "differ only in case" in result.output
    assert snapshot(before_db) == before
    dump.write_text(json.dumps([{"id": "u-1", "email": "new@example.com", "password_hash": hash_}]))
    ok = _run("import-users", "--from", str(dump), "--database-url", before_db)
    assert ok.exit_code == 0 and "1 user(s) imported, 0 already there" in ok.output


@pytest.mark.slow
def test_embedded_rehearsal_from_the_command_line():
    """Without --database-url: an embedded server, the app's schema, all revisions, drift check;
    the server's folder is gone afterwards."""
    from gathering_consolidate.database import embedded_root

    result = _run("check", "--app-schema", str(FIXTURE_APP / "schema"))
    assert result.exit_code == 0, result.output
    assert "matches the head schema (0005_pipeline_run_logs)" in result.stdout
    assert "postgresql://postgres:@/gc_schema_" in result.stdout
    run = result.stdout.split("host=")[1].split(":")[0]
    assert run.startswith(str(embedded_root()))
    assert not Path(run).exists()


@pytest.mark.postgres
def test_sql_from_the_databases_revision(before_db, tmp_path):
    assert _run("upgrade", "0003", "--database-url", before_db).exit_code == 0
    out = tmp_path / "rest.sql"
    result = _run("sql", "--database-url", before_db, "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "-- Running upgrade 0003_scheduler_claims -> 0004_scheduler_constraints" in text
    assert "0002_users_constraints -> 0003" not in text
