from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ...model import Finding, Location, Severity, fingerprint
from ..base import Invalid, ProjectContext, Valid
from ..stubs.helpers import reaching_route
from .helpers import CallSite, Registration, StateCheck, StateFacts


class PerRequestRegistration(StateCheck):
    """A request calls code that registers handlers on a module-level object, once per request.

    ## Why is this bad?
    `configure()` maps commands to handlers with `app.command("/list")(handle_list)` on the
    module-level bot `app`. Called once at start-up, that is a registry; called from the request
    path (to pick the configuration of the tenant that sent the request), it appends the same
    listeners again on every request. The list grows with traffic and is never trimmed, and each
    event runs every copy of its handler.

    A registration is a decorator applied by a call in a function body,
    `obj.method(...)(handler)`, or a nested `def` decorated with `@obj.method(...)`, where `obj`
    is a module-level object of the project (`app = App(...)`, imported or not) rather than a
    parameter or a local. Reported at the call, in a function reached from a route handler (or in
    the handler), of a function that makes such registrations.

    Not reported: registrations made at import or start-up (no route reaches them), on an object
    created in the function (`app = FastAPI()` in a factory) or passed in as a parameter, and
    calls the project cannot resolve.
    Evidence: `registers` (the function called), `target` (the object), `methods`, `route`.

    ## Known problems
    Whether the library appends or replaces is not known: a registry keyed by command name that
    replaces its entry is reported too.
    """

    id, name = "MEM003", "per-request-registration"
    severity = Severity.MEDIUM
    VALID = [
        Valid(
            """
            from app.bot import app

            def configure(config):
                app.command(config.list_command)(handle_list)

            def handle_list(ack):
                ack()

            configure(load_config())
            """,
            files={"app/bot.py": "from slack_bolt import App\napp = App()\n"},
        ),
        Valid("""
            from fastapi import APIRouter, FastAPI

            def create_app(routers: list[APIRouter]) -> FastAPI:
                app = FastAPI()
                for router in routers:
                    app.include_router(router)
                app.get("/health")(lambda: {"ok": True})
                return app
        """),
    ]
    INVALID = [
        Invalid(
            """
            from fastapi import APIRouter, Request
            from app.commands import configure
            router = APIRouter()

            def handler_for(request: Request):
                config = load_config(request.headers)
                configure(config)
                return make_handler(config)

            @router.post("/slack/command")
            async def slack_command(request: Request):
                return await handler_for(request).handle(request)
            """,
            path="app/api.py",
            files={
                "app/bot.py": "from slack_bolt import App\napp = App()\n",
                "app/commands.py": """
                    from app.bot import app

                    def configure(config):
                        app.command(config.list_command)(handle_list)

                    def handle_list(ack):
                        ack()
                """,
            },
            line=7,
            evidence={
                "registers": "app.commands.configure",
                "target": "app.bot.app",
                "methods": ["command"],
                "route": "POST /slack/command",
            },
        ),
    ]

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterable[Finding]:
        return per_request_registrations(self, facts, project.memo.setdefault("mem.reach", {}))


def per_request_registrations(
    check: StateCheck, facts: Mapping[str, StateFacts], memo: dict[str, Any]
) -> Iterator[Finding]:
    objects = {o for fact in facts.values() for o in fact.objects}
    registrars: dict[str, list[Registration]] = {}
    for fact in facts.values():
        for registration in fact.registrations:
            if registration.target in objects:
                registrars.setdefault(registration.function, []).append(registration)
    if not registrars:
        return
    reached = reaching_route(facts, memo)
    for path in sorted(facts):
        reported: set[str] = set()
        for site in facts[path].calls:
            if site.callee not in registrars or site.caller in reported:
                continue
            hit = reached.get(site.caller)
            if hit is None:
                continue
            reported.add(site.caller)
            yield _finding(check, path, site, registrars[site.callee], hit)


def _finding(
    check: StateCheck,
    path: str,
    site: CallSite,
    registrations: list[Registration],
    hit: tuple[str, list[str]],
) -> Finding:
    target = registrations[0].target
    short = target.rsplit(".", 1)[-1]
    methods = sorted({r.method for r in registrations})
    callee = site.callee.rsplit(".", 1)[-1]
    caller = site.caller.rsplit(".", 1)[-1]
    location = Location(path, site.line, site.col, site.end_line, site.end_col)
    return Finding(
        rule=check.id,
        name=check.name,
        message=(
            f"`{caller}` runs on every request to `{hit[0]}` and calls `{callee}`, which"
            f" registers handlers on the module-level `{short}` ({', '.join(methods)}):"
            " the registrations pile up with each request"
        ),
        severity=check.severity,
        location=location,
        symbol=site.caller,
        evidence={
            "registers": site.callee,
            "target": target,
            "methods": methods,
            "route": hit[0],
            "chain": [*hit[1], site.callee],
        },
        fix=check.fix,
        fingerprint=fingerprint(check.id, path, site.caller, site.snippet),
    )
