"""SQL004 stale-sql-allowlist-entry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...model import Finding, Location, Severity, fingerprint
from ..base import Invalid, ProjectContext, Valid
from .helpers import SqlCheck

_CODE = """
    def list_runs(db, order_by):
        return db.execute(f"SELECT * FROM runs ORDER BY {order_by}")
"""


class StaleSqlAllowlistEntry(SqlCheck):
    """An allowlist entry that approves nothing: its site changed or is gone, or it is invalid.

    ## Why is this bad?
    An entry approves one SQL shape at one place. Once that SQL changes, the site is reported
    again (SQL001/SQL002) and the old entry only misleads the next reviewer; an entry without a
    `reason` or `reviewer`, or a file that is not valid TOML, approves nothing at all. The finding
    is at the entry's line in the allowlist file. Entries for files outside the audited paths are
    left alone unless the file no longer exists. It is INFO, so it does not fail the gate by
    itself: the site it no longer approves is reported (and fails) as SQL001/SQL002.
    """

    id, name = "SQL004", "stale-sql-allowlist-entry"
    severity = Severity.INFO
    VALID = [Valid(_CODE)]
    INVALID = [
        Invalid(
            "",
            path="tests/audit/sql/data/stale.toml",
            files={"app/module.py": _CODE},
            options={"allowlist": "tests/audit/sql/data/stale.toml"},
            count=2,
            line=3,
            message="no longer matches",
        )
    ]

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        analysis = self.analysis(facts, project)
        path = analysis.allowlist_path
        for line, problem in analysis.problems:
            yield self._finding(path, line, f"invalid allowlist: {problem}", problem)
        for entry in analysis.stale:
            yield self._finding(
                path,
                entry.line,
                f"entry for {entry.function} ({entry.path}, {entry.fingerprint}) no longer"
                " matches a dynamic SQL site: remove it, or approve the new SQL",
                entry.fingerprint,
                {"path": entry.path, "function": entry.function, "site": entry.fingerprint},
            )

    def _finding(
        self, path: str, line: int, message: str, key: str, evidence: dict[str, Any] | None = None
    ) -> Finding:
        return Finding(
            rule=self.id,
            name=self.name,
            message=message,
            severity=self.severity,
            location=Location(path, line),
            symbol="",
            evidence=evidence or {"problem": message},
            fingerprint=fingerprint(self.id, path, "", key),
        )
