"""The text report prints the same characters with and without colours: finding lines are built
without styles when the console shows none (a pipe, a file), as a cached run's output mostly is."""

from __future__ import annotations

import io
import re

from rich.console import Console

from gathering_consolidate.model import (
    AuditResult,
    FileOutcome,
    Finding,
    Location,
    Severity,
    Status,
)
from gathering_consolidate.report.console import quiet_plain, render

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _result() -> AuditResult:
    findings = tuple(
        Finding(
            rule=rule,
            name="a-name",
            message=message,
            severity=severity,
            location=Location(path, line, column),
            symbol="f",
            tier=tier,
        )
        for rule, message, severity, path, line, column, tier in [
            ("EXC001", "swallows `Exception` [x]", Severity.HIGH, "app/a.py", 3, 4, 1),
            ("DTZ003", "naive\ttab and\rreturn", Severity.MEDIUM, "app/b.py", 10, 0, None),
            ("SQL003", "approved :smile: [bold]x[/]", Severity.INFO, "app/c.py", 1, 0, 3),
        ]
    )
    files = tuple(FileOutcome(p, Status.OK) for p in ("app/a.py", "app/b.py", "app/c.py"))
    return AuditResult("/p", findings, (), files, ("DTZ003", "EXC001", "SQL003"))


def test_finding_lines_are_the_same_with_and_without_colours():
    for quiet in (True, False):
        plain, coloured = io.StringIO(), io.StringIO()
        render(_result(), Console(file=plain, width=120, highlight=False), quiet=quiet)
        colours = Console(file=coloured, width=120, force_terminal=True, color_system="standard")
        render(_result(), colours, quiet=quiet)
        assert "\x1b[" in coloured.getvalue()
        assert "\x1b[" not in plain.getvalue()
        assert _ANSI.sub("", coloured.getvalue()) == plain.getvalue()
        assert "app/a.py:3:5: EXC001 swallows `Exception` [x] [tier 1]" in plain.getvalue()


def _quiet_rich(result: AuditResult) -> str:
    out = io.StringIO()
    render(result, Console(file=out, width=120, no_color=True, highlight=False), quiet=True)
    return out.getvalue()


def _finding(message: str, path: str = "app/a.py") -> Finding:
    return Finding(
        rule="EXC001",
        name="a-name",
        message=message,
        severity=Severity.HIGH,
        location=Location(path, 3, 4),
        symbol="f",
        tier=None,
    )


def test_quiet_report_without_rich_is_what_rich_prints(monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    long = "a long message with `markup` [bold]x[/] :smile: " * 6  # wider than 120 columns
    files = (
        FileOutcome("app/a.py", Status.OK),
        FileOutcome("app/big.py", Status.SKIPPED, "too large"),
        FileOutcome("app/bad.py", Status.FAILED, ""),
    )
    result = AuditResult(
        "/p",
        (_finding("swallows [x]"), _finding(long.strip(), "app/b.py")),
        (),
        files,
        ("EXC001",),
        errors=("internal error in EXC001 on app/a.py",),
    )
    plain = quiet_plain(result, stdout=False)
    assert plain is not None and plain == _quiet_rich(result)
    assert "app/bad.py: not audited: failed\n" in plain
    empty = AuditResult("/p", (), (), (), ("EXC001",))
    assert quiet_plain(empty, stdout=False) == _quiet_rich(empty) == ""


def test_quiet_report_leaves_to_rich_what_rich_would_change(monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    files = (FileOutcome("app/a.py", Status.OK),)
    for message in ("a\ttab", "a\rreturn", "wide 漢字", "trailing blank ", "two\nlines"):
        result = AuditResult("/p", (_finding(message),), (), files, ("EXC001",))
        assert quiet_plain(result, stdout=False) is None, message
    result = AuditResult("/p", (_finding("fine"),), (), files, ("EXC001",))
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich styles a pipe then
    assert quiet_plain(result, stdout=False) is None
