"""Codemod `isolate-handlers`: route event-bus dispatch through a `safe_handler` wrapper written
into the target package, instead of an inline `except Exception` (fixes the EXC001 findings the
audit marks `dispatch`)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

import libcst as cst

from ..audit.base import Option, module_name
from ..model import Applicability, Finding
from ._exceptions_helpers import (
    ModuleNames,
    add_import_text,
    comments_in,
    findings_by_path,
    first_party,
    tries_in_order,
)
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
)

HELPER_NAME = "safe_handler"

#: The module written into the target. It must not import gathering-consolidate; the EXC audit
#: recognises its handlers as intentional (inside a function named `safe_handler`, logging the
#: traceback), and ruff's BLE001 accepts them (`log.exception`).
HELPER_SOURCE = '''\
"""Isolation for event-bus dispatch: the one place where catching every error is right.

A subscriber that fails must not break the publisher or the other subscribers, so its
error is logged with the traceback and dropped here, in one place. Everywhere else,
catch the errors you expect and let the rest propagate.

Written by gathering-consolidate (codemod `isolate-handlers`); the application does not
depend on gathering-consolidate.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["safe_handler"]


def safe_handler(
    func: Callable[..., Any],
    /,
    *,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    message: str | None = None,
    args: tuple[Any, ...] = (),
) -> Callable[..., Any]:
    """Wrap an event handler: an exception it raises is logged with its traceback and
    swallowed, and the wrapper returns None.

    Use it as `@safe_handler` on a subscriber, or at a dispatch site:
    `await safe_handler(handler, logger=log, message="%s failed", args=(name,))(event)`.
    `message` and `args` go to `logger.exception`; by default the handler's name is
    logged. Coroutine functions get an async wrapper; a plain callable that returns an
    awaitable gets the awaitable guarded too.
    """
    log = logger or logging.getLogger(getattr(func, "__module__", None) or __name__)
    if message is None:
        message = "Handler %s failed"
        args = (getattr(func, "__qualname__", repr(func)),)

    async def guard(awaitable: Any) -> Any:
        try:
            return await awaitable
        except Exception:
            log.exception(message, *args)
            return None

    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        type(func).__call__
    ):

        @functools.wraps(func)
        async def run_async(*call_args: Any, **call_kwargs: Any) -> Any:
            try:
                return await func(*call_args, **call_kwargs)
            except Exception:
                log.exception(message, *args)
                return None

        return run_async

    @functools.wraps(func)
    def run(*call_args: Any, **call_kwargs: Any) -> Any:
        try:
            result = func(*call_args, **call_kwargs)
        except Exception:
            log.exception(message, *args)
            return None
        if inspect.isawaitable(result):
            return guard(result)
        return result

    return run
'''

_LINE_LIMIT = 99


class IsolateHandlers(Codemod):
    """Replace the inline broad catch of an event-bus dispatch with a `safe_handler` wrapper.

    An event bus is the one place where a broad catch is right: one failing subscriber must not
    break the publisher or the others. The audit marks such sites (`dispatch` in the EXC001
    evidence: a try whose body is one call of a callable the function received or iterates
    over, `await handler(event)`). This codemod writes `safe_handler` (a small decorator, no
    dependency on this tool) into the target package (`<package>/isolation.py`, or the
    `helper` option) and rewrites

        try:
            await handler(event)
        except Exception:
            logger.exception("Handler %s failed for %s", name, event.type)

    into `await safe_handler(handler, logger=logger, message="Handler %s failed for %s",
    args=(name, event.type))(event)`: same catch, same log record, one audited place. The
    audit treats handlers inside `safe_handler` that log the traceback as intentional.

    It refuses when the handler does more than log (`logger.exception(...)` or
    `logger.error(..., exc_info=True)`) or `pass`, when the log call uses the caught exception
    object, when the file is not inside a package, or when `safe_handler` already means
    something else there. Safe: the same exceptions are caught and logged the same way.
    """

    id = "isolate-handlers"
    description = "Route event-bus dispatch through a safe_handler wrapper written into the app."
    applicability = Applicability.SAFE
    # Acts on the EXC001 findings marked `dispatch` (their `fix` names this codemod); the rule's
    # own fix is narrow-except, so it is not listed here.
    fixes = ()
    OPTIONS = {
        "helper": Option(
            "",
            "Where to write the wrapper (a project-relative path); default"
            " `<package>/isolation.py` for the package that holds the dispatch site.",
        ),
        "tier": Option(0, "Only dispatch sites in files of this tier (0: every tier)."),
    }
    CASES = [
        Rewrite(
            before="""
                import logging

                logger = logging.getLogger(__name__)


                class EventBus:
                    async def _invoke(self, handler, event):
                        # each handler runs on its own
                        try:
                            await handler(event)  # may fail
                        # a failing handler must not stop the others
                        except Exception:
                            logger.exception("Handler %s failed for %s", handler, event.type)
            """,
            after="""
                import logging

                from app.isolation import safe_handler

                logger = logging.getLogger(__name__)


                class EventBus:
                    async def _invoke(self, handler, event):
                        # each handler runs on its own
                        # may fail
                        # a failing handler must not stop the others
                        await safe_handler(
                            handler,
                            logger=logger,
                            message="Handler %s failed for %s",
                            args=(handler, event.type),
                        )(event)
            """,
            path="app/events.py",
            files={"app/__init__.py": ""},
        ),
        Rewrite(
            before="""
                import logging

                log = logging.getLogger(__name__)


                def publish(listeners, payload):
                    for listener in listeners:
                        try:
                            listener(payload)
                        except Exception:
                            log.error("listener failed", exc_info=True)
            """,
            after="""
                import logging

                from app.isolation import safe_handler

                log = logging.getLogger(__name__)


                def publish(listeners, payload):
                    for listener in listeners:
                        safe_handler(listener, logger=log, message="listener failed")(payload)
            """,
            path="app/bus.py",
            files={"app/__init__.py": ""},
        ),
        Keeps(
            """
            def call(handler, event):
                try:
                    handler(event)
                except ValueError:
                    pass
            """,
            path="app/events.py",
            files={"app/__init__.py": ""},
        ),
        Refuses(
            """
            import logging
            logger = logging.getLogger(__name__)

            async def invoke(handler, event):
                try:
                    await handler(event)
                except Exception as exc:
                    logger.exception("handler failed: %s", exc)
            """,
            reason="uses the caught exception",
            path="app/events.py",
            files={"app/__init__.py": ""},
        ),
        Refuses(
            """
            import logging
            logger = logging.getLogger(__name__)

            async def invoke(handler, event):
                try:
                    await handler(event)
                except Exception:
                    logger.exception("handler failed")
                    metrics.failed += 1
            """,
            reason="does more than log",
            path="app/events.py",
            files={"app/__init__.py": ""},
        ),
    ]

    def run(self, project: CodemodProject) -> Iterator[Outcome]:
        result = project.audit(("EXC001", "EXC002"))
        tier = self.options["tier"]
        grouped = findings_by_path(
            f
            for f in result.findings
            if f.rule == "EXC001" and f.evidence.get("dispatch") and (not tier or f.tier == tier)
        )
        packages = project.packages()
        helpers_needed: dict[str, str] = {}  # helper path -> module
        for path in sorted(project.files):
            project.step("rewriting files", 1, len(project.files))
            findings = grouped.get(path)
            if not findings:
                yield Unchanged(path)
                continue
            helper = self._helper_path(path, packages)
            if helper is None:
                for finding in findings:
                    yield Refused(
                        path,
                        "not inside a package: no place to write safe_handler (set -O helper=PATH)",
                        finding.location.line,
                    )
                continue
            existing = project.files.get(helper)
            if existing is not None and not _defines_helper(existing):
                for finding in findings:
                    yield Refused(
                        path,
                        f"{helper} exists and does not define {HELPER_NAME}",
                        finding.location.line,
                    )
                continue
            changed = False
            outcomes = self._file(
                path, project.files[path], findings, module_name(helper), first_party(project.files)
            )
            for outcome in outcomes:
                changed = changed or isinstance(outcome, Changed)
                yield outcome
            if changed and existing is None:
                helpers_needed[helper] = module_name(helper)
        for helper in sorted(helpers_needed):
            yield Changed(helper, None, HELPER_SOURCE)

    def _helper_path(self, path: str, packages: list[str]) -> str | None:
        if self.options["helper"]:
            return str(self.options["helper"]).strip("/")
        for package in packages:
            if path.startswith(package + "/"):
                return f"{package}/isolation.py"
        return None

    def _file(
        self,
        path: str,
        source: str,
        findings: list[Finding],
        helper_module: str,
        packages: set[str],
    ) -> Iterator[Outcome]:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return
        names = ModuleNames.read(tree, path)
        target = f"{helper_module}.{HELPER_NAME}"
        if HELPER_NAME in names.bound and names.imports.get(HELPER_NAME) != target:
            for finding in findings:
                yield Refused(
                    path,
                    f"`{HELPER_NAME}` already means something else in this module",
                    finding.location.line,
                )
            return
        lines = {f.location.line for f in findings}
        tries = tries_in_order(tree)
        targets = {
            index: (node.handlers[0].lineno, node.col_offset)
            for index, node in enumerate(tries)
            if len(node.handlers) == 1 and node.handlers[0].lineno in lines
        }
        try:
            module = cst.parse_module(source)
        except cst.ParserSyntaxError as exc:
            yield Refused(path, f"cannot parse: {str(exc).splitlines()[0]}")
            return
        command = _IsolateCommand(targets)
        new = module.visit(command)
        if command.count != len(tries):
            yield Refused(path, "the try statements libcst and ast see differ; nothing changed")
            return
        for line, reason in sorted(command.refused.items()):
            yield Refused(path, reason, line)
        if not command.changed:
            return
        after = add_import_text(new.code, helper_module, HELPER_NAME, packages)
        yield Changed(path, source, after)


def _defines_helper(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == HELPER_NAME
        for node in tree.body
    )


class _IsolateCommand(cst.CSTTransformer):
    """Replaces the try statements whose position (in source order, from `ast`) is a target."""

    def __init__(self, targets: dict[int, tuple[int, int]]) -> None:
        super().__init__()
        self.targets = targets  # try index -> (handler line, try column)
        self.refused: dict[int, str] = {}
        self.changed = False
        self.count = 0
        self.index: dict[int, int] = {}
        self._tree = cst.Module([])

    def visit_Module(self, node: cst.Module) -> None:
        self._tree = node

    def visit_Try(self, node: cst.Try) -> None:
        self.index[id(node)] = self.count
        self.count += 1

    def visit_TryStar(self, node: cst.TryStar) -> None:
        self.count += 1

    def leave_Try(self, original_node: cst.Try, updated_node: cst.Try) -> cst.BaseStatement:
        target = self.targets.get(self.index.get(id(original_node), -1))
        if target is None:
            return updated_node
        line, column = target
        try:
            text = self._replacement(original_node)
        except _Refusal as refusal:
            self.refused[line] = str(refusal)
            return updated_node
        if column + len(text.splitlines()[0]) > _LINE_LIMIT:
            text = self._replacement(original_node, multiline=True)
        statement = cst.parse_statement(text)
        comments = [
            cst.EmptyLine(comment=c)
            for c in comments_in(original_node.with_changes(leading_lines=()))
        ]
        self.changed = True
        return statement.with_changes(leading_lines=[*updated_node.leading_lines, *comments])

    def _code(self, node: cst.CSTNode) -> str:
        return self._tree.code_for_node(node).strip()

    def _replacement(self, node: cst.Try, multiline: bool = False) -> str:
        if node.orelse is not None or node.finalbody is not None:
            raise _Refusal("the try has an else or finally block")
        body = node.body.body
        if len(body) != 1 or not isinstance(body[0], cst.SimpleStatementLine):
            raise _Refusal("the try body is not a single call")
        small = body[0].body
        if len(small) != 1 or not isinstance(small[0], cst.Expr):
            raise _Refusal("the try body is not a single call")
        value = small[0].value
        awaited = isinstance(value, cst.Await)
        call = value.expression if isinstance(value, cst.Await) else value
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Name):
            raise _Refusal("the try body is not a call of a handler")
        handler = node.handlers[0]
        keywords = self._log_arguments(handler)
        arguments = [call.func.value, *keywords]
        call_args = ", ".join(self._code(a).rstrip(",").strip() for a in call.args)
        prefix = "await " if awaited else ""
        if multiline:
            inner = "".join(f"    {a},\n" for a in arguments)
            return f"{prefix}{HELPER_NAME}(\n{inner})({call_args})\n"
        return f"{prefix}{HELPER_NAME}({', '.join(arguments)})({call_args})\n"

    def _log_arguments(self, handler: cst.ExceptHandler) -> list[str]:
        """`logger=..., message=..., args=(...)` from the handler's single logging call."""
        statements = handler.body.body
        if all(
            isinstance(s, cst.SimpleStatementLine) and all(isinstance(x, cst.Pass) for x in s.body)
            for s in statements
        ):
            return []  # `except Exception: pass` -> safe_handler logs with its default message
        if len(statements) != 1 or not isinstance(statements[0], cst.SimpleStatementLine):
            raise _Refusal("the handler does more than log the error")
        small = statements[0].body
        if len(small) != 1 or not isinstance(small[0], cst.Expr):
            raise _Refusal("the handler does more than log the error")
        call = small[0].value
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
            raise _Refusal("the handler does more than log the error")
        method = call.func.attr.value
        positional = [a for a in call.args if a.keyword is None]
        keywords = {a.keyword.value: a for a in call.args if a.keyword is not None}
        if any(a.star for a in call.args):
            raise _Refusal("the log call unpacks its arguments")
        exc_info = keywords.pop("exc_info", None)
        if method == "exception" or (
            method == "error"
            and exc_info is not None
            and self._code(exc_info.value)
            not in (
                "False",
                "None",
                "0",
            )
        ):
            pass
        else:
            raise _Refusal("the handler does not log the error with its traceback")
        if keywords:
            raise _Refusal(
                f"the log call passes {', '.join(sorted(keywords))}, which safe_handler does not"
            )
        if handler.name is not None:
            bound = handler.name.name
            if isinstance(bound, cst.Name) and any(
                _uses_name(a.value, bound.value) for a in call.args
            ):
                raise _Refusal("the log call uses the caught exception")
        out = [f"logger={self._code(call.func.value)}"]
        if positional:
            out.append(f"message={self._code(positional[0].value)}")
            rest = [self._code(a.value) for a in positional[1:]]
            if rest:
                out.append(f"args=({', '.join(rest)}{',' if len(rest) == 1 else ''})")
        return out


class _Refusal(Exception):
    pass


def _uses_name(node: cst.CSTNode, name: str) -> bool:
    found = False

    class _Visitor(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            nonlocal found
            if n.value == name:
                found = True

    node.visit(_Visitor())
    return found
