from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from . import analysis, helpers


class BroadExceptSwallowed(analysis.ExceptionCheck):
    """A broad `except` handler that swallows the error.

    Broad: `except Exception`, `except BaseException`, a bare `except:`, or a tuple with one of
    them.

    ## Why is this bad?
    A database outage six layers down comes back as `None`, `False` or `[]`, and the user sees
    "no results" instead of an error; a failed token check or write looks like success. Catch the
    errors the try body can actually raise, and let the rest propagate.

    Reported at the `except` line, with the file's tier (`rules/tiers.toml`) and evidence:
    `behaviour` (`return_default`, `return_error`, `log_continue`, `pass` or `other`; `mixed`
    when it re-raises on some paths only), `logs_traceback`, `raises`
    (the exception types the try body can raise where the tool can tell: library calls mapped by
    `rules/exceptions.toml`, `raise` statements, the project's own functions followed across
    files, minus what inner handlers catch, each with the chain it came from), `narrow_to` (what
    `narrow-except` would catch instead, or `narrow_reason` why it cannot tell) and `dispatch`
    (an event-bus dispatch site, fixed by `isolate-handlers` instead).

    Unknown is an answer: a call the tool cannot resolve (a method on an untyped value, a
    library call that no mapping covers, deep in a callee too) is listed in `unresolved_calls`
    with the `calls` entry that would map it, and `narrow_to` stays empty: the handler is never
    narrowed to the errors of the calls the tool did resolve. A module rule is then only a
    hint in `narrow_reason`.

    Not reported: handlers that re-raise (EXC002, lower severity); `Exception` bound to something
    else by an import; intentional isolation sites, that is handlers inside a function named
    `safe_handler` (the wrapper `isolate-handlers` writes into the target) that log the traceback.

    ## Tiering
    From what the handler protects, not from its folder: tier 1 when the try body or the
    handler reaches, directly or through the project's own functions, authentication, tokens,
    secrets or crypto, a database write (a session's `add`/`commit`, a statement that writes, a
    query runner) or payments; tier 2 when it runs on a request path (a route handler or a
    function one reaches), in background work (a task, a scheduled job, a coroutine handed to
    `create_task`), or where the tool cannot prove it does not (callers through plugins and
    untyped receivers); tier 3 at import time, in command-line scripts, tests and migrations.
    `evidence["tier_reason"]` says why (the chain to the sensitive call, or the entry point).
    The vocabulary is the `[meaning]` table of `rules/tiers.toml`; path globs in the project's
    own `[tool.gathering-consolidate.tiers]` override it. The EXC summary table counts handlers
    by tier and behaviour, and per file, from run to run.

    ## Options
    `calls` and `modules` extend `rules/exceptions.toml`
    (`[tool.gathering-consolidate.checks.EXC]`).

    ## Fix safety
    Unsafe: narrowing lets every other error propagate, which is the point and changes
    behaviour. `narrow-except --tier N --unsafe-fixes` narrows the handlers it has a mapping for
    and leaves the others, saying why; `--reraise` also re-raises after the logging.
    """

    id, name = "EXC001", "broad-except-swallowed"
    severity = Severity.HIGH
    fix = helpers.NARROW_FIX
    VALID = [
        Valid("""
            import logging
            log = logging.getLogger(__name__)

            def save(db, row):
                try:
                    db.insert(row)
                except Exception:
                    log.exception("save failed")
                    raise
        """),
        Valid("""
            def parse(raw):
                try:
                    return int(raw)
                except ValueError:
                    return None
        """),
        Valid(
            """
            import functools
            import logging

            def safe_handler(func):
                log = logging.getLogger(func.__module__)

                @functools.wraps(func)
                async def wrapper(*args, **kwargs):
                    try:
                        return await func(*args, **kwargs)
                    except Exception:
                        log.exception("handler %s failed", func.__qualname__)
                        return None

                return wrapper
            """,
            path="app/isolation.py",
        ),
        Valid("""
            from app.errors import AppError as Exception

            def load(store):
                try:
                    return store.load()
                except Exception:
                    return None
        """),
    ]
    INVALID = [
        Invalid(
            """
            def close(conn):
                try:
                    conn.close()
                except Exception:
                    pass
            """,
            path="app/db/pool.py",
            line=4,
            # Closing a connection writes nothing; no entry point is seen to reach `close`, so
            # it is not proven off the request path: tier 2 (the folder name does not decide).
            tier=2,
            evidence={"behaviour": "pass", "logs_traceback": False},
            message="silently drops it",
        ),
        Invalid(
            """
            import jwt

            def peek(token):
                try:
                    return jwt.decode(token, options={"verify_signature": False})
                except Exception:
                    return {}
            """,
            path="app/api/auth.py",
            tier=1,
            evidence={
                "behaviour": "return_default",
                "narrow_to": ["jwt.PyJWTError"],
                "raises": [{"type": "jwt.PyJWTError", "via": "jwt.decode() at app/api/auth.py:5"}],
            },
        ),
        Invalid(
            """
            import json
            import logging
            logger = logging.getLogger(__name__)

            def seeds(raw):
                data = []
                try:
                    data = json.loads(raw)
                except:
                    logger.warning("bad seed list")
                return data
            """,
            path="app/skills/seed.py",
            tier=2,
            evidence={"behaviour": "log_continue", "catches": "bare", "narrow_to": ["ValueError"]},
        ),
        Invalid(
            """
            from app.db.service import Database

            def healthy(db: Database) -> bool:
                try:
                    return db.one("SELECT 1") is not None
                except Exception:
                    return False
            """,
            files={
                "app/db/service.py": """
                    import psycopg

                    class Database:
                        def __init__(self, url: str) -> None:
                            self._conn: psycopg.Connection | None = None
                            self.url = url

                        def _connection(self) -> psycopg.Connection:
                            if self._conn is None:
                                self._conn = psycopg.connect(self.url)
                            return self._conn

                        def one(self, sql):
                            with self._connection().cursor() as cur:
                                cur.execute(sql)
                                return cur.fetchone()
                """,
            },
            path="app/api/health.py",
            tier=2,  # `SELECT 1` reads
            evidence={"behaviour": "return_default", "narrow_to": ["psycopg.Error"]},
        ),
        Invalid(
            """
            import logging
            logger = logging.getLogger(__name__)

            class Bus:
                async def emit(self, handlers, event):
                    for handler in handlers:
                        await self._invoke(handler, event)

                async def _invoke(self, handler, event):
                    try:
                        await handler(event)
                    except Exception:
                        logger.exception("handler %s failed", handler)
            """,
            path="app/orchestration/events.py",
            tier=2,
            evidence={"behaviour": "log_continue", "dispatch": True, "logs_traceback": True},
            message="safe_handler",
        ),
        Invalid(
            """
            def schedule(value):
                try:
                    return parse_cron(value)
                except (ValueError, Exception) as exc:
                    return {"error": str(exc)}
            """,
            path="app/orchestration/scheduler.py",
            tier=2,
            evidence={
                "behaviour": "return_error",
                "catches": "(ValueError, Exception)",
                "narrow_to": None,
            },
        ),
        Invalid(
            """
            def fetch(repo, key):
                try:
                    return repo.get(key)
                except BaseException:
                    return None

            import psycopg
            """,
            path="app/db/cache.py",
            tier=2,
            # `repo.get` is unknown: the db/ module rule is a hint, never a narrowing.
            evidence={"narrow_to": None, "narrow_source": None},
        ),
        Invalid(
            """
            def save(db_session, row):
                try:
                    store(db_session, row)
                except Exception:
                    return False

            def store(session, row):
                session.add(row)
                session.commit()
            """,
            path="app/services/rows.py",
            tier=1,  # reaches a database write through `store`, whatever the folder
            message="returns a default value instead",
        ),
        Invalid(
            """
            from fastapi import APIRouter

            router = APIRouter()

            @router.get("/items")
            def items(store):
                try:
                    return store.list_items()
                except Exception:
                    return []
            """,
            path="app/misc/items.py",
            tier=2,  # a route handler
            evidence={"tier_reason": "on the request path of GET /items"},
        ),
        Invalid(
            """
            try:
                import orjson as json_impl
            except Exception:
                json_impl = None
            """,
            path="app/compat.py",
            tier=3,
            evidence={"tier_reason": "runs once, at import"},
        ),
    ]

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        items = analysis.analyse(facts, project, self.options)
        yield from analysis.findings(self, items, project, helpers.SWALLOWING)
