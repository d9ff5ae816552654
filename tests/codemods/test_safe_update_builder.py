"""Scenarios of `safe-update-builder` beyond its CASES."""

from __future__ import annotations

from pathlib import Path

import pytest

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.codemods.base import CodemodProject
from gathering_consolidate.codemods.engine import run_codemod
from gathering_consolidate.codemods.safe_update_builder import HELPER, SafeUpdateBuilder
from gathering_consolidate.config import load_config
from tests.conftest import REPO

SCHEMAS = """
    from pydantic import BaseModel, ConfigDict

    class SettingsUpdate(BaseModel):
        model_config = ConfigDict(extra="allow")
        description: str | None = None
"""

ROUTE = """
    from fastapi import APIRouter
    from app.schemas import SettingsUpdate

    router = APIRouter()


    @router.patch("/circles/{circle_id}/settings")
    def update_settings(circle_id: int, payload: SettingsUpdate, db=None):
        changes = payload.model_dump(exclude_unset=True)
        set_clause = ", ".join(f"{column} = %({column})s" for column in changes)
        return db.execute_one(
            f"UPDATE circle.circles SET {set_clause} WHERE id = %(circle_id)s",
            {**changes, "circle_id": circle_id},
        )
"""


def run(files: dict[str, str], root: Path | None = None, **options):
    project = CodemodProject(
        root=root or Path("/nonexistent"),
        config=load_config(REPO / "tests"),
        files={p: dedent(c) for p, c in files.items()},
    )
    return run_codemod(SafeUpdateBuilder(options), project)


def test_helper_behaviour():
    namespace: dict = {}
    exec(compile(HELPER, "safe_sql.py", "exec"), namespace)
    build = namespace["safe_update_builder"]
    assert build(("name", "role"), {"role": "lead", "name": "x"}) == (
        "role = %(role)s, name = %(name)s",
        {"role": "lead", "name": "x"},
    )
    with pytest.raises(ValueError, match="unknown column 'x; DROP TABLE t; --'"):
        build(("name",), {"x; DROP TABLE t; --": 1})
    assert issubclass(namespace["UnknownColumnError"], ValueError)


def test_schema_columns_join_the_allowlist_when_the_model_allows_extras(tmp_path: Path):
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "010.sql").write_text(
        "-- circles; with a comment that has a semicolon\n"
        "CREATE TABLE IF NOT EXISTS circle.circles (\n"
        "    id SERIAL PRIMARY KEY,  -- the key; never written\n"
        "    description TEXT NOT NULL DEFAULT '',\n"
        "    status VARCHAR(20) NOT NULL DEFAULT 'active',\n"
        "    owner_id INTEGER REFERENCES auth.users(id),\n"
        "    created_at TIMESTAMPTZ NOT NULL DEFAULT now()\n"
        ");\n"
        "ALTER TABLE circle.circles ADD COLUMN archived_at TIMESTAMPTZ;\n"
    )
    plan = run(
        {"app/__init__.py": "", "app/schemas.py": SCHEMAS, "app/api.py": ROUTE}, root=tmp_path
    )
    api = next(c for c in plan.changes if c.path == "app/api.py")
    # the key, the owner and the timestamp the database sets are no client's to write
    assert 'safe_update_builder(("description", "status", "archived_at"), changes)[0]' in api.after
    assert "except UnknownColumnError as exc:" in api.after
    assert any("narrow it" in w for w in api.warnings)
    assert any(
        "id (serial), owner_id (ownership), created_at (set by the database)" in w
        for w in api.warnings
    ), api.warnings
    assert [c.path for c in plan.changes if c.before is None] == ["app/safe_sql.py"]


def test_helper_module_option():
    plan = run(
        {"app/__init__.py": "", "app/schemas.py": SCHEMAS, "app/api.py": ROUTE},
        **{"helper-module": "app.db.safe"},
    )
    assert (
        "from app.db.safe import UnknownColumnError, safe_update_builder" in plan.changes[0].after
    )
    assert "app/db/safe.py" in [c.path for c in plan.changes]


def test_refuses_when_the_helper_path_holds_something_else():
    plan = run(
        {
            "app/__init__.py": "",
            "app/schemas.py": SCHEMAS,
            "app/api.py": ROUTE,
            "app/safe_sql.py": "X = 1\n",
        }
    )
    assert any(r.path == "app/safe_sql.py" for r in plan.refusals)


def test_refuses_other_fragment_shapes():
    route = ROUTE.replace('f"{column} = %({column})s"', 'f"{column}=%({column})s"')
    plan = run({"app/__init__.py": "", "app/schemas.py": SCHEMAS, "app/api.py": route})
    assert not plan.changes
    assert "not `f" in plan.refusals[0].reason


def test_respects_a_suppression():
    route = ROUTE.replace(
        "        return db.execute_one(",
        "        # consolidate: ignore[SQL001] the dashboard sends column names on purpose\n"
        "        return db.execute_one(",
    )
    plan = run({"app/__init__.py": "", "app/schemas.py": SCHEMAS, "app/api.py": route})
    assert not plan.changes and not plan.refusals
