"""Every dynamic SQL site of a project, safe ones included: what `sql sites` lists and the
`sql_sites` section of the audit's JSON output.

The records are plain data built by the SQL checks from their own analysis
(`audit.sql.helpers.site_report`): the same slots, origins and verdicts as their findings, so a
reviewer can confirm that the sites judged safe are the ones they expect and approve the rest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAFE = "safe"
NEEDS_REVIEW = "needs-review"
INJECTABLE = "injectable"
ALLOWLISTED = "allowlisted"


@dataclass(frozen=True, slots=True)
class SlotReport:
    """One interpolation: the Python expression, where it lands (`kinds.KINDS`) and where its
    value comes from (`origins`: kind and a sentence)."""

    expr: str
    kind: str
    quoted: bool
    origin: str
    detail: str
    verdict: str  # safe / needs-review / injectable
    element_of: str = ""  # the join expression, for a hole inside a joined fragment


@dataclass(frozen=True, slots=True)
class SiteReport:
    """One SQL string built at run time that reaches an execute-like sink."""

    path: str
    line: int
    function: str
    sink: str
    statement: str
    verdict: str  # safe / needs-review / injectable: the analysis' own, before the allowlist
    allowlisted: bool  # an allowlist entry approves it (it is then SQL003, informational)
    slots: tuple[SlotReport, ...]
    fingerprint: str  # the site fingerprint the allowlist uses
    sql: str  # the normalised SQL shape, holes as {expr}
    reviewer: str = ""
    reason: str = ""

    @property
    def label(self) -> str:
        """The verdict as shown: `needs-review (allowlisted)` for an approved site."""
        return f"{self.verdict} ({ALLOWLISTED})" if self.allowlisted else self.verdict

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_sites(target: str | Path) -> list[SiteReport]:
    """Every dynamic SQL site of the project at `target` (its configuration, sinks and allowlist
    as the audit reads them), sorted by path and line. Runs the SQL checks (cached like an
    audit); raises `ConfigError` / `FileNotFoundError` as `audit` does."""
    from ..project import audit

    result = audit(Path(target), select=("SQL",))
    return sorted_sites(dict(result.listings).get("sql_sites", ()))


def sorted_sites(records: Any) -> list[SiteReport]:
    return sorted(
        (r for r in records if isinstance(r, SiteReport)), key=lambda r: (r.path, r.line, r.sql)
    )
