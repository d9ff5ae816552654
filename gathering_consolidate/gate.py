"""The CI gate (`gathering-consolidate gate PATH`): one verdict from four gates, one audit.

- `audit`: the failing findings (severity above info; SQL findings are the next gate's) and the
  files that could not be audited. With a baseline (contract F) only findings new since the
  baseline fail; fixed and stale entries are reported, so the baseline can be tightened
  (`--update-baseline` on `audit`).
- `sql`: every dynamic SQL site that reaches a sink must be safe by construction or approved in
  the allowlist (`gathering-consolidate sql approve`); a baseline never excuses one. Invalid
  allowlist entries fail too; stale ones (approving nothing) are reported.
- `tests`: the test-ledger gate (contract E): no test went missing or was skipped without being
  recorded in the committed ledger.
- `lint-guard`: ruff's guard against new broad exception handlers is installed and its debt is
  up to date (the `lint-guard` codemod would change nothing), and no handler of the current phase
  is left unfixed.

Exit code: 0 every gate passes (a gate not configured is skipped and says so), 1 a gate fails,
2 a gate could not run (configuration or internal error).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SQL_FAMILY = "SQL"
#: The test ledger's file name at the project root (`gathering-consolidate tests ledger`).
LEDGER_FILE = "tests-ledger.json"


class GateError(Exception):
    """The gate cannot start: a missing baseline or ledger file, a bad path."""


@dataclass
class GateSection:
    id: str
    name: str
    status: str  # pass / fail / skipped / error
    summary: str
    problems: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # reported, never failing

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "problems": self.problems,
            "notes": self.notes,
            "data": self.data,
        }


@dataclass
class GateResult:
    path: str
    sections: list[GateSection]

    @property
    def passed(self) -> bool:
        return all(s.status in ("pass", "skipped") for s in self.sections)

    @property
    def exit_code(self) -> int:
        if any(s.status == "error" for s in self.sections):
            return 2
        return 0 if self.passed else 1

    @property
    def summary(self) -> str:
        parts = [f"{s.id} {s.status}" for s in self.sections]
        failing = sum(len(s.problems) for s in self.sections if s.status == "fail")
        head = f"{failing} problem{'s' if failing != 1 else ''}" if failing else "no problems"
        return f"{head} ({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "gathering-consolidate/gate",
            "version": 1,
            "path": self.path,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "summary": self.summary,
            "sections": [s.to_dict() for s in self.sections],
        }


def job_summary(result: GateResult, *, limit: int = 20) -> str:
    """The gate as Markdown for a CI job summary (`$GITHUB_STEP_SUMMARY`): one row per gate,
    then the first `limit` problems of each failing gate."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    marks = {"pass": "✅ pass", "fail": "❌ fail", "skipped": "⏭️ skipped", "error": "⚠️ error"}
    verdict = "passed" if result.passed else "failed"
    lines = [
        f"### gathering-consolidate gate {verdict}",
        "",
        "| gate | status | summary |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {s.name} | {marks.get(s.status, s.status)} | {cell(s.summary)} |"
        for s in result.sections
    ]
    for section in result.sections:
        if section.status != "fail" or not section.problems:
            continue
        lines += ["", f"**{section.name}**", ""]
        lines += [f"- {cell(p)}" for p in section.problems[:limit]]
        if len(section.problems) > limit:
            lines.append(f"- ... and {len(section.problems) - limit} more")
    return "\n".join(lines) + "\n\n"


def run_gate(
    path: Path,
    *,
    baseline: Path | None = None,
    ledger: Path | None = None,
    lint_guard_tier: int = 1,
    python: str | None = None,
) -> GateResult:
    """Run the four gates on `path`. `baseline` defaults to the configuration's `baseline`,
    `ledger` to `tests-ledger.json` at the project root when there is one. Raises GateError for
    a missing or unreadable baseline or ledger file, ConfigError for a bad configuration,
    FileNotFoundError for a missing path."""
    from .audit import known_options, registry
    from .config import load_config, target_python
    from .project import audit

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    with target_python(python):
        config = load_config(
            path, known_rules=[c.id for c in registry()], known_options=known_options()
        )
        if baseline is None and config.baseline:
            baseline = config.root / config.baseline  # `baseline = "..."` in the configuration
        if ledger is None and (config.root / LEDGER_FILE).is_file():
            ledger = config.root / LEDGER_FILE
        for option, value in (("--baseline", baseline), ("--ledger", ledger)):
            if value is not None and not Path(value).is_file():
                raise GateError(f"{option} {value}: no such file")
        result = audit(path, config=config)
    sections = [
        audit_section(result, baseline),
        sql_section(result),
        tests_section(path, ledger),
        lint_guard_section(path, lint_guard_tier, python),
    ]
    return GateResult(str(path), sections)


def _where(finding: Any) -> str:
    loc = finding.location
    return f"{loc.path}:{loc.line}:{loc.column + 1}"


def _finding_line(finding: Any) -> str:
    tier = f" [tier {finding.tier}]" if finding.tier is not None else ""
    return f"{_where(finding)}: {finding.rule} {finding.message}{tier}"


def _failing(findings: Iterable[Any], *, sql: bool) -> list[Any]:
    from .model import Severity

    return [
        f for f in findings if f.severity > Severity.INFO and (f.rule.startswith(SQL_FAMILY) == sql)
    ]


def audit_section(result: Any, baseline_path: Path | None) -> GateSection:
    """Failing findings outside SQL (only the new ones when there is a baseline), and files
    that could not be audited."""
    if result.errors:
        return GateSection(
            "audit",
            "audit",
            "error",
            f"the audit ended in {len(result.errors)} internal error(s)",
            [str(e).splitlines()[0] for e in result.errors],
        )
    problems = [f"{f.path}: not audited: {f.reason}" for f in result.failed_files]
    data: dict[str, Any] = {"findings": len(result.findings)}
    if baseline_path is None:
        failing = _failing(result.findings, sql=False)
        problems = [_finding_line(f) for f in failing] + problems
        summary = f"{len(failing)} findings (no baseline: every finding counts)"
        data["failing"] = len(failing)
    else:
        from . import baseline as baseline_module

        try:
            baseline = baseline_module.load_baseline(baseline_path)
        except baseline_module.BaselineError as exc:  # names the file and what is wrong
            raise GateError(str(exc)) from None
        diff = baseline_module.compare(result, baseline)
        new = _failing(diff.new, sql=False)
        problems = [f"new: {_finding_line(f)}" for f in new] + problems
        data.update(
            new=len(new),
            fixed=len(diff.fixed),
            stale=len(diff.stale),
            baselined=len(diff.baselined),
        )
        summary = (
            f"{len(new)} new findings; {len(diff.baselined)} baselined, {len(diff.fixed)} fixed,"
            f" {len(diff.stale)} stale in {baseline_path}"
        )
        if diff.fixed or diff.stale:
            summary += " (tighten it: audit --baseline FILE --update-baseline)"
    if result.failed_files:
        summary += f"; {len(result.failed_files)} files not audited"
    return GateSection("audit", "audit", "fail" if problems else "pass", summary, problems, data)


def sql_section(result: Any) -> GateSection:
    """Dynamic SQL that is neither safe by construction nor approved; allowlist problems."""
    if SQL_FAMILY not in {r[:3] for r in result.rules}:
        return GateSection("sql", "SQL allowlist", "skipped", "the SQL rules are not selected")
    failing = _failing(result.findings, sql=True)
    approved = [f for f in result.findings if f.rule == "SQL003"]
    stale = [f for f in result.findings if f.rule == "SQL004"]
    problems = [_finding_line(f) for f in failing]
    summary = (
        f"{len(failing)} dynamic SQL sites not approved; {len(approved)} approved,"
        f" {len(stale)} stale allowlist entries"
    )
    if failing:
        summary += " (review each, then `gathering-consolidate sql approve PATH:LINE ...`)"
    data = {"unapproved": len(failing), "approved": len(approved), "stale": len(stale)}
    return GateSection(
        "sql", "SQL allowlist", "fail" if problems else "pass", summary, problems, data
    )


def tests_section(path: Path, ledger: Path | None) -> GateSection:
    """The test-ledger gate of contract E, when a ledger is given."""
    if ledger is None:
        return GateSection(
            "tests",
            "test ledger",
            "skipped",
            f"no --ledger given and no {LEDGER_FILE} at the project root (write one with"
            " `gathering-consolidate tests ledger`)",
        )
    try:
        testsuite_gate = importlib.import_module(f"{__package__}.testsuite.gate")
    except ImportError as exc:
        return GateSection(
            "tests", "test ledger", "error", f"the test ledger library is not available ({exc})"
        )
    try:
        outcome = testsuite_gate.gate(path, ledger)
    except ValueError as exc:  # LedgerError, OverridesError: an unreadable ledger or overrides
        return GateSection("tests", "test ledger", "error", str(exc))
    problems = [_problem_line(p) for p in outcome.problems]
    notes = [_problem_line(p) for p in getattr(outcome, "warnings", ())]
    summary = (
        f"the tests match the ledger {ledger}"
        if outcome.passed
        else f"{len(problems)} differences from the ledger {ledger}"
    )
    if notes:
        summary += f" ({len(notes)} warning{'s' if len(notes) != 1 else ''})"
    status = "pass" if outcome.passed else "fail"
    return GateSection("tests", "test ledger", status, summary, problems, notes=notes)


def _problem_line(problem: Any) -> str:
    where = f"{problem.location}: " if getattr(problem, "location", None) else ""
    return f"{where}{problem.code}: {problem.message}"


def lint_guard_section(path: Path, tier: int, python: str | None) -> GateSection:
    """The lint guard holds: ruff's configuration selects the guard's codes (the `lint-guard`
    codemod would not change it) and every broad handler ruff reports carries a debt marker
    (`lint-guard check`); stale markers are reported, not failing."""
    from .codemods import lint_guard
    from .codemods.engine import CodemodError, plan_migration
    from .config import target_python

    name = "lint-guard debt"
    try:
        with target_python(python):
            plan = plan_migration(path, "lint-guard", {"tier": tier})
    except CodemodError as exc:
        return GateSection("lint-guard", name, "error", str(exc))
    problems = [f"{f.path}: {f.reason}" for f in plan.failures]
    config_changes = [c.path for c in plan.changes if not c.path.endswith(".py")]
    if config_changes:
        problems.append(
            f"the guard is not installed in {', '.join(config_changes)}"
            f" (`gathering-consolidate migrate lint-guard {path} --write` installs it)"
        )
    check_guard = getattr(lint_guard, "check_guard", None)
    data: dict[str, Any] = {"tier": tier, "config_changes": config_changes}
    if check_guard is None:  # an older lint-guard: its refusals are the unfixed handlers
        problems += [
            f"{r.path}:{r.line}: {r.reason}" if r.line else f"{r.path}: {r.reason}"
            for r in plan.refusals
        ]
        summary = f"{len(problems)} problems" if problems else "guard installed"
        status = "fail" if problems else "pass"
        return GateSection("lint-guard", name, status, summary, problems, data)
    try:
        checked = check_guard([path])
    except ValueError as exc:
        return GateSection("lint-guard", name, "error", str(exc), [], data)
    data.update(debt=checked.debt, new=len(checked.new), stale=len(checked.stale))
    if config_changes:  # no guard yet: ruff reports nothing, so nothing is "new" either
        summary = f"not installed; {len(checked.new)} broad handlers would need a debt marker"
        return GateSection("lint-guard", name, "fail", summary, problems, data)
    for handler in checked.new:
        where = f" (in {handler.symbol})" if handler.symbol else ""
        problems.append(
            f"{handler.path}:{handler.line}: {', '.join(handler.codes)} new broad exception"
            f" handler{where}: narrow it, or acknowledge it and run `migrate lint-guard --write`"
        )
    summary = f"{checked.debt} handlers marked as debt, {len(checked.new)} new"
    if checked.stale:
        summary += f", {len(checked.stale)} stale markers (`migrate lint-guard --write` drops them)"
    return GateSection("lint-guard", name, "fail" if problems else "pass", summary, problems, data)
