from collections.abc import Iterator, Mapping

from ...index import ModuleFacts
from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from .helpers import (
    ASYNC_TO_DEF,
    AsyncCheck,
    chain_text,
    hit_finding,
    route_label,
)
from .strategies import plans_for, strategy

_DB_FILES = {
    "app/db.py": """
        import psycopg

        class DatabaseService:
            def __init__(self, conninfo: str) -> None:
                self.conninfo = conninfo

            def execute(self, sql, params=None):
                with psycopg.connect(self.conninfo) as conn:
                    return conn.execute(sql, params).fetchall()

        def get_db() -> DatabaseService:
            return DatabaseService("postgresql://")
    """,
}


class BlockingCallInAsync(AsyncCheck):
    """A call in an `async def` that reaches a blocking call without `await`.

    ## Why is this bad?
    An `async def` runs on the event loop. A synchronous database call, `requests.get`,
    `time.sleep`, `subprocess.run` or file read inside it stops every other request, WebSocket
    and health check of the worker until it returns: latency grows with the number of concurrent
    users. Generic linters only know the standard blocking calls; this check follows the call
    graph across modules (imports, `self.` methods, `Depends(...)` providers, annotated
    parameters) into the project's own helpers and services, and reports the call in the async
    function with the whole chain as evidence (`handler -> helper -> DatabaseService.execute`).

    Blocking calls are the `pattern -> suggestion` entries of `rules/blocking.toml` (standard
    ones, and the project's DB service methods), extended with the `blocking-calls` and
    `db-calls` options. With the target's environment (`--python` or `$VIRTUAL_ENV`), a call into
    an installed library no catalogue names is followed through that library's source, read and
    never run, to those calls (evidence `source` "library source", `library`: the chain inside
    it, the distribution and version).

    Not reported: calls that are awaited, calls handed to a thread
    (`asyncio.to_thread(db.execute, ...)`, where `db.execute` is passed, not called), calls in
    lambdas and nested functions (they run later, if at all), and blocking work behind a
    first-access lazy load (ASY005 reports those).

    Each finding says which consolidation strategy is safe for the function (evidence
    `strategy`): B, make the route handler a plain `def` (codemod `async-to-def`), or A, await
    an async DB service (codemod `async-db`), and why not the other.

    ## Fix safety
    Unsafe either way. `async-to-def` moves the handler to FastAPI's threadpool (40 threads by
    default, shared by every sync handler); `async-db` changes the DB layer the handler uses.
    """

    id, name = "ASY001", "blocking-call-in-async"
    severity = Severity.HIGH
    fix = ASYNC_TO_DEF
    VALID = [
        Valid(
            """
            import asyncio

            async def pause():
                await asyncio.sleep(1)
            """
        ),
        Valid(
            """
            import asyncio
            from fastapi import APIRouter, Depends
            from app.db import DatabaseService, get_db

            router = APIRouter()

            @router.get("/items")
            def list_items(db: DatabaseService = Depends(get_db)):
                return db.execute("SELECT 1")

            @router.get("/threaded")
            async def threaded(db: DatabaseService = Depends(get_db)):
                return await asyncio.to_thread(db.execute, "SELECT 1")

            async def later(db: DatabaseService):
                def fetch():
                    return db.execute("SELECT 1")

                return lambda: db.execute("SELECT 1"), fetch
            """,
            path="app/api.py",
            files=_DB_FILES,
        ),
        Valid(
            """
            import functools
            import time

            @functools.cache
            def load_settings():
                time.sleep(1)
                return {}

            async def settings():
                return load_settings()
            """
        ),
        Valid(
            """
            class Clock:
                def sleep(self, seconds):
                    return seconds

            async def wait(clock: Clock):
                clock.sleep(1)
            """
        ),
        Valid(
            """
            import boto3

            s3 = boto3.client("s3")

            async def download_link(key: str):
                # signs locally: listed as non-blocking although other client calls block
                return s3.generate_presigned_url("get_object", Params={"Key": key})
            """
        ),
    ]
    INVALID = [
        Invalid(
            """
            from app.db import get_db

            class ItemStore:
                def __init__(self):
                    self.db = get_db()  # no annotation: typed from the factory

                def load(self, item_id):
                    return self.db.execute("SELECT * FROM items WHERE id = %s", (item_id,))

            async def show(item_id: int):
                return ItemStore().load(item_id)
            """,
            files=_DB_FILES,
            line=11,
            evidence={
                "chain": [
                    "app.module.show",
                    "app.module.ItemStore.load",
                    "app.db.DatabaseService.execute",
                ],
                "source": "project",
            },
        ),
        Invalid(
            """
            from typing import Any
            from app.db import DatabaseService

            class Reports:
                def __init__(self, db: Any):
                    self.db = db  # `Any`: typed from what the callers pass

                def totals(self):
                    return self.db.execute("SELECT count(*) FROM items")

            def summarize(store):  # no annotation: typed from the callers
                return store.totals()

            def build():
                return summarize(Reports(DatabaseService("postgresql://")))

            async def dashboard():
                return build()
            """,
            files=_DB_FILES,
            line=18,
            evidence={
                "chain": [
                    "app.module.dashboard",
                    "app.module.build",
                    "app.module.summarize",
                    "app.module.Reports.totals",
                    "app.db.DatabaseService.execute",
                ]
            },
        ),
        Invalid(
            """
            import smtplib

            class Mailer:  # a wrapper class around a blocking client
                def __init__(self, host):
                    self.host = host

                def send(self, to, body):
                    with smtplib.SMTP(self.host) as smtp:
                        smtp.sendmail("noreply@example.com", [to], body)

            mailer = Mailer("localhost")

            async def notify(to: str):
                mailer.send(to, "hello")
            """,
            line=14,
            evidence={"root": "smtplib.SMTP", "source": "project", "root_source": "catalogue"},
        ),
        Invalid(
            """
            import time

            async def pause():
                time.sleep(1)
            """,
            line=4,
            evidence={
                "chain": ["app.module.pause", "time.sleep"],
                "route": None,
                "source": "catalogue",
                "unknown_calls": [],
            },
            message="blocks the event loop",
        ),
        Invalid(
            """
            from fastapi import APIRouter, Depends
            from app.db import DatabaseService, get_db
            from app import reports

            router = APIRouter(prefix="/items")

            @router.get("/{item_id}")
            async def get_item(item_id: int, db: DatabaseService = Depends(get_db)):
                return reports.item_report(db, item_id)
            """,
            path="app/api.py",
            files={
                **_DB_FILES,
                "app/reports.py": """
                    from app.db import DatabaseService

                    def item_report(db: DatabaseService, item_id: int):
                        rows = db.execute("SELECT * FROM items WHERE id = %s", (item_id,))
                        return {"rows": rows}
                """,
            },
            line=9,
            evidence={
                "chain": [
                    "app.api.get_item",
                    "app.reports.item_report",
                    "app.db.DatabaseService.execute",
                ],
                "route": "GET /items/{item_id}",
                "strategy": "both",
            },
        ),
        Invalid(
            """
            import requests

            class Client:
                def __init__(self, session: requests.Session):
                    self.session = session

                def fetch(self, url):
                    return self.session.get(url)

                async def refresh(self):
                    return self.fetch("https://example.com")
            """,
            line=11,
            evidence={
                "chain": [
                    "app.module.Client.refresh",
                    "app.module.Client.fetch",
                    "requests.Session.get",
                ],
                "strategy": "none",
            },
        ),
    ]

    def finish(
        self, facts: Mapping[str, ModuleFacts], project: ProjectContext
    ) -> Iterator[Finding]:
        analysis = self.analysis(facts, project)
        plans = plans_for(analysis, project)
        for hit in analysis.hits:
            if hit.lazy:
                continue
            route = route_label(analysis, hit.function)
            chosen, why = strategy(analysis, hit.function, plans)
            kind = "a synchronous DB call" if hit.db else "blocking"
            via = f" via {chain_text(hit.chain[1:-1])}" if len(hit.chain) > 2 else ""
            where = f" in route {route}" if route else ""
            message = (
                f"`{hit.call.text}()` blocks the event loop{where}: it reaches `{hit.root}`"
                f" ({kind}){via} without `await`"
            )
            if hit.suggestion:
                message += f"; use {hit.suggestion}"
            library = analysis.library_evidence(hit.library_call) if hit.library_call else None
            if library is not None:
                where = " ".join(p for p in (library["distribution"], library["version"]) if p)
                message += (
                    f"; `{library['call']}` blocks inside {where or 'an installed library'}"
                    " (read from its installed source)"
                )
            yield hit_finding(
                self, analysis, project, hit, message, route, chosen, why, suggestion=hit.suggestion
            )
