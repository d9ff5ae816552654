"""Shared by the EXC checks (and the exception codemods): which handlers are broad, what they do
with the exception, whether they log the traceback, and which ones are intentional isolation.

All of it reads one `ast.ExceptHandler`; what the try body can raise is `flow.py`'s job.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence

from ...model import Applicability, Fix
from ...semantic import imports

#: The exception classes whose handlers are "broad" (a bare `except:` is broad too).
BROAD = frozenset({"Exception", "BaseException", "builtins.Exception", "builtins.BaseException"})

#: The behaviours, as reported in `evidence["behaviour"]` (docs/annotations.md).
RERAISING = ("reraise", "wrap_raise", "exit")
SWALLOWING = ("return_default", "return_error", "log_continue", "pass", "other")
BEHAVIOURS = RERAISING + SWALLOWING

#: The function name that marks an intentional isolation site (codemod `isolate-handlers`
#: writes it into the target; the target never imports this tool).
ISOLATION_FUNCTION = "safe_handler"

NARROW_FIX = Fix(
    "Catch the exceptions the try body raises (narrow-except)",
    Applicability.UNSAFE,
    "narrow-except",
)
ISOLATE_FIX = Fix(
    "Dispatch through a safe_handler wrapper (isolate-handlers)",
    Applicability.SAFE,
    "isolate-handlers",
)

_LEVEL_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "critical", "fatal", "log", "exception"}
)
_TRACEBACK_FUNCTIONS = frozenset(
    {"traceback.print_exc", "traceback.format_exc", "traceback.print_exception"}
)


def walk_local(nodes: Sequence[ast.AST], *, into_try: bool = True) -> Iterator[ast.AST]:
    """Every node under `nodes`, not descending into nested functions, lambdas or classes (code
    there does not run as part of the handler), nor into nested try statements unless
    `into_try` (a bare `raise` there re-raises the nested try's own exception)."""
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if not into_try and isinstance(node, (ast.Try, ast.TryStar)):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def broad_names(handler: ast.ExceptHandler, resolve) -> list[str]:
    """The broad classes a handler catches: `["bare"]` for `except:`, `["Exception"]`, or the broad
    members of a tuple. `resolve` maps a Name/Attribute to its qualified name (imports applied),
    so a shadowed or imported `Exception` is not mistaken for the builtin."""
    if handler.type is None:
        return ["bare"]
    elements = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    found = []
    for element in elements:
        name = resolve(element)
        if name in BROAD:
            found.append(name.removeprefix("builtins."))
    return found


def is_logger_receiver(expr: ast.AST, resolve=None) -> bool:
    """Whether `expr` (the `x` of `x.exception(...)`) looks like a logger: a name ending in
    something with "log" in it (`logger`, `log`, `self._logger`, `LOGGER`, `logging`,
    `structlog`), or a `getLogger(...)` / `get_logger(...)` call."""
    if isinstance(expr, ast.Call):
        func = expr.func
        tail = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return tail.lower().replace("_", "") in ("getlogger", "getloggeradapter")
    tail = None
    if isinstance(expr, ast.Name):
        tail = expr.id
    elif isinstance(expr, ast.Attribute):
        tail = expr.attr
    return tail is not None and "log" in tail.lower()


def _truthy_keyword(call: ast.Call, name: str) -> bool:
    for keyword in call.keywords:
        if keyword.arg == name:
            value = keyword.value
            return not (isinstance(value, ast.Constant) and not value.value)
    return False


def logs_traceback(handler: ast.ExceptHandler, resolve=None) -> bool:
    """`logger.exception(...)`, a logging call with a truthy `exc_info=`, or `traceback.print_exc()`
    / `format_exc()` anywhere in the handler (not in nested functions)."""
    for node in walk_local(handler.body):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _LEVEL_METHODS:
            receiver = func.value
            if func.attr == "exception" and is_logger_receiver(receiver):
                return True
            if _truthy_keyword(node, "exc_info") and (
                is_logger_receiver(receiver) or func.attr != "log"
            ):
                return True
        if resolve is not None and resolve(func) in _TRACEBACK_FUNCTIONS:
            return True
    return False


def logs_anything(handler: ast.ExceptHandler) -> bool:
    """Any logging-level call on a logger-like object, `logging.x(...)`, `print(...)` or
    `warnings.warn(...)` in the handler."""
    for node in walk_local(handler.body):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in _LEVEL_METHODS
            and is_logger_receiver(func.value)
        ):
            return True
        if isinstance(func, ast.Attribute) and func.attr == "warn":
            return True
        if isinstance(func, ast.Name) and func.id in ("print", "warn"):
            return True
        if _dotted(func) in _REPORTING_CALLS:
            return True
    return False


#: Calls that report an error to a person without a logger.
_REPORTING_CALLS = frozenset(
    {
        "traceback.print_exc",
        "traceback.print_exception",
        "click.echo",
        "typer.echo",
        "click.secho",
        "typer.secho",
        "sys.stderr.write",
    }
)


def _is_reraise(stmt: ast.AST, bound: str | None) -> bool:
    """`raise` or `raise e` where `e` is the handler's bound name (`raise e from None` too: the
    same exception, its context hidden)."""
    if not isinstance(stmt, ast.Raise):
        return False
    if stmt.exc is None:
        return True
    if stmt.cause is not None and not (
        isinstance(stmt.cause, ast.Constant) and stmt.cause.value is None
    ):
        return False
    return bound is not None and isinstance(stmt.exc, ast.Name) and stmt.exc.id == bound


#: Calls that never return: they raise (a test failure, a skip) in place of the handler.
_RAISING_CALLS = frozenset({"pytest.fail", "pytest.skip", "pytest.exit", "self.fail"})


def _raises_by_call(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and _dotted(stmt.value.func) in _RAISING_CALLS
    )


def _ending(body: Sequence[ast.stmt], bound: str | None) -> str | None:
    """How a block ends when every path through its last statement raises: "reraise" when all
    of them re-raise, "wrap_raise" when some raise something else; None otherwise."""
    if not body:
        return None
    last = body[-1]
    if isinstance(last, ast.Raise):
        return "reraise" if _is_reraise(last, bound) else "wrap_raise"
    if _raises_by_call(last):
        return "wrap_raise"
    if isinstance(last, ast.If) and last.orelse:
        first, second = _ending(last.body, bound), _ending(last.orelse, bound)
        if first and second:
            return "reraise" if first == second == "reraise" else "wrap_raise"
        return None
    if isinstance(last, (ast.With, ast.AsyncWith)):
        return _ending(last.body, bound)
    return None


def _contains_raise(body: Sequence[ast.stmt]) -> bool:
    return any(isinstance(n, ast.Raise) for n in walk_local(body))


def _uses(node: ast.AST, name: str | None) -> bool:
    if name is None:
        return False
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


_EMPTY_FACTORIES = frozenset({"list", "dict", "set", "tuple", "frozenset", "str", "bytes"})


def is_default_value(value: ast.AST | None, bound: str | None) -> bool:
    """A value that stands for "nothing happened": None, a constant, an empty or constant
    container, a name or attribute (not the exception), `list()`-style empty factories."""
    if value is None:
        return True
    if _uses(value, bound):
        return False
    if isinstance(value, ast.Constant):
        return True
    if isinstance(value, (ast.Name, ast.Attribute)):
        return True
    if isinstance(value, ast.UnaryOp) and isinstance(value.operand, ast.Constant):
        return True
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return all(is_default_value(e, bound) for e in value.elts)
    if isinstance(value, ast.Dict):
        return all(
            k is not None and is_default_value(k, bound) and is_default_value(v, bound)
            for k, v in zip(value.keys, value.values, strict=True)
        )
    if isinstance(value, ast.Call):
        return (
            isinstance(value.func, ast.Name)
            and value.func.id in _EMPTY_FACTORIES
            and not value.args
            and not value.keywords
        )
    return False


def _is_noop(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Pass, ast.Continue)):
        return True
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


_EXIT_CALLS = frozenset({"sys.exit", "os._exit", "exit", "quit"})
#: Keys and keywords by which a returned value says "this failed".
_ERROR_WORDS = frozenset({"error", "errors", "err", "error_message", "detail", "failure", "reason"})
_FAILURE_FLAGS = frozenset({"success", "ok", "succeeded"})


def _dotted(node: ast.AST) -> str:
    return ".".join(imports.dotted(node) or ())


def _is_exit(stmt: ast.stmt) -> bool:
    """`sys.exit(...)`, `os._exit(...)`, `exit()`, `quit()` as a statement."""
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and _dotted(stmt.value.func) in _EXIT_CALLS
    )


def _says_failure(key: ast.AST | str | None, value: ast.AST) -> bool:
    name = key.value if isinstance(key, ast.Constant) else key
    if not isinstance(name, str):
        return False
    name = name.lower()
    if name in _ERROR_WORDS:
        return True
    if name in _FAILURE_FLAGS:
        return isinstance(value, ast.Constant) and value.value is False
    if name in ("status", "state") and isinstance(value, ast.Constant):
        return isinstance(value.value, str) and value.value.lower() in (
            "error",
            "failed",
            "failure",
        )
    return name == "status_code"


def _assigned_error(stmt: ast.Assign | ast.AnnAssign) -> str | None:
    """ "result": the value assigned says "failed" by its keys or keywords
    (`response = JSONResponse(status_code=500, ...)`, `out = {"success": False}`); "flag": the
    target does (`status = "ERROR"`, `result["error"] = str(exc)`, `self.error = ...`)."""
    value = stmt.value
    if value is None:
        return None
    if isinstance(value, (ast.Call, ast.Dict)) and is_error_value(value, None):
        return "result"
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    for target in targets:
        key: ast.AST | str | None = None
        if isinstance(target, ast.Subscript):
            key = target.slice
        elif isinstance(target, ast.Attribute):
            key = target.attr
        elif isinstance(target, ast.Name):
            key = target.id
        if key is not None and _says_failure(key, value):
            return "flag"
    return None


def is_error_value(value: ast.AST | None, bound: str | None) -> bool:
    """A value built to report the failure: it uses the exception (`{"error": str(exc)}`,
    `f"failed: {exc}"`), or says "failed" by its keys or keywords (`{"success": False, ...}`,
    `Result(success=False, error="...")`, `JSONResponse(status_code=500, ...)`)."""
    if value is None:
        return False
    if _uses(value, bound):
        return True
    if isinstance(value, ast.Dict):
        return any(_says_failure(k, v) for k, v in zip(value.keys, value.values, strict=True))
    if isinstance(value, ast.Call):
        return any(_says_failure(k.arg, k.value) for k in value.keywords)
    if isinstance(value, ast.Tuple):
        return any(is_error_value(e, bound) for e in value.elts if not isinstance(e, ast.Constant))
    return False


def behaviour(handler: ast.ExceptHandler) -> str:
    """What a handler does with the exception (docs/annotations.md):

    * `reraise`: ends with `raise` / `raise e` (every branch of a final `if`, too);
    * `wrap_raise`: ends raising something else (`raise AppError(...) from e`);
    * `exit`: ends the process (`sys.exit()`, `os._exit()`);
    * `pass`: does nothing (`pass`, `...`, `continue`);
    * `return_error`: returns a value built to report the failure (`{"error": str(e)}`,
      `Result(success=False, ...)`, an error response);
    * `return_default`: ends with `return` of None, a constant, an empty container, a name;
    * `log_continue`: logs, then falls through (or `continue`/`break`);
    * `other`: anything else (returns something else built from data, sets a flag without
      logging).

    A handler that re-raises on some paths only gets the behaviour of its end and is `mixed`.
    """
    body = handler.body
    bound = handler.name
    ending = _ending(body, bound)
    if ending is not None:
        return ending
    last = body[-1]
    if _is_exit(last):
        return "exit"
    if all(_is_noop(s) for s in body):
        return "pass"
    if isinstance(last, ast.Return):
        if is_error_value(last.value, bound):
            return "return_error"
        return "return_default" if is_default_value(last.value, bound) else "other"
    # Building the error result the function returns after the handler.
    assigned = {_assigned_error(s) for s in body if isinstance(s, (ast.Assign, ast.AnnAssign))}
    if "result" in assigned or ("flag" in assigned and not logs_anything(handler)):
        return "return_error"
    if isinstance(
        last,
        (
            ast.Expr,
            ast.Assign,
            ast.AugAssign,
            ast.AnnAssign,
            ast.Continue,
            ast.Break,
            ast.Pass,
            ast.If,
            ast.With,
            ast.AsyncWith,
            ast.For,
            ast.AsyncFor,
            ast.Try,
            ast.Delete,
            ast.Global,
            ast.Nonlocal,
        ),
    ):
        return "log_continue" if logs_anything(handler) else "other"
    return "other"


def never_returns(body: Sequence[ast.stmt]) -> str | None:
    """How a function body ends when it cannot return normally: "exit" (`sys.exit()` last) or
    "raise" (a `raise` on every path at the end); None otherwise."""
    if body and _is_exit(body[-1]):
        return "exit"
    return "raise" if _ending(body, None) is not None else None


def is_mixed(handler: ast.ExceptHandler) -> bool:
    """Re-raises on some paths and swallows on others."""
    return _ending(handler.body, handler.name) is None and _contains_raise(handler.body)


_EXECUTE_METHODS = frozenset({"execute", "executemany", "exec_driver_sql", "executescript"})
_READ_STATEMENTS = frozenset({"select", "with", "show", "explain", "values", "table"})
_WRITE_STATEMENTS = frozenset(
    {
        "insert",
        "update",
        "delete",
        "merge",
        "upsert",
        "create",
        "drop",
        "alter",
        "truncate",
        "grant",
        "revoke",
        "copy",
        "replace",
    }
)


def sql_kind(call: ast.Call) -> str:
    """For a call whose first argument is a SQL statement: "sql-read" for a constant that reads
    (`SELECT ...`), "sql-write" for a constant that writes (`db.execute_one("UPDATE ...")`),
    "sql" for an `execute`-like call whose statement is built at run time (it may write); ""
    for any other call."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and call.args):
        return ""
    statement = call.args[0]
    if isinstance(statement, ast.Call) and statement.args:  # text("..."), sql.SQL("...")
        statement = statement.args[0]
    if isinstance(statement, ast.Constant) and isinstance(statement.value, str):
        words = statement.value.split(None, 1)
        first = words[0].lower() if words else ""
        if first in _READ_STATEMENTS:
            return "sql-read"
        if first in _WRITE_STATEMENTS:
            return "sql-write"
        return ""
    return "sql" if func.attr in _EXECUTE_METHODS else ""


_CLEANUP_WORDS = frozenset(
    {
        "close",
        "aclose",
        "rollback",
        "cleanup",
        "clean_up",
        "shutdown",
        "release",
        "disconnect",
        "terminate",
        "kill",
        "stop",
        "unlink",
        "remove",
        "rmtree",
        "cancel",
        "dispose",
        "untrack",
    }
)


def cleanup_call(try_node: ast.Try | ast.TryStar) -> str | None:
    """The call when a try body is one cleanup call (`conn.close()`, `await session.rollback()`,
    `os.unlink(tmp)`): a failure there must not replace the error being handled."""
    if len(try_node.body) != 1 or not isinstance(try_node.body[0], ast.Expr):
        return None
    value = try_node.body[0].value
    if isinstance(value, ast.Await):
        value = value.value
    if not isinstance(value, ast.Call):
        return None
    name = _dotted(value.func)
    return name if name.rpartition(".")[2] in _CLEANUP_WORDS else None


#: Verbs of a function whose job is to run a unit of work it is handed (a tool, a plugin, a
#: task, a step, an event handler).
_RUNNING_VERBS = frozenset(
    {"execute", "run", "invoke", "call", "handle", "dispatch", "process", "perform", "apply"}
)


def runs_work(function_name: str) -> bool:
    """`_execute`, `run_tool`, `invoke_plugin`, `handle_event`: a runner of handed work."""
    return any(w in _RUNNING_VERBS for w in function_name.lower().strip("_").split("_"))
