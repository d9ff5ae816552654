"""How the frameworks a FastAPI code base uses run its functions, read from one file's `ast`:
route decorators (FastAPI / Starlette), middleware, task and scheduler decorators, functions
handed to threads, task queues and event buses, coroutines handed to tasks, script guards.

Purely syntactic: whether `router` really is an `APIRouter` is for the caller to check with its
own name resolution when it matters (the index resolves it; the EXC tier model accepts a route
decorator whose path is a string starting with `/`).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from .imports import dotted

#: Decorator methods on `APIRouter` / `FastAPI` objects that register a route -> HTTP method
#: ("" for `api_route`, whose `methods=` says).
ROUTE_METHODS: dict[str, str] = {
    "get": "GET",
    "post": "POST",
    "put": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "head": "HEAD",
    "options": "OPTIONS",
    "trace": "TRACE",
    "websocket": "WEBSOCKET",
    "api_route": "",
}
#: `router.add_api_route(path, endpoint)` style registrations.
ROUTE_ADDERS = frozenset({"add_api_route", "add_api_websocket_route", "add_websocket_route"})


@dataclass(frozen=True)
class RouteSpec:
    """`@receiver.get("/path")` as written: the receiver expression, the decorator's method
    name (`get`, `api_route`), the path when it is a constant string, and the `methods=` of an
    `api_route` (upper-case)."""

    receiver: ast.expr
    attr: str
    path: str | None
    methods: tuple[str, ...] = ()

    @property
    def method(self) -> str:
        """The HTTP method(s): `GET`, or `GET,POST` for an `api_route` (`GET` by default)."""
        return ROUTE_METHODS[self.attr] or ",".join(self.methods) or "GET"


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def route_decorator(decorator: ast.expr) -> RouteSpec | None:
    """A route registration (`@router.post("/x")`, `@app.api_route("/y", methods=["GET"])`);
    None for anything else. Whether the receiver is a router is the caller's to resolve."""
    if not isinstance(decorator, ast.Call) or not isinstance(decorator.func, ast.Attribute):
        return None
    attr = decorator.func.attr
    if attr not in ROUTE_METHODS:
        return None
    path = _string(decorator.args[0] if decorator.args else _keyword(decorator, "path"))
    given = _keyword(decorator, "methods")
    methods = (
        tuple(n.upper() for n in (_string(e) for e in given.elts) if n)
        if isinstance(given, (ast.List, ast.Tuple, ast.Set))
        else ()
    )
    return RouteSpec(decorator.func.value, attr, path, methods)


#: Decorators that hand a function to a scheduler or task queue (`@celery.task`,
#: `@scheduler.scheduled_job`, `@app.on_event("startup")`).
_TASK_DECORATORS = frozenset(
    {"task", "shared_task", "scheduled_job", "periodic_task", "on_event", "cron", "job", "actor"}
)
_SCHEDULER_WORDS = ("scheduler", "celery", "beat", "worker", "cron")
#: Calls that run a function they are handed, later or elsewhere.
_HANDING_CALLS = frozenset(
    {
        "add_task",
        "add_job",
        "submit",
        "run_in_executor",
        "call_soon",
        "call_later",
        "start_soon",
        "to_thread",
        "run_in_threadpool",
        "apply_async",
        "delay",
        "subscribe",
        "add_listener",
        "add_event_handler",
        "register",
    }
)
_SPAWNING_CALLS = frozenset(
    {"create_task", "ensure_future", "run_coroutine_threadsafe", "start_soon", "spawn"}
)


def entry_point(decorators: Sequence[ast.expr]) -> str | None:
    """What runs a function decorated so: "route METHOD PATH" for a route (the path as
    written, without a router prefix), "route middleware" (`@app.middleware("http")`,
    `@app.exception_handler(...)`), "task" for a scheduler or task-queue decorator, "cli" for a
    click/typer command; None otherwise."""
    for decorator in decorators:
        route = route_decorator(decorator)
        if route is not None and route.path is not None and route.path[:1] in ("/", ""):
            return f"route {route.method} {route.path}"
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = ".".join(dotted(target) or ())
        head, _, tail = name.rpartition(".")
        if tail in ("middleware", "exception_handler") and head:
            return "route middleware"
        if tail in ("command", "group", "callback") and head:
            return "cli"
        if tail in _TASK_DECORATORS or name in _TASK_DECORATORS:
            return "task"
        if head and any(word in head.lower() for word in _SCHEDULER_WORDS):
            return "task"
    return None


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def handed_callables(call: ast.Call) -> list[ast.expr]:
    """The functions a call hands over to be run elsewhere: `add_task(f, ...)`,
    `Thread(target=f)`, `loop.run_in_executor(None, f)`, `scheduler.add_job(f, ...)`."""
    found: list[ast.expr] = [k.value for k in call.keywords if k.arg in ("target", "func")]
    if _called_name(call) in _HANDING_CALLS:
        found.extend(call.args[:2])
    return [f for f in found if isinstance(f, (ast.Name, ast.Attribute))]


def spawned_call(call: ast.Call) -> ast.Call | None:
    """The coroutine call a task runs: `asyncio.create_task(self._loop())` -> `self._loop()`."""
    if _called_name(call) in _SPAWNING_CALLS and call.args and isinstance(call.args[0], ast.Call):
        return call.args[0]
    return None


def is_main_guard(stmt: ast.stmt) -> bool:
    """`if __name__ == "__main__":` (the file is also a script)."""
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    test = stmt.test
    sides = [test.left, *test.comparators]
    return any(isinstance(n, ast.Name) and n.id == "__name__" for n in sides) and any(
        isinstance(n, ast.Constant) and n.value == "__main__" for n in sides
    )
