"""Scenarios of `async-db` beyond its CASES: per-handler refusals, sync handlers, providers,
copied service methods."""

from __future__ import annotations

from pathlib import Path

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.codemods.async_db import AsyncDb
from gathering_consolidate.codemods.base import CodemodProject
from gathering_consolidate.codemods.engine import run_codemod, syntax_problem
from gathering_consolidate.config import load_config
from tests.conftest import REPO

DB = """
    import psycopg

    class DatabaseService:
        def __init__(self, conninfo: str = "") -> None:
            self.conninfo = conninfo
            self._conn = None

        def execute(self, sql, params=None):
            with psycopg.connect(self.conninfo) as conn:
                return conn.execute(sql, params).fetchall()

        def execute_one(self, sql, params=None):
            rows = self.execute(sql, params)
            return rows[0] if rows else None

        def count(self, table):
            row = self.execute_one(f"SELECT count(*) AS n FROM {table}")
            return row["n"] if row else 0

        def raw(self):
            return self._conn

    _service = None

    def get_db_service() -> DatabaseService:
        global _service
        if _service is None:
            _service = DatabaseService("postgresql://")
        return _service

    def get_db() -> DatabaseService:
        return get_db_service()
"""


def run(files: dict[str, str], **options):
    project = CodemodProject(
        root=Path("/nonexistent"),
        config=load_config(REPO / "tests"),
        files={p: dedent(c) for p, c in {"app/db.py": DB, **files}.items()},
    )
    plan = run_codemod(AsyncDb(options), project)
    assert not plan.failures, plan.failures
    return plan


def after(plan, path: str) -> str:
    return next(c.after for c in plan.changes if c.path == path)


def test_sync_handlers_providers_and_copied_methods():
    plan = run(
        {
            "app/api.py": """
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db, get_db_service

                router = APIRouter()

                @router.get("/count")
                def count(db: DatabaseService = Depends(get_db)):
                    return {"items": db.count("items")}

                @router.get("/first")
                async def first():
                    db = get_db_service()
                    return db.execute_one("SELECT 1 AS one")["one"]
            """
        }
    )
    api = after(plan, "app/api.py")
    assert "async def count(db: AsyncDatabaseService = Depends(get_async_db)):" in api
    assert 'return {"items": await db.count("items")}' in api
    assert "db = get_async_db_service()" in api
    assert 'return (await db.execute_one("SELECT 1 AS one"))["one"]' in api
    assert "from app.db import AsyncDatabaseService, get_async_db, get_async_db_service" in api
    service = after(plan, "app/db.py")
    assert "class AsyncDatabaseService:" in service
    assert "    async def count(self, table):" in service
    assert 'row = await self.execute_one(f"SELECT count(*) AS n FROM {table}")' in service
    assert "conninfo = get_db().conninfo" in service or "get_db_service().conninfo" in service
    assert all(syntax_problem(c.after) is None for c in plan.changes)


def test_a_helper_also_used_off_the_request_path_blocks_everything():
    plan = run(
        {
            "app/reports.py": """
                from app.db import DatabaseService

                def totals(db: DatabaseService):
                    return db.execute("SELECT 1")
            """,
            "app/api.py": """
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db
                from app import reports

                router = APIRouter()

                @router.get("/totals")
                async def totals(db: DatabaseService = Depends(get_db)):
                    return reports.totals(db)
            """,
            "app/cli.py": """
                from app.db import get_db_service
                from app import reports

                def main():
                    print(reports.totals(get_db_service()))
            """,
        }
    )
    assert not plan.changes
    reasons = [r.reason for r in plan.refusals]
    assert any("reports.totals is also called from cli.main" in r for r in reasons), reasons


def test_the_service_handed_to_an_unconverted_object_blocks():
    plan = run(
        {
            "app/api.py": """
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                class Exporter:
                    def __init__(self, db):
                        self.db = db

                router = APIRouter()

                @router.post("/export")
                async def export(db: DatabaseService = Depends(get_db)):
                    db.execute("SELECT 1")
                    return Exporter(db)
            """
        }
    )
    assert not plan.changes
    assert any("passes the DB service to `Exporter(...)`" in r.reason for r in plan.refusals)


def test_a_service_method_using_internals_blocks():
    plan = run(
        {
            "app/api.py": """
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                router = APIRouter()

                @router.get("/raw")
                async def raw(db: DatabaseService = Depends(get_db)):
                    db.execute("SELECT 1")
                    return db.raw()
            """
        }
    )
    assert not plan.changes
    assert any("uses `self._conn`" in r.reason for r in plan.refusals)


def test_pool_defaults_come_from_options():
    plan = run(
        {
            "app/api.py": """
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                router = APIRouter()

                @router.get("/one")
                async def one(db: DatabaseService = Depends(get_db)):
                    return db.execute("SELECT 1")
            """
        },
        **{"pool-min-size": 2, "pool-max-size": 25},
    )
    service = after(plan, "app/db.py")
    assert '_async_pool_size("DATABASE_POOL_MAX_SIZE", 25)' in service
    assert '_async_pool_size("DATABASE_POOL_MIN_SIZE", 2)' in service


def test_service_methods_handed_to_threads_and_nested_functions_block():
    plan = run(
        {
            "app/api.py": """
                import asyncio
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                router = APIRouter()

                @router.get("/threaded")
                async def threaded(db: DatabaseService = Depends(get_db)):
                    db.execute("SELECT 0")
                    return await asyncio.to_thread(db.execute, "SELECT 1")

                @router.get("/nested")
                async def nested(db: DatabaseService = Depends(get_db)):
                    def load():
                        return db.execute("SELECT 2")

                    db.execute("SELECT 3")
                    return load()
            """
        }
    )
    assert not plan.changes
    reasons = " | ".join(r.reason for r in plan.refusals)
    assert "passes `DatabaseService.execute` to `asyncio.to_thread(...)`" in reasons
    assert "the nested function nested.load uses the DB service" in reasons


def test_a_lambda_over_the_service_blocks():
    plan = run(
        {
            "app/api.py": """
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                router = APIRouter()

                @router.get("/sorted")
                async def ordered(db: DatabaseService = Depends(get_db)):
                    names = db.execute("SELECT name FROM items")
                    return sorted(names, key=lambda row: db.execute_one("SELECT 1"))
            """
        }
    )
    assert not plan.changes
    assert any("a lambda in ordered uses `db`" in r.reason for r in plan.refusals)


def test_annotated_dependencies_are_converted():
    plan = run(
        {
            "app/api.py": """
                from typing import Annotated

                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                Db = Annotated[DatabaseService, Depends(get_db)]
                router = APIRouter()

                @router.get("/one")
                async def one(db: Annotated[DatabaseService, Depends(get_db)]):
                    return db.execute_one("SELECT 1")
            """
        }
    )
    api = after(plan, "app/api.py")
    assert "db: Annotated[AsyncDatabaseService, Depends(get_async_db)]" in api
    assert 'return await db.execute_one("SELECT 1")' in api


def test_an_aliased_dependency_is_understood_and_refused():
    plan = run(
        {
            "app/api.py": """
                from typing import Annotated

                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                Db = Annotated[DatabaseService, Depends(get_db)]
                router = APIRouter()

                @router.get("/one")
                async def one(db: Db):
                    return db.execute_one("SELECT 1")
            """
        }
    )
    assert not plan.changes
    assert any("cannot retype parameter `db` of one" in r.reason for r in plan.refusals)


# -- per handler, not per tree (issue 10 point 2) --------------------------------------------------
MIXED = {
    "app/store.py": """
        from app.db import DatabaseService, get_db_service

        class Store:
            def __init__(self, db: DatabaseService) -> None:
                self._db = db

            def count(self):
                return self._db.execute("SELECT count(*) FROM items")

        store = Store(get_db_service())
    """,
    "app/api.py": """
        from fastapi import APIRouter, Depends
        from app.db import DatabaseService, get_db
        from app.store import store

        router = APIRouter()

        @router.get("/count")
        async def count():
            return store.count()

        @router.get("/items/{item_id}")
        async def get_item(item_id: int, db: DatabaseService = Depends(get_db)):
            return db.execute_one("SELECT * FROM items WHERE id = %s", (item_id,))

        @router.get("/legacy")
        def legacy(db: DatabaseService = Depends(get_db)):
            return db.execute("SELECT 1")
    """,
    "tests/test_api.py": """
        from app.api import legacy

        def test_legacy_directly():
            assert legacy(FakeDb()) == []
    """,
}


def test_the_convertible_half_of_a_mixed_app_is_converted():
    plan = run(MIXED)
    api = after(plan, "app/api.py")
    assert (
        "async def get_item(item_id: int, db: AsyncDatabaseService = Depends(get_async_db)):" in api
    )
    assert "return await db.execute_one(" in api
    # The handler over the service held in an attribute keeps it, and says why.
    assert "    return store.count()\n" in api
    # The handler a test calls directly stays a plain def on the sync service.
    assert "def legacy(db: DatabaseService = Depends(get_db)):" in api
    reasons = {r.line: r.reason for r in plan.refusals if r.path == "app/api.py"}
    assert "api.count keeps the sync service" in reasons[8], reasons
    assert "held by an attribute" in reasons[8] or "self._db" in reasons[8], reasons
    assert "called directly from the test" in reasons[16] and "tests/test_api.py:4" in reasons[16]
    assert "class AsyncDatabaseService:" in after(plan, "app/db.py")
    # A second run converts nothing more and changes nothing.
    again = run({**MIXED, **{c.path: c.after for c in plan.changes}})
    assert not again.changes, [c.path for c in again.changes]
    assert {r.line for r in again.refusals if r.path == "app/api.py"} == {8, 16}
