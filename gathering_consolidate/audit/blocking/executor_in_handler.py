from collections.abc import Iterator, Mapping

from ...index import ModuleFacts
from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from .helpers import ASYNC_DB, AsyncCheck, handler_context, make_finding, route_label
from .strategies import plans_for, strategy


class ExecutorInHandler(AsyncCheck):
    """`loop.run_in_executor(...)` or `asyncio.run(...)` inside an async request handler.

    ## Why is this bad?
    `run_in_executor` around a blocking DB call is a workaround that became permanent: every
    request pays a thread hop, the default executor is small and shared, and the blocking layer
    stays. `asyncio.run()` inside a running event loop raises `RuntimeError` at once. Both are
    reported in async route handlers and in the async functions they await (the request path);
    background workers and scripts are left alone. `asyncio.to_thread` for genuinely blocking
    third-party work is not reported.

    ## Fix safety
    Unsafe: codemod `async-db` replaces `await loop.run_in_executor(None, db.execute, sql,
    params)` with `await db.execute(sql, params)` on the async DB service.
    """

    id, name = "ASY002", "executor-in-handler"
    severity = Severity.MEDIUM
    fix = ASYNC_DB
    VALID = [
        Valid(
            """
            import asyncio

            async def nightly_export(db):
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, db.dump)
            """
        ),
        Valid(
            """
            import asyncio
            from fastapi import APIRouter

            router = APIRouter()

            @router.get("/hash")
            async def hash_password(password: str):
                return await asyncio.to_thread(slow_hash, password)

            def slow_hash(password):
                return password[::-1]
            """
        ),
    ]
    INVALID = [
        Invalid(
            """
            import asyncio
            from fastapi import APIRouter

            router = APIRouter()

            @router.get("/stats")
            async def stats(db):
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(None, db.execute, "SELECT 1")
            """,
            line=9,
            evidence={"route": "GET /stats"},
        ),
        Invalid(
            """
            import asyncio
            from fastapi import FastAPI

            app = FastAPI()

            async def refresh():
                return 1

            @app.post("/refresh")
            async def refresh_now():
                return asyncio.run(refresh())
            """,
            line=11,
            message="RuntimeError",
        ),
    ]

    def finish(
        self, facts: Mapping[str, ModuleFacts], project: ProjectContext
    ) -> Iterator[Finding]:
        analysis = self.analysis(facts, project)
        plans = plans_for(analysis, project)
        index = analysis.index
        for qualname, handler in sorted(handler_context(analysis).items()):
            function = index.functions[qualname]
            for call, target in zip(function.calls, index.targets[qualname], strict=True):
                name = target.name if target is not None else ""
                matched = analysis.rules.executors.match(name) if name else None
                executor = call.text.endswith(".run_in_executor") or (
                    matched is not None and name.endswith("run_in_executor")
                )
                if not executor and not (matched is not None and name == "asyncio.run"):
                    continue
                route = route_label(analysis, handler)
                where = f"route {route}" if route else "a request handler"
                if executor:
                    message = (
                        f"`{call.text}(...)` in {where} hops to a thread around blocking work on"
                        " every request: a workaround, not a fix; await an async call instead"
                    )
                else:
                    message = (
                        f"`asyncio.run(...)` in {where} raises RuntimeError inside the running"
                        " event loop; await the coroutine instead"
                    )
                chosen, why = self._strategy(analysis, plans, qualname, call)
                yield make_finding(
                    self,
                    analysis,
                    project,
                    qualname,
                    call.line,
                    call.col,
                    call.end_line,
                    call.end_col,
                    message,
                    call.text,
                    {"route": route, "strategy": chosen, "strategy_reason": why},
                    fix=ASYNC_DB if chosen in ("A", "both") else None,
                )

    @staticmethod
    def _strategy(analysis, plans, qualname, call) -> tuple[str, str]:
        if analysis.hits_by_function.get(qualname):
            return strategy(analysis, qualname, plans)
        # The callable handed to the executor: a DB-service method converts with async-db.
        converted = {(e.function, e.kind) for e in plans.async_db.edits}
        if (qualname, "executor") in converted and not plans.async_db.blockers_for(qualname):
            return (
                "A",
                "async-db awaits the DB call directly; B does not apply (the handler awaits)",
            )
        return "none", "neither codemod removes this executor call"
