from __future__ import annotations

import ast
from collections.abc import Iterator

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS, is_test_path, own_nodes
from ..base import FileContext, Invalid, Valid
from .helpers import (
    StubCheck,
    body_without_docstring,
    is_abstract,
    is_emit_call,
    is_inert_call,
    is_log_call,
    is_read_call,
    promises_action,
)

#: Class names of deliberate no-op objects and interfaces.
_NULL_OBJECT_PREFIXES = ("Base", "Abstract", "Null", "Noop", "NoOp", "Dummy", "Fake", "Mock")


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
    (`Base*`, `Abstract*`, `Null*`, `Noop*`, `Dummy*`, `Fake*`, `Mock*`, ABCs), test code, and any
    function that calls something else (a service, a repository, `create_task`).
    Evidence: `action` (the name), `only` (`log`, `emit`), `route`.

    ## Known problems
    A function that publishes an event that a subscriber turns into the real work is reported:
    the check cannot see that subscription. Suppress it with the subscriber named as the reason.
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
    return sorted(only)


def _is_http_error(ctx: FileContext, node: ast.Raise) -> bool:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    name = (ctx.qualified_name(exc) or "") if exc is not None else ""
    return name.rsplit(".", 1)[-1] in {"HTTPException", "RequestValidationError"}
