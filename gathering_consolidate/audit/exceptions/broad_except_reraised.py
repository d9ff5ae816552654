from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from . import analysis, helpers


class BroadExceptReraised(analysis.ExceptionCheck):
    """A broad `except` handler that re-raises the error or raises another one from it.

    ## Why is this bad?
    Less than swallowing: the error still propagates. But the handler runs for every error,
    `KeyboardInterrupt` and `CancelledError` included with `BaseException` or a bare `except:`,
    so a handler that logs "query failed" also fires for a typo, and one that wraps turns every
    bug into the same domain error (a 401 for an `AttributeError`). Naming the errors it is for
    keeps the logging and wrapping honest.

    Reported at the `except` line with the same evidence as EXC001; `behaviour` is `reraise`
    (`raise` / `raise exc` on every path at the end), `wrap_raise` (`raise Other(...) from
    exc`, or a call to a function that always raises) or `exit` (`sys.exit()`, directly or
    through a function that ends with it). Not reported: handlers that swallow (EXC001), narrow handlers, `Exception` bound to
    something else by an import, and isolation sites (a logging handler inside `safe_handler`).

    ## Tiering
    As EXC001: tier 1 first.

    ## Fix safety
    Unsafe: `narrow-except` narrows these too; errors it does not list then skip the logging or
    the wrapping.
    """

    id, name = "EXC002", "broad-except-reraised"
    severity = Severity.LOW
    fix = helpers.NARROW_FIX
    VALID = [
        Valid("""
            def close(conn):
                try:
                    conn.close()
                except Exception:
                    pass
        """),
        Valid("""
            import psycopg

            def run(cur, sql):
                try:
                    cur.execute(sql)
                except psycopg.Error:
                    raise
        """),
    ]
    INVALID = [
        Invalid(
            """
            import logging
            import psycopg
            logger = logging.getLogger(__name__)

            def run(conninfo, sql):
                with psycopg.connect(conninfo) as conn:
                    try:
                        return conn.execute(sql).fetchall()
                    except Exception:
                        logger.exception("query failed")
                        raise
            """,
            path="app/db/queries.py",
            line=9,
            tier=1,
            evidence={
                "behaviour": "reraise",
                "logs_traceback": True,
                "narrow_to": ["psycopg.Error"],
            },
        ),
        Invalid(
            """
            import jwt

            class AuthError(Exception):
                pass

            def decode(token, key):
                try:
                    return jwt.decode(token, key, algorithms=["HS256"])
                except jwt.ExpiredSignatureError as exc:
                    raise AuthError("expired") from exc
                except Exception as exc:
                    raise AuthError() from exc
            """,
            path="app/auth/tokens.py",
            line=11,
            tier=1,
            evidence={"behaviour": "wrap_raise", "narrow_to": ["jwt.PyJWTError"]},
        ),
        Invalid(
            """
            def load(path):
                try:
                    return open(path).read()
                except BaseException as exc:
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    raise RuntimeError(path) from exc
            """,
            tier=2,
            evidence={"behaviour": "wrap_raise", "narrow_to": ["OSError"]},
        ),
    ]

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        items = analysis.analyse(facts, project, self.options)
        yield from analysis.findings(self, items, project, helpers.RERAISING)
