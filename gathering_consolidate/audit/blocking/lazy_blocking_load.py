from collections.abc import Iterator, Mapping

from ...index import ModuleFacts
from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from .helpers import (
    ASYNC_TO_DEF,
    AsyncCheck,
    chain_text,
    hit_finding,
    route_label,
)
from .strategies import plans_for, strategy

_REGISTRY = """
    from app.db import DatabaseService

    class Registry:
        def __init__(self, db: DatabaseService) -> None:
            self._db = db
            self._items = {}
            self._loaded = False

        def _load_all(self) -> None:
            for row in self._db.execute("SELECT name FROM items"):
                self._items[row["name"]] = row
            self._loaded = True

        def get(self, name):
            if not self._loaded:
                self._load_all()
            return self._items.get(name)
"""

_DB = """
    import psycopg

    class DatabaseService:
        def execute(self, sql, params=None):
            with psycopg.connect("") as conn:
                return conn.execute(sql, params).fetchall()
"""


class LazyBlockingLoad(AsyncCheck):
    """A call in an `async def` that blocks the first time, through a lazy first-access load.

    ## Why is this bad?
    A registry or cache that loads everything from the database the first time it is touched
    (`if not self._loaded: self._load_all()`, `if _cache is None: _cache = load()`, a
    `functools.cache`d loader) blocks the event loop on that first request, and again after every
    invalidation or restart. It hides from load tests that warm up first and from reviews that
    look at the steady state. The finding is on the call in the async function whose chain
    reaches a blocking call only through such a guarded load (ASY001 reports chains that block
    on every call). A guard is an `if` on "not set up yet" state (`not x`, `x is None`,
    `len(x) == 0`) whose branch, or the function it calls, sets that state.

    ## Fix safety
    Unsafe. Codemod `async-to-def` makes the route handler a plain `def`, so the first load runs
    in FastAPI's threadpool instead of on the event loop. Loading eagerly at startup (in the
    app lifespan) removes the first-request stall altogether; that is a change by hand.
    """

    id, name = "ASY005", "lazy-blocking-load"
    severity = Severity.MEDIUM
    fix = ASYNC_TO_DEF
    VALID = [
        Valid(
            """
            from app.registry import Registry

            def get_item(registry: Registry, name):
                return registry.get(name)
            """,
            path="app/api.py",
            files={"app/registry.py": _REGISTRY, "app/db.py": _DB},
        ),
        Valid(
            """
            class Settings:
                def __init__(self):
                    self._values = None

                def get(self, key):
                    if self._values is None:
                        self._values = {"debug": False}
                    return self._values[key]

            async def debug(settings: Settings):
                return settings.get("debug")
            """
        ),
    ]
    INVALID = [
        Invalid(
            """
            from app.registry import Registry

            async def get_item(registry: Registry, name):
                return registry.get(name)
            """,
            path="app/api.py",
            files={"app/registry.py": _REGISTRY, "app/db.py": _DB},
            line=4,
            evidence={
                "chain": [
                    "app.api.get_item",
                    "app.registry.Registry.get",
                    "app.registry.Registry._load_all",
                    "app.db.DatabaseService.execute",
                ]
            },
            message="first",
        ),
        Invalid(
            """
            import functools
            import pathlib

            @functools.lru_cache(maxsize=1)
            def load_prompts():
                return pathlib.Path("prompts.txt").read_text()

            async def prompt(name):
                return load_prompts()
            """,
            line=9,
        ),
    ]

    def finish(
        self, facts: Mapping[str, ModuleFacts], project: ProjectContext
    ) -> Iterator[Finding]:
        analysis = self.analysis(facts, project)
        plans = plans_for(analysis, project)
        for hit in analysis.hits:
            if not hit.lazy:
                continue
            route = route_label(analysis, hit.function)
            chosen, why = strategy(analysis, hit.function, plans)
            where = f" in route {route}" if route else ""
            message = (
                f"`{hit.call.text}()` blocks the event loop on first access{where}: a lazy load"
                f" reaches `{hit.root}` ({chain_text(hit.chain)}); load it at startup or"
                " make the load async"
            )
            yield hit_finding(self, analysis, project, hit, message, route, chosen, why)
