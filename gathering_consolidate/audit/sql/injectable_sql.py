"""SQL001 injectable-sql."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from .helpers import INJECTABLE, PARAMETERISE, SqlCheck, site_finding

_SCHEMAS = """
    from pydantic import BaseModel, ConfigDict

    class SettingsUpdate(BaseModel):
        model_config = ConfigDict(extra="allow")
        description: str | None = None

    class AgentUpdate(BaseModel):
        name: str | None = None
        role: str | None = None
"""


class InjectableSql(SqlCheck):
    """SQL text built from request data or parameters where a value or name belongs.

    ## Why is this bad?
    An f-string, `%`, `+` or `.format()` that puts a caller's value into SQL text lets the caller write
    SQL: `q = "' OR '1'='1"` in `WHERE name ILIKE '%{q}%'` returns every row, and `'; DROP TABLE ...; --`
    does worse. The check parses the statement (sqlglot, postgres) to see where each interpolation
    lands and traces where its value comes from. It reports a site (at the execute-like call) when:

    - a *value* slot (`= '{x}'`, `IN ({x})`, `LIMIT {x}` is not one: see SQL002) is fed by a function
      parameter or by request data (FastAPI path, query or body parameters), or
    - any slot is fed by request data without an allowlist check: say the keys of
      `payload.model_dump()` of a pydantic model with `extra="allow"`, which the client chooses.

    Not reported: values bound as parameters (`%s`, `%(name)s`); module and class constants
    (`FROM {TABLE}`); builders that only append string literals (`sql += " AND x = %s"`,
    `updates.append("name = %(name)s")`); keys of a model that ignores or forbids extra keys
    (pydantic's default), which can only be declared fields; values checked against a hardcoded
    collection (`if col not in ALLOWED: raise`) or converted to a number (`int(x)`, `%d`); route
    parameters typed `int`, `UUID`, an `Enum` or a `Literal`, which FastAPI validates; a function's
    own parameter whose callers in the same module all pass constants; SQL-looking text that never
    reaches an execute-like call (log messages); psycopg `sql.SQL(...).format(sql.Identifier(...))`
    composition; a SET clause built by `safe_update_builder(ALLOWED, changes)`. A `# nosec B608`
    or `# noqa: S608` comment is shown as an acknowledgement in the finding, not honoured: approve
    a reviewed site in the allowlist (SQL003) instead.

    ## Known problems
    Tracing is flow-insensitive: a check `x in ALLOWED` anywhere in the function counts as a guard.
    Sinks are matched by method name (`*.execute*`, `*.fetch*`, ...; option `sinks`) and through the
    project's own functions that pass their SQL parameter straight to one.

    ## Fix safety
    Unsafe: codemod `parameterise-sql` turns value interpolations into bound parameters where the
    rewrite is provably equivalent, and `safe-update-builder` rewrites a dynamic `SET` builder to
    validate its columns against the ones the code declares; review the diff.
    """

    id, name = "SQL001", "injectable-sql"
    severity = Severity.CRITICAL
    fix = PARAMETERISE
    VALID = [
        Valid("""
            from fastapi import APIRouter
            router = APIRouter()

            @router.get("/agents/search")
            def search(q: str, db=None):
                return db.execute(
                    "SELECT id FROM agents WHERE name ILIKE %s", (f"%{q}%",)
                )
        """),
        Valid("""
            AGENTS = "agent.agents"

            def get_agent(db, agent_id: int):
                return db.execute_one(f"SELECT * FROM {AGENTS} WHERE id = %s", (agent_id,))
        """),
        Valid("""
            def list_actions(db, enabled, action_type):
                sql = "SELECT * FROM actions WHERE TRUE"
                params = []
                if enabled is not None:
                    sql += " AND enabled = %s"
                    params.append(enabled)
                if action_type:
                    sql += " AND action_type = %s"
                    params.append(action_type)
                return db.execute(sql, params)
        """),
        Valid(
            """
            from fastapi import APIRouter
            from app.schemas import AgentUpdate
            router = APIRouter()

            @router.patch("/agents/{agent_id}")
            def update_agent(agent_id: int, payload: AgentUpdate, db=None):
                changes = payload.model_dump(exclude_unset=True)
                assignments = ", ".join(f"{col} = %({col})s" for col in changes)
                return db.execute_one(
                    f"UPDATE agents SET {assignments} WHERE id = %(id)s",
                    {**changes, "id": agent_id},
                )
            """,
            files={"app/schemas.py": _SCHEMAS},
        ),
        Valid("""
            import logging
            log = logging.getLogger(__name__)

            def report(name):
                log.info(f"SELECT for {name} took too long")
        """),
        Valid("""
            SORTABLE = {"created_at", "name"}

            def runs(db, order_by, limit):
                if order_by not in SORTABLE:
                    raise ValueError(order_by)
                return db.execute(
                    f"SELECT * FROM runs ORDER BY {order_by} LIMIT {int(limit)}"
                )
        """),
        Valid("""
            from fastapi import APIRouter
            router = APIRouter()

            @router.get("/runs/{run_id}")
            def get_run(run_id: int, db=None):
                return db.execute("SELECT * FROM runs WHERE id = %d" % run_id)
        """),
        Valid("""
            class Store:
                def _run(self, sql, params):
                    with self.conn.cursor() as cur:
                        cur.execute(sql, params)
                        return cur.fetchall()
        """),
        Valid("""
            def _count(db, table):
                return db.execute_one(f"SELECT count(*) FROM {table} WHERE x = %s", (1,))

            def totals(db):
                return [_count(db, "agents"), _count(db, "circles")]
        """),
        Valid(
            """
            from uuid import UUID
            from typing import Literal
            from fastapi import APIRouter
            router = APIRouter()

            @router.get("/runs/{run_id}")
            def run(run_id: UUID, order: Literal["name", "created_at"] = "name", db=None):
                return db.execute(f"SELECT * FROM runs WHERE id = '{run_id}' ORDER BY {order}")
            """
        ),
        Valid(
            """
            from fastapi import APIRouter
            from app.safe_sql import safe_update_builder
            from app.schemas import SettingsUpdate
            router = APIRouter()

            @router.patch("/circles/{circle_id}/settings")
            def update_settings(circle_id: int, payload: SettingsUpdate, db=None):
                changes = payload.model_dump(exclude_unset=True)
                set_clause = safe_update_builder(("description",), changes)[0]
                return db.execute_one(
                    f"UPDATE circles SET {set_clause} WHERE id = %(circle_id)s",
                    {**changes, "circle_id": circle_id},
                )
            """,
            files={"app/schemas.py": _SCHEMAS},
        ),
        Valid("""
            from psycopg import sql

            def drop(conn, schema):
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        """),
    ]
    INVALID = [
        Invalid(
            """
            from fastapi import APIRouter
            router = APIRouter()

            @router.get("/agents/search")
            def search(q: str, db=None):
                return db.execute(
                    f"SELECT id FROM agents WHERE name ILIKE '%{q}%' ORDER BY name"
                )
            """,
            line=6,
            evidence={"statement": "SELECT", "verdict": "injectable", "acknowledged": None},
            message="`q` lands in a value slot (inside quotes)",
        ),
        Invalid(
            """
            def count_since(db, pipeline_id, since):
                row = db.execute_one(
                    f"SELECT count(*) FROM runs WHERE pipeline_id = %s AND created_at >= '{since}'",
                    (pipeline_id,),
                )
                return row
            """,
            line=2,
            message="parameter `since`",
        ),
        Invalid(
            """
            from fastapi import APIRouter
            from app.schemas import SettingsUpdate
            router = APIRouter()

            @router.patch("/circles/{circle_id}/settings")
            def update_settings(circle_id: int, payload: SettingsUpdate, db=None):
                changes = payload.model_dump(exclude_unset=True)
                set_clause = ", ".join(f"{column} = %({column})s" for column in changes)
                return db.execute_one(
                    f"UPDATE circles SET {set_clause} WHERE id = %(circle_id)s",
                    {**changes, "circle_id": circle_id},
                )
            """,
            files={"app/schemas.py": _SCHEMAS},
            line=9,
            evidence={
                "statement": "UPDATE",
                "fix": "Build the SET clause with safe_update_builder over the allowed columns",
            },
            message="allows extra keys",
        ),
        Invalid(
            """
            from fastapi import APIRouter, Request
            router = APIRouter()

            @router.get("/users")
            async def users(request: Request, db=None):
                name = request.query_params["name"]
                sql = "SELECT * FROM users WHERE name = '%s'" % name  # nosec B608
                return await db.fetch(sql)
            """,
            line=8,
            evidence={"acknowledged": "# nosec B608"},
            message="not honoured",
        ),
    ]

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        for site in self.analysis(facts, project).sites:
            if site.verdict == INJECTABLE and site.approved_by is None:
                yield site_finding(self, site)
