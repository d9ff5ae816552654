"""The cross-module index: names resolved the way Python binds them, types from annotations,
`Depends(...)` and `self.` attributes, the call graph and FastAPI routes."""

from __future__ import annotations

import ast

import networkx as nx
import pytest

from gathering_consolidate.audit.base import FileContext, dedent
from gathering_consolidate.audit.blocking.helpers import load_rules
from gathering_consolidate.index import Index, build_index, collect_module


def index_of(files: dict[str, str]) -> Index:
    facts = []
    for path, code in files.items():
        text = dedent(code)
        facts.append(collect_module(FileContext(path, text, ast.parse(text))))
    return build_index(facts, load_rules().returns)


def targets(index: Index, function: str) -> list[str | None]:
    return [t.name if t else None for t in index.targets[function]]


DB = """
    import psycopg

    class DatabaseService:
        def execute(self, sql, params=None):
            return []

    def get_db() -> DatabaseService:
        return DatabaseService()
"""


def test_import_aliases_and_package_reexports_resolve():
    index = index_of(
        {
            "app/db/service.py": DB,
            "app/db/__init__.py": "from .service import DatabaseService as Service, get_db\n",
            "app/api.py": """
                from app.db import Service
                import app.db as database

                def handler(db: Service):
                    return db.execute("SELECT 1")

                def other():
                    return database.get_db().execute("SELECT 2")
            """,
        }
    )
    assert targets(index, "app.api.handler") == ["app.db.service.DatabaseService.execute"]
    assert targets(index, "app.api.other") == [
        "app.db.service.get_db",
        "app.db.service.DatabaseService.execute",
    ]


def test_depends_parameters_and_self_attributes_are_typed():
    index = index_of(
        {
            "app/db.py": DB,
            "app/api.py": """
                from fastapi import Depends
                from app.db import DatabaseService, get_db

                class Repo:
                    def __init__(self, db: DatabaseService):
                        self._db = db

                    def find(self):
                        return self._db.execute("SELECT 1")

                    def find_twice(self):
                        self.find()
                        return self.find()

                async def untyped(db=Depends(get_db)):
                    return db.execute("SELECT 3")

                async def annotated(repo: Repo):
                    return repo.find_twice()
            """,
        }
    )
    assert targets(index, "app.api.Repo.find") == ["app.db.DatabaseService.execute"]
    assert targets(index, "app.api.Repo.find_twice") == ["app.api.Repo.find"] * 2
    assert targets(index, "app.api.untyped") == ["app.db.DatabaseService.execute"]
    assert targets(index, "app.api.annotated") == ["app.api.Repo.find_twice"]
    # The graph keeps each call site of an edge.
    assert index.graph.edges["app.api.Repo.find_twice", "app.api.Repo.find"]["sites"] == [0, 1]
    assert isinstance(index.graph, nx.DiGraph)


def test_inherited_methods_and_constructors():
    index = index_of(
        {
            "app/base.py": """
                class Base:
                    def __init__(self):
                        self.ready = True

                    def save(self):
                        return 1
            """,
            "app/child.py": """
                from app.base import Base

                class Child(Base):
                    pass

                def make():
                    child = Child()
                    return child.save()
            """,
        }
    )
    found = index.targets["app.child.make"]
    assert found[0] is not None and found[0].constructor
    assert [t.name for t in found if t] == ["app.base.Base.__init__", "app.base.Base.save"]


def test_external_types_flow_through_factories_context_managers_and_containers():
    index = index_of(
        {
            "app/store.py": """
                import contextlib
                import queue
                from collections.abc import Iterator
                import psycopg

                Connection = psycopg.Connection[dict]

                class Store:
                    def __init__(self):
                        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()

                    @contextlib.contextmanager
                    def borrow(self) -> Iterator[Connection]:
                        yield self._idle.get_nowait()

                    def query(self):
                        with self.borrow() as conn:
                            with conn.cursor() as cur:
                                return cur.execute("SELECT 1")

                    def close_all(self):
                        conn = self._idle.get_nowait()
                        conn.close()

                def direct():
                    conn = psycopg.connect("")
                    cursor = conn.cursor()
                    cursor.fetchall()
            """,
        }
    )
    assert targets(index, "app.store.Store.query")[-1] == "psycopg.Cursor.execute"
    assert targets(index, "app.store.Store.close_all")[-1] == "psycopg.Connection.close"
    assert targets(index, "app.store.direct") == [
        "psycopg.connect",
        "psycopg.Connection.cursor",
        "psycopg.Cursor.fetchall",
    ]


def test_local_names_shadow_imports_and_lambdas_are_not_calls():
    index = index_of(
        {
            "app/module.py": """
                import time

                def wait(time):
                    time.sleep(1)

                def later():
                    return lambda: time.sleep(1)
            """,
        }
    )
    assert targets(index, "app.module.wait") == [None]
    assert targets(index, "app.module.later") == []


def test_routes_with_prefixes_websockets_and_registrations():
    index = index_of(
        {
            "app/routers/items.py": """
                from fastapi import APIRouter

                router = APIRouter(prefix="/items")

                @router.get("/{item_id}")
                async def get_item(item_id: int):
                    return {}

                @router.api_route("", methods=["post", "put"])
                async def upsert():
                    return {}

                @router.websocket("/ws")
                async def stream(websocket):
                    await websocket.accept()

                async def listed():
                    return []

                router.add_api_route("/all", listed)
            """,
            "app/main.py": """
                from fastapi import FastAPI
                from app.routers import items

                def create_app() -> FastAPI:
                    app = FastAPI()
                    app.include_router(items.router, prefix="/v1")
                    return app

                app = create_app()

                @app.get("/health")
                def health():
                    return {"ok": True}
            """,
            "app/cli.py": """
                import click

                group = click.Group()

                @group.get("/not-a-route")
                def command():
                    return None
            """,
        }
    )
    labels = {q: [r.label for r in rs] for q, rs in index.routes.items()}
    assert labels == {
        "app.routers.items.get_item": ["GET /v1/items/{item_id}"],
        "app.routers.items.upsert": ["POST|PUT /v1/items"],
        "app.routers.items.stream": ["WEBSOCKET /v1/items/ws"],
        "app.routers.items.listed": ["GET /v1/items/all"],
        "app.main.health": ["GET /health"],
    }
    assert index.route_of("app.routers.items.stream").websocket


@pytest.mark.parametrize(
    ("statement", "guard"),
    [
        ("if not self._loaded:", ("self._loaded",)),
        ("if self._cache is None:", ("self._cache",)),
        ("if len(self._items) == 0:", ("self._items",)),
        ("if not self._a or self._b is None:", ("self._a", "self._b")),
        ("if self._conn is None or self._conn.closed:", ()),
        ("if self.enabled:", ()),
    ],
)
def test_first_access_guards(statement, guard):
    index = index_of(
        {
            "app/module.py": f"""
                class Lazy:
                    def get(self):
                        {statement}
                            self.load()

                    def load(self):
                        pass
            """
        }
    )
    assert index.functions["app.module.Lazy.get"].calls[-1].guard == guard


def test_imports_relative_to_a_source_root_below_the_audited_directory():
    index = index_of(
        {
            "backend/app/db.py": DB,
            "backend/app/api.py": """
                from app.db import DatabaseService

                def handler(db: DatabaseService):
                    return db.execute("SELECT 1")
            """,
        }
    )
    assert targets(index, "backend.app.api.handler") == ["backend.app.db.DatabaseService.execute"]
