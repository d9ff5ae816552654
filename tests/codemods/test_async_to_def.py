"""Scenarios of `async-to-def` beyond its CASES: one situation per test."""

from __future__ import annotations

from pathlib import Path

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.codemods.async_to_def import AsyncToDef
from gathering_consolidate.codemods.base import Changed, CodemodProject, Refused
from gathering_consolidate.codemods.engine import run_codemod
from gathering_consolidate.config import load_config
from tests.conftest import REPO

DB = """
    import psycopg

    class DatabaseService:
        def execute(self, sql, params=None):
            with psycopg.connect("") as conn:
                return conn.execute(sql, params).fetchall()

    def get_db() -> DatabaseService:
        return DatabaseService()
"""

HANDLER = """
    from fastapi import APIRouter, Depends
    from app.db import DatabaseService, get_db

    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: int, db: DatabaseService = Depends(get_db)):
        return db.execute("SELECT * FROM items WHERE id = %s", (item_id,))
"""


def run(files: dict[str, str]):
    project = CodemodProject(
        root=Path("/nonexistent"),
        config=load_config(REPO / "tests"),
        files={p: dedent(c) for p, c in {"app/db.py": DB, **files}.items()},
    )
    plan = run_codemod(AsyncToDef(), project)
    assert not plan.failures, plan.failures
    return plan


def changed(plan, path: str) -> str:
    return next(c.after for c in plan.changes if c.path == path)


def test_awaiting_call_sites_in_other_modules_are_rewritten():
    plan = run(
        {
            "app/api.py": HANDLER,
            "app/batch.py": """
                import asyncio
                from app.api import get_item

                async def warm(ids, db):
                    results = [await get_item(i, db) for i in ids]
                    await asyncio.sleep(0)
                    return results
            """,
        }
    )
    assert "def get_item(" in changed(plan, "app/api.py")
    assert "async def get_item(" not in changed(plan, "app/api.py")
    assert "results = [get_item(i, db) for i in ids]" in changed(plan, "app/batch.py")
    assert "await asyncio.sleep(0)" in changed(plan, "app/batch.py")


def test_a_handler_scheduled_as_a_task_is_refused():
    plan = run(
        {
            "app/api.py": HANDLER,
            "app/warm.py": """
                import asyncio
                from app.api import get_item

                def warm(db):
                    return asyncio.ensure_future(get_item(1, db))
            """,
        }
    )
    assert not plan.changes
    (refusal,) = plan.refusals
    assert refusal.path == "app/api.py" and refusal.line == 7
    assert "called without `await` in warm" in refusal.reason


def test_a_handler_passed_as_a_callback_is_refused():
    plan = run(
        {
            "app/api.py": HANDLER,
            "app/hooks.py": """
                from app.api import get_item

                def register(bus):
                    bus.subscribe("item", get_item)
            """,
        }
    )
    assert not plan.changes
    assert "passed to `bus.subscribe()`" in plan.refusals[0].reason


def test_websocket_routes_stay_async():
    plan = run(
        {
            "app/api.py": """
                from fastapi import APIRouter, WebSocket
                from app.db import DatabaseService

                router = APIRouter()

                @router.websocket("/ws")
                async def feed(websocket: WebSocket, db: DatabaseService):
                    rows = db.execute("SELECT 1")
                    await websocket.send_json(rows)
            """
        }
    )
    assert not plan.changes
    assert "websocket route must stay `async def`" in plan.refusals[0].reason


def test_suppressed_findings_are_left_alone():
    plan = run(
        {
            "app/api.py": """
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                router = APIRouter()

                @router.get("/items")
                async def items(db: DatabaseService = Depends(get_db)):
                    return db.execute("SELECT 1")  # consolidate: ignore[ASY001] tiny table, cached
            """
        }
    )
    assert not plan.changes and not plan.refusals


def test_the_change_carries_the_threadpool_trade_off():
    plan = run({"app/api.py": HANDLER})
    (change,) = plan.changes
    assert isinstance(change, Changed)
    assert any("40 threads" in w for w in change.warnings)
    assert not [o for o in plan.outcomes if isinstance(o, Refused)]
