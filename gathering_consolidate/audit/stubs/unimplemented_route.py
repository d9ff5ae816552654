from __future__ import annotations

from collections.abc import Iterator

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS, is_test_path
from ..base import FileContext, Invalid, Valid
from .helpers import StubCheck, is_unimplemented_body, route_of


class UnimplementedRoute(StubCheck):
    """A route handler whose body is only `pass`, `...` or `raise NotImplementedError`.

    ## Why is this bad?
    The route is published in the OpenAPI schema, so clients and the dashboard call it, but it
    answers `null` with a 200 (`pass`, `...`) or a 500 (`NotImplementedError`). Either way the
    feature is missing, and a consolidation must plan it rather than discover it.

    Handlers are functions decorated with `@<router>.get/post/put/patch/delete/head/options/
    websocket/api_route("<path>")` on an `APIRouter`/`FastAPI` object (created in the file, or a
    name such as `router`/`app`). A docstring alone counts as an empty body. Not reported: route
    handlers that answer an explicit error (`raise HTTPException(status_code=501)` is honest),
    and plain functions with such bodies (interfaces, protocol methods).
    Evidence: `body` and `route`.
    """

    id, name = "STB003", "unimplemented-route"
    severity = Severity.MEDIUM
    VALID = [
        Valid("""
            from fastapi import APIRouter, HTTPException
            router = APIRouter()

            @router.post("/exports")
            async def export():
                raise HTTPException(status_code=501, detail="exports are not available yet")
        """),
        Valid("""
            class Exporter:
                def export(self):
                    raise NotImplementedError
        """),
    ]
    INVALID = [
        Invalid(
            """
            from fastapi import APIRouter
            router = APIRouter(prefix="/pipelines")

            @router.post("/{pipeline_id}/pause")
            async def pause_pipeline(pipeline_id: int):
                raise NotImplementedError("pausing is not supported yet")
            """,
            line=5,
            evidence={
                "body": "raise NotImplementedError",
                "route": "POST /pipelines/{pipeline_id}/pause",
            },
        ),
        Invalid(
            """
            from app.main import app

            @app.api_route("/health/deep", methods=["get", "head"])
            def deep_health():
                \"\"\"Check every dependency.\"\"\"
                ...
            """,
            line=4,
            evidence={"body": "...", "route": "GET,HEAD /health/deep"},
        ),
        Invalid(
            """
            import fastapi
            api = fastapi.FastAPI()

            @api.delete("/users/{user_id}")
            def delete_user(user_id: int):
                pass
            """,
            evidence={"body": "pass", "route": "DELETE /users/{user_id}"},
        ),
    ]

    @classmethod
    def candidates(cls, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        for func in ctx.nodes(*FUNCTION_DEFS):
            route = route_of(ctx, func)
            body = is_unimplemented_body(func) if route else None
            if route and body:
                yield ctx.finding(
                    cls,
                    func,
                    f"route `{route}` is not implemented: its handler is `{body}`",
                    evidence={"body": body, "route": route},
                    snippet=ctx.lines[func.lineno - 1],
                )
