"""The cross-module index: names resolved the way Python binds them, types from annotations,
`Depends(...)` and `self.` attributes, the call graph and FastAPI routes."""

from __future__ import annotations

import ast

import networkx as nx
import pytest

from gathering_consolidate.audit.base import FileContext, dedent
from gathering_consolidate.audit.blocking.helpers import load_rules
from gathering_consolidate.index import Index, Target, build_index, collect_module


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
    assert index.callers("app.api.Repo.find") == [
        ("app.api.Repo.find_twice", 0),
        ("app.api.Repo.find_twice", 1),
    ]
    # Equal targets are one object (one per distinct target, not per call).
    first, second = index.targets["app.api.Repo.find_twice"]
    assert first is second
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


# -- services held the way real apps hold them ----------------------------------------------------
SERVICE = """
    import psycopg

    class DatabaseService:
        def execute(self, sql):
            with psycopg.connect("") as conn:
                return conn.execute(sql).fetchall()

    def make_db():  # no annotation: typed from the constructor call it returns
        return DatabaseService()

    db_singleton = DatabaseService()
"""


def test_service_in_an_attribute_from_constructor_factory_or_singleton():
    index = index_of(
        {
            "app/db.py": SERVICE,
            "app/repos.py": """
                from typing import Any
                from app.db import DatabaseService, db_singleton, make_db

                class ByConstructor:
                    def __init__(self):
                        self.db: Any = DatabaseService()

                    def find(self):
                        return self.db.execute("SELECT 1")

                class ByFactory:
                    def __init__(self):
                        self.db = make_db()

                    def find(self):
                        return self.db.execute("SELECT 1")

                class BySingleton:
                    def __init__(self):
                        self.db = db_singleton

                    def find(self):
                        return self.db.execute("SELECT 1")
            """,
        }
    )
    for cls in ("ByConstructor", "ByFactory", "BySingleton"):
        assert targets(index, f"app.repos.{cls}.find") == ["app.db.DatabaseService.execute"], cls
    # a project class with no __init__ is resolved (constructing it runs no project code)
    assert index.targets["app.repos.ByConstructor.__init__"][0].kind == "class"


def test_untyped_parameters_are_typed_from_their_callers():
    index = index_of(
        {
            "app/db.py": SERVICE,
            "app/cache.py": """
                class Cache:
                    def execute(self, sql):
                        return None
            """,
            "app/use.py": """
                from typing import Any
                from app.cache import Cache
                from app.db import DatabaseService

                class Repo:
                    def __init__(self, db: Any):
                        self.db = db

                    def find(self):
                        return self.db.execute("SELECT 1")

                def helper(conn, sql):  # every caller passes a DatabaseService
                    return conn.execute(sql)

                def either(store):  # callers disagree: a union of both
                    return store.execute("x")

                def orphan(thing):  # no caller: unknown
                    return thing.execute("x")

                def partly(thing):  # one caller passes something unknown
                    return thing.execute("x")

                def main(unknown_value):
                    Repo(DatabaseService())
                    helper(DatabaseService(), "SELECT 2")
                    helper(conn=DatabaseService(), sql="SELECT 3")
                    either(DatabaseService())
                    either(Cache())
                    partly(DatabaseService())
                    partly(unknown_value.build())
            """,
        }
    )
    assert targets(index, "app.use.Repo.find") == ["app.db.DatabaseService.execute"]
    assert targets(index, "app.use.helper") == ["app.db.DatabaseService.execute"]
    assert index.all_targets("app.use.either", 0) == [
        Target("func", "app.db.DatabaseService.execute"),
        Target("func", "app.cache.Cache.execute"),
    ]
    assert {"app.db.DatabaseService.execute", "app.cache.Cache.execute"} <= set(
        index.graph.successors("app.use.either")
    )
    assert targets(index, "app.use.orphan") == [None]
    assert targets(index, "app.use.partly") == ["app.db.DatabaseService.execute"]
    assert ("app.use.partly", "thing") in index.partial_params


def test_depends_provider_without_annotations_types_the_parameter():
    index = index_of(
        {
            "app/db.py": SERVICE,
            "app/api.py": """
                from fastapi import Depends
                from app.db import make_db

                def handler(db=Depends(make_db)):
                    return db.execute("SELECT 1")
            """,
        }
    )
    assert targets(index, "app.api.handler") == ["app.db.DatabaseService.execute"]


def test_literals_comprehensions_and_type_annotations_are_typed():
    index = index_of(
        {
            "app/skills.py": """
                class Echo:
                    def info(self):
                        return {}

                SKILLS: tuple[type[Echo], ...] = (Echo,)
                NAMES = ["a", "b"]

                def infos():
                    return [cls().info() for cls in SKILLS]

                def names():
                    return ", ".join(n.upper() for n in NAMES)

                def words(text: str):
                    return [w.strip() for w in text.split(",")]
            """,
        }
    )
    assert targets(index, "app.skills.infos") == ["app.skills.Echo", "app.skills.Echo.info"]
    assert targets(index, "app.skills.names") == ["str.upper", "str.join"]
    assert targets(index, "app.skills.words") == ["str.split", "str.strip"]


# -- termination by construction ------------------------------------------------------------------
def test_walks_terminate_on_alias_and_reexport_cycles():
    index = index_of(
        {
            "pkg/__init__.py": "from pkg.a import x\nfrom pkg import x as y\n",
            "pkg/a.py": "from .b import x\nself_ref = self_ref\nfrom pkg.a import self_ref as again\n",
            "pkg/b.py": "from .a import x\n",
            "pkg/c.py": """
                from . import a
                from .b import x

                def use(v):
                    x.run()
                    a.self_ref.go()
                    a.again()
                    return v.f()

                class K(K):
                    def m(self):
                        return super().m()
            """,
        }
    )
    assert index.resolve("pkg.a.x") is None
    assert index.resolve("pkg.y") is None
    assert targets(index, "pkg.c.use") == [None, None, None, None]


def test_a_reexport_chain_deeper_than_the_bound_is_unknown_not_a_recursion_error():
    depth = 400
    files = {f"deep/m{i}.py": f"from deep.m{i + 1} import thing\n" for i in range(depth)}
    files[f"deep/m{depth}.py"] = "def thing():\n    pass\n"
    files["deep/use.py"] = "from deep.m0 import thing\n\ndef f():\n    thing()\n"
    files["deep/near.py"] = f"from deep.m{depth - 3} import thing\n\ndef g():\n    thing()\n"
    index = index_of(files)
    assert targets(index, "deep.use.f") == [None]
    assert index.incomplete  # says what it gave up on
    assert targets(index, "deep.near.g") == [f"deep.m{depth}.thing"]
    chain = ".".join(["n"] * 500)
    index = index_of(
        {
            "d/a.py": f"""
                class A:
                    def __init__(self):
                        self.n = A()

                    def go(self):
                        return self.{chain}.go()
            """
        }
    )
    assert targets(index, "d.a.A.go") == [None]


def test_a_function_defined_twice_keeps_both_definitions():
    index = index_of(
        {
            "app/main.py": """
                import time
                from fastapi import FastAPI

                app = FastAPI()

                @app.get("/a")
                async def root():
                    return 1

                @app.get("/b")
                async def root():
                    time.sleep(1)
            """
        }
    )
    assert set(index.routes) == {"app.main.root", "app.main.root@11"}
    assert targets(index, "app.main.root@11") == ["time.sleep"]
