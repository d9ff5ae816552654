from __future__ import annotations

import ast
from collections.abc import Iterator

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS, is_test_path, own_nodes
from ..base import FileContext, Invalid, Valid
from .helpers import (
    StubCheck,
    in_test_double,
    is_abstract,
    is_sleep_call,
    markers,
    promises_action,
    status_writes,
    work_calls,
)


class FakeCompletion(StubCheck):
    """A function records a terminal status or success while a marker says the work is not done.

    ## Why is this bad?
    A run marked `completed` (or a `return True`, `{"success": True}`) that a `TODO: actually
    execute`, "simulated" or "not implemented" comment admits is fake looks finished to every
    caller, dashboard and test. It is the costliest surprise of a consolidation: the feature has
    to be built, not fixed, and the tests that pin the fake result have to change with it.

    Reported at the `def` line, when the function both writes a terminal status (`"completed"`,
    `"success"`, `"done"`, `"finished"`, `"sent"`, ..., as a literal, an enum member such as
    `RunStatus.COMPLETED`, a `status=` keyword, a `success=True` keyword (`Response(success=True,
    message="triggered")`), a `{"status": ...}` entry, an SQL
    `SET status = 'completed'`, a `mark_completed()` call, `return True`) and carries a marker:

    - a strong one anywhere in its own comments, docstring or log messages: "simulated",
      "not implemented", "placeholder", "stub", "fake", "dummy", "mock", "pretend", "no-op";
    - a `TODO`/`FIXME`/`XXX`/`HACK` that says the work is missing ("implement", "actually",
      "execute", "wire up", "for now"), or any such marker when the function does no work at all
      (it only logs, emits, sleeps and records the status);
    - with no marker, a `sleep()` standing in for the work of a function that does nothing else.

    Not reported: a `TODO` about something else in a function that does its work ("TODO: add
    retries" after the real call), `return True` from a predicate (`is_*`, `has_*`, `compare_*`,
    `matches_*`, ...: it answers a question, it claims no work) or from a function that does work
    and is not named for an action (`_check_close`, `set_ok_domain`), abstract methods, test code
    and test doubles wherever they live (methods of `Mock*`, `Fake*`, `Dummy*`, `Stub*`, `Test*`
    classes: fakes are on purpose there), markers of nested functions, and tool comments
    (`# noqa`, `# consolidate: ...`).
    Evidence: `marker`, `status`, and `route`, the nearest route whose handler reaches the
    function through the call graph (None if no route does).

    ## Known problems
    Method calls on receivers whose type is unknown are linked by name only when the project
    defines one function of that name, so `route` can be None for code reached through such calls.
    """

    id, name = "STB001", "fake-completion"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            def set_ok_domain(self, cookie, request):
                # XXX should be compared with other implementations, a losing battle.
                domain = cookie.domain
                if self.is_blocked(domain):
                    return False
                return True
        """),
        Valid("""
            def finish_run(db, run_id, result):
                db.save_result(run_id, result)
                # TODO: add retries on transient errors
                db.update_run(run_id, status="completed")
        """),
        Valid("""
            async def execute(run):
                outputs = await run_nodes(run.nodes)
                run.status = "completed"
                return outputs
        """),
        Valid(
            """
            class FakeRunner:
                def run(self, job):
                    # fake runner for the tests
                    job.status = "completed"
            """,
            path="tests/helpers.py",
        ),
        Valid("""
            class MockTool:
                def execute(self, job):
                    # mock: pretend the tool ran
                    return {"status": "completed"}
        """),
        Valid("""
            def sync_accounts(client):
                # TODO: implement paging
                client.sync()
                return {"status": "running"}
        """),
        Valid("""
            def compare_server_default(column, default):
                # TODO: this is not really covered anymore?
                return True

            def is_enabled(flag):
                # FIXME: read from settings
                return True
        """),
        Valid("""
            from abc import ABC, abstractmethod
            class Step(ABC):
                @abstractmethod
                def run(self):
                    # not implemented in the base class
                    return True
        """),
    ]
    INVALID = [
        Invalid(
            """
            from fastapi import APIRouter
            router = APIRouter(prefix="/pipelines")

            @router.post("/{pipeline_id}/run")
            async def run_pipeline(pipeline_id: int, db):
                run = db.execute_one("INSERT INTO runs (status) VALUES ('running') RETURNING id")
                # TODO: actually execute the nodes; simulated for now
                db.execute("UPDATE runs SET status = 'completed' WHERE id = %s", (run["id"],))
                return run
            """,
            line=5,
            evidence={
                "marker": "TODO: actually execute the nodes; simulated for now",
                "status": "completed",
                "route": "POST /pipelines/{pipeline_id}/run",
            },
            message="completed",
        ),
        Invalid(
            """
            import asyncio
            from enum import Enum

            class RunStatus(Enum):
                COMPLETED = "completed"

            async def execute_job(job):
                await asyncio.sleep(2)  # simulate the work
                job.status = RunStatus.COMPLETED
            """,
            line=7,
            evidence={"status": "completed", "route": None},
        ),
        Invalid(
            """
            def verify_signature(payload, signature):
                # TODO: check the signature
                return True
            """,
            evidence={"status": "success"},
        ),
        Invalid(
            """
            from pydantic import BaseModel

            class TriggerResponse(BaseModel):
                success: bool
                message: str

            def trigger_sync(source_id):
                # TODO: call the sync worker; for now just acknowledge
                return TriggerResponse(success=True, message="triggered")
            """,
            line=7,
            evidence={"status": "success", "written": "success=True"},
        ),
        Invalid(
            """
            import time
            def send_report(report):
                time.sleep(1)
                return {"success": True}
            """,
            evidence={"marker": "time.sleep() stands in for the work"},
        ),
        Invalid(
            """
            import logging
            log = logging.getLogger(__name__)

            def export_workspace(ws_id):
                log.info("Simulating export of %s", ws_id)
                mark_completed(ws_id)
            """,
            path="app/services/exports.py",
            files={
                "app/api.py": """
                    from fastapi import APIRouter
                    from app.services.exports import export_workspace
                    router = APIRouter()

                    @router.post("/workspaces/{ws_id}/export")
                    def export(ws_id: int):
                        export_workspace(ws_id)
                        return {"queued": True}
                """,
            },
            line=4,
            evidence={
                "marker": "Simulating export of %s",
                "route": "POST /workspaces/{ws_id}/export",
                "chain": ["app.api.export", "app.services.exports.export_workspace"],
            },
        ),
    ]

    @classmethod
    def candidates(cls, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        for func in ctx.nodes(*FUNCTION_DEFS):
            writes = status_writes(ctx, func)
            if not writes or is_abstract(ctx, func) or in_test_double(ctx, func):
                continue
            idle = not work_calls(ctx, func)
            if not idle and not promises_action(func.name):
                # A function that does work and is not named for an action (`_check_close`,
                # `set_ok_domain`) answers a question with `return True`; it claims no outcome.
                writes = [w for w in writes if w.how != "return True"]
                if not writes:
                    continue
            found = markers(ctx, func)
            decisive = [m for m in found if m.strong or m.missing_work] or (found if idle else [])
            if decisive:
                marker = decisive[0].text
            elif idle and _sleeps(ctx, func):
                marker = f"{_sleeps(ctx, func)}() stands in for the work"
            else:
                continue
            status = writes[0].status
            yield ctx.finding(
                cls,
                func,
                f"`{func.name}` reports `{status}` but says the work is not done ({marker!r})",
                evidence={"marker": marker, "status": status, "written": writes[0].how},
                snippet=ctx.lines[func.lineno - 1],
            )


def _sleeps(ctx: FileContext, func: ast.AST) -> str:
    for node in own_nodes(func, ctx):
        if isinstance(node, ast.Call) and is_sleep_call(ctx, node):
            duration = node.args[0] if node.args else None
            if isinstance(duration, ast.Constant) and duration.value in (0, 0.0):
                continue
            return ctx.qualified_name(node.func) or "sleep"
    return ""
