"""JSON output of an audit. The schema is stable and versioned (`docs/json-schema.md`): fields are
only ever added; a removal or change of meaning bumps `version`."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ..audit import family_summaries
from ..model import AuditResult, Finding, Status, SuppressionKind
from ..sql.listing import sorted_sites
from ..version import __version__

SCHEMA_VERSION = 1


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    loc = finding.location
    return {
        "rule": finding.rule,
        "name": finding.name,
        "severity": str(finding.severity),
        "tier": finding.tier,
        "path": loc.path,
        "line": loc.line,
        "column": loc.column + 1,
        "end_line": loc.end_line,
        "end_column": loc.end_column + 1 if loc.end_column is not None else None,
        "symbol": finding.symbol,
        "message": finding.message,
        "evidence": finding.evidence,
        "fix": None
        if finding.fix is None
        else {
            "title": finding.fix.title,
            "applicability": finding.fix.applicability.value,
            "codemod": finding.fix.codemod,
        },
        "fingerprint": finding.fingerprint,
    }


def audit_to_dict(result: AuditResult) -> dict[str, Any]:
    statuses = Counter(f.status.value for f in result.files)
    return {
        "schema": "gathering-consolidate/audit",
        "version": SCHEMA_VERSION,
        "tool": {"name": "gathering-consolidate", "version": __version__},
        "root": result.root,
        "requires_python": result.requires_python,
        "rules": list(result.rules),
        "summary": {
            "findings": len(result.findings),
            "by_rule": dict(sorted(Counter(f.rule for f in result.findings).items())),
            "by_severity": dict(sorted(Counter(str(f.severity) for f in result.findings).items())),
            "by_tier": {
                str(k): v
                for k, v in sorted(
                    Counter(f.tier for f in result.findings if f.tier is not None).items()
                )
            },
            "suppressed": sum(1 for s in result.suppressed if s.kind is SuppressionKind.IGNORE),
            "fixme": sum(1 for s in result.suppressed if s.kind is SuppressionKind.FIXME),
            "files": {s.value: statuses.get(s.value, 0) for s in Status},
            "exit_code": result.exit_code,
        },
        "tables": [
            {
                "family": t.family,
                "title": t.title,
                "rows": [dict(zip(t.columns, row, strict=True)) for row in t.rows],
            }
            for t in family_summaries(result.findings)
        ],
        "findings": [finding_to_dict(f) for f in result.findings],
        "suppressed": [
            {**finding_to_dict(s.finding), "kind": s.kind.value, "reason": s.reason}
            for s in result.suppressed
        ],
        "files": [
            {"path": f.path, "status": f.status.value, "reason": f.reason}
            for f in result.files
            if f.status is not Status.OK
        ],
        "errors": list(result.errors),
        # Every dynamic SQL site reaching a sink, safe ones included ([] without the SQL family).
        "sql_sites": [
            s.as_dict() for s in sorted_sites(dict(result.listings).get("sql_sites", ()))
        ],
    }


def render(result: AuditResult) -> str:
    return json.dumps(audit_to_dict(result), indent=2, sort_keys=False) + "\n"
