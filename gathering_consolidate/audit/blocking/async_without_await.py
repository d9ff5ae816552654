from collections.abc import Iterator, Mapping

from ...index import ModuleFacts
from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from .helpers import AsyncCheck, make_finding, route_label

_PROTOCOL = frozenset({"__aenter__", "__aexit__", "__anext__", "__aclose__", "__call__"})


class AsyncWithoutAwait(AsyncCheck):
    """An `async def` that never awaits and reaches no blocking call.

    ## Why is this bad?
    Declaring it `async` buys nothing: no `await`, `async for`, `async with` or `yield` gives
    the event loop a chance to run anything else, yet every caller must await a coroutine, and
    the first blocking call someone adds to it will stall the whole loop without anyone
    noticing. In-memory lookups (`async def get_user_by_id` over a dict) and route handlers that
    only build a response are the usual cases. (Functions that do reach a blocking call are
    ASY001 findings instead.)

    Only claimed where the whole synchronous call tree is known: every call resolves to the
    project's own code (followed), the standard library, a builtin, or a package of the
    `[known]` list of `rules/blocking.toml`. Where some call stays unknown (a method of a value
    the index could not type, a third-party wrapper nobody catalogued), the finding is `INFO`
    and says it could not tell, naming the unknown calls (evidence `unknown_calls`); list the
    package under the `known-modules` option, or the call under `blocking-calls`, to settle it.
    Unknown is never read as "does not block".

    Not reported: interface stubs whose body is only `...`, `pass` or `raise
    NotImplementedError`; methods that override an async method of a project base class, or
    that may override one of an external base class; the async protocol methods
    (`__aenter__`, `__aexit__`, `__anext__`); and `async def __call__` (ASGI apps, dependency
    classes: their callers require a coroutine function).
    """

    id, name = "ASY003", "async-without-await"
    severity = Severity.LOW
    VALID = [
        Valid(
            """
            import asyncio

            async def wait_a_bit():
                await asyncio.sleep(0.1)

            async def numbers():
                for i in range(3):
                    yield i
            """
        ),
        Valid(
            """
            class Skill:
                async def execute_async(self, params):
                    raise NotImplementedError

            class Echo(Skill):
                async def execute_async(self, params):
                    return params
            """
        ),
        Valid(
            """
            from starlette.middleware.base import BaseHTTPMiddleware

            class Timing(BaseHTTPMiddleware):
                async def dispatch(self, request, call_next):
                    return call_next(request)

            class Session:
                async def __aenter__(self):
                    return self

                async def __aexit__(self, *exc):
                    return None

            class APIKeyHeader:
                async def __call__(self, request):
                    return request.headers.get("x-api-key")
            """
        ),
    ]
    INVALID = [
        Invalid(
            """
            _users = {}

            async def get_user_by_id(user_id):
                return _users.get(user_id)
            """,
            line=3,
            message="never awaits",
        ),
        Invalid(
            """
            from fastapi import APIRouter

            router = APIRouter(prefix="/auth")

            @router.get("/me")
            async def me(user: dict):
                return {"id": user["id"]}
            """,
            line=6,
            evidence={"route": "GET /auth/me", "unknown_calls": []},
        ),
        Invalid(
            """
            import vendor_db  # a third-party wrapper no catalogue lists

            async def count_users():
                return vendor_db.count("users")
            """,
            line=3,
            message="could not tell whether it blocks",
            evidence={
                "unknown_calls": [
                    {
                        "call": "vendor_db.count",
                        "resolved": "vendor_db.count",
                        "path": "app/module.py",
                        "line": 4,
                        "function": "app.module.count_users",
                    }
                ]
            },
        ),
    ]

    def finish(
        self, facts: Mapping[str, ModuleFacts], project: ProjectContext
    ) -> Iterator[Finding]:
        analysis = self.analysis(facts, project)
        index = analysis.index
        for qualname, function in index.functions.items():
            if not function.is_async or function.is_stub or function.constructs:
                continue
            if qualname in analysis.hits_by_function or function.name in _PROTOCOL:
                continue
            if function.cls is not None:
                overridden = index.overridden(qualname)
                if any(index.functions[o].is_async for o in overridden):
                    continue
                if not overridden and index.external_bases(function.cls):
                    continue  # may implement an async method of a framework base class
            route = route_label(analysis, qualname)
            what = f"route handler {route}" if route else f"`{function.name}`"
            unknown = analysis.unknown_calls(qualname)
            if unknown:
                named = ", ".join(f"`{u['call']}()` ({u['path']}:{u['line']})" for u in unknown[:3])
                more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
                message = (
                    f"{what} is `async def` and never awaits, but could not tell whether it"
                    f" blocks: {named}{more} stayed unknown; add the package to the ASY"
                    " `known-modules` option, or the call to `blocking-calls`, to settle it"
                )
                severity: Severity | None = Severity.INFO
                reason = "could not tell: some calls stay unknown"
            else:
                message = (
                    f"{what} is `async def` but never awaits and reaches no blocking call;"
                    " make it a plain `def` or await something"
                )
                severity = None
                reason = (
                    "nothing blocks here: neither codemod applies; keep `async def` while it"
                    " only does in-memory work, make it `def` before it does blocking work"
                )
            yield make_finding(
                self,
                analysis,
                project,
                qualname,
                function.line,
                function.col,
                function.line,
                None,
                message,
                f"async def {function.name}",
                {"route": route, "strategy": "none", "strategy_reason": reason},
                severity=severity,
            )
