"""Codemod `async-to-def`: make blocking `async def` route handlers plain `def` (strategy B;
fixes ASY001, ASY005)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from ..audit.blocking.helpers import THREADPOOL_NOTE, analysis_of_sources, short
from ..audit.blocking.strategies import plan_async_to_def
from ..index import dotted_text
from ..libsource import library_source_for
from ..model import Applicability
from .base import (
    Changed,
    Codemod,
    CodemodProject,
    Failed,
    Keeps,
    Outcome,
    Refused,
    Refuses,
    Rewrite,
    Unchanged,
    refusal_category,
)

_DB = """
    import psycopg

    class DatabaseService:
        def execute(self, sql, params=None):
            with psycopg.connect("") as conn:
                return conn.execute(sql, params).fetchall()

    def get_db() -> DatabaseService:
        return DatabaseService()
"""


class AsyncToDef(Codemod):
    """Turn blocking `async def` route handlers into plain `def`, which FastAPI runs in its
    threadpool, so the blocking work no longer stalls the event loop.

    A handler is converted when the audit reports a blocking call in it (ASY001, or ASY005 for a
    first-access load) and its body needs nothing async: no `await` (except of another handler
    this codemod converts, whose `await` is removed), `async for`, `async with` or `yield`; it is
    not a websocket route; it does not need the running event loop (`asyncio.create_task`, or a
    helper that calls it, like an event bus that schedules tasks); and the project only ever
    calls it with `await` (those call sites are rewritten to plain calls). Anything else is
    refused with the reason.

    Unsafe: the handler now runs in FastAPI's threadpool (AnyIO's default limit is 40 threads,
    shared by every sync handler and dependency), so more concurrent slow requests than that
    queue up, and thread-unsafe state it touches becomes a race. The DB service must hand out a
    connection per thread (a pool), or the threads queue on it.
    """

    id = "async-to-def"
    description = "Make blocking async route handlers plain `def` (FastAPI runs them in threads)."
    applicability = Applicability.UNSAFE
    fixes = ("ASY001", "ASY005")
    CASES = [
        Rewrite(
            before="""
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                router = APIRouter()

                @router.get("/items/{item_id}")
                async def get_item(item_id: int, db: DatabaseService = Depends(get_db)):
                    # one round trip
                    return db.execute("SELECT * FROM items WHERE id = %s", (item_id,))

                @router.put("/items/{item_id}")
                async def put_item(item_id: int, db: DatabaseService = Depends(get_db)):
                    db.execute("UPDATE items SET seen = true WHERE id = %s", (item_id,))
                    return await get_item(item_id, db)  # re-read
            """,
            after="""
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                router = APIRouter()

                @router.get("/items/{item_id}")
                def get_item(item_id: int, db: DatabaseService = Depends(get_db)):
                    # one round trip
                    return db.execute("SELECT * FROM items WHERE id = %s", (item_id,))

                @router.put("/items/{item_id}")
                def put_item(item_id: int, db: DatabaseService = Depends(get_db)):
                    db.execute("UPDATE items SET seen = true WHERE id = %s", (item_id,))
                    return get_item(item_id, db)  # re-read
            """,
            path="app/api.py",
            files={"app/db.py": _DB},
        ),
        Keeps(
            """
                import asyncio
                from fastapi import APIRouter

                router = APIRouter()

                @router.get("/ping")
                async def ping():
                    await asyncio.sleep(0)
                    return {"ok": True}

                @router.get("/items")
                def items(db):
                    return db.execute("SELECT 1")
            """,
            path="app/api.py",
        ),
        Refuses(
            """
                from fastapi import APIRouter, Depends, Request
                from app.db import DatabaseService, get_db

                router = APIRouter()

                @router.post("/items")
                async def create(request: Request, db: DatabaseService = Depends(get_db)):
                    body = await request.json()
                    return db.execute("INSERT INTO items VALUES (%s)", (body["name"],))
            """,
            reason="awaits `request.json(...)`",
            path="app/api.py",
            files={"app/db.py": _DB},
        ),
        Refuses(
            """
                import asyncio
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db

                router = APIRouter()

                def notify(item_id):
                    asyncio.create_task(asyncio.sleep(item_id))

                @router.delete("/items/{item_id}")
                async def delete(item_id: int, db: DatabaseService = Depends(get_db)):
                    db.execute("DELETE FROM items WHERE id = %s", (item_id,))
                    notify(item_id)
            """,
            reason="needs the running event loop",
            path="app/api.py",
            files={"app/db.py": _DB},
        ),
    ]

    def run(self, project: CodemodProject) -> Iterable[Outcome]:
        findings = project.audit(self.fixes).findings
        handlers = {f.symbol for f in findings if f.evidence.get("route")}
        if not handlers:
            return [Unchanged(p) for p in sorted(project.files)]
        analysis = analysis_of_sources(
            project.files,
            project.config.options_for("ASY001"),
            library_source_for(project.config),  # the audit's view of installed libraries
        )
        plan = plan_async_to_def(analysis, handlers)
        outcomes: list[Outcome] = []
        for qualname, reason in sorted(plan.refused.items()):
            if qualname in handlers:
                function = analysis.index.functions[qualname]
                outcomes.append(
                    Refused(
                        analysis.paths[qualname],
                        f"{short(qualname)}: {reason}",
                        function.line,
                        "awaits a coroutine"
                        if reason.startswith("awaits")
                        else refusal_category(reason),
                    )
                )
        by_path: dict[str, list[tuple[str, int]]] = defaultdict(list)  # path -> (name, def line)
        for qualname in plan.convertible:
            function = analysis.index.functions[qualname]
            by_path[analysis.paths[qualname]].append((function.name, function.line))
        awaits: dict[str, list[tuple[int, str]]] = defaultdict(list)  # path -> (line, call text)
        for caller, site in plan.rewrites:
            call = analysis.index.functions[caller].calls[site]
            awaits[analysis.paths[caller]].append((call.line, call.text))
        count = len(plan.convertible)
        for path in sorted(project.files):
            project.step("rewriting files", 1, len(project.files))
            if path not in by_path and path not in awaits:
                outcomes.append(Unchanged(path))
                continue
            source = project.files[path]
            try:
                after = _rewrite(source, set(by_path.get(path, ())), set(awaits.get(path, ())))
            except cst.ParserSyntaxError as exc:
                outcomes.append(Failed(path, f"cannot parse: {exc}"))
                continue
            warnings = ()
            if path in by_path:
                names = ", ".join(sorted(n for n, _ in by_path[path]))
                warnings = (
                    f"{names} now plain `def` ({count} handler(s) in all): {THREADPOOL_NOTE};"
                    " more concurrent slow requests than that wait for a thread",
                )
            outcomes.append(Changed(path, source, after, warnings))
        return outcomes


def _rewrite(source: str, defs: set[tuple[str, int]], awaits: set[tuple[int, str]]) -> str:
    wrapper = MetadataWrapper(cst.parse_module(source))
    return wrapper.visit(_ToDef(defs, awaits)).code


class _ToDef(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, defs: set[tuple[str, int]], awaits: set[tuple[int, str]]):
        super().__init__()
        self.defs = defs
        self.awaits = awaits

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if updated_node.asynchronous is None:
            return updated_node
        line = self.get_metadata(PositionProvider, original_node.name).start.line
        if (original_node.name.value, line) not in self.defs:
            return updated_node
        return updated_node.with_changes(asynchronous=None)

    def leave_Await(self, original_node: cst.Await, updated_node: cst.Await) -> cst.BaseExpression:
        call = original_node.expression
        if not isinstance(call, cst.Call):
            return updated_node
        line = self.get_metadata(PositionProvider, call).start.line
        text = dotted_text_cst(call.func)
        if (line, text) not in self.awaits:
            return updated_node
        inner = updated_node.expression
        return inner.with_changes(
            lpar=[*updated_node.lpar, *inner.lpar], rpar=[*inner.rpar, *updated_node.rpar]
        )


def dotted_text_cst(node: cst.BaseExpression) -> str:
    """The same text `index.dotted_text` gives for the ast node (`self.db.execute`)."""
    import ast

    code = cst.Module(body=[]).code_for_node(node)
    try:
        return dotted_text(ast.parse(code.strip(), mode="eval").body)
    except SyntaxError:
        return code
