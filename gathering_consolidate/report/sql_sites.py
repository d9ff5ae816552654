"""Output of `sql sites`: every dynamic SQL site with its slots, origins and verdict, as text or
JSON (the same records as the `sql_sites` section of the audit's JSON output)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from ..sql.listing import SiteReport

SCHEMA = "gathering-consolidate/sql-sites"
SCHEMA_VERSION = 1


def render_text(sites: Sequence[SiteReport]) -> str:
    lines: list[str] = []
    for site in sites:
        lines.append(
            f"{site.path}:{site.line}: {site.label}  {site.statement} in {site.function or '<module>'}"
            f" -> {site.sink}  [{site.fingerprint}]"
        )
        if site.allowlisted:
            lines.append(f"    approved by {site.reviewer}: {site.reason}")
        for slot in site.slots:
            where = slot.kind + (" (quoted)" if slot.quoted else "")
            inside = f" in `{slot.element_of}`" if slot.element_of else ""
            lines.append(
                f"    {{{slot.expr}}}{inside}: {where}, {slot.verdict}; from {slot.origin}"
                + (f" ({slot.detail})" if slot.detail else "")
            )
    counts = Counter(s.verdict for s in sites)
    allowlisted = sum(1 for s in sites if s.allowlisted)
    parts = [f"{counts[v]} {v}" for v in ("safe", "needs-review", "injectable") if counts[v]]
    if allowlisted:
        parts.append(f"{allowlisted} allowlisted")
    total = len(sites)
    lines.append(
        f"{total} dynamic SQL site{'s' if total != 1 else ''}"
        + (f": {', '.join(parts)}" if parts else "")
    )
    return "\n".join(lines) + "\n"


def render_json(sites: Sequence[SiteReport]) -> str:
    data = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "sql_sites": [s.as_dict() for s in sites],
    }
    return json.dumps(data, indent=2) + "\n"
