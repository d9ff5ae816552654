"""SQL002 sql-needs-review."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from .helpers import NEEDS_REVIEW, PARAMETERISE, SqlCheck, site_finding


class SqlNeedsReview(SqlCheck):
    """Dynamic SQL names or fragments whose origin is not provably chosen by the code.

    ## Why is this bad?
    `ORDER BY {order_by}`, `FROM {table}` or `WHERE {condition}` cannot be bound as parameters, so
    whoever chooses the value writes SQL. When it comes from a function parameter (callers outside
    the module), an attribute, a database row or a call the audit cannot follow, nobody has shown
    that it is one of a fixed set of names. Such a site needs a person to check it once and approve
    it in the allowlist (`gathering-consolidate sql approve`), or a code change that makes it safe
    by construction: check the value against a hardcoded collection, or look it up in a dict of
    allowed columns.

    Not reported: names drawn from or checked against a hardcoded collection (`SORTABLE[key]`,
    `if col not in ALLOWED: raise`), module and class constants, route parameters typed with a
    `Literal` or an `Enum`, a parameter whose callers in the same module all pass constants, and
    keys of a pydantic model that ignores or forbids extra keys. The keys of a dict iterated with
    `.items()` (also inside `sorted(...)`) are traced to the dict's keys, not its values. Sites fed by
    request data are SQL001 instead.

    ## Fix safety
    Unsafe: where a slot is a value of unknown origin, `parameterise-sql` can bind it; names need
    a review or an allowlist in code.
    """

    id, name = "SQL002", "sql-needs-review"
    severity = Severity.MEDIUM
    fix = PARAMETERISE
    VALID = [
        Valid("""
            SORTABLE = {"created": "created_at", "name": "name"}

            def runs(db, sort):
                column = SORTABLE.get(sort, "created_at")
                return db.execute(f"SELECT * FROM runs ORDER BY {column} DESC")
        """),
        Valid("""
            def _rows(db, table):
                return db.execute(f"SELECT * FROM {table} WHERE deleted_at IS NULL")

            def agents(db):
                return _rows(db, "agent.agents")
        """),
        Valid("""
            from typing import Literal
            from fastapi import APIRouter
            router = APIRouter()

            @router.get("/runs")
            def runs(order: Literal["created_at", "name"] = "created_at", db=None):
                return db.execute(f"SELECT * FROM runs ORDER BY {order}")
        """),
        Valid("""
            def update(db, row_id, name, role):
                changes = {"name": name, "role": role}
                sets = [f"{column} = %s" for column, value in sorted(changes.items())]
                db.execute(f"UPDATE t SET {', '.join(sets)} WHERE id = %s", (row_id,))
        """),
    ]
    INVALID = [
        Invalid(
            """
            RUNS = "circle.pipeline_runs"

            def list_runs(db, pipeline_id, order_by="created_at", limit=50):
                return db.execute(
                    f"SELECT * FROM {RUNS} WHERE pipeline_id = %s ORDER BY {order_by} DESC LIMIT %s",
                    (pipeline_id, limit),
                )
            """,
            line=4,
            evidence={"statement": "SELECT", "verdict": "needs-review"},
            message="order or limit slot",
        ),
        Invalid(
            """
            class Repo:
                def count(self, db):
                    return db.execute_one(f"SELECT count(*) FROM {self.table}")
            """,
            line=3,
            message="identifier slot",
        ),
    ]

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        for site in self.analysis(facts, project).sites:
            if site.verdict == NEEDS_REVIEW and site.approved_by is None:
                yield site_finding(self, site)
