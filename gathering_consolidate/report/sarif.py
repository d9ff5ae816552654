"""SARIF 2.1.0 output of an audit, ready for GitHub code scanning (`upload-sarif`).

What goes where (checked against the official schema and a sample GitHub accepts, in
`tests/report/test_sarif.py`):

- one run; `tool.driver` names the tool and its version and lists every rule that ran (and any
  rule a finding names), each with a stable `id` (`EXC001`), its `name`, a short and a full
  description and `help` (text and Markdown) from the rule's own documentation (the text of
  `gathering-consolidate rules ID`), a default `level`, and `properties.tags` (the family; plus
  `security` and a `security-severity` score for the AUT and SQL families, which GitHub uses to
  rank security alerts);
- one result per finding: `ruleId` and `ruleIndex`, `level` from the severity (critical and high:
  `error`, medium: `warning`, low and info: `note`), the message (with the tier), one physical
  location whose `uri` is relative to the repository root (the nearest folder above the project
  holding `.git`; the project root when there is none) with `uriBaseId` `%SRCROOT%`, a region
  with 1-based lines and columns, and `partialFingerprints` `gatheringConsolidate/v1` = the
  finding's line-free fingerprint, so GitHub keeps tracking an alert when lines move. Findings
  about the project as a whole (`<project>`) point at its `pyproject.toml`, line 1;
- with a baseline, only new findings are results (`baselineState: new`), as in the other formats;
- suppressed findings (`# consolidate: ignore[...]`) are left out;
- files that could not be audited and internal errors are `toolExecutionNotifications` of the
  one invocation, whose `executionSuccessful` is false on internal errors.

No timestamps, no absolute paths, no machine-specific data: the same tree gives the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..model import AuditResult, Finding, Severity, Status
from ..version import __version__

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "gatheringConsolidate/v1"
SRCROOT = "%SRCROOT%"

LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
#: Families whose findings are security problems: GitHub ranks them by `security-severity`
#: (a CVSS-like score: 9.0+ critical, 7.0+ high, 4.0+ medium, below that low).
SECURITY_FAMILIES = ("AUT", "SQL")
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
}
_FAMILY_TAGS = {
    "EXC": "error-handling",
    "ASY": "async",
    "SQL": "sql-injection",
    "DTZ": "datetime",
    "STB": "stub",
    "MEM": "in-memory-state",
    "AUT": "authentication",
    "SUP": "suppression",
}


def repository_prefix(root: str | os.PathLike[str]) -> str:
    """The project root relative to the repository root (the nearest folder at or above it that
    holds `.git`, a folder or a worktree file), POSIX, '' when they are the same or there is no
    repository. Nothing is run (no `git`)."""
    start = Path(root).resolve()
    for folder in (start, *start.parents):
        if os.path.lexists(folder / ".git"):
            rel = start.relative_to(folder).as_posix()
            return "" if rel == "." else rel
    return ""


def repository_path(path: str, prefix: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def _uri(path: str) -> str:
    return quote(path, safe="/")


def _rule_descriptor(check: Any) -> dict[str, Any]:
    docs = check.docs().strip()
    summary = check.summary().strip()
    first = docs.split("\n\n", 1)[0].replace("\n", " ").strip() or summary
    tags = [check.id[:3], _FAMILY_TAGS.get(check.id[:3], check.id[:3].lower())]
    properties: dict[str, Any] = {"tags": tags}
    if check.id[:3] in SECURITY_FAMILIES and check.severity in SECURITY_SEVERITY:
        tags.append("security")
        properties["security-severity"] = SECURITY_SEVERITY[check.severity]
    properties["problem.severity"] = {"error": "error", "warning": "warning"}.get(
        LEVELS[check.severity], "recommendation"
    )
    header = f"{check.id} {check.name} ({check.severity})"
    return {
        "id": check.id,
        "name": check.name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": first},
        "defaultConfiguration": {"level": LEVELS[check.severity]},
        "help": {"text": f"{header}\n\n{docs}", "markdown": f"**{header}**\n\n{docs}"},
        "properties": properties,
    }


def _unknown_rule(rule: str, name: str) -> dict[str, Any]:
    text = f"{rule} {name}"
    return {
        "id": rule,
        "name": name,
        "shortDescription": {"text": text},
        "fullDescription": {"text": text},
        "help": {"text": text},
        "properties": {"tags": [rule[:3]]},
    }


class _Columns:
    """Findings carry `ast` columns, which count UTF-8 bytes; SARIF's `unicodeCodePoints` count
    characters. Lines with non-ASCII text are read from the file (once) to convert."""

    def __init__(self, root: Path):
        self.root = root
        self._lines: dict[str, list[str] | None] = {}

    def chars(self, path: str, line: int, column: int) -> int:
        lines = self._file(path)
        if lines is None or not 0 < line <= len(lines):
            return column
        text = lines[line - 1]
        if text.isascii():
            return column
        return len(text.encode("utf-8")[:column].decode("utf-8", "ignore"))

    def _file(self, path: str) -> list[str] | None:
        if path not in self._lines:
            self._lines[path] = None
            full = self.root / path
            try:
                if not full.is_symlink() and full.is_file():
                    from ..project import decode

                    text = decode(full.read_bytes(), universal_newlines=True)
                    self._lines[path] = text.split("\n")
            except (OSError, UnicodeDecodeError, LookupError):
                pass
        return self._lines[path]


def _region(finding: Finding, columns: _Columns) -> dict[str, int]:
    loc = finding.location
    start = columns.chars(loc.path, loc.line, loc.column)
    region = {"startLine": max(1, loc.line), "startColumn": start + 1}
    if loc.end_line is not None and loc.end_line >= loc.line:
        region["endLine"] = loc.end_line
        if loc.end_column is not None:
            end = columns.chars(loc.path, loc.end_line, loc.end_column)
            if loc.end_line > loc.line or end > start:
                region["endColumn"] = end + 1
    return region


def _location(finding: Finding, prefix: str, root: Path, columns: _Columns) -> list[dict[str, Any]]:
    path = finding.location.path
    if path.startswith("<"):  # about the project as a whole
        if not (root / "pyproject.toml").is_file():
            return []
        return [
            {
                "physicalLocation": {
                    "artifactLocation": {
                        "uri": _uri(repository_path("pyproject.toml", prefix)),
                        "uriBaseId": SRCROOT,
                    },
                    "region": {"startLine": 1},
                }
            }
        ]
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {
                "uri": _uri(repository_path(path, prefix)),
                "uriBaseId": SRCROOT,
            },
            "region": _region(finding, columns),
        }
    }
    if finding.symbol:
        location["logicalLocations"] = [{"fullyQualifiedName": finding.symbol}]
    return [location]


def to_sarif(
    result: AuditResult,
    *,
    baselined: bool = False,
    prefix: str | None = None,
) -> dict[str, Any]:
    """The SARIF log of `result` as a dict. `baselined`: `result` holds only the findings new
    against a baseline (each result gets `baselineState: new`). `prefix`: the project root
    relative to the repository root (default: found from `.git`)."""
    from ..audit import get_check

    root = Path(result.root)
    if prefix is None:
        prefix = repository_prefix(root)
    rule_ids = sorted(set(result.rules) | {f.rule for f in result.findings})
    rules: list[dict[str, Any]] = []
    for rule in rule_ids:
        check = get_check(rule)
        if check is not None:
            rules.append(_rule_descriptor(check))
        else:
            name = next((f.name for f in result.findings if f.rule == rule), rule)
            rules.append(_unknown_rule(rule, name))
    index = {r["id"]: i for i, r in enumerate(rules)}

    columns = _Columns(root)
    results = []
    for finding in result.findings:
        message = finding.message
        if finding.tier is not None:
            message = f"{message} [tier {finding.tier}]"
        item: dict[str, Any] = {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": LEVELS[finding.severity],
            "message": {"text": message},
            "locations": _location(finding, prefix, root, columns),
            "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
            "properties": {
                "severity": str(finding.severity),
                "tier": finding.tier,
                "symbol": finding.symbol,
            },
        }
        if finding.fix is not None:
            item["properties"]["fix"] = {
                "title": finding.fix.title,
                "applicability": finding.fix.applicability.value,
                "codemod": finding.fix.codemod,
            }
        if baselined:
            item["baselineState"] = "new"
        results.append(item)

    notifications = []
    for outcome in result.files:
        if outcome.status is Status.OK:
            continue
        notifications.append(
            {
                "level": "error" if outcome.status is Status.FAILED else "warning",
                "message": {"text": f"not audited ({outcome.status.value}): {outcome.reason}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {
                                "uri": _uri(repository_path(outcome.path, prefix)),
                                "uriBaseId": SRCROOT,
                            }
                        }
                    }
                ],
            }
        )
    for error in result.errors:
        notifications.append({"level": "error", "message": {"text": error}})

    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "gathering-consolidate",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not result.errors,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render(result: AuditResult, *, baselined: bool = False, prefix: str | None = None) -> str:
    return json.dumps(to_sarif(result, baselined=baselined, prefix=prefix), indent=2) + "\n"
