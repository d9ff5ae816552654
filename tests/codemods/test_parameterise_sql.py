"""Scenarios of `parameterise-sql` beyond its CASES."""

from __future__ import annotations

from pathlib import Path

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.codemods import Changed, Refused
from gathering_consolidate.codemods.base import CodemodProject
from gathering_consolidate.codemods.engine import run_codemod
from gathering_consolidate.codemods.parameterise_sql import ParameteriseSql
from gathering_consolidate.config import load_config
from tests.conftest import REPO


def run(files: dict[str, str]):
    project = CodemodProject(
        root=Path("/nonexistent"),
        config=load_config(REPO / "tests"),
        files={p: dedent(c) for p, c in files.items()},
    )
    return run_codemod(ParameteriseSql(), project)


def test_rewrites_what_it_can_and_notes_the_rest():
    plan = run(
        {
            "app/db.py": """
                def by_name(db, name: str):
                    return db.execute(f"SELECT * FROM t WHERE name = '{name}'")

                def by_id(db, obj_id):
                    return db.execute(f"SELECT * FROM t WHERE id = {obj_id}")
            """
        }
    )
    (change,) = plan.changes
    assert 'db.execute("SELECT * FROM t WHERE name = %s", (name,))' in change.after
    assert 'WHERE id = {obj_id}"' in change.after
    assert any("unquoted value `obj_id`" in w for w in change.warnings)


def test_refuses_asyncpg_modules():
    plan = run(
        {
            "app/db.py": """
                import asyncpg

                async def by_email(conn, email: str):
                    return await conn.fetchrow(f"SELECT * FROM users WHERE email = '{email}'")
            """
        }
    )
    assert [type(o) for o in plan.outcomes] == [Refused]
    assert "$1" in plan.outcomes[0].reason


def test_sqlalchemy_text_is_refused():
    plan = run(
        {
            "app/db.py": """
                from sqlalchemy import text

                def by_name(session, name: str):
                    return session.execute(text(f"SELECT * FROM users WHERE name = '{name}'"))
            """
        }
    )
    (refusal,) = plan.refusals
    assert "not known to take query parameters" in refusal.reason


def test_keeps_sql_doubled_quotes_and_percent_in_the_value():
    plan = run(
        {
            "app/db.py": """
                def tagged(db, tag: str, kind):
                    return db.execute(
                        f"SELECT * FROM t WHERE note = 'it''s {tag} at 100%%' AND kind = %s", (kind,)
                    )
            """
        }
    )
    (change,) = plan.changes
    assert isinstance(change, Changed)
    assert '"SELECT * FROM t WHERE note = %s AND kind = %s", (f"it\'s {tag} at 100%", kind)' in (
        change.after
    )


def test_value_that_is_not_known_to_be_a_string_is_bound_as_its_text():
    plan = run(
        {
            "app/db.py": """
                def since(db, when):
                    return db.execute(f"SELECT * FROM t WHERE created_at > '{when}'")
            """
        }
    )
    assert "(str(when),)" in plan.changes[0].after


def test_multi_line_parameters_keep_their_layout():
    plan = run(
        {
            "app/db.py": """
                def add(db, name, note: str):
                    return db.execute(
                        f"INSERT INTO t (name, note, kind) VALUES (%s, '{note}', %s)",
                        (
                            name,  # the display name
                            "plain",
                        ),
                    )
            """
        }
    )
    assert plan.changes[0].after == dedent(
        """
        def add(db, name, note: str):
            return db.execute(
                "INSERT INTO t (name, note, kind) VALUES (%s, %s, %s)",
                (
                    name,  # the display name
                    note,
                    "plain",
                ),
            )
        """
    )


def test_compose_identifiers_refuses_names_glued_to_text():
    project = CodemodProject(
        root=Path("/nonexistent"),
        config=load_config(REPO / "tests"),
        files={
            "app/db.py": dedent(
                """
                import psycopg

                def rows(conn: psycopg.Connection, prefix):
                    return conn.execute(f"SELECT * FROM {prefix}_runs")
                """
            )
        },
    )
    plan = run_codemod(ParameteriseSql({"compose-identifiers": True}), project)
    (refusal,) = plan.refusals
    assert "larger name" in refusal.reason
