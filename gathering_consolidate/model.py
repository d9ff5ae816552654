"""Plain data shared by every stage: findings, fixes, per-file outcomes.

Everything here is a frozen, slotted, picklable dataclass so results can cross process boundaries
(the scanner fans out over processes) and be cached on disk. Nothing here prints or reads files.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """How bad a finding is. Ordered, so `max()` and sorting work."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()


class Applicability(enum.Enum):
    """How safe it is to apply a fix (ruff's `Applicability`)."""

    SAFE = "safe"
    UNSAFE = "unsafe"
    DISPLAY_ONLY = "display-only"


@dataclass(frozen=True, slots=True)
class Fix:
    """A fix a codemod can apply: `title` is imperative ("Use an aware datetime")."""

    title: str
    applicability: Applicability
    codemod: str | None = None


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A span in a file. `path` is POSIX and relative to the project root; lines are 1-based,
    columns 0-based (as `ast`)."""

    path: str
    line: int
    column: int = 0
    end_line: int | None = None
    end_column: int | None = None


_WS = re.compile(r"\s+")


def fingerprint(rule: str, path: str, symbol: str, snippet: str) -> str:
    """A stable id for a finding: rule + path + enclosing symbol + normalised code, no line number,
    so baselines and allowlists survive edits elsewhere in the file."""
    normalised = _WS.sub(" ", snippet).strip()
    digest = hashlib.sha256("\x1f".join((rule, path, symbol, normalised)).encode("utf-8"))
    return digest.hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one place. `evidence` is free-form data a check attaches (tier reasons, call
    chains, SQL slots, ...): it must be JSON-serialisable and is left out of equality."""

    rule: str
    name: str
    message: str
    severity: Severity
    location: Location
    symbol: str
    tier: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    fix: Fix | None = None
    fingerprint: str = ""

    @property
    def family(self) -> str:
        return self.rule[:3]

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.location.path, self.location.line, self.location.column, self.rule)


class Status(enum.Enum):
    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one file: audited (`ok`), deliberately not audited (`skipped`, e.g. too
    large), or not auditable (`failed`, e.g. a syntax error). `reason` says why for the last two."""

    path: str
    status: Status
    reason: str = ""


class SuppressionKind(enum.Enum):
    IGNORE = "ignore"  # reviewed: not a problem here
    FIXME = "fixme"  # a known problem, tracked as debt


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A finding silenced by an inline `# consolidate: ignore[...]` / `fixme[...]` comment."""

    finding: Finding
    kind: SuppressionKind
    reason: str


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Everything one audit produced, sorted deterministically."""

    root: str
    findings: tuple[Finding, ...]
    suppressed: tuple[Suppressed, ...]
    files: tuple[FileOutcome, ...]
    rules: tuple[str, ...]
    cache_hits: int = 0
    errors: tuple[str, ...] = ()  # internal errors of checks: a bug in this tool, exit code 2
    requires_python: str | None = None  # the target's `requires-python`, when it declares one
    #: What project checks list besides their findings, by key (`sql_sites`: every dynamic SQL
    #: site with its verdict, safe ones included): frozen, picklable records.
    listings: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def failed_files(self) -> tuple[FileOutcome, ...]:
        return tuple(f for f in self.files if f.status is Status.FAILED)

    @property
    def exit_code(self) -> int:
        """0 clean; 1 findings or unauditable files (as ruff's syntax errors); 2 internal error.
        INFO findings (say, an allowlisted SQL site) are reported but do not fail."""
        if self.errors:
            return 2
        failing = any(f.severity > Severity.INFO for f in self.findings)
        return 1 if failing or self.failed_files else 0


@dataclass(frozen=True, slots=True)
class SummaryTable:
    """A family's own summary of a result (say EXC's tier x behaviour table), rendered as a table
    in text and as a list of row objects in JSON."""

    family: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
