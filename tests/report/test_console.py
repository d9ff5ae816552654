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
from gathering_consolidate.report.console import render

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
