"""Codemod `isolate-handlers`: route event-bus dispatch through a `safe_handler` wrapper written
into the target package, instead of an inline `except Exception` (fixes the EXC001 findings the
audit marks `dispatch`)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any

import libcst as cst
import libcst.helpers
from libcst.metadata import PositionProvider

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

    The dispatch idioms it knows (the handler being a parameter, a loop or comprehension
    target, or an attribute of one, `sub.callback`):

    * `[await] handler(event)` in a try (the audit marks it `dispatch`);
    * `result = handler(event)` then `if asyncio.iscoroutine(result)` (or
      `inspect.isawaitable`) `: await result`, in a try: the call is wrapped, the check kept;
    * `[await] asyncio.gather(*(h(event) for h in handlers))` in a try: each call is wrapped
      and the try goes (each failure is logged, not only the first);
    * with no try at all: `asyncio.create_task(h(event))` / `ensure_future` (the error would
      be lost with the task), `loop.call_soon(h, event)` (`call_later`, ...), and
      `await gather(*(h(e) ...), return_exceptions=True)` whose results are dropped (errors
      silently discarded): each handler is wrapped;
    * a subscriber loop with no try (`for h in self._handlers: h(event)` in an `emit` /
      `publish` / `dispatch` method, or over handlers/listeners/callbacks): one failure stops
      the rest and reaches the publisher. Wrapping it changes that, so it is listed as a
      refusal unless `-O bare-loops=true`.

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
        "bare-loops": Option(
            False,
            "Also wrap subscriber calls in loops that have no try at all (an error then is"
            " logged instead of stopping the loop and reaching the publisher).",
        ),
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
        # The event bus of issue 10: the call, then an await of its result when it is one.
        Rewrite(
            before="""
                import asyncio
                import logging

                log = logging.getLogger(__name__)


                class Bus:
                    async def _dispatch(self, handler, event):
                        try:
                            result = handler(event)
                            if asyncio.iscoroutine(result):  # async subscribers
                                await result
                        except Exception:
                            log.exception("subscriber failed")
            """,
            after="""
                import asyncio
                import logging

                from app.isolation import safe_handler

                log = logging.getLogger(__name__)


                class Bus:
                    async def _dispatch(self, handler, event):
                        result = safe_handler(handler, logger=log, message="subscriber failed")(event)
                        if asyncio.iscoroutine(result):  # async subscribers
                            await result
            """,
            path="app/bus.py",
            files={"app/__init__.py": ""},
        ),
        Rewrite(
            before="""
                import asyncio


                def schedule(subscribers, event, loop):
                    for sub in subscribers:
                        asyncio.create_task(sub.callback(event))  # fire and forget
                        loop.call_soon(sub.on_sync, event)
            """,
            after="""
                import asyncio

                from app.isolation import safe_handler


                def schedule(subscribers, event, loop):
                    for sub in subscribers:
                        asyncio.create_task(safe_handler(sub.callback)(event))  # fire and forget
                        loop.call_soon(safe_handler(sub.on_sync), event)
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
        # Every swallowing broad handler: the audit marks the simplest dispatch shape
        # (`dispatch`), and this codemod recognises the other idioms itself (see `_shape`).
        grouped = findings_by_path(
            f for f in result.findings if f.rule == "EXC001" and (not tier or f.tier == tier)
        )
        packages = project.packages()
        helpers_needed: dict[str, str] = {}  # helper path -> module
        bare = bool(self.options["bare-loops"])
        for path in sorted(project.files):
            project.step("rewriting files", 1, len(project.files))
            findings = grouped.get(path, [])
            source = project.files[path]
            if not findings and not _SCAN_WORDS.search(source):
                yield Unchanged(path)
                continue
            if tier and project.config.tier_for(path) != tier and not findings:
                yield Unchanged(path)
                continue
            helper = self._helper_path(path, packages)
            existing = project.files.get(helper) if helper else None
            problem = None
            if helper is None:
                problem = (
                    "not inside a package: no place to write safe_handler (set -O helper=PATH)"
                )
            elif existing is not None and not _defines_helper(existing):
                problem = f"{helper} exists and does not define {HELPER_NAME}"
            changed = False
            outcomes = self._file(
                path,
                source,
                findings,
                module_name(helper) if helper else "",
                first_party(project.files),
                bare,
            )
            for outcome in outcomes:
                if problem is not None and isinstance(outcome, Changed):
                    yield Refused(path, problem)
                    continue
                changed = changed or isinstance(outcome, Changed)
                yield outcome
            if changed and existing is None and helper is not None:
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
        bare: bool = False,
    ) -> Iterator[Outcome]:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return
        lines = {f.location.line for f in findings}
        marked = {f.location.line for f in findings if f.evidence.get("dispatch")}
        tries = tries_in_order(tree)
        scopes = _Scopes(tree)
        targets: dict[int, tuple[int, int, str]] = {}
        for index, node in enumerate(tries):
            if len(node.handlers) != 1 or node.handlers[0].lineno not in lines:
                continue
            shape = _shape(node, scopes)
            if shape is None and node.handlers[0].lineno in marked:
                shape = "call"
            if shape is not None:
                targets[index] = (node.handlers[0].lineno, node.col_offset, shape)
        calls, loops = _unguarded_sites(tree, scopes, source.split("\n"))
        refusals: list[Outcome] = []
        if not bare:
            for line, _, what in loops:
                refusals.append(
                    Refused(
                        path,
                        f"{what}: one failing subscriber stops the rest and reaches the"
                        " publisher; `-O bare-loops=true` wraps each call in safe_handler"
                        " (the error is then logged instead of raised)",
                        line,
                        "unguarded subscriber loop",
                    )
                )
            loops = []
        if not targets and not calls and not loops:
            yield from refusals
            return
        names = ModuleNames.read(tree, path)
        target = f"{helper_module}.{HELPER_NAME}"
        if HELPER_NAME in names.bound and names.imports.get(HELPER_NAME) != target:
            for line in sorted({t[0] for t in targets.values()} | {c[0] for c in calls}):
                yield Refused(
                    path, f"`{HELPER_NAME}` already means something else in this module", line
                )
            return
        try:
            module = cst.parse_module(source)
        except cst.ParserSyntaxError as exc:
            yield Refused(path, f"cannot parse: {str(exc).splitlines()[0]}")
            return
        # Calls first, at the positions ast gave (the try rewrites move lines).
        sites = dict(calls) | {(line, column): "call" for line, column, _ in loops}
        wrap = _WrapCalls(sites)
        if sites:
            module = cst.MetadataWrapper(module).visit(wrap)
        command = _IsolateCommand(targets)
        new = module.visit(command)
        if command.count != len(tries):
            yield Refused(path, "the try statements libcst and ast see differ; nothing changed")
            return
        command.changed = command.changed or wrap.count > 0
        yield from refusals
        for line, reason in sorted(command.refused.items()):
            yield Refused(path, reason, line)
        if not command.changed:
            return
        after = add_import_text(new.code, helper_module, HELPER_NAME, packages)
        notes = []
        if any(shape == "gather" for _, _, shape in targets.values()) and command.changed:
            notes.append(
                "a gather's try is gone: each handler's error is now logged on its own; the"
                " handlers must be coroutine functions (a plain function that fails returns"
                " None, which gather rejects)"
            )
        yield Changed(path, source, after, tuple(notes))


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

    def leave_Try(
        self, original_node: cst.Try, updated_node: cst.Try
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        target = self.targets.get(self.index.get(id(original_node), -1))
        if target is None:
            return updated_node
        line, column, shape = target
        try:
            text = self._replacement(original_node, shape)
            if column + max(len(t) for t in text.splitlines()) > _LINE_LIMIT:
                text = self._replacement(original_node, shape, multiline=True)
        except _Refusal as refusal:
            self.refused[line] = str(refusal)
            return updated_node
        statements = list(cst.parse_module(text).body)
        body = original_node.body.body
        kept = {"await-if": body[1:], "gather": body[:1]}.get(shape, ())
        in_kept = {c.value for node in kept for c in comments_in(node)}  # still in the output
        comments = [
            cst.EmptyLine(comment=c)
            for c in comments_in(original_node.with_changes(leading_lines=()))
            if c.value not in in_kept
        ]
        self.changed = True
        statements[0] = statements[0].with_changes(
            leading_lines=[*updated_node.leading_lines, *comments]
        )
        return statements[0] if len(statements) == 1 else cst.FlattenSentinel(statements)

    def _code(self, node: cst.CSTNode) -> str:
        return self._tree.code_for_node(node).strip()

    def _wrapped(self, handler: cst.ExceptHandler | None, call: cst.Call, multiline: bool) -> str:
        """`safe_handler(func, logger=..., ...)(args)` for a call of a handler."""
        keywords = self._log_arguments(handler) if handler is not None else []
        arguments = [self._code(call.func), *keywords]
        call_args = ", ".join(self._code(a).rstrip(",").strip() for a in call.args)
        if multiline and keywords:
            inner = "".join(f"    {a},\n" for a in arguments)
            return f"{HELPER_NAME}(\n{inner})({call_args})"
        return f"{HELPER_NAME}({', '.join(arguments)})({call_args})"

    def _replacement(self, node: cst.Try, shape: str, multiline: bool = False) -> str:
        if node.orelse is not None or node.finalbody is not None:
            raise _Refusal("the try has an else or finally block")
        handler = node.handlers[0]
        body = node.body.body
        if shape == "gather":
            return self._gather(body[0], handler, multiline)
        first = body[0]
        small = first.body if isinstance(first, cst.SimpleStatementLine) else ()
        if shape == "await-if" and len(body) == 2 and len(small) == 1:
            assign = small[0]
            if isinstance(assign, cst.Assign) and isinstance(assign.value, cst.Call):
                result = self._code(assign.targets[0].target)
                wrapped = self._wrapped(handler, assign.value, multiline)
                return f"{result} = {wrapped}\n{self._tree.code_for_node(body[1]).strip()}\n"
            raise _Refusal("the try body is not a handler call and an await of its result")
        if len(body) != 1 or len(small) != 1 or not isinstance(small[0], cst.Expr):
            raise _Refusal("the try body is not a single call")
        value = small[0].value
        awaited = isinstance(value, cst.Await)
        call = value.expression if isinstance(value, cst.Await) else value
        if not isinstance(call, cst.Call) or not _rooted_name(call.func):
            raise _Refusal("the try body is not a call of a handler")
        prefix = "await " if awaited else ""
        return f"{prefix}{self._wrapped(handler, call, multiline)}\n"

    def _gather(
        self, statement: cst.BaseStatement, handler: cst.ExceptHandler, multiline: bool
    ) -> str:
        """The gather statement with each handler call it fans out wrapped (the try goes: each
        handler's error is logged on its own instead of the first one only)."""
        found: list[cst.Call] = []

        class _Find(cst.CSTVisitor):
            def visit_Call(self, node: cst.Call) -> None:
                if _gathered_call(node) is not None:
                    found.append(_gathered_call(node))

        statement.visit(_Find())
        if len(found) != 1:
            raise _Refusal("the try body is not one gather of handler calls")
        inner = found[0]
        text = self._wrapped(handler, inner, False)
        new = statement.visit(_Replace(inner, cst.parse_expression(text)))
        if multiline:
            laid_out = self._gather_lines(statement, text)
            if laid_out is not None:
                return laid_out
        return cst.Module([]).code_for_node(new).strip() + "\n"

    def _gather_lines(self, statement: cst.BaseStatement, wrapped: str) -> str | None:
        """`[x = ][await ]gather(*(wrapped for h in hs), kw=...)` laid out one part per line
        (as a formatter would), or None for another shape."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        small = statement.body[0]
        lhs = ""
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            lhs = f"{self._code(small.targets[0].target)} = "
            value = small.value
        elif isinstance(small, cst.Expr):
            value = small.value
        else:
            return None
        prefix = "await " if isinstance(value, cst.Await) else ""
        call = value.expression if isinstance(value, cst.Await) else value
        if not isinstance(call, cst.Call) or _gathered_call(call) is None:
            return None
        comp = call.args[0].value
        assert isinstance(comp, (cst.GeneratorExp, cst.ListComp))
        opening, closing = ("(", ")") if isinstance(comp, cst.GeneratorExp) else ("[", "]")
        rest = "".join(f"    {self._code(a).rstrip(',').strip()},\n" for a in call.args[1:])
        comment = ""
        if statement.trailing_whitespace.comment is not None:
            comment = f"  {statement.trailing_whitespace.comment.value}"
        return (
            f"{lhs}{prefix}{self._code(call.func)}({comment}\n    *{opening}\n        {wrapped}\n"
            f"        {self._code(comp.for_in)}\n    {closing},\n{rest})\n"
        )

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


class _Replace(cst.CSTTransformer):
    """Replace one node (by identity) with another."""

    def __init__(self, old: cst.CSTNode, new: cst.CSTNode) -> None:
        super().__init__()
        self.old, self.new = old, new

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        return self.new if original_node is self.old else updated_node


def _rooted_name(node: cst.BaseExpression) -> bool:
    """A name or an attribute chain on a name (`handler`, `sub.callback`)."""
    while isinstance(node, cst.Attribute):
        node = node.value
    return isinstance(node, cst.Name)


def _gathered_call(node: cst.Call) -> cst.Call | None:
    """For `gather(*(h(e) for h in hs), ...)`: the `h(e)` it fans out, else None."""
    name = cst.helpers.get_full_name_for_node(node.func) or ""
    if name.rsplit(".", 1)[-1] != "gather" or not node.args or node.args[0].star != "*":
        return None
    comp = node.args[0].value
    if not isinstance(comp, (cst.GeneratorExp, cst.ListComp)):
        return None
    elt = comp.elt
    if isinstance(elt, cst.Call) and _rooted_name(elt.func):
        target = comp.for_in.target
        root = elt.func
        while isinstance(root, cst.Attribute):
            root = root.value
        if (
            isinstance(target, cst.Name)
            and isinstance(root, cst.Name)
            and root.value == target.value
        ):
            return elt
    return None


class _WrapCalls(cst.CSTTransformer):
    """Wrap the handler calls (`h(e)` -> `safe_handler(h)(e)`) and references (`h` ->
    `safe_handler(h)`) found at the given (line, column) positions."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, sites: dict[tuple[int, int], str]) -> None:
        super().__init__()
        self.sites = sites
        self.count = 0

    def _at(self, node: cst.CSTNode, kind: str) -> bool:
        start = self.get_metadata(PositionProvider, node).start
        return self.sites.get((start.line, start.column)) == kind

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if not self._at(original_node, "call"):
            return updated_node
        self.count += 1
        wrapper = cst.Call(func=cst.Name(HELPER_NAME), args=[cst.Arg(updated_node.func)])
        return updated_node.with_changes(func=wrapper)

    def _reference(self, original: cst.BaseExpression, updated: cst.BaseExpression) -> Any:
        # `sub` and `sub.callback` start at the same place: the text tells which is meant.
        if not self._at(original, f"ref:{cst.Module([]).code_for_node(original)}"):
            return updated
        self.count += 1
        return cst.Call(func=cst.Name(HELPER_NAME), args=[cst.Arg(updated)])

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> Any:
        return self._reference(original_node, updated_node)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> Any:
        return self._reference(original_node, updated_node)


# -- recognising dispatch in `ast` --------------------------------------------------------------
#: Words that make a file worth scanning for unguarded dispatch.
_SCAN_WORDS = re.compile(r"create_task|ensure_future|call_soon|call_later|gather|for\s")
_BUS_VERBS = re.compile(
    r"^_*(emit|publish|dispatch|fire|notify|broadcast|trigger|invoke|safe_invoke|deliver|send)"
)
_SUBSCRIBERS = re.compile(
    r"(handler|subscriber|listener|callback|observer|hook|receiver|consumer|sink)s?\b", re.I
)
_AWAIT_CHECKS = {"iscoroutine", "isawaitable", "isfuture", "iscoroutinefunction"}


class _Scopes:
    """For a node, the callables its function received or iterates over: parameters, `for`
    targets and comprehension targets around it (within the same function)."""

    def __init__(self, tree: ast.Module) -> None:
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node

    def function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        current = self.parents.get(node)
        while current is not None and not isinstance(
            current, (ast.FunctionDef, ast.AsyncFunctionDef)
        ):
            current = self.parents.get(current)
        return current

    def callables(self, node: ast.AST) -> tuple[set[str], set[str]]:
        """(names called as handlers: parameters and loop/comprehension targets; owners whose
        attributes are handlers: targets of loops over subscribers, `for sub in
        self._subscribers` or any loop in an emit/publish/dispatch function)."""
        names: set[str] = set()
        owners: set[str] = set()
        function = self.function(node)
        bus = function is not None and _BUS_VERBS.match(function.name) is not None
        current = self.parents.get(node)
        while current is not None:
            targets: list[tuple[ast.AST, ast.AST]] = []
            if isinstance(current, (ast.For, ast.AsyncFor)):
                targets = [(current.target, current.iter)]
            elif isinstance(current, (ast.GeneratorExp, ast.ListComp, ast.SetComp)):
                targets = [(comp.target, comp.iter) for comp in current.generators]
            elif isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                a = current.args
                names |= {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
                if a.vararg:
                    names.add(a.vararg.arg)
                return names - {"self", "cls"}, owners
            for target, iterable in targets:
                found = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
                names |= found
                if bus or _SUBSCRIBERS.search(_text(iterable)):
                    owners |= found
            current = self.parents.get(current)
        return set(), set()


def _root(expr: ast.AST) -> str | None:
    while isinstance(expr, ast.Attribute):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _handler_call(expr: ast.AST | None, names: tuple[set[str], set[str]]) -> ast.Call | None:
    """`h(e)` / `await h(e)` where `h` is a received callable, or `sub.callback(e)` where `sub`
    is a subscriber being iterated over (`db.execute(...)` on a parameter is not a dispatch)."""
    if isinstance(expr, ast.Await):
        expr = expr.value
    if isinstance(expr, ast.Call) and _handler_ref(expr.func, names):
        return expr
    return None


def _handler_ref(expr: ast.AST, names: tuple[set[str], set[str]]) -> bool:
    if isinstance(expr, ast.Name):
        return expr.id in names[0]
    return isinstance(expr, ast.Attribute) and _root(expr) in names[1]


def _gather_elt(call: ast.AST) -> ast.Call | None:
    if not isinstance(call, ast.Call):
        return None
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name != "gather" or not call.args or not isinstance(call.args[0], ast.Starred):
        return None
    comp = call.args[0].value
    if not isinstance(comp, (ast.GeneratorExp, ast.ListComp)) or len(comp.generators) != 1:
        return None
    target = comp.generators[0].target
    elt = comp.elt
    if isinstance(elt, ast.Call) and isinstance(target, ast.Name) and _root(elt.func) == target.id:
        return elt
    return None


def _shape(node: ast.Try | ast.TryStar, scopes: _Scopes) -> str | None:
    """Which dispatch idiom a try around handler calls is: `call` (`[await] h(e)`),
    `await-if` (`r = h(e)` then `if iscoroutine(r)/isawaitable(r): await r`), `gather`
    (`[await] gather(*(h(e) for h in hs))`), or None."""
    if node.orelse or node.finalbody or len(node.handlers) != 1:
        return None
    body = node.body
    names = scopes.callables(node)
    if len(body) == 1:
        stmt = body[0]
        value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
        inner = value.value if isinstance(value, ast.Await) else value
        if _gather_elt(inner) is not None:
            return "gather"
        if isinstance(stmt, ast.Expr) and _handler_call(stmt.value, names) is not None:
            return "call"
        return None
    if len(body) == 2 and isinstance(body[0], ast.Assign) and isinstance(body[1], ast.If):
        assign, check = body
        if len(assign.targets) != 1 or not isinstance(assign.targets[0], ast.Name):
            return None
        result = assign.targets[0].id
        if not isinstance(assign.value, ast.Call) or not _handler_ref(assign.value.func, names):
            return None
        test = check.test
        if not (
            isinstance(test, ast.Call)
            and len(test.args) == 1
            and isinstance(test.args[0], ast.Name)
            and test.args[0].id == result
            and (
                test.func.attr
                if isinstance(test.func, ast.Attribute)
                else getattr(test.func, "id", "")
            )
            in _AWAIT_CHECKS
        ):
            return None
        if check.orelse or len(check.body) != 1:
            return None
        awaited = check.body[0]
        value = awaited.value if isinstance(awaited, (ast.Expr, ast.Assign)) else None
        if (
            isinstance(value, ast.Await)
            and isinstance(value.value, ast.Name)
            and value.value.id == result
        ):
            return "await-if"
    return None


def _column(lines: list[str], line: int, offset: int) -> int:
    """ast's UTF-8 byte offset as a character column (what libcst counts)."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return len(text.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))


_MAX_TEXT_NODES = 400


def _text(node: ast.AST) -> str:
    """`ast.unparse(node)` for an expression of reasonable size; "" for a huge one (a
    1000-long attribute chain would overflow unparse's recursion): no name matches it."""
    for count, _ in enumerate(ast.walk(node)):  # iterative, so bounded whatever the depth
        if count > _MAX_TEXT_NODES:
            return ""
    return ast.unparse(node)


def _guarded(node: ast.AST, scopes: _Scopes) -> bool:
    current = scopes.parents.get(node)
    while current is not None and not isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if isinstance(current, (ast.Try, ast.TryStar)) and current.handlers:
            return True
        current = scopes.parents.get(current)
    return False


def _unguarded_sites(
    tree: ast.Module, scopes: _Scopes, lines: list[str]
) -> tuple[list[tuple[tuple[int, int], str]], list[tuple[int, int, str]]]:
    """Dispatch with no isolation at all: `create_task(h(e))` / `ensure_future(h(e))` (the
    error is lost with the task), `loop.call_soon(h, e)`, `await gather(*(h(e) for h in hs),
    return_exceptions=True)` whose results are dropped (errors silently discarded): their
    positions to wrap. And subscriber loops calling each one directly (`for h in handlers:
    h(e)` in an emit/publish/dispatch method): one failure stops the rest."""
    calls: list[tuple[tuple[int, int], str]] = []
    loops: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            receiver = _text(node.func.value)
            names = scopes.callables(node)
            if attr in ("create_task", "ensure_future") and (
                receiver == "asyncio" or receiver.endswith("loop")
            ):
                inner = _handler_call(node.args[0] if node.args else None, names)
                if inner is not None and not isinstance(node.args[0], ast.Await):
                    at = (inner.lineno, _column(lines, inner.lineno, inner.col_offset))
                    calls.append((at, "call"))
            elif attr in ("call_soon", "call_soon_threadsafe", "call_later", "call_at") and (
                receiver.endswith("loop")
            ):
                index = 1 if attr in ("call_later", "call_at") else 0
                ref = node.args[index] if len(node.args) > index else None
                if ref is not None and _handler_ref(ref, names):
                    at = (ref.lineno, _column(lines, ref.lineno, ref.col_offset))
                    calls.append((at, f"ref:{_text(ref)}"))
        if isinstance(node, ast.Expr):
            value = node.value.value if isinstance(node.value, ast.Await) else node.value
            elt = _gather_elt(value)
            dropped = isinstance(value, ast.Call) and any(
                k.arg == "return_exceptions"
                and not (isinstance(k.value, ast.Constant) and not k.value.value)
                for k in value.keywords
            )
            if elt is not None and dropped and not _guarded(node, scopes):
                calls.append(((elt.lineno, _column(lines, elt.lineno, elt.col_offset)), "call"))
        if isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name):
            function = scopes.function(node)
            iterable = _text(node.iter)
            if function is None or not (
                _BUS_VERBS.match(function.name) or _SUBSCRIBERS.search(iterable)
            ):
                continue
            for stmt in node.body:
                if not isinstance(stmt, ast.Expr):
                    continue
                call = _handler_call(stmt.value, ({node.target.id}, {node.target.id}))
                if call is None or _guarded(stmt, scopes):
                    continue
                loops.append(
                    (
                        call.lineno,
                        _column(lines, call.lineno, call.col_offset),
                        f"`for {node.target.id} in {iterable}:` calls each subscriber directly"
                        f" in {function.name}",
                    )
                )
    return calls, loops
