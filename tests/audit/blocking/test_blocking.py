"""Scenarios of the ASY family: one situation per test, across modules where it matters."""

from __future__ import annotations

from pathlib import Path

import pytest

from gathering_consolidate import audit
from gathering_consolidate.audit.blocking import summarize
from tests.audit._support import audit_files, found

DB = """
    import psycopg

    class DatabaseService:
        def __init__(self, conninfo: str = "") -> None:
            self.conninfo = conninfo

        def execute(self, sql, params=None):
            with psycopg.connect(self.conninfo) as conn:
                return conn.execute(sql, params).fetchall()

        def execute_one(self, sql, params=None):
            rows = self.execute(sql, params)
            return rows[0] if rows else None

    def get_db() -> DatabaseService:
        return DatabaseService()
"""


def asy(files: dict[str, str]):
    return audit_files({"app/db.py": DB, **files}, ["ASY"])


def test_three_module_chain_is_reported_at_the_handler_call():
    result = asy(
        {
            "app/reports.py": """
                from app.db import DatabaseService

                def _rows(db: DatabaseService, run_id):
                    return db.execute("SELECT * FROM logs WHERE run_id = %s", (run_id,))

                def run_logs(db: DatabaseService, run_id):
                    return [dict(r) for r in _rows(db, run_id)]
            """,
            "app/api.py": """
                from fastapi import APIRouter, Depends
                from app.db import get_db
                from app import reports

                router = APIRouter(prefix="/runs")

                @router.get("/{run_id}/logs")
                async def logs(run_id: int, db=Depends(get_db)):
                    return reports.run_logs(db, run_id)
            """,
        }
    )
    (finding,) = found(result, "ASY001")
    assert (finding.location.path, finding.location.line) == ("app/api.py", 9)
    assert finding.evidence["chain"] == [
        "app.api.logs",
        "app.reports.run_logs",
        "app.reports._rows",
        "app.db.DatabaseService.execute",
    ]
    assert finding.evidence["route"] == "GET /runs/{run_id}/logs"
    assert finding.evidence["strategy"] == "both"
    assert finding.symbol == "app.api.logs"


def test_awaited_async_helper_is_reported_in_the_helper_not_the_caller():
    result = asy(
        {
            "app/api.py": """
                from app.db import DatabaseService

                async def load(db: DatabaseService):
                    return db.execute("SELECT 1")

                async def handler(db: DatabaseService):
                    return await load(db)
            """
        }
    )
    assert [f.symbol for f in found(result, "ASY001")] == ["app.api.load"]
    assert found(result, "ASY003") == []  # `handler` awaits


def test_standard_blocking_calls_and_their_suggestions():
    result = asy(
        {
            "app/api.py": """
                import subprocess
                import time
                from pathlib import Path

                import requests

                async def work(path: Path):
                    time.sleep(1)
                    requests.get("https://example.com")
                    subprocess.run(["git", "status"])
                    path.read_text()
                    with open("x") as fh:
                        fh.read()
            """
        }
    )
    roots = [f.evidence["root"] for f in found(result, "ASY001")]
    assert roots == [
        "time.sleep",
        "requests.get",
        "subprocess.run",
        "pathlib.Path.read_text",
        "open",
    ]
    assert "asyncio.sleep" in found(result, "ASY001")[0].message


def test_user_patterns_extend_the_blocking_list():
    files = {
        "app/storage.py": """
            class Bucket:
                def upload(self, data):
                    return len(data)
        """,
        "app/api.py": """
            from app.storage import Bucket

            async def save(bucket: Bucket):
                return bucket.upload(b"x")
        """,
    }
    assert found(asy(files), "ASY001") == []
    from gathering_consolidate.audit import registry
    from gathering_consolidate.audit.base import dedent
    from gathering_consolidate.config import Config
    from gathering_consolidate.project import audit_sources, sources_from_mapping

    config = Config(
        root=Path("."),
        check_options={"ASY": {"blocking-calls": ["*.Bucket.upload -> await the async client"]}},
    )
    result = audit_sources(
        sources_from_mapping({p: dedent(c) for p, c in {"app/db.py": DB, **files}.items()}),
        config,
        [c for c in registry() if c.id.startswith("ASY")],
    )
    (finding,) = found(result, "ASY001")
    assert finding.evidence["root"] == "app.storage.Bucket.upload"
    assert "await the async client" in finding.message


def test_lazy_load_is_asy005_and_an_unguarded_path_wins():
    registry = """
        from app.db import DatabaseService

        class Registry:
            def __init__(self, db: DatabaseService):
                self._db = db
                self._cache = None

            def _load(self):
                return self._db.execute("SELECT * FROM skills")

            def all(self):
                if self._cache is None:
                    self._cache = self._load()
                return self._cache

            def fresh(self):
                if self._cache is None:
                    self._cache = self._load()
                return self._load()
    """
    result = asy(
        {
            "app/registry.py": registry,
            "app/api.py": """
                from app.registry import Registry

                async def cached(registry: Registry):
                    return registry.all()

                async def uncached(registry: Registry):
                    return registry.fresh()
            """,
        }
    )
    assert [f.symbol for f in found(result, "ASY005")] == ["app.api.cached"]
    assert [f.symbol for f in found(result, "ASY001")] == ["app.api.uncached"]
    assert found(result, "ASY005")[0].evidence["chain"][1:3] == [
        "app.registry.Registry.all",
        "app.registry.Registry._load",
    ]


def test_executor_is_reported_on_the_request_path_only():
    result = asy(
        {
            "app/api.py": """
                import asyncio
                from fastapi import APIRouter
                from app.db import DatabaseService

                router = APIRouter()

                async def _stats(db: DatabaseService):
                    loop = asyncio.get_running_loop()
                    return await loop.run_in_executor(None, db.execute, "SELECT 1")

                @router.get("/stats")
                async def stats(db: DatabaseService):
                    return await _stats(db)

                async def nightly(db: DatabaseService):
                    loop = asyncio.get_running_loop()
                    return await loop.run_in_executor(None, db.execute, "SELECT 2")
            """
        }
    )
    (finding,) = found(result, "ASY002")
    assert finding.symbol == "app.api._stats"
    assert finding.evidence["route"] == "GET /stats"


def test_unawaited_coroutines_through_attributes_and_unused_names():
    result = asy(
        {
            "app/api.py": """
                class Scheduler:
                    async def trigger(self, action_id):
                        return action_id

                class Service:
                    def __init__(self):
                        self.scheduler = Scheduler()

                    async def run(self, action_id):
                        self.scheduler.trigger(action_id)
                        pending = self.scheduler.trigger(action_id)
                        kept = self.scheduler.trigger(action_id)
                        return await kept
            """
        }
    )
    assert [f.location.line for f in found(result, "ASY004")] == [10, 11]
    assert found(result, "ASY004")[0].evidence["callee"] == "app.api.Scheduler.trigger"


def test_strategies_say_why_not_the_other():
    result = asy(
        {
            "app/events.py": """
                import asyncio

                def emit(name):
                    asyncio.create_task(asyncio.sleep(0))
            """,
            "app/api.py": """
                import time
                from fastapi import APIRouter, Request
                from app.db import DatabaseService
                from app.events import emit

                router = APIRouter()

                @router.post("/a")
                async def awaits(request: Request, db: DatabaseService):
                    body = await request.json()
                    return db.execute("INSERT", (body,))

                @router.post("/b")
                async def emits(db: DatabaseService):
                    db.execute("UPDATE")
                    emit("updated")

                @router.get("/c")
                async def sleeps():
                    time.sleep(1)

                async def background(db: DatabaseService):
                    db.execute("DELETE")
            """,
        }
    )
    by_symbol = {f.symbol: f.evidence for f in found(result, "ASY001")}
    assert by_symbol["app.api.awaits"]["strategy"] == "A"
    assert "awaits `request.json(...)`" in by_symbol["app.api.awaits"]["strategy_reason"]
    assert by_symbol["app.api.emits"]["strategy"] == "A"
    assert "running event loop" in by_symbol["app.api.emits"]["strategy_reason"]
    assert by_symbol["app.api.sleeps"]["strategy"] == "B"
    assert "time.sleep" in by_symbol["app.api.sleeps"]["strategy_reason"]
    assert by_symbol["app.api.background"]["strategy"] == "none"
    assert "40 threads" in by_symbol["app.api.sleeps"]["strategy_reason"]


def test_summary_table_has_one_row_per_blocking_function():
    result = asy(
        {
            "app/api.py": """
                from fastapi import APIRouter
                from app.db import DatabaseService

                router = APIRouter()

                @router.get("/x")
                async def x(db: DatabaseService):
                    db.execute("SELECT 1")
                    db.execute("SELECT 2")
            """
        }
    )
    (table,) = summarize(list(result.findings))
    assert table.rows == (("GET /x", "api.x", 2, 0, 0, "both"),)
    assert "both: 1" in table.title


def test_warm_cache_follows_changes_in_other_files(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "db.py").write_text(
        "import time\n\ndef slow():\n    time.sleep(1)\n\ndef fast():\n    return 1\n"
    )
    (app / "api.py").write_text(
        "from app.db import slow\n\nasync def handler():\n    return slow()\n"
    )
    first = audit(tmp_path, select=["ASY"])
    assert [f.rule for f in first.findings] == ["ASY001"]
    again = audit(tmp_path, select=["ASY"])
    assert again.cache_hits == 3 and again.findings == first.findings
    # Only the helper changes: the handler's file is a cache hit, its finding goes away.
    (app / "db.py").write_text("def slow():\n    return 0\n")
    changed = audit(tmp_path, select=["ASY"])
    assert changed.cache_hits == 2
    assert [f.rule for f in changed.findings] == ["ASY003"]


@pytest.mark.parametrize(
    "code",
    [
        "async def f():\n    ...\n",
        "async def f():\n    '''Doc.'''\n    raise NotImplementedError\n",
        "async def f():\n    async with x:\n        pass\n",
        "async def f():\n    return [y async for y in x]\n",
    ],
)
def test_async_without_await_exemptions(code):
    assert found(audit_files({"app/m.py": code}, ["ASY"]), "ASY003") == []
