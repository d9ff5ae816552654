"""Codemod `async-db`: move request handlers to an async DB service, every handler whose chain
can move (strategy A; fixes ASY002, and the DB-service findings of ASY001)."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import libcst as cst
from libcst.codemod import (
    CodemodContext,
    TransformFailure,
    VisitorBasedCodemodCommand,
    transform_module,
)
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.metadata import PositionProvider

from ..audit.astutil import is_test_path
from ..audit.base import Option, module_name
from ..audit.blocking.helpers import Analysis, analysis_of_sources, handler_context, short
from ..audit.blocking.strategies import CORE_METHODS, DbPlan, plan_async_db
from ..model import Applicability
from .async_to_def import dotted_text_cst
from .base import (
    Changed,
    Codemod,
    CodemodProject,
    Keeps,
    Outcome,
    Refused,
    Refuses,
    Rewrite,
    Unchanged,
    refusal_category,
)

_SERVICE = """
    import psycopg

    class DatabaseService:
        def __init__(self, conninfo: str) -> None:
            self.conninfo = conninfo

        def execute(self, sql, params=None):
            with psycopg.connect(self.conninfo) as conn:
                return conn.execute(sql, params).fetchall()

        def execute_one(self, sql, params=None):
            rows = self.execute(sql, params)
            return rows[0] if rows else None

    _service = None

    def get_db() -> DatabaseService:
        global _service
        if _service is None:
            _service = DatabaseService("postgresql://")
        return _service
"""


class AsyncDb(Codemod):
    """Move the request path to an `AsyncDatabaseService` (psycopg 3 `AsyncConnectionPool`) in
    one pass: every route handler, the async functions they await and the sync helpers on
    their chains to the DB service.

    It writes `AsyncDatabaseService` into the module of the sync service (same `execute` /
    `execute_one` shapes, explicit `async with db.transaction():`, a pool per event loop sized
    by `DATABASE_POOL_MIN_SIZE` / `DATABASE_POOL_MAX_SIZE`, on the database the sync service
    uses), with async copies of the service's own helper methods that handlers call, and two
    providers: `get_async_db_service()` and the FastAPI dependency `get_async_db()`. Then
    `db: DatabaseService = Depends(get_db)` parameters become `db: AsyncDatabaseService =
    Depends(get_async_db)`, calls to the service are awaited, helpers on the chain become
    `async def` and are awaited, `get_db_service()` calls use the async accessor, and
    `await loop.run_in_executor(None, db.execute, sql, params)` becomes
    `await db.execute(sql, params)`.

    Per handler: a handler whose chain cannot be converted (the service held in `self._db`, a
    helper also called from code off the request path or from a test, a service method with no
    async counterpart...) keeps the sync service and is listed with the reason, together with
    every handler whose calls reach the same blocked function; every other handler is
    converted. A second run converts nothing more. Only a problem that belongs to no handler
    (no service, several services) stops everything. Background code (the
    lifespan, schedulers, event handlers) keeps the sync service and is listed in a note;
    first-access loads (ASY005) and non-DB blocking calls are left alone.

    Unsafe: statements that relied on running one after the other on a shared connection now
    run on pooled connections; wrap those that must commit together in `db.transaction()`.
    The app needs `psycopg-pool` installed.
    """

    id = "async-db"
    description = "Make request handlers await an AsyncDatabaseService (psycopg pool), per handler."
    applicability = Applicability.UNSAFE
    fixes = ("ASY002",)
    OPTIONS = {
        "service": Option(
            "", "Qualified name of the sync DB service class (when there are several)."
        ),
        "pool-min-size": Option(1, "Default minimum pool size (env DATABASE_POOL_MIN_SIZE wins)."),
        "pool-max-size": Option(10, "Default maximum pool size (env DATABASE_POOL_MAX_SIZE wins)."),
        "database-url-env": Option(
            "DATABASE_URL", "Environment variable with the DSN, when the sync service has none."
        ),
    }
    CASES = [
        Rewrite(
            before="""
                import asyncio
                from fastapi import APIRouter, Depends
                from app.db import DatabaseService, get_db
                from app import reports

                router = APIRouter()

                @router.get("/items/{item_id}")
                async def get_item(item_id: int, db: DatabaseService = Depends(get_db)):
                    row = db.execute_one("SELECT * FROM items WHERE id = %s", (item_id,))  # one row
                    return {"item": row, "tags": reports.tags(db, item_id)}

                @router.get("/stats")
                async def stats(db: DatabaseService = Depends(get_db)):
                    loop = asyncio.get_running_loop()
                    rows = await loop.run_in_executor(None, db.execute, "SELECT count(*) AS n FROM items")
                    return db.execute("SELECT 1")[0] | rows[0]
            """,
            after="""
                from fastapi import APIRouter, Depends
                from app.db import AsyncDatabaseService, get_async_db
                from app import reports

                router = APIRouter()

                @router.get("/items/{item_id}")
                async def get_item(item_id: int, db: AsyncDatabaseService = Depends(get_async_db)):
                    row = await db.execute_one("SELECT * FROM items WHERE id = %s", (item_id,))  # one row
                    return {"item": row, "tags": await reports.tags(db, item_id)}

                @router.get("/stats")
                async def stats(db: AsyncDatabaseService = Depends(get_async_db)):
                    rows = await db.execute("SELECT count(*) AS n FROM items")
                    return (await db.execute("SELECT 1"))[0] | rows[0]
            """,
            path="app/api.py",
            files={
                "app/db.py": _SERVICE,
                "app/reports.py": """
                    from app.db import DatabaseService

                    def tags(db: DatabaseService, item_id: int) -> list:
                        # tags of one item
                        return db.execute("SELECT tag FROM tags WHERE item_id = %s", (item_id,))
                """,
            },
        ),
        Keeps(
            """
                from fastapi import APIRouter

                router = APIRouter()

                @router.get("/ping")
                async def ping():
                    return {"ok": True}
            """,
            path="app/api.py",
        ),
        Refuses(
            """
                from fastapi import APIRouter
                from app.db import DatabaseService, get_db

                router = APIRouter()

                class Store:
                    def __init__(self, db: DatabaseService) -> None:
                        self._db = db

                    async def count(self):
                        return self._db.execute("SELECT count(*) FROM items")

                store = Store(get_db())

                @router.get("/count")
                async def count():
                    return await store.count()
            """,
            reason="uses the sync service held by an attribute",
            path="app/api.py",
            files={"app/db.py": _SERVICE},
        ),
    ]

    def run(self, project: CodemodProject) -> Iterable[Outcome]:
        project.step("analysing files", 0, len(project.files))
        analysis = analysis_of_sources(project.files, project.config.options_for("ASY001"))
        project.step("analysing files", len(project.files))
        plan, kept = self._plan(analysis)
        unchanged = [Unchanged(p) for p in sorted(project.files)]
        left = [
            Refused(
                analysis.paths[q],
                f"{short(q)} keeps the sync service: {why}",
                analysis.index.functions[q].line,
                refusal_category(why),
            )
            for q, why in sorted(kept.items())
        ]
        if plan.blockers or (plan.service is None):
            return self._refusals(analysis, plan) or unchanged
        if not plan.edits and not plan.params:
            return [*left, *unchanged]
        writer = _Writer(analysis, plan, project.files, self.options)
        try:
            changed = writer.write()
        except _Blocked as blocked:
            return [Refused(path, reason, line) for path, reason, line in blocked.reasons]
        outcomes: list[Outcome] = list(left)
        note = self._note(plan)
        for path in sorted(project.files):
            if path in changed:
                warnings = (note,) if path == writer.service_path else ()
                outcomes.append(Changed(path, project.files[path], changed[path], warnings))
            else:
                outcomes.append(Unchanged(path))
        return outcomes

    def _plan(self, analysis: Analysis) -> tuple[DbPlan, dict[str, str]]:
        """The plan for every handler whose whole chain can move, and the handlers left on the
        sync service with why: a blocker found on a handler's chain leaves that handler (and
        every handler whose calls reach the blocked function) where it is, and the rest is
        planned again, until nothing blocks. A blocker that belongs to no handler (no service
        found, several services) still stops everything."""
        index = analysis.index
        service = self.options["service"] or None
        entries = set(handler_context(analysis)) | {
            q for q in index.routes if not index.functions[q].is_async
        }
        reached: dict[str, set[str]] = {}

        def reach_from(entry: str) -> set[str]:
            if entry not in reached:
                seen = {entry}
                stack = [entry]
                while stack:
                    for target in index.targets.get(stack.pop(), ()):
                        if (
                            target is not None
                            and target.kind == "func"
                            and target.name in index.functions
                            and target.name not in seen
                        ):
                            seen.add(target.name)
                            stack.append(target.name)
                reached[entry] = seen
            return reached[entry]

        skip: set[str] = set()
        kept: dict[str, str] = {}
        while True:
            plan = plan_async_db(analysis, service, frozenset(skip))
            if plan.service is None:
                return plan, kept
            grown = False
            # A handler a test calls directly (not through the app) would change under the
            # test: it stays (the test keeps passing) and says so.
            for entry in sorted((plan.scope & entries) - skip):
                if entry not in plan.to_async and not any(p == entry for p, _ in plan.params):
                    continue
                for caller, site in index.callers(entry):
                    path = analysis.paths.get(caller, "")
                    if caller not in plan.scope and is_test_path(path):
                        line = index.functions[caller].calls[site].line
                        skip.add(entry)
                        kept.setdefault(
                            entry,
                            f"called directly from the test {short(caller)} ({path}:{line}),"
                            " which would get a coroutine or pass a sync service: update the"
                            " test, then run again",
                        )
                        grown = True
                        break
            if grown:
                continue
            if not plan.blockers:
                return plan, kept
            for where, why in plan.blockers:
                if where is None:
                    return plan, kept
                hit = [e for e in sorted(entries) if where in reach_from(e)]
                if not hit:
                    return plan, kept  # not on any handler's chain: cannot be left out
                for entry in (e for e in hit if e not in skip):
                    skip.add(entry)
                    place = "" if where == entry else f"{short(where)}: "
                    kept.setdefault(entry, f"{place}{why}")
                    grown = True
            if not grown:
                return plan, kept

    @staticmethod
    def _refusals(analysis: Analysis, plan: DbPlan) -> list[Outcome]:
        refusals: list[Outcome] = []
        for where, why in plan.blockers:
            if where is None:
                refusals.append(
                    Refused("<project>", f"async-db: {why}", None, refusal_category(why))
                )
                continue
            function = analysis.index.functions[where]
            refusals.append(
                Refused(
                    analysis.paths[where],
                    f"async-db changes nothing: {short(where)}: {why}",
                    function.line,
                    refusal_category(why),
                )
            )
        return refusals

    @staticmethod
    def _note(plan: DbPlan) -> str:
        parts = [
            f"{len(plan.scope)} request handler(s)/helper(s) now await AsyncDatabaseService;"
            " the app needs `psycopg-pool`; close the pool at shutdown with"
            " `await get_async_db_service().close()` in the lifespan"
        ]
        if plan.left:
            names = ", ".join(short(q) for q in plan.left)
            parts.append(f"still on the sync service (not request handlers): {names}")
        return "; ".join(parts)


class _Blocked(Exception):
    def __init__(self, reasons: list[tuple[str, str, int | None]]):
        super().__init__("blocked")
        self.reasons = reasons


@dataclass
class _FileEdits:
    to_async: set[tuple[str, int]] = field(default_factory=set)  # (name, def line)
    awaits: set[tuple[int, str]] = field(default_factory=set)  # (line, call text)
    providers: set[tuple[int, str]] = field(default_factory=set)
    executors: set[tuple[int, str]] = field(default_factory=set)
    params: set[tuple[str, int, str]] = field(default_factory=set)  # (function, def line, param)


class _Writer:
    def __init__(
        self, analysis: Analysis, plan: DbPlan, files: Mapping[str, str], options: Mapping
    ) -> None:
        self.analysis = analysis
        self.plan = plan
        self.files = files
        self.options = options
        index = analysis.index
        assert plan.service is not None
        self.service = plan.service
        self.service_name = plan.service.rsplit(".", 1)[-1]
        self.async_name = f"Async{self.service_name}"
        self.service_path = next(
            analysis.paths[q] for q in index.functions if index.functions[q].cls == plan.service
        )
        self.service_module = module_name(self.service_path)
        self.accessor = "get_async_db_service"
        self.dependency = "get_async_db"

    def write(self) -> dict[str, str]:
        index = self.analysis.index
        edits: dict[str, _FileEdits] = defaultdict(_FileEdits)
        for qualname in self.plan.to_async:
            function = index.functions[qualname]
            edits[self.analysis.paths[qualname]].to_async.add((function.name, function.line))
        for edit in self.plan.edits:
            call = index.functions[edit.function].calls[edit.index]
            bucket = edits[self.analysis.paths[edit.function]]
            {"await": bucket.awaits, "provider": bucket.providers, "executor": bucket.executors}[
                edit.kind
            ].add((call.line, call.text))
        for qualname, param in self.plan.params:
            function = index.functions[qualname]
            edits[self.analysis.paths[qualname]].params.add((function.name, function.line, param))
        changed: dict[str, str] = {}
        for path, bucket in sorted(edits.items()):
            changed[path] = self._edit_file(path, self.files[path], bucket)
        service_source = changed.get(self.service_path, self.files[self.service_path])
        changed[self.service_path] = self._add_service(service_source)
        return {p: t for p, t in changed.items() if t != self.files[p]}

    # -- handlers and helpers ------------------------------------------------------------------
    def _edit_file(self, path: str, source: str, bucket: _FileEdits) -> str:
        index = self.analysis.index
        module = module_name(path)
        imports = dict(index.imports.get(module, {}))
        service_names: set[str] = set()
        provider_names: set[str] = set()
        for local, target in imports.items():
            entity = index.resolve(target)
            if entity == ("class", self.service):
                service_names.add(local)
            elif entity is not None and entity[0] == "func" and entity[1] in self.plan.providers:
                provider_names.add(local)
        if module == self.service_module:
            service_names.add(self.service_name)
            provider_names.update(p.rsplit(".", 1)[1] for p in self.plan.providers)
        context = CodemodContext(filename=path, full_module_name=module)
        command = _HandlerCommand(context, bucket, self, service_names, provider_names, module)
        result = transform_module(command, source)
        if isinstance(result, TransformFailure):
            raise _Blocked([(path, f"async-db cannot rewrite this file: {result.error}", None)])
        if command.problems:
            raise _Blocked(
                [(path, f"async-db changes nothing: {why}", line) for line, why in command.problems]
            )
        return result.code  # type: ignore[union-attr]

    # -- the async service ---------------------------------------------------------------------
    def _add_service(self, source: str) -> str:
        tree = ast.parse(source)
        if any(isinstance(n, ast.ClassDef) and n.name == self.async_name for n in tree.body):
            return source  # written by an earlier run
        text = _TEMPLATE.format(
            Async=self.async_name,
            Service=self.service_name,
            conninfo=self._conninfo_expression(tree),
            min_size=int(self.options["pool-min-size"]),
            max_size=int(self.options["pool-max-size"]),
            accessor=self.accessor,
            dependency=self.dependency,
        )
        generated = cst.parse_module(text.lstrip("\n"))
        methods = self._copied_methods(source, tree)
        if methods:
            body = list(generated.body)
            for i, stmt in enumerate(body):
                if isinstance(stmt, cst.ClassDef) and stmt.name.value == self.async_name:
                    block = stmt.body
                    assert isinstance(block, cst.IndentedBlock)
                    body[i] = stmt.with_changes(
                        body=block.with_changes(body=[*block.body, *methods])
                    )
            generated = generated.with_changes(body=body)
        joined = source.rstrip("\n") + "\n\n\n" + generated.code
        context = CodemodContext(filename=self.service_path, full_module_name=self.service_module)
        for module, name in _TEMPLATE_IMPORTS:
            AddImportsVisitor.add_needed_import(context, module, name)
        result = transform_module(_Noop(context), joined)
        if isinstance(result, TransformFailure):
            raise _Blocked(
                [(self.service_path, f"cannot add {self.async_name}: {result.error}", None)]
            )
        return result.code  # type: ignore[union-attr]

    def _copied_methods(self, source: str, tree: ast.Module) -> list[cst.FunctionDef]:
        """Async copies of the service methods handlers call beyond the core: `async def`, with
        calls of the service's DB methods on `self` awaited."""
        if not self.plan.methods:
            return []
        wanted = {q.rsplit(".", 1)[1] for q in self.plan.methods}
        owner = next(
            (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == self.service_name),
            None,
        )
        if owner is None:
            raise _Blocked([(self.service_path, f"cannot find class {self.service_name}", None)])
        allowed = CORE_METHODS | wanted | {"conninfo"}
        problems: list[tuple[str, str, int | None]] = []
        for node in owner.body:
            if not isinstance(node, ast.FunctionDef) or node.name not in wanted:
                continue
            where = f"async-db changes nothing: {self.service_name}.{node.name}"
            if node.decorator_list:
                problems.append((self.service_path, f"{where} is decorated", node.lineno))
                continue
            for sub in ast.walk(node):
                if (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == "self"
                    and sub.attr not in allowed
                ):
                    problems.append(
                        (
                            self.service_path,
                            f"{where} uses `self.{sub.attr}`, which {self.async_name} has no"
                            " counterpart for",
                            sub.lineno,
                        )
                    )
                    break
        if problems:
            raise _Blocked(problems)
        module = cst.parse_module(source)
        converter = _AsyncMethods(CORE_METHODS | wanted)
        copies: list[cst.FunctionDef] = []
        for stmt in module.body:
            if isinstance(stmt, cst.ClassDef) and stmt.name.value == self.service_name:
                for item in stmt.body.body:
                    if isinstance(item, cst.FunctionDef) and item.name.value in wanted:
                        converted = item.visit(converter)
                        assert isinstance(converted, cst.FunctionDef)
                        # Keep the comments inside, drop the ones above (annotations of the
                        # original), and separate the copies by one blank line.
                        copies.append(
                            converted.with_changes(
                                leading_lines=[
                                    cst.EmptyLine(indent=False, whitespace=cst.SimpleWhitespace(""))
                                ]
                            )
                        )
        return copies

    def _conninfo_expression(self, tree: ast.Module) -> str:
        """`get_db().conninfo`: the DSN of the sync service the app is configured with."""
        attribute = _dsn_attribute(tree, self.service_name)
        providers = sorted(self.plan.providers)
        local = [p for p in providers if p.rsplit(".", 1)[0] == self.service_module]
        if attribute and (local or providers):
            provider = (local or providers)[0]
            name = provider.rsplit(".", 1)[1]
            if provider.rsplit(".", 1)[0] == self.service_module:
                return f"{name}().{attribute}"
            return f"__import__({provider.rsplit('.', 1)[0]!r}, fromlist=[{name!r}]).{name}().{attribute}"
        env = self.options["database-url-env"]
        return f"os.environ[{env!r}]"


def _dsn_attribute(tree: ast.Module, class_name: str) -> str | None:
    """The attribute the service's `__init__` stores its first argument in (`self.conninfo`)."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    params = [a.arg for a in item.args.args[1:]]
                    if not params:
                        return None
                    for stmt in ast.walk(item):
                        if (
                            isinstance(stmt, ast.Assign)
                            and isinstance(stmt.value, ast.Name)
                            and stmt.value.id == params[0]
                            and len(stmt.targets) == 1
                            and isinstance(stmt.targets[0], ast.Attribute)
                            and isinstance(stmt.targets[0].value, ast.Name)
                            and stmt.targets[0].value.id == "self"
                        ):
                            return stmt.targets[0].attr
    return None


class _Noop(VisitorBasedCodemodCommand):
    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        return tree


def _await(node: cst.BaseExpression) -> cst.Await:
    return cst.Await(expression=node)


def _parenthesize(node: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(node, cst.Await) and not node.lpar:
        return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return node


class _AwaitParens(cst.CSTTransformer):
    """`await` binds looser than `.x`, `[i]` and `(...)`: parenthesize awaits in those places."""

    def leave_Attribute(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(value=_parenthesize(updated_node.value))

    def leave_Subscript(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(value=_parenthesize(updated_node.value))

    def leave_Call(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(func=_parenthesize(updated_node.func))


class _AsyncMethods(_AwaitParens):
    """Copied service methods: `async def`, and `await self.<db method>(...)`."""

    def __init__(self, db_methods: set[str] | frozenset[str]):
        super().__init__()
        self.db_methods = db_methods
        self._awaited: set[int] = set()

    def visit_Await(self, node: cst.Await) -> None:
        self._awaited.add(id(node.expression))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        updated = super().leave_Call(original_node, updated_node)
        func = original_node.func
        if (
            id(original_node) not in self._awaited
            and isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == "self"
            and func.attr.value in self.db_methods
        ):
            return _await(updated)
        return updated

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        return updated_node.with_changes(asynchronous=cst.Asynchronous())


class _HandlerCommand(VisitorBasedCodemodCommand):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self,
        context: CodemodContext,
        bucket: _FileEdits,
        writer: _Writer,
        service_names: set[str],
        provider_names: set[str],
        module: str,
    ) -> None:
        super().__init__(context)
        self.bucket = bucket
        self.writer = writer
        self.service_names = service_names
        self.provider_names = provider_names
        self.local = module == writer.service_module
        self.imported = dict(writer.analysis.index.imports.get(module, {}))
        self._awaited: set[int] = set()
        self._function: list[tuple[str, int]] = []
        self._loop_names: list[set[str]] = []
        self.problems: list[tuple[int, str]] = []

    def _import(self, name: str) -> None:
        if not self.local:
            AddImportsVisitor.add_needed_import(self.context, self.writer.service_module, name)

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    # -- functions -------------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._function.append((node.name.value, self._line(node.name)))
        self._loop_names.append(set())

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        key = self._function.pop()
        loops = self._loop_names.pop()
        if key in self.bucket.to_async and updated_node.asynchronous is None:
            updated_node = updated_node.with_changes(asynchronous=cst.Asynchronous())
        if loops:
            updated_node = _drop_unused_loops(updated_node, loops)
        return updated_node

    def leave_Param(self, original_node: cst.Param, updated_node: cst.Param) -> cst.Param:
        if not self._function:
            return updated_node
        name, line = self._function[-1]
        if (name, line, original_node.name.value) not in self.bucket.params:
            return updated_node
        changes: dict[str, object] = {}
        if updated_node.annotation is not None:
            before = updated_node.annotation.annotation
            typed = before.visit(_Rename(self.service_names, self.writer.async_name))
            if not typed.deep_equals(before):
                self._import(self.writer.async_name)
            # `Annotated[DatabaseService, Depends(get_db)]`: the provider inside too.
            annotation = typed.visit(_Rename(self.provider_names, self.writer.dependency))
            if not annotation.deep_equals(typed):
                self._import(self.writer.dependency)
            if not annotation.deep_equals(before):
                changes["annotation"] = updated_node.annotation.with_changes(annotation=annotation)
        default = updated_node.default
        if isinstance(default, cst.Call) and default.args:
            first = default.args[0].value
            renamed = first.visit(_Rename(self.provider_names, self.writer.dependency))
            if not renamed.deep_equals(first):
                args = [default.args[0].with_changes(value=renamed), *default.args[1:]]
                changes["default"] = default.with_changes(args=args)
                self._import(self.writer.dependency)
        if not changes:
            self.problems.append(
                (
                    self._line(original_node),
                    f"cannot retype parameter `{original_node.name.value}` of {name} (its type"
                    " or provider is an alias); spell out the service and its provider",
                )
            )
        return updated_node.with_changes(**changes) if changes else updated_node

    def visit_Lambda(self, node: cst.Lambda) -> None:
        """A lambda that uses a parameter now holding the async service would get coroutines."""
        if not self._function:
            return
        name, line = self._function[-1]
        params = {p for f, d, p in self.bucket.params if (f, d) == (name, line)}
        used: set[str] = set()

        class Names(cst.CSTVisitor):
            def visit_Name(self, inner: cst.Name) -> None:
                used.add(inner.value)

        node.body.visit(Names())
        if params & used:
            self.problems.append(
                (self._line(node), f"a lambda in {name} uses `{sorted(params & used)[0]}`")
            )

    # -- calls -----------------------------------------------------------------------------------
    def visit_Await(self, node: cst.Await) -> None:
        self._awaited.add(id(node.expression))

    def leave_Attribute(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(value=_parenthesize(updated_node.value))

    def leave_Subscript(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(value=_parenthesize(updated_node.value))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        updated_node = updated_node.with_changes(func=_parenthesize(updated_node.func))
        key = (self._line(original_node), dotted_text_cst(original_node.func))
        if key in self.bucket.providers:
            self._import(self.writer.accessor)
            func = updated_node.func
            if isinstance(func, cst.Attribute):
                return updated_node.with_changes(
                    func=func.with_changes(attr=cst.Name(self.writer.accessor))
                )
            return updated_node.with_changes(func=cst.Name(self.writer.accessor))
        if key in self.bucket.executors and len(updated_node.args) >= 2:
            method = updated_node.args[1].value
            rest = list(updated_node.args[2:])
            if rest:
                rest[-1] = rest[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            receiver = original_node.func
            if (
                isinstance(receiver, cst.Attribute)
                and isinstance(receiver.value, cst.Name)
                and self._loop_names
            ):
                self._loop_names[-1].add(receiver.value.value)
            return cst.Call(func=method, args=rest)
        if key in self.bucket.awaits and id(original_node) not in self._awaited:
            return _await(updated_node)
        return updated_node

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        new = tree.visit(self)
        for local, target in self.imported.items():
            if local in self.service_names or local in self.provider_names:
                module, _, obj = target.rpartition(".")
                asname = local if local != obj else None
                RemoveImportsVisitor.remove_unused_import(self.context, module, obj, asname)
        if self.bucket.executors:
            RemoveImportsVisitor.remove_unused_import(self.context, "asyncio")
        return new


class _Rename(cst.CSTTransformer):
    """Replace a Name (or the last part of an Attribute) in `names` with `new`."""

    def __init__(self, names: set[str], new: str):
        super().__init__()
        self.names = names
        self.new = new

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        if original_node.value in self.names:
            return updated_node.with_changes(value=self.new)
        return updated_node

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return False  # `deps.DatabaseService`: only the last part, handled below

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.Attribute:
        if original_node.attr.value in self.names:
            return updated_node.with_changes(attr=cst.Name(self.new))
        return updated_node


def _drop_unused_loops(function: cst.FunctionDef, names: set[str]) -> cst.FunctionDef:
    """Remove `loop = asyncio.get_running_loop()` once `loop` is no longer used."""
    used: dict[str, int] = defaultdict(int)

    class Count(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            used[node.value] += 1

    function.body.visit(Count())

    class Drop(cst.CSTTransformer):
        def leave_SimpleStatementLine(self, original_node, updated_node):  # type: ignore[no-untyped-def]
            if len(updated_node.body) == 1 and isinstance(updated_node.body[0], cst.Assign):
                assign = updated_node.body[0]
                targets = assign.targets
                if (
                    len(targets) == 1
                    and isinstance(targets[0].target, cst.Name)
                    and targets[0].target.value in names
                    and used[targets[0].target.value] == 1
                    and isinstance(assign.value, cst.Call)
                ):
                    return cst.RemovalSentinel.REMOVE
            return updated_node

    return function.with_changes(body=function.body.visit(Drop()))


_TEMPLATE_IMPORTS = (
    ("asyncio", None),
    ("contextlib", None),
    ("contextvars", None),
    ("os", None),
    ("re", None),
    ("collections.abc", "AsyncIterator"),
    ("typing", "Any"),
    ("psycopg.rows", "dict_row"),
    ("psycopg_pool", "AsyncConnectionPool"),
)

_TEMPLATE = '''
# -- async database service (written by gathering-consolidate, codemod async-db) -----------------

_MAX_LOOPS = 32  # live event loops one service keeps a pool for (closed loops' pools are dropped)


class {Async}:
    """Asynchronous access to PostgreSQL: the async counterpart of `{Service}`.

    Connections come from a psycopg 3 `AsyncConnectionPool` (one per event loop, opened on
    first use) in autocommit mode with rows as dicts: `execute` returns every row (`[]` for
    statements without a result) and `execute_one` the first row or `None`, as the sync
    service does. Statements that must commit together go in `async with db.transaction():`
    (nested blocks are savepoints). Pool size: DATABASE_POOL_MIN_SIZE / DATABASE_POOL_MAX_SIZE.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = {min_size},
        max_size: int = {max_size},
        timeout: float = 30.0,
    ) -> None:
        self.conninfo = conninfo
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self._pools: dict[Any, Any] = {{}}
        self._transaction: Any = contextvars.ContextVar(
            f"{Async}-transaction-{{id(self)}}", default=None
        )

    def __repr__(self) -> str:
        # The DSN may hold a password: never show it (reprs end up in logs and tracebacks).
        return f"{Async}({{_masked_conninfo(self.conninfo)!r}}, max_size={{self.max_size}})"

    async def _pool(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        entry = self._pools.get(loop)
        if entry is None:
            for stale in [other for other in self._pools if other.is_closed()]:
                del self._pools[stale]
            if len(self._pools) >= _MAX_LOOPS:  # one pool per live event loop, and few of those
                raise RuntimeError(
                    f"more than {{_MAX_LOOPS}} live event loops use one {Async}: share a loop"
                )
            pool = AsyncConnectionPool(
                self.conninfo,
                min_size=self.min_size,
                max_size=self.max_size,
                timeout=self.timeout,
                kwargs={{"autocommit": True, "row_factory": dict_row}},
                open=False,
            )
            entry = self._pools[loop] = (pool, loop.create_task(pool.open()))
        pool, opening = entry
        await asyncio.shield(opening)
        return pool

    @staticmethod
    async def _run(conn: Any, sql: Any, params: Any) -> list[dict[str, Any]]:
        async with conn.cursor() as cur:
            await cur.execute(sql, params)
            if cur.description is None:
                return []
            return await cur.fetchall()

    async def execute(self, sql: Any, params: Any = None) -> list[dict[str, Any]]:
        """Run one statement and return all rows (`[]` for statements without a result)."""
        conn = self._transaction.get()
        if conn is not None:
            return await self._run(conn, sql, params)
        pool = await self._pool()
        async with pool.connection() as conn:
            return await self._run(conn, sql, params)

    async def execute_one(self, sql: Any, params: Any = None) -> dict[str, Any] | None:
        """Run one statement and return its first row, or `None`."""
        rows = await self.execute(sql, params)
        return rows[0] if rows else None

    @contextlib.asynccontextmanager
    async def transaction(self) -> "AsyncIterator[{Async}]":
        """Run the statements inside on one connection, committed together at the end (rolled
        back on error); a nested block is a savepoint."""
        conn = self._transaction.get()
        if conn is not None:
            async with conn.transaction():
                yield self
            return
        pool = await self._pool()
        async with pool.connection() as conn, conn.transaction():
            token = self._transaction.set(conn)
            try:
                yield self
            finally:
                self._transaction.reset(token)

    async def open(self) -> None:
        """Open the pool of the running event loop, if it is not open yet."""
        await self._pool()

    async def close(self) -> None:
        """Close the pool of the running event loop (call it at shutdown, in the lifespan)."""
        entry = self._pools.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].close()


_async_service: {Async} | None = None


def _masked_conninfo(conninfo: str) -> str:
    """The DSN with its password replaced by `***` (URL `user:secret@` and `password=secret`)."""
    masked = re.sub(r"(://[^:/@\\s]*:)[^@\\s]*@", r"\\1***@", conninfo)
    return re.sub(
        r"(\\bpassword\\s*=\\s*)('(?:[^'\\\\]|\\\\.)*'|[^\\s&]+)", r"\\1***", masked, flags=re.IGNORECASE
    )


def _async_pool_size(variable: str, default: int) -> int:
    value = os.getenv(variable, "").strip()
    return int(value) if value.isdigit() else default


def {accessor}() -> {Async}:
    """The process-wide `{Async}`, on the database the sync service uses."""
    global _async_service
    conninfo = {conninfo}
    if _async_service is None or _async_service.conninfo != conninfo:
        _async_service = {Async}(
            conninfo,
            min_size=_async_pool_size("DATABASE_POOL_MIN_SIZE", {min_size}),
            max_size=_async_pool_size("DATABASE_POOL_MAX_SIZE", {max_size}),
        )
    return _async_service


async def {dependency}() -> {Async}:
    """FastAPI dependency: ``db: {Async} = Depends({dependency})``."""
    service = {accessor}()
    await service.open()
    return service
'''
