"""GitHub Actions output: annotations within GitHub's per-step caps, the rest in the log and the
job summary, workflow-command escaping, and the summary written to $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gathering_consolidate.model import (
    AuditResult,
    FileOutcome,
    Finding,
    Location,
    Severity,
    Status,
)
from gathering_consolidate.project import audit
from gathering_consolidate.report import github

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "fixtures" / "gathering_app"
COMMAND = re.compile(r"^::(error|warning|notice)( [^:]*)?::(.*)$")


@pytest.fixture(scope="module")
def fixture_result() -> AuditResult:
    return audit(FIXTURE, jobs=1)


def _finding(i: int, severity: Severity, tier: int | None = None, path: str = "a.py") -> Finding:
    return Finding(
        rule="EXC001",
        name="broad-except-swallowed",
        message=f"message {i}",
        severity=severity,
        location=Location(path, i + 1, 4, i + 1, 20),
        symbol="a.f",
        tier=tier,
        fingerprint=f"fp{i}",
    )


def _result(findings: list[Finding], root: str = "/nonexistent/proj") -> AuditResult:
    return AuditResult(root=root, findings=tuple(findings), suppressed=(), files=(), rules=())


def _commands(text: str) -> list[tuple[str, str, str]]:
    return [m.groups() for line in text.splitlines() if (m := COMMAND.match(line))]


def test_caps_per_kind_and_step(fixture_result: AuditResult) -> None:
    text = github.render(fixture_result)
    commands = _commands(text)
    kinds = Counter(kind for kind, _, _ in commands)
    n = len(fixture_result.findings)
    assert n > 30  # enough findings to hit every cap
    assert kinds["error"] <= 10 and kinds["warning"] <= 10 and kinds["notice"] <= 10
    assert len(commands) <= github.PER_STEP
    # The rest is in the log, in a group, and a closing notice counts it.
    annotated = sum(1 for kind, props, _ in commands if props and "file=" in props)
    rest = n - annotated
    assert f"::group::{rest} more findings (not annotated)" in text
    group = text.split("::group::", 1)[1].split("::endgroup::", 1)[0]
    assert len(group.strip().splitlines()) == rest + 1
    assert commands[-1][0] == "notice" and f"{rest} more findings" in commands[-1][2]


def test_most_severe_and_lowest_tier_first() -> None:
    findings = [_finding(i, Severity.HIGH, tier=3) for i in range(15)]
    findings += [_finding(100 + i, Severity.CRITICAL) for i in range(3)]
    findings += [_finding(200 + i, Severity.HIGH, tier=1) for i in range(4)]
    findings += [_finding(300 + i, Severity.MEDIUM) for i in range(12)]
    annotated, rest = github.split(findings)
    errors = [f for f in annotated if github.KIND[f.severity] == "error"]
    assert len(errors) == 10
    assert [f.severity for f in errors[:3]] == [Severity.CRITICAL] * 3
    assert [f.tier for f in errors[3:7]] == [1] * 4
    assert sum(1 for f in annotated if f.severity is Severity.MEDIUM) == 10
    assert len(rest) == len(findings) - 20


def test_not_audited_files_and_errors_take_error_slots() -> None:
    findings = [_finding(i, Severity.HIGH) for i in range(20)]
    result = AuditResult(
        root="/nonexistent/proj",
        findings=tuple(findings),
        suppressed=(),
        files=(FileOutcome("bad.py", Status.FAILED, "syntax error"),),
        rules=(),
        errors=("internal error in EXC001 on a.py:\nTraceback",),
    )
    commands = _commands(github.render(result, prefix=""))
    assert sum(1 for kind, _, _ in commands if kind == "error") == 10
    assert any("title=not audited" in (props or "") for _, props, _ in commands)
    assert ("error", " title=internal error", "internal error in EXC001 on a.py:") in commands


def test_escaping() -> None:
    finding = Finding(
        rule="SQL001",
        name="injectable-sql",
        message="100% bad,\nreally: yes",
        severity=Severity.CRITICAL,
        location=Location("dir,x/a:b.py", 3, 0, 3, 5),
        symbol="m",
        fingerprint="x",
    )
    line = github.annotation(finding, "sub")
    assert line == (
        "::error file=sub/dir%2Cx/a%3Ab.py,line=3,col=1,endColumn=6,"
        "title=SQL001 injectable-sql::100%25 bad,%0Areally: yes"
    )


def test_multiline_annotation_has_no_columns() -> None:
    finding = _finding(1, Severity.MEDIUM)
    finding = Finding(
        **{
            **{s: getattr(finding, s) for s in finding.__slots__},
            "location": Location("a.py", 3, 4, 6, 1),
        }
    )
    line = github.annotation(finding)
    assert "line=3,endLine=6,col=5," in line and "endColumn" not in line


def test_summary_lists_every_finding(fixture_result: AuditResult) -> None:
    text = github.summary_markdown(fixture_result)
    assert text.startswith("## gathering-consolidate audit: failed")
    rows = [line for line in text.splitlines() if line.startswith("| `fixtures/gathering_app/")]
    assert len(rows) == len(fixture_result.findings)
    assert "| EXC001 | broad-except-swallowed |" in text


def test_clean_result() -> None:
    result = _result([])
    assert github.render(result) == "gathering-consolidate: 0 findings, 0 annotated\n"
    assert "passed" in github.summary_markdown(result)


def test_cli_format_github_appends_the_job_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run(
        [sys.executable, "-m", "gathering_consolidate.cli", "audit", str(FIXTURE), "-f", "github"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("::error file=fixtures/gathering_app/")
    written = summary.read_text()
    assert written.startswith("earlier step\n")  # appended, as GitHub expects
    assert "## gathering-consolidate audit: failed" in written
