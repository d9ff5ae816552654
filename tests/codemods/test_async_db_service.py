"""The `AsyncDatabaseService` that `async-db` writes works on a real PostgreSQL: the shapes of
`execute` / `execute_one`, explicit transactions (commit, rollback, savepoints), one pool per
event loop, the pool size from the environment, and the DSN of the sync service."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.codemods.async_db import AsyncDb
from gathering_consolidate.codemods.base import CodemodProject
from gathering_consolidate.codemods.engine import run_codemod
from gathering_consolidate.config import load_config
from tests.conftest import REPO

pytestmark = pytest.mark.postgres

SERVICE = """
    import os

    import psycopg
    from psycopg.rows import dict_row

    class DatabaseService:
        def __init__(self, conninfo: str) -> None:
            self.conninfo = conninfo

        def execute(self, sql, params=None):
            with psycopg.connect(self.conninfo, row_factory=dict_row, autocommit=True) as conn:
                cur = conn.execute(sql, params)
                return cur.fetchall() if cur.description else []

        def execute_one(self, sql, params=None):
            rows = self.execute(sql, params)
            return rows[0] if rows else None

    _service = None

    def get_db() -> DatabaseService:
        global _service
        if _service is None:
            _service = DatabaseService(os.environ["DATABASE_URL"])
        return _service
"""

HANDLER = """
    from fastapi import APIRouter, Depends
    from app.db import DatabaseService, get_db

    router = APIRouter()

    @router.get("/one")
    async def one(db: DatabaseService = Depends(get_db)):
        return db.execute_one("SELECT 1 AS one")
"""


@pytest.fixture
def service_module(tmp_path, monkeypatch, fresh_database):
    project = CodemodProject(
        root=Path("/nonexistent"),
        config=load_config(REPO / "tests"),
        files={"app/db.py": dedent(SERVICE), "app/api.py": dedent(HANDLER)},
    )
    plan = run_codemod(AsyncDb(), project)
    source = next(c.after for c in plan.changes if c.path == "app/db.py")
    path = tmp_path / "generated_db.py"
    path.write_text(source)
    monkeypatch.setenv("DATABASE_URL", fresh_database)
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "3")
    spec = importlib.util.spec_from_file_location("generated_db", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generated_db"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("generated_db", None)


def test_shapes_transactions_and_loops(service_module):
    service = service_module.get_async_db_service()
    assert service.conninfo == service_module.get_db().conninfo
    assert service.max_size == 3

    async def scenario() -> None:
        db = await service_module.get_async_db()
        assert await db.execute("CREATE TABLE t (id int PRIMARY KEY, name text)") == []
        assert await db.execute_one("SELECT 1 AS one") == {"one": 1}
        assert await db.execute_one("SELECT * FROM t") is None
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES (1, 'kept')")
            with pytest.raises(RuntimeError):
                async with db.transaction():  # a savepoint: only this part rolls back
                    await db.execute("INSERT INTO t VALUES (2, 'undone')")
                    raise RuntimeError("boom")
        with pytest.raises(ZeroDivisionError):
            async with db.transaction():
                await db.execute("INSERT INTO t VALUES (3, 'lost')")
                1 / 0  # noqa: B018
        rows = await db.execute("SELECT id, name FROM t ORDER BY id")
        assert rows == [{"id": 1, "name": "kept"}]
        # Concurrent statements share the pool (max 3 connections).
        results = await asyncio.gather(*(db.execute_one("SELECT %s AS n", (i,)) for i in range(8)))
        assert [r["n"] for r in results] == list(range(8))
        await db.close()

    asyncio.run(scenario())

    async def again() -> int:  # a second event loop gets its own pool
        db = await service_module.get_async_db()
        try:
            return (await db.execute_one("SELECT count(*) AS n FROM t"))["n"]
        finally:
            await db.close()

    assert asyncio.run(again()) == 1
