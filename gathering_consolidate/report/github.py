"""GitHub Actions output of an audit: workflow-command annotations and a job summary.

GitHub shows at most 10 `error` and 10 `warning` annotations per step (and 10 `notice`), and
keeps at most 50 annotations per step; the rest are dropped without a word. So this output
chooses which findings become annotations instead of letting GitHub cut at random:

- findings are ranked most severe first (critical, high, medium, ...), then by tier (1 first),
  then by path and line;
- critical and high findings are `::error`, medium `::warning`, low and info `::notice`; the
  first 10 of each kind are annotations (9 notices: one is kept for the closing count; one error
  fewer for a file that could not be audited, one for an internal error), at most 30 in all,
  under the 50 cap, leaving room for other tools' annotations in the same step;
- every other finding is still printed, as a plain log line (`path:line:col: RULE message`)
  inside a collapsed group (`::group::`), so the log has them all;
- a last `::notice` says how many findings were not annotated and where to find them;
- the job summary (Markdown appended to `$GITHUB_STEP_SUMMARY` when it is set, see
  `summary_markdown`) counts findings by severity and rule and lists them all, up to
  `SUMMARY_MAX_ROWS` rows (GitHub keeps at most 1 MiB of summary per step).

Paths are relative to the repository root (as GitHub needs them to place an annotation on a
file), found as for SARIF (`sarif.repository_prefix`). No timestamps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..model import AuditResult, Finding, Severity, Status, SuppressionKind
from .sarif import repository_path, repository_prefix

if TYPE_CHECKING:
    from ..baseline import BaselineDiff

#: Annotations GitHub shows per step, by kind.
PER_KIND = 10
#: Annotations GitHub keeps per step, all kinds together.
PER_STEP = 50
#: Findings listed in the job summary (the counts cover them all).
SUMMARY_MAX_ROWS = 500

KIND = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "notice",
    Severity.INFO: "notice",
}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def rank(findings: tuple[Finding, ...] | list[Finding]) -> list[Finding]:
    """Most severe first, then lowest tier, then path and line."""
    return sorted(
        findings,
        key=lambda f: (-int(f.severity), f.tier if f.tier is not None else 9, *f.sort_key()),
    )


def annotation(finding: Finding, prefix: str = "") -> str:
    loc = finding.location
    props = [f"file={_escape_property(repository_path(loc.path, prefix))}", f"line={loc.line}"]
    if loc.end_line is not None and loc.end_line != loc.line:
        props.append(f"endLine={loc.end_line}")
    props.append(f"col={loc.column + 1}")
    if loc.end_column is not None and (loc.end_line in (None, loc.line)):
        props.append(f"endColumn={loc.end_column + 1}")
    props.append(f"title={_escape_property(f'{finding.rule} {finding.name}')}")
    message = finding.message
    if finding.tier is not None:
        message = f"{message} [tier {finding.tier}]"
    if loc.path.startswith("<"):
        return f"::{KIND[finding.severity]} title={_escape_property(finding.rule)}::" + (
            _escape_data(message)
        )
    return f"::{KIND[finding.severity]} {','.join(props)}::{_escape_data(message)}"


def plain_line(finding: Finding, prefix: str = "") -> str:
    loc = finding.location
    tier = f" [tier {finding.tier}]" if finding.tier is not None else ""
    where = repository_path(loc.path, prefix)
    return f"{where}:{loc.line}:{loc.column + 1}: {finding.rule} {finding.message}{tier}"


def split(
    findings: tuple[Finding, ...] | list[Finding], reserved: Mapping[str, int] | None = None
) -> tuple[list[Finding], list[Finding]]:
    """(annotated, the rest): at most PER_KIND of each kind less what is `reserved` for other
    annotations of that kind (one notice is always kept for the closing count), at most
    PER_STEP in all, most severe first."""
    budget = {kind: PER_KIND - (reserved or {}).get(kind, 0) for kind in ("error", "warning")}
    budget["notice"] = PER_KIND - 1 - (reserved or {}).get("notice", 0)
    total = PER_STEP - sum((reserved or {}).values()) - 1
    taken: Counter[str] = Counter()
    annotated: list[Finding] = []
    rest: list[Finding] = []
    for finding in rank(findings):
        kind = KIND[finding.severity]
        if taken[kind] < budget[kind] and len(annotated) < total:
            taken[kind] += 1
            annotated.append(finding)
        else:
            rest.append(finding)
    return annotated, rest


def render(result: AuditResult, *, prefix: str | None = None) -> str:
    """Workflow commands for a step's log (see the module docstring)."""
    if prefix is None:
        prefix = repository_prefix(result.root)
    failed = next((f for f in result.files if f.status is Status.FAILED), None)
    reserved = {"error": (failed is not None) + bool(result.errors)}
    annotated, rest = split(result.findings, reserved)
    lines = [annotation(f, prefix) for f in annotated]
    if failed is not None:  # one is enough to fail visibly; the log lines below list them all
        where = _escape_property(repository_path(failed.path, prefix))
        reason = _escape_data(f"not audited: {failed.reason}")
        lines.append(f"::error file={where},title=not audited::{reason}")
    for error in result.errors[:1]:
        first = error.splitlines()[0] if error else "internal error"
        lines.append(f"::error title=internal error::{_escape_data(first)}")
    if rest:
        lines.append(f"::group::{len(rest)} more findings (not annotated)")
        lines.extend(plain_line(f, prefix) for f in rest)
        lines.append("::endgroup::")
        lines.append(
            f"::notice title=gathering-consolidate::{len(rest)} more findings are not"
            " annotated (GitHub shows 10 errors and 10 warnings per step): see the group above"
            " and the job summary"
        )
    problems = [f for f in result.files if f.status is not Status.OK]
    for outcome in problems:
        lines.append(
            f"{repository_path(outcome.path, prefix)}: not audited ({outcome.status.value}):"
            f" {outcome.reason}"
        )
    n = len(result.findings)
    lines.append(
        f"gathering-consolidate: {n} finding{'s' if n != 1 else ''}, {len(annotated)} annotated"
    )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def summary_markdown(
    result: AuditResult, *, diff: BaselineDiff | None = None, prefix: str | None = None
) -> str:
    """The job summary: counts by severity and rule, then every finding (up to
    SUMMARY_MAX_ROWS), as GitHub-flavoured Markdown."""
    if prefix is None:
        prefix = repository_prefix(result.root)
    findings = rank(result.findings)
    audited = sum(1 for f in result.files if f.status is Status.OK)
    not_audited = [f for f in result.files if f.status is not Status.OK]
    fixmes = sum(1 for s in result.suppressed if s.kind is SuppressionKind.FIXME)
    verdict = "failed" if result.exit_code else "passed"
    out = [f"## gathering-consolidate audit: {verdict}", ""]
    n = len(findings)
    out.append(
        f"{n} finding{'s' if n != 1 else ''} in {audited} files ({len(not_audited)} not audited,"
        f" {len(result.suppressed) - fixmes} suppressed, {fixmes} fixme)."
    )
    if diff is not None:
        out.append("")
        out.append(f"Baseline: {diff.summary()}. Only new findings are listed.")
        if diff.fixed:
            out.append(
                f"{len(diff.fixed)} baselined finding(s) are fixed: run `gathering-consolidate"
                " audit --update-baseline` to tighten the baseline."
            )
    if findings:
        by_severity = Counter(str(f.severity) for f in findings)
        out += ["", "| severity | findings |", "| --- | ---: |"]
        for severity in sorted(Severity, reverse=True):
            if by_severity.get(str(severity)):
                out.append(f"| {severity} | {by_severity[str(severity)]} |")
        by_rule = Counter((f.rule, f.name) for f in findings)
        out += ["", "| rule | name | findings |", "| --- | --- | ---: |"]
        for (rule, name), count in sorted(by_rule.items()):
            out.append(f"| {rule} | {name} | {count} |")
        out += ["", "<details><summary>Findings</summary>", ""]
        out += [
            "| location | rule | severity | tier | message |",
            "| --- | --- | --- | --- | --- |",
        ]
        for finding in findings[:SUMMARY_MAX_ROWS]:
            loc = finding.location
            where = f"{repository_path(loc.path, prefix)}:{loc.line}"
            tier = "" if finding.tier is None else str(finding.tier)
            out.append(
                f"| `{_cell(where)}` | {finding.rule} | {finding.severity} | {tier} |"
                f" {_cell(finding.message)} |"
            )
        if n > SUMMARY_MAX_ROWS:
            out.append(f"\n{n - SUMMARY_MAX_ROWS} more: `--format json` or SARIF lists them all.")
        out += ["", "</details>"]
    if not_audited:
        out += ["", "| not audited | status | reason |", "| --- | --- | --- |"]
        for outcome in not_audited:
            out.append(
                f"| `{_cell(repository_path(outcome.path, prefix))}` | {outcome.status.value} |"
                f" {_cell(outcome.reason)} |"
            )
    return "\n".join(out) + "\n"
