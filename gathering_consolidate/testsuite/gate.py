"""The test gate: compare the suite with its committed ledger and fail when tests go missing,
skips grow, a skip or xfail carries no issue reference, or CI hides failing tests.

A skip or xfail without an issue reference that the committed ledger already lists is known debt
(reported, not failing; `strict=True` fails it too); a new one fails. Adding tests, or linking a skip to an issue, passes; run
`gathering-consolidate tests ledger` afterwards to record the new counts. The command CI should
gate on is `pytest -m "not stub"`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ledger import GATE_COMMAND, LEDGER_FILE, Ledger, ledger_from, load_ledger


@dataclass(frozen=True)
class GateProblem:
    code: str  # tests-removed | skips-grew | skip-without-issue | xfail-without-issue | ci-hides-failures
    message: str
    location: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "location": self.location}


@dataclass
class GateResult:
    passed: bool
    problems: list[GateProblem]
    warnings: list[GateProblem] = field(default_factory=list)
    ledger: Ledger | None = None
    committed: Ledger | None = None
    gate_command: str = GATE_COMMAND

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "gate_command": self.gate_command,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [w.to_dict() for w in self.warnings],
            "total": self.ledger.total if self.ledger else None,
            "committed_total": self.committed.total if self.committed else None,
        }


def _key(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("test")), str(entry.get("kind")), str(entry.get("reason")))


def compare(
    current: Ledger, committed: Ledger, *, strict: bool = False
) -> tuple[list[GateProblem], list[GateProblem]]:
    """(problems, warnings) of the current ledger against the committed one. `strict`: a skip
    or xfail without an issue reference fails even when the ledger already lists it."""
    problems: list[GateProblem] = []
    warnings: list[GateProblem] = []
    if current.total < committed.total:
        shrunk = [
            f"{path} ({count} -> {current.by_file.get(path, 0)})"
            for path, count in committed.by_file.items()
            if current.by_file.get(path, 0) < count
        ]
        problems.append(
            GateProblem(
                "tests-removed",
                f"the suite shrank from {committed.total} to {current.total} tests"
                + (f": {', '.join(shrunk)}" if shrunk else "")
                + "; tests only go up (mark a test `stub` instead of deleting it)",
                shrunk[0].split(" ", 1)[0] if shrunk else "",
            )
        )
    if len(current.skips) > len(committed.skips):
        new = [s for s in current.skips if _key(s) not in {_key(c) for c in committed.skips}]
        names = ", ".join(s["test"] for s in new[:3])
        problems.append(
            GateProblem(
                "skips-grew",
                f"skips grew from {len(committed.skips)} to {len(current.skips)}"
                + (f": {names}" if names else ""),
                new[0]["test"] if new else "",
            )
        )
    known = {_key(e) for e in [*committed.skips, *committed.xfails]}
    for entry, kind in [(s, "skip") for s in current.skips] + [
        (x, "xfail") for x in current.xfails
    ]:
        if entry.get("issue"):
            continue
        reason = entry.get("reason") or "no reason"
        location = f"{str(entry['test']).split('::', 1)[0]}:{entry.get('line', 0)}"
        problem = GateProblem(
            f"{kind}-without-issue",
            f"{entry['test']}: {kind} without an issue reference ({reason!r}); link the issue"
            " that tracks it (`#123`, `GH-123`, `PROJ-123` or an issue URL)",
            location,
        )
        (warnings if _key(entry) in known and not strict else problems).append(problem)
    return problems, warnings


def gate(
    path: str | os.PathLike[str],
    ledger_file: str | os.PathLike[str] | None = None,
    *,
    audit_result: Any | None = None,
    strict: bool = False,
) -> GateResult:
    """Gate the tests under `path` against the committed ledger (`ledger_file`, default
    `tests-ledger.json` at the pytest rootdir). `strict`: unlinked skips the ledger already
    lists fail too (by default they are known debt, reported as warnings). Raises
    `LedgerError` when the ledger cannot be read."""
    from .ci import hidden_failures
    from .classify import classify
    from .inventory import inventory as take_inventory

    found = take_inventory(path)
    ledger_path = Path(ledger_file) if ledger_file else found.root / LEDGER_FILE
    committed = load_ledger(ledger_path)
    current = ledger_from(found, classify(found, audit_result=audit_result))
    problems, warnings = compare(current, committed, strict=strict)
    for hidden in hidden_failures(found.root, repository=_repository_root(found.root)):
        problems.append(
            GateProblem("ci-hides-failures", f"{hidden.message}", f"{hidden.path}:{hidden.line}")
        )
    return GateResult(not problems, problems, warnings, current, committed)


def _repository_root(start: Path) -> Path:
    """The repository around the tests (the folder with `.git`), else the rootdir: CI files
    usually live at the repository's top."""
    for folder in [start, *start.parents]:
        if (folder / ".git").exists():
            return folder
    return start
