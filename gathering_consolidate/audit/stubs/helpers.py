"""Shared by the STB checks: FastAPI routes, stub markers, terminal statuses, "inert" calls, and the
per-file facts (routes, call edges) from which the route that reaches a stub is found.

Everything is computed once per file through `FileContext.memo` and reused by the three checks.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...model import Finding
from ...semantic import frameworks
from ...semantic.imports import module_aliases
from ...semantic.project import ProjectModel
from ..astutil import FUNCTION_DEFS, own_nodes, words
from ..base import FileContext, ProjectCheck, ProjectContext

# -- names ---------------------------------------------------------------------------------------

# -- routes --------------------------------------------------------------------------------------

_ROUTER_FACTORIES = {
    "fastapi.APIRouter",
    "fastapi.FastAPI",
    "fastapi.routing.APIRouter",
    "fastapi.applications.FastAPI",
}
# A decorator receiver not created in this file is taken for a router when its name says so
# (`router`, `auth_router`, `app`, `api`), as it is when imported from a `routers` module.
_ROUTERISH = re.compile(r"(?:^|_)(?:router|app|api)$", re.IGNORECASE)


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _routers(ctx: FileContext) -> dict[str, str]:
    """Names bound in this file to `APIRouter(...)`/`FastAPI(...)` -> their `prefix`."""

    def compute() -> dict[str, str]:
        found: dict[str, str] = {}
        for node in ctx.nodes(ast.Assign, ast.AnnAssign):
            value = node.value
            if not isinstance(value, ast.Call) or ctx.qualified_name(value.func) not in (
                _ROUTER_FACTORIES
            ):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = _string(_keyword(value, "prefix")) or ""
        return found

    return ctx.memo("stb.routers", compute)


def route_of(ctx: FileContext, func: ast.AST) -> str | None:
    """`"POST /pipelines/{id}/run"` when `func` is a FastAPI route handler, else None."""
    if not isinstance(func, FUNCTION_DEFS):
        return None
    routers = _routers(ctx)
    for decorator in func.decorator_list:
        spec = frameworks.route_decorator(decorator)
        if spec is None or spec.path is None or not isinstance(spec.receiver, ast.Name):
            continue
        receiver = spec.receiver.id
        if receiver in routers:
            prefix = routers[receiver]
        elif _ROUTERISH.search(receiver):
            prefix = ""
        else:
            continue
        return f"{spec.method} {prefix}{spec.path}"
    return None


def routes(ctx: FileContext) -> dict[str, str]:
    """Qualified name of every route handler in the file -> its route."""

    def compute() -> dict[str, str]:
        found: dict[str, str] = {}
        for func in ctx.nodes(*FUNCTION_DEFS):
            route = route_of(ctx, func)
            if route:
                found[ctx.symbol_for(func)] = route
        return found

    return ctx.memo("stb.routes", compute)


# -- function bodies -----------------------------------------------------------------------------


def body_without_docstring(func: ast.AST) -> list[ast.stmt]:
    body = list(getattr(func, "body", []))
    if body and isinstance(body[0], ast.Expr) and _string(body[0].value) is not None:
        body = body[1:]
    return body


def docstring(func: ast.AST) -> str:
    return ast.get_docstring(func) or "" if isinstance(func, FUNCTION_DEFS) else ""


def is_abstract(ctx: FileContext, func: ast.AST) -> bool:
    """`@abstractmethod`/`@overload`, or a method of a Protocol/ABC interface."""
    for decorator in getattr(func, "decorator_list", []):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = ctx.qualified_name(target) or ""
        if name.rsplit(".", 1)[-1] in {"abstractmethod", "overload", "abstractproperty"}:
            return True
    parent = ctx.parents.get(func)
    if isinstance(parent, ast.ClassDef):
        for base in parent.bases:
            name = ctx.qualified_name(base) or ""
            if name in {"typing.Protocol", "typing_extensions.Protocol"}:
                return True
    return False


#: Class-name prefixes of test doubles (`MockTool`, `FakeRunner`, `DummyClient`, `StubMailer`,
#: `TestTicketPlugin`): canned results are their purpose, wherever the file lives.
_TEST_DOUBLE = re.compile(r"^_*(?:Mock|Fake|Dummy|Stub|Test)(?:[A-Z0-9_]|$)")


def in_test_double(ctx: FileContext, func: ast.AST) -> bool:
    """`func` is a method of a class named as a test double (or nested in one)."""
    node = ctx.parents.get(func)
    while node is not None:
        if isinstance(node, ast.ClassDef) and _TEST_DOUBLE.match(node.name):
            return True
        node = ctx.parents.get(node)
    return False


def is_unimplemented_body(func: ast.AST) -> str | None:
    """`"pass"`, `"..."` or `"raise NotImplementedError"` when that (after an optional docstring)
    is the whole body; None otherwise."""
    body = body_without_docstring(func)
    if not body:
        return "docstring only"
    if len(body) != 1:
        return None
    stmt = body[0]
    if isinstance(stmt, ast.Pass):
        return "pass"
    if (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and stmt.value.value is Ellipsis
    ):
        return "..."
    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        if isinstance(exc, ast.Name) and exc.id in {"NotImplementedError", "NotImplemented"}:
            return "raise NotImplementedError"
    return None


# -- markers -------------------------------------------------------------------------------------

# Strong markers say the outcome is not produced; weak ones only say something is left to do.
_STRONG = re.compile(
    r"not\s+(?:yet\s+)?implemented|unimplemented|simulat\w*|placeholder|\bstub(?:bed|s)?\b"
    r"|\bfake[sd]?\b|\bdummy\b|\bmock(?:ed)?\b|\bpretend\w*|\bno-?op\b",
    re.IGNORECASE,
)
_WEAK = re.compile(r"\b(?:TODO|FIXME|XXX|HACK)\b", re.IGNORECASE)
# A weak marker counts on its own when it says the work itself is missing.
_MISSING_WORK = re.compile(
    r"\b(?:implement\w*|actual(?:ly)?|execut\w*|integrat\w*|wire\w*|hook\w*\s+up"
    r"|invok\w*|perform\w*|call\s+the|do\s+the\s+work|for\s+now)\b",
    re.IGNORECASE,
)
# A comment line that starts a new item rather than continuing the previous one.
_NEW_ITEM = re.compile(r"#\s*(?:TODO|FIXME|XXX|HACK|NOTE)\b", re.IGNORECASE)
# Comments addressed to tools are not markers (harness annotations, suppressions, type: ignore).
_TOOL_COMMENT = re.compile(
    r"^#\s*(?:expect|ok|todo-expect)\s*:|^#\s*consolidate\s*:|^#\s*(?:noqa|type\s*:|pragma)"
)


@dataclass(frozen=True)
class Marker:
    text: str
    line: int
    strong: bool
    missing_work: bool


def _marker(text: str, line: int) -> Marker | None:
    strong = bool(_STRONG.search(text))
    weak = bool(_WEAK.search(text))
    if not strong and not weak:
        return None
    return Marker(" ".join(text.split())[:160], line, strong, bool(_MISSING_WORK.search(text)))


_COMMENT_CONTINUATION = re.compile(r"\n[ \t]*#[ \t]*")


def _comments(ctx: FileContext) -> dict[int, str]:
    """Line -> comment text, only read (tokenized) when the file can hold a marker at all."""

    def compute() -> dict[int, str]:
        found: dict[int, str] = {}
        flat = _COMMENT_CONTINUATION.sub(" ", ctx.source)  # comment blocks read as one
        if not (_WEAK.search(flat) or _STRONG.search(flat)):
            return found
        try:
            for tok in tokenize.generate_tokens(io.StringIO(ctx.source).readline):
                if tok.type == tokenize.COMMENT:
                    found[tok.start[0]] = tok.string
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass
        return found

    return ctx.memo("stb.comments", compute)


def markers(ctx: FileContext, func: ast.AST) -> list[Marker]:
    """Stub markers in `func`'s own comments (a comment continued on the next lines is read as
    one), docstring and log messages. Nested functions have their own."""
    found: list[Marker] = []
    comments = _comments(ctx)
    symbol = ctx.symbol_for(func)
    start, end = func.lineno, func.end_lineno or func.lineno
    line = start
    while line <= end:
        text = comments.get(line)
        if text is None or _TOOL_COMMENT.match(text):
            line += 1
            continue
        block, first = [text.lstrip("#").strip()], line
        line += 1
        while line <= end and line in comments and ctx.lines[line - 1].lstrip().startswith("#"):
            if _TOOL_COMMENT.match(comments[line]) or _NEW_ITEM.match(comments[line]):
                break
            block.append(comments[line].lstrip("#").strip())
            line += 1
        if ctx.symbol_for(_At(first)) == symbol:
            marker = _marker(" ".join(block), first)
            if marker:
                found.append(marker)
    doc = docstring(func)
    if doc:
        marker = _marker(doc, func.body[0].lineno)
        if marker:
            found.append(marker)
    for node in own_nodes(func, ctx):
        if isinstance(node, ast.Call) and (is_log_call(ctx, node) or is_emit_call(node)):
            text = " ".join(_literal_text(a) for a in node.args[:1])
            marker = _marker(text, node.lineno) if text else None
            if marker and marker.strong:
                found.append(marker)
    return found


def markers_between(ctx: FileContext, first: int, last: int) -> list[Marker]:
    """Stub markers in the comments on lines `first..last` (a comment block read as one)."""
    comments = _comments(ctx)
    block = [
        comments[n].lstrip("#").strip()
        for n in range(first, last + 1)
        if n in comments and not _TOOL_COMMENT.match(comments[n])
    ]
    marker = _marker(" ".join(block), first) if block else None
    return [marker] if marker else []


@dataclass(frozen=True)
class _At:
    lineno: int


def _literal_text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_literal_text(v) for v in node.values)
    return ""


# -- calls ---------------------------------------------------------------------------------------

_LOG_METHODS = {
    "debug",
    "info",
    "warning",
    "warn",
    "error",
    "exception",
    "critical",
    "fatal",
    "log",
    "msg",
}
_LOGGERISH = re.compile(r"(?:^|_)(?:log|logger|logging|_log|audit_log|structlog)$", re.IGNORECASE)
_EMIT_METHODS = {
    "emit",
    "publish",
    "broadcast",
    "fire",
    "emit_event",
    "publish_event",
    "dispatch_event",
    "send_event",
    "notify_listeners",
}
_SLEEP = {"asyncio.sleep", "time.sleep", "anyio.sleep", "trio.sleep"}
# Calls that compute a value or build a response without doing any work of their own.
_INERT = {
    "str",
    "int",
    "float",
    "bool",
    "len",
    "dict",
    "list",
    "set",
    "tuple",
    "sorted",
    "reversed",
    "min",
    "max",
    "sum",
    "any",
    "all",
    "abs",
    "round",
    "range",
    "enumerate",
    "zip",
    "isinstance",
    "getattr",
    "hasattr",
    "repr",
    "format",
    "print",
    "id",
    "next",
    "iter",
    "HTTPException",
    "JSONResponse",
    "Response",
    "PlainTextResponse",
}
_INERT_METHODS = {
    "get",
    "format",
    "strip",
    "lower",
    "upper",
    "isoformat",
    "items",
    "keys",
    "values",
    "copy",
    "model_dump",
    "dict",
    "json",
    "timestamp",
    "total_seconds",
    "hex",
    "split",
    "join",
    "replace",
    "startswith",
    "endswith",
    "encode",
    "decode",
}
_INERT_MODULES = ("datetime.", "time.", "uuid.", "random.", "secrets.", "json.", "math.")
# Reads a handler may do before faking the action (a lookup that answers 404, a permission check).
_READ_PREFIXES = (
    "get",
    "find",
    "fetch",
    "load",
    "lookup",
    "read",
    "exists",
    "check",
    "validate",
    "ensure",
    "require",
    "is",
    "has",
    "can",
)


def call_name(ctx: FileContext, call: ast.Call) -> str:
    return ctx.qualified_name(call.func) or ""


def is_log_call(ctx: FileContext, call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "print"
    if not isinstance(func, ast.Attribute) or func.attr not in _LOG_METHODS:
        return False
    name = call_name(ctx, call)
    if name.startswith(("logging.", "structlog.", "loguru.")):
        return True
    receiver = func.value
    while isinstance(receiver, ast.Attribute) and not _LOGGERISH.search(receiver.attr):
        receiver = receiver.value
    ident = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
    return bool(_LOGGERISH.search(ident))


def is_emit_call(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in _EMIT_METHODS


def is_sleep_call(ctx: FileContext, call: ast.Call) -> bool:
    return call_name(ctx, call) in _SLEEP


def is_inert_call(ctx: FileContext, call: ast.Call) -> bool:
    """Logging, event emission, sleeping, formatting and value construction: no work done."""
    if is_log_call(ctx, call) or is_emit_call(call) or is_sleep_call(ctx, call):
        return True
    name = call_name(ctx, call)
    last = name.rsplit(".", 1)[-1] if name else ""
    if isinstance(call.func, ast.Name) and call.func.id in _INERT:
        return True
    if name.startswith(_INERT_MODULES) or last in {"HTTPException", "JSONResponse"}:
        return True
    return isinstance(call.func, ast.Attribute) and call.func.attr in _INERT_METHODS


def is_read_call(ctx: FileContext, call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    first = words(name)[:1]
    return bool(first) and first[0] in _READ_PREFIXES


# -- terminal statuses ---------------------------------------------------------------------------

TERMINAL = {
    "completed",
    "complete",
    "success",
    "succeeded",
    "successful",
    "done",
    "finished",
    "executed",
    "processed",
    "sent",
    "delivered",
}
_STATUS_KEYS = {"status", "state", "outcome", "result", "phase", "run_status", "job_status"}
_SQL_STATUS = re.compile(
    r"\b(?:status|state)\s*=\s*'(" + "|".join(sorted(TERMINAL)) + r")'", re.IGNORECASE
)
_MARKING_CALL = re.compile(
    r"^(?:mark_(?:as_)?|set_)?(?:complete|completed|finish|finished|succeed|succeeded|done|success)"
    r"(?:_|$)"
)


#: Verbs that promise an action with an effect beyond the process's log.
ACTION_VERBS = frozenset(
    {
        "run",
        "rerun",
        "execute",
        "exec",
        "send",
        "resend",
        "trigger",
        "dispatch",
        "deliver",
        "start",
        "restart",
        "stop",
        "cancel",
        "retry",
        "resume",
        "pause",
        "sync",
        "deploy",
        "process",
        "invoke",
        "launch",
        "kill",
        "terminate",
        "spawn",
        "enqueue",
        "submit",
        "notify",
        "email",
        "export",
        "import",
        "backup",
        "restore",
        "migrate",
        "apply",
        "approve",
        "reject",
        "archive",
        "purge",
        "refund",
        "charge",
        "provision",
        "revoke",
        "reset",
        "rotate",
    }
)
#: A first word that makes the name a query, a hook or a helper, not an action.
_NOT_ACTIONS = frozenset(
    {
        "get",
        "list",
        "is",
        "has",
        "can",
        "should",
        "on",
        "log",
        "emit",
        "build",
        "make",
        "format",
        "render",
        "validate",
        "check",
        "parse",
        "to",
        "from",
        "describe",
        "show",
        "count",
    }
)


def promises_action(name: str) -> bool:
    parts = words(name)
    return bool(parts) and parts[0] not in _NOT_ACTIONS and any(p in ACTION_VERBS for p in parts)


# `return True` from these answers a question; it does not claim that work succeeded.
_PREDICATES = frozenset(
    {
        "is",
        "has",
        "can",
        "should",
        "compare",
        "equals",
        "matches",
        "contains",
        "supports",
        "needs",
        "uses",
        "exists",
        "allows",
        "wants",
        "accepts",
    }
)


def _status_key(name: str | None) -> bool:
    return bool(name) and (name.lower() in _STATUS_KEYS or name.lower().endswith("_status"))


def terminal_value(node: ast.AST | None) -> str | None:
    """`"completed"` for `"completed"`, `RunStatus.COMPLETED`, `RunStatus.COMPLETED.value`."""
    if node is None:
        return None
    if isinstance(node, ast.Attribute) and node.attr == "value":
        node = node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        value = node.value.strip().lower()
        return value if value in TERMINAL else None
    if isinstance(node, ast.Attribute) and node.attr.lower() in TERMINAL:
        return node.attr.lower()
    return None


def _target_name(target: ast.AST) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript):
        return _string(target.slice)
    return None


_SUCCESS_KEYS = frozenset({"success", "ok", "succeeded"})


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


@dataclass(frozen=True)
class StatusWrite:
    status: str
    line: int
    how: str


#: The node types `status_writes` looks at (parsed trees hold no subclasses of them).
_STATUS_NODES = frozenset(
    {ast.Assign, ast.AnnAssign, ast.keyword, ast.Dict, ast.Constant, ast.Call, ast.Return}
)


def status_writes(ctx: FileContext, func: ast.AST) -> list[StatusWrite]:
    """Places in `func` that record a terminal status or report success."""
    found: list[StatusWrite] = []
    for node in own_nodes(func, ctx):
        if type(node) not in _STATUS_NODES:  # most nodes (names, attributes): at once
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = terminal_value(node.value)
            if value and any(_status_key(_target_name(t)) for t in targets):
                found.append(StatusWrite(value, node.lineno, "assignment"))
        elif isinstance(node, ast.keyword):
            value = terminal_value(node.value)
            if value and _status_key(node.arg):
                found.append(StatusWrite(value, node.value.lineno, "keyword"))
            elif node.arg in _SUCCESS_KEYS and _is_true(node.value):
                # `Response(success=True, message="triggered")`
                found.append(StatusWrite("success", node.value.lineno, f"{node.arg}=True"))
        elif isinstance(node, ast.Dict):
            for key, item in zip(node.keys, node.values, strict=True):
                value = terminal_value(item)
                if value and _status_key(_string(key)):
                    found.append(StatusWrite(value, item.lineno, "mapping"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # `=` and a quote are in every match: most strings are done without the search.
            text = node.value
            match = _SQL_STATUS.search(text) if "=" in text and "'" in text else None
            if match:
                found.append(StatusWrite(match.group(1).lower(), node.lineno, "sql"))
        elif isinstance(node, ast.Call):
            func_node = node.func
            name = func_node.attr if isinstance(func_node, ast.Attribute) else ""
            name = name or getattr(func_node, "id", "")
            if _MARKING_CALL.match(name.lower()):
                found.append(StatusWrite("completed", node.lineno, f"{name}()"))
            elif "status" in name.lower():
                for arg in node.args:
                    value = terminal_value(arg)
                    if value:
                        found.append(StatusWrite(value, node.lineno, f"{name}()"))
        elif isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Constant) and value.value is True:
                if words(getattr(func, "name", ""))[:1] and words(func.name)[0] in _PREDICATES:
                    continue
                found.append(StatusWrite("success", node.lineno, "return True"))
            elif terminal_value(value):
                found.append(StatusWrite(terminal_value(value) or "", node.lineno, "return"))
            elif isinstance(value, ast.Dict):
                for key, item in zip(value.keys, value.values, strict=True):
                    if _string(key) in _SUCCESS_KEYS and _is_true(item):
                        found.append(StatusWrite("success", node.lineno, "return"))
    found.sort(key=lambda w: w.line)
    return found


def is_bookkeeping_call(ctx: FileContext, call: ast.Call) -> bool:
    """A call that only records a status (`update_run(id, status="completed")`, an SQL statement
    that writes a `status` column): not the work itself."""
    for keyword in call.keywords:
        if _status_key(keyword.arg) or (keyword.arg in _SUCCESS_KEYS and _is_true(keyword.value)):
            return True
    for arg in call.args:
        text = _literal_text(arg) or _concat_text(arg)
        if text and re.search(r"\bstatus\b", text, re.IGNORECASE):
            return True
        if terminal_value(arg):
            return True
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return bool(_MARKING_CALL.match(name.lower())) or "status" in name.lower()


def _concat_text(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _concat_text(node.left) + _concat_text(node.right)
    return _literal_text(node)


def work_calls(ctx: FileContext, func: ast.AST) -> list[ast.Call]:
    """The calls in `func` that may do real work: not inert, not status bookkeeping."""
    return [
        node
        for node in own_nodes(func, ctx)
        if isinstance(node, ast.Call)
        and not is_inert_call(ctx, node)
        and not is_bookkeeping_call(ctx, node)
    ]


# -- project facts: routes and call edges --------------------------------------------------------


@dataclass
class StubFacts:
    """What one file contributes to the STB checks: its candidate findings (built in `collect`,
    completed with the route in `finish`), its routes and its call edges."""

    findings: list[Finding] = field(default_factory=list)
    routes: dict[str, str] = field(default_factory=dict)
    defs: list[str] = field(default_factory=list)
    edges: dict[str, list[str]] = field(default_factory=dict)
    aliases: tuple[tuple[str, str], ...] = ()  # the module's re-exports (`reexports`)


def _enclosing_class(ctx: FileContext, func: ast.AST) -> str | None:
    parent = ctx.parents.get(func)
    return ctx.symbol_for(parent) if isinstance(parent, ast.ClassDef) else None


def call_edges(ctx: FileContext) -> tuple[list[str], dict[str, list[str]]]:
    """Every function defined here, and for each the names it calls or passes as callbacks
    (`BackgroundTasks.add_task(run)`, `create_task(run())`), resolved through imports."""

    def compute() -> tuple[list[str], dict[str, list[str]]]:
        defs: list[str] = []
        edges: dict[str, list[str]] = {}
        module_defs = {
            n.name for n in ctx.tree.body if isinstance(n, (*FUNCTION_DEFS, ast.ClassDef))
        }
        for func in ctx.nodes(*FUNCTION_DEFS):
            qual = ctx.symbol_for(func)
            defs.append(qual)
            owner = _enclosing_class(ctx, func)
            targets: list[str] = []
            for node in own_nodes(func, ctx):
                if type(node) is not ast.Call:
                    continue
                refs: list[ast.AST] = [node.func]
                refs.extend(a for a in node.args if isinstance(a, (ast.Name, ast.Attribute)))  # type: ignore[attr-defined]
                for ref in refs:
                    target = _resolve(ctx, ref, owner, module_defs)
                    if target:
                        targets.append(target)
            edges[qual] = sorted(set(targets))
        return defs, edges

    return ctx.memo("stb.edges", compute)


def _resolve(ctx: FileContext, ref: ast.AST, owner: str | None, module_defs: set[str]) -> str:
    if isinstance(ref, ast.Name):
        if ref.id in ctx.imports:
            return ctx.imports[ref.id]
        return f"{ctx.module}.{ref.id}" if ref.id in module_defs else ""
    if isinstance(ref, ast.Attribute):
        if isinstance(ref.value, ast.Name) and ref.value.id in {"self", "cls"} and owner:
            return f"{owner}.{ref.attr}"
        name = ctx.qualified_name(ref)
        if name and isinstance(ref.value, ast.Name) and ref.value.id in ctx.imports:
            return name
        return f"*.{ref.attr}"
    return ""


def reexports(ctx: FileContext) -> tuple[tuple[str, str], ...]:
    """`module.name` -> what a module-level `from ... import` binds it to: the re-exports a call
    target is followed through across files (`reaching_route`)."""
    return ctx.memo("stb.aliases", lambda: module_aliases(ctx.tree, ctx.module, ctx.qualified_name))


def collect_facts(ctx: FileContext, candidates: Iterable[Finding]) -> StubFacts:
    defs, edges = call_edges(ctx)
    return StubFacts(list(candidates), dict(routes(ctx)), defs, edges, reexports(ctx))


class _Calls(ProjectModel):
    """The project's functions and its modules' re-exports, on the project model's resolution:
    a call target named through a package that re-exports it (`app.services.run` for
    `from .pipelines import run` in `app/services/__init__.py`) is that function."""

    def __init__(self, defs: Iterable[str], aliases: Iterable[tuple[str, str]]):
        super().__init__()
        self.functions = dict.fromkeys(defs)
        self.aliases = dict(aliases)

    def bound_value(self, binding: Any, depth: int) -> Any:
        return None

    def bases(self, cls: str) -> Iterable[Any]:
        return ()

    def function(self, dotted: str) -> str | None:
        entity = self.resolve(dotted)
        return str(entity[1]) if entity is not None and entity[0] == "func" else None


def reaching_route(
    facts: Mapping[str, StubFacts], memo: dict[str, Any]
) -> Mapping[str, tuple[str, list[str]]]:
    """For every function reachable from a route: the nearest route and the call chain from its
    handler. A call target is followed through re-exports; a method call on an unknown receiver
    resolves by name only when the name is unique."""
    if "stb.routes" in memo:
        return memo["stb.routes"]
    defs: set[str] = set()
    by_name: dict[str, list[str]] = {}
    route_of_handler: dict[str, str] = {}
    for fact in facts.values():
        defs.update(fact.defs)
        route_of_handler.update(fact.routes)
        for qual in fact.defs:
            by_name.setdefault(qual.rsplit(".", 1)[-1], []).append(qual)
    calls = _Calls(defs, (pair for fact in facts.values() for pair in fact.aliases))
    callees: dict[str, list[str]] = {}
    for fact in facts.values():
        for caller, targets in fact.edges.items():
            resolved: list[str] = []
            for target in targets:
                if target in defs:
                    resolved.append(target)
                elif (through := calls.function(target)) is not None:
                    resolved.append(through)
                else:
                    same = by_name.get(target.rsplit(".", 1)[-1], [])
                    if len(same) == 1:
                        resolved.append(same[0])
            callees[caller] = resolved
    reached: dict[str, tuple[str, list[str]]] = {}
    for handler in sorted(route_of_handler, key=lambda h: route_of_handler[h]):
        queue: deque[tuple[str, list[str]]] = deque([(handler, [handler])])
        seen = {handler}
        while queue:
            current, chain = queue.popleft()
            best = reached.get(current)
            if best is None or len(best[1]) > len(chain):
                reached[current] = (route_of_handler[handler], chain)
            if len(chain) > 8:
                continue
            for callee in callees.get(current, []):
                if callee not in seen:
                    seen.add(callee)
                    queue.append((callee, [*chain, callee]))
    memo["stb.routes"] = reached
    return reached


def with_routes(
    rule: str, facts: Mapping[str, StubFacts], memo: dict[str, Any]
) -> Iterator[Finding]:
    """The candidate findings of `rule`, with `route` (and the call chain) in their evidence."""
    reached = reaching_route(facts, memo)
    for path in sorted(facts):
        for finding in facts[path].findings:
            if finding.rule != rule:
                continue
            hit = reached.get(finding.symbol)
            evidence = dict(finding.evidence)
            evidence["route"] = hit[0] if hit else None
            if hit and len(hit[1]) > 1:
                evidence["chain"] = hit[1]
            yield replace(finding, evidence=evidence)


class StubCheck(ProjectCheck):
    """Base of the STB checks: each finds its candidates per file (`candidates`); one shared
    `collect` gathers them with the file's routes and call edges, and `finish` adds to each the
    route that reaches it."""

    collector = "stb"

    @classmethod
    def candidates(cls, ctx: FileContext) -> Iterable[Finding]:
        raise NotImplementedError

    @classmethod
    def collect(cls, ctx: FileContext) -> StubFacts:
        # Every check of the family, as defined (no import of the family package: no cycle).
        found: list[Finding] = []
        for check in sorted(StubCheck.__subclasses__(), key=lambda c: c.id):
            found.extend(check.candidates(ctx))
        return collect_facts(ctx, found)

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterable[Finding]:
        return with_routes(self.id, facts, project.memo)


# -- paths ---------------------------------------------------------------------------------------
