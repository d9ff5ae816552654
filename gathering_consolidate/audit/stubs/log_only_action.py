from __future__ import annotations

import ast
from collections.abc import Iterator

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS, is_test_path, own_nodes
from ..base import FileContext, Invalid, Valid
from .helpers import (
    StubCheck,
    body_without_docstring,
    in_test_double,
    is_abstract,
    is_emit_call,
    is_inert_call,
    is_log_call,
    is_read_call,
    promises_action,
)

#: Class names of deliberate no-op objects and interfaces (test doubles: `in_test_double`).
_NULL_OBJECT_PREFIXES = ("Base", "Abstract", "Null", "Noop", "NoOp")
#: Methods that register a subscriber for an event (`bus.subscribe("run", self._run)`).
_SUBSCRIBE_METHODS = frozenset(
    {
        "subscribe",
        "on",
        "add_listener",
        "add_event_listener",
        "add_handler",
        "register_handler",
        "listen",
        "connect",
        "add_subscriber",
    }
)


class LogOnlyAction(StubCheck):
    """A function named for an action (`run_now`, `send_*`) only logs, emits or returns a message.

    ## Why is this bad?
    `POST /actions/{id}/run-now` answers `{"status": "triggered"}` and writes a log line, but
    nothing runs. The client, the operator reading the log and the test that checks the response
    all believe the action happened.

    The name must contain an action verb (run, execute, send, trigger, dispatch, deliver, start,
    stop, cancel, retry, sync, deploy, process, notify, export, ...) and not start with a query or
    hook word (`get_`, `list_`, `is_`, `on_`, `emit_`, `log_`, ...). Reported at the `def` line
    when the body, apart from its docstring, consists only of logging (`logger.*`, `logging.*`,
    `print`), event emission (`emit`, `publish`, `broadcast`, ...), sleeps, look-ups that answer a
    404 (`get_*`, `find_*`, `fetch_*`, with `raise HTTPException` guards), value building and a
    `return`; and it logs or emits at least once.

    Not reported: bodies that always raise (`raise NotImplementedError`, an HTTP 501: honest, and
    STB003 covers routes), abstract and protocol methods, methods of base/null-object classes
    (`Base*`, `Abstract*`, `Null*`, `Noop*`, ABCs) and of test doubles (`Mock*`, `Fake*`,
    `Dummy*`, `Stub*`, `Test*`), test code, any function that calls something else (a service, a
    repository, `create_task`) or assigns into an object (`directives[:] = []`, `job.state = x`:
    that is its effect), and a method that emits an event its own class subscribes a handler to
    (`self.bus.subscribe("export", self._export)`: the subscriber does the work).
    Evidence: `action` (the name), `only` (`log`, `emit`), `route`.

    ## Known problems
    A function that publishes an event that a subscriber elsewhere (another class or module) turns
    into the real work is reported: suppress it with the subscriber named as the reason.
    """

    id, name = "STB002", "log-only-action"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            import logging
            logger = logging.getLogger(__name__)

            async def run_now(action_id: int, scheduler):
                logger.info("Manual run of %s", action_id)
                await scheduler.trigger_action(action_id)
                return {"status": "triggered"}
        """),
        Valid("""
            import logging
            logger = logging.getLogger(__name__)

            def send_digest(user):
                logger.warning("digests are disabled")
                raise NotImplementedError("digests")
        """),
        Valid("""
            import logging
            from abc import ABC
            logger = logging.getLogger(__name__)

            class BaseNotifier(ABC):
                def send(self, message):
                    logger.debug("no transport configured: %s", message)

            class Notifier:
                def on_send(self, message):
                    logger.info("sent %s", message)
        """),
        Valid("""
            import logging
            logger = logging.getLogger(__name__)

            def get_run_status(run_id):
                logger.debug("status of %s", run_id)
                return {"run_id": run_id}
        """),
        Valid("""
            import logging
            log = logging.getLogger(__name__)

            def process_revision_directives(context, revision, directives):
                if directives[0].upgrade_ops.is_empty():
                    directives[:] = []
                    log.info("No changes found skipping revision creation.")
        """),
        Valid("""
            class Exporter:
                def __init__(self, bus):
                    self.bus = bus
                    self.bus.subscribe("export.requested", self._export)

                def export(self, report_id):
                    self.bus.emit("export.requested", report_id)

                def _export(self, report_id):
                    write_report(report_id)

            class MockMailer:
                def send(self, message):
                    print("sent", message)
        """),
        Valid(
            """
            import logging
            logger = logging.getLogger(__name__)

            def send_email(to, body):
                logger.info("pretend to send to %s", to)
            """,
            path="tests/fakes.py",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import logging
            from fastapi import APIRouter
            logger = logging.getLogger(__name__)
            router = APIRouter(prefix="/scheduled-actions")

            @router.post("/{action_id}/run-now")
            async def run_now(action_id: int):
                \"\"\"Run the action immediately.\"\"\"
                logger.info("Manual run of scheduled action %s requested", action_id)
                return {"status": "triggered", "message": f"Action {action_id} triggered"}
            """,
            line=7,
            evidence={
                "action": "run_now",
                "only": ["log"],
                "route": "POST /scheduled-actions/{action_id}/run-now",
            },
        ),
        Invalid(
            """
            from fastapi import HTTPException
            from app.events import bus

            async def send_invoice(invoice_id: int, repo):
                invoice = await repo.get_invoice(invoice_id)
                if invoice is None:
                    raise HTTPException(status_code=404)
                await bus.publish("invoice.sent", {"id": invoice_id})
                return {"sent": True}
            """,
            line=4,
            evidence={"only": ["emit"]},
        ),
        Invalid(
            """
            import logging
            log = logging.getLogger(__name__)

            class Deployer:
                def execute(self, release):
                    log.info("deploying %s", release.tag)
            """,
            line=5,
            evidence={"action": "execute"},
        ),
    ]

    @classmethod
    def candidates(cls, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        for func in ctx.nodes(*FUNCTION_DEFS):
            if not promises_action(func.name) or is_abstract(ctx, func):
                continue
            if _in_null_object(ctx, func):
                continue
            only = _only_logs_or_emits(ctx, func)
            if only:
                yield ctx.finding(
                    cls,
                    func,
                    f"`{func.name}` promises an action but only "
                    + " and ".join({"log": "logs", "emit": "emits an event"}[o] for o in only),
                    evidence={"action": func.name, "only": only},
                    snippet=ctx.lines[func.lineno - 1],
                )


def _in_null_object(ctx: FileContext, func: ast.AST) -> bool:
    parent = ctx.parents.get(func)
    if in_test_double(ctx, func):
        return True
    if not isinstance(parent, ast.ClassDef):
        return False
    if parent.name.startswith(_NULL_OBJECT_PREFIXES):
        return True
    return any((ctx.qualified_name(b) or "") in {"abc.ABC", "ABC"} for b in parent.bases)


_ALLOWED = (ast.Expr, ast.Return, ast.Assign, ast.AnnAssign, ast.If, ast.Pass, ast.Raise)


def _only_logs_or_emits(ctx: FileContext, func: ast.AST) -> list[str]:
    """`["log"]`, `["emit"]` or both when the body does nothing else; `[]` otherwise."""
    body = body_without_docstring(func)
    if not body or any(isinstance(stmt, ast.Raise) for stmt in body):
        return []
    for node in own_nodes(func, ctx):
        if isinstance(node, ast.stmt) and not isinstance(node, _ALLOWED):
            return []
        if isinstance(node, ast.Raise) and not _is_http_error(ctx, node):
            return []
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _mutates(node):
            return []  # `directives[:] = []`, `job.state = ...`: the assignment is the work
    only: set[str] = set()
    for node in own_nodes(func, ctx):
        if not isinstance(node, ast.Call):
            continue
        if is_log_call(ctx, node):
            only.add("log")
        elif is_emit_call(node):
            only.add("emit")
        elif not (is_inert_call(ctx, node) or is_read_call(ctx, node)):
            return []
    if only == {"emit"} and _subscribed_in_class(ctx, func):
        return []
    return sorted(only)


def _mutates(node: ast.Assign | ast.AnnAssign) -> bool:
    """An assignment into an object (`x[...] = `, `x.attr = `) rather than to a local name."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    pending = list(targets)
    while pending:
        target = pending.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            pending.extend(target.elts)
        elif isinstance(target, (ast.Subscript, ast.Attribute)):
            return True
    return False


def _event_names(call: ast.Call) -> set[str]:
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return {first.value}
    return {ast.unparse(first)} if first is not None else set()


def _subscribed_in_class(ctx: FileContext, func: ast.AST) -> bool:
    """The class of `func` registers a subscriber for an event `func` emits: the subscriber does
    the work (an event-driven design, not a log-only stub)."""
    owner = ctx.parents.get(func)
    if not isinstance(owner, ast.ClassDef):
        return False
    emitted: set[str] = set()
    for node in own_nodes(func, ctx):
        if isinstance(node, ast.Call) and is_emit_call(node):
            emitted |= _event_names(node)
    for node in ast.walk(owner):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _SUBSCRIBE_METHODS
            and _event_names(node) & emitted
        ):
            return True
    return False


def _is_http_error(ctx: FileContext, node: ast.Raise) -> bool:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    name = (ctx.qualified_name(exc) or "") if exc is not None else ""
    return name.rsplit(".", 1)[-1] in {"HTTPException", "RequestValidationError"}
