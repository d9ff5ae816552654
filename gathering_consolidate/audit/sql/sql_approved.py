"""SQL003 sql-approved."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...model import Finding, Severity
from ..base import Invalid, ProjectContext, Valid
from .helpers import SqlCheck, site_finding

_SITE = """
    def list_runs(db, pipeline_id, order_by="created_at"):
        return db.execute(
            f"SELECT * FROM runs WHERE pipeline_id = %s ORDER BY {order_by} DESC",
            (pipeline_id,),
        )
"""


class SqlApproved(SqlCheck):
    """A dynamic SQL site that a reviewer approved in the allowlist (informational).

    ## Why is this bad?
    It is not: the site was reviewed and `rules/sql_allowlist.toml` (option `allowlist`) records
    who approved it and why. It is reported at INFO severity, which never fails the audit, so the
    report still lists every dynamic SQL site and its slots. The approval holds while the path,
    the enclosing function and the SQL shape (text and interpolated expressions) are unchanged:
    moving the code keeps it, changing the SQL makes the site SQL001/SQL002 again and the entry
    stale (SQL004). A site whose shape is not in the allowlist is not reported here.
    """

    id, name = "SQL003", "sql-approved"
    severity = Severity.INFO
    VALID = [Valid(_SITE)]
    INVALID = [
        Invalid(
            _SITE,
            options={"allowlist": "tests/audit/sql/data/approved.toml"},
            line=2,
            evidence={"verdict": "approved"},
            message="approved by alice",
        )
    ]

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        for site in self.analysis(facts, project).sites:
            if site.approved_by is not None:
                yield site_finding(self, site)
