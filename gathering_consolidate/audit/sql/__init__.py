"""Family `SQL`: SQL built from strings, judged by where each interpolation lands (sqlglot) and
where its value comes from; reviewed sites live in an allowlist.

`audit --select SQL` is the CI gate: it exits 1 on any SQL001/SQL002 site (neither safe by
construction nor approved). Approved sites (SQL003) and stale or invalid allowlist entries
(SQL004) are INFO: reported, but they do not fail it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ...model import Finding, SummaryTable
from ...sql.kinds import KINDS
from .injectable_sql import InjectableSql
from .sql_approved import SqlApproved
from .sql_needs_review import SqlNeedsReview
from .stale_sql_allowlist_entry import StaleSqlAllowlistEntry

CHECKS = (InjectableSql, SqlNeedsReview, SqlApproved, StaleSqlAllowlistEntry)


def summarize(findings: Sequence[Finding]) -> list[SummaryTable]:
    """Dynamic SQL sites by verdict: how many, and which slot kinds make them so."""
    sites = [f for f in findings if f.rule in ("SQL001", "SQL002", "SQL003")]
    if not sites:
        return []
    rows = []
    for verdict in ("injectable", "needs-review", "approved"):
        mine = [f for f in sites if f.evidence.get("verdict") == verdict]
        if not mine:
            continue
        kinds: Counter[str] = Counter()
        for finding in mine:
            for slot in finding.evidence.get("slots", []):
                if slot.get("verdict") != "safe" or verdict == "approved":
                    kinds[slot["kind"]] += 1
        acknowledged = sum(1 for f in mine if f.evidence.get("acknowledged"))
        rows.append((verdict, len(mine), *(kinds.get(k, 0) for k in KINDS), acknowledged))
    return [
        SummaryTable(
            family="SQL",
            title="Dynamic SQL sites",
            columns=("verdict", "sites", *KINDS, "nosec/noqa"),
            rows=tuple(rows),
        )
    ]
