from collections.abc import Iterator, Mapping

from ...index import ModuleFacts
from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from .helpers import AsyncCheck, make_finding, route_label, short


class UnawaitedCoroutine(AsyncCheck):
    """A call to one of the project's own `async def` functions whose coroutine never runs.

    ## Why is this bad?
    Calling an `async def` only creates a coroutine; without `await` (or scheduling it) its body
    never runs. The caller carries on and reports success: an endpoint that "triggers" a
    scheduled action returns 200 and nothing happens; Python only logs "coroutine ... was never
    awaited" at garbage collection. The callee is resolved through the call graph (imports,
    `self.` methods, typed attributes), so `self.scheduler.trigger_action(id)` is checked too.

    Not reported: coroutines that are awaited, returned, or passed on to another call
    (`asyncio.create_task(...)`, `asyncio.gather(...)`, `background_tasks.add_task(...)`), and
    those assigned to a name that is used afterwards (also by a nested function or lambda, which
    may await it later).
    """

    id, name = "ASY004", "unawaited-coroutine"
    severity = Severity.HIGH
    VALID = [
        Valid(
            """
            import asyncio

            async def sleeper(delay):
                await asyncio.sleep(delay)

            async def main():
                first = sleeper(0.1)

                async def runner():
                    await first

                await runner()
            """
        ),
        Valid(
            """
            import asyncio

            async def refresh(item_id):
                return item_id

            async def handler(item_id):
                await refresh(item_id)
                task = asyncio.create_task(refresh(item_id))
                pending = refresh(item_id)
                await asyncio.gather(pending, task)
                return refresh(item_id)
            """
        ),
        Valid(
            """
            class Scheduler:
                def trigger(self, action_id):
                    return action_id

            async def run_now(scheduler: Scheduler, action_id):
                scheduler.trigger(action_id)
            """
        ),
    ]
    INVALID = [
        Invalid(
            """
            from fastapi import APIRouter

            router = APIRouter()

            class Scheduler:
                async def trigger_action(self, action_id):
                    return action_id

            scheduler = Scheduler()

            @router.post("/actions/{action_id}/trigger")
            async def trigger(action_id: int):
                scheduler.trigger_action(action_id)
                return {"status": "triggered"}
            """,
            line=13,
            evidence={"callee": "app.module.Scheduler.trigger_action"},
            message="never runs",
        ),
        Invalid(
            """
            async def notify(user):
                return user

            def signup(user):
                result = notify(user)
                return True
            """,
            line=5,
        ),
    ]

    def finish(
        self, facts: Mapping[str, ModuleFacts], project: ProjectContext
    ) -> Iterator[Finding]:
        analysis = self.analysis(facts, project)
        index = analysis.index
        for qualname, function in index.functions.items():
            for call, target in zip(function.calls, index.targets[qualname], strict=True):
                if target is None or target.kind != "func" or target.constructor:
                    continue
                callee = index.functions[target.name]
                if not callee.is_async or any(c.kind == "yield" for c in callee.constructs):
                    continue
                if call.usage == "discard" or (
                    call.usage == "assign" and call.assigned not in function.loads
                ):
                    pass
                else:
                    continue
                route = route_label(analysis, qualname)
                yield make_finding(
                    self,
                    analysis,
                    project,
                    qualname,
                    call.line,
                    call.col,
                    call.end_line,
                    call.end_col,
                    f"`{call.text}(...)` creates a coroutine of async `{short(target.name)}` that"
                    " is never awaited: its body never runs; `await` it or schedule it",
                    f"{call.text} {target.name}",
                    {
                        "callee": target.name,
                        "route": route,
                        "strategy": "none",
                        "strategy_reason": "a missing `await`, not blocking: neither codemod"
                        " applies; await the call (or schedule it with asyncio.create_task)",
                    },
                )
