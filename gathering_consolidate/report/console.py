"""Text output of an audit for a terminal (rich): findings, then a summary grouped by rule and
tier, family tables, files that were skipped or failed, and one closing line."""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING

from ..model import AuditResult, Severity, Status, SuppressionKind

if TYPE_CHECKING:
    from rich.console import Console

#: Family tables longer than this are cut in text output (JSON keeps every row).
MAX_TABLE_ROWS = 40

_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def quiet_plain(result: AuditResult, *, stdout: bool) -> str | None:
    """The `--quiet` report as `render` prints it where rich shows no style, built without rich
    (the cached pre-commit audit need not import it); None when rich would print it otherwise or
    might change the characters, so the caller renders it with rich.

    Rich styles nothing when its file is no terminal (`stdout`: a pipe or a file, not a tty) and
    the environment forces none (`FORCE_COLOR`, `TTY_COMPATIBLE=1`). It then changes only what
    this function refuses: control characters (dropped), tabs (expanded), wide or combining
    characters (cell widths), trailing blanks (trimmed beyond the width). So every line here is
    printable ASCII ending in no blank."""
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1":
        return None
    if stdout:
        import sys

        if sys.stdout.isatty():
            return None
    lines = []
    for finding in result.findings:
        loc = finding.location
        tier = "" if finding.tier is None else f" [tier {finding.tier}]"
        lines.append(
            f"{loc.path}:{loc.line}:{loc.column + 1}: {finding.rule} {finding.message}{tier}"
        )
    for outcome in result.files:
        if outcome.status is not Status.OK:
            lines.append(f"{outcome.path}: not audited: {outcome.reason or outcome.status.value}")
    lines.extend(result.errors)
    if not all(line.isascii() and line.isprintable() and line == line.rstrip() for line in lines):
        return None
    return "".join(f"{line}\n" for line in lines)


def render(result: AuditResult, console: Console, *, quiet: bool = False) -> None:
    from rich.text import Text

    # One Text for all finding lines: rich's per-print overhead is the cost of a large report.
    # Styles only where they are shown: without a colour system (a pipe, a file, NO_COLOR) rich
    # prints no style at all, and rendering the styled pieces is most of a cached run's output.
    styled = console.color_system is not None or console.record
    lines = Text()
    for finding in result.findings:
        loc = finding.location
        tier = "" if finding.tier is None else f" [tier {finding.tier}]"
        if not styled:
            lines.append(
                f"{loc.path}:{loc.line}:{loc.column + 1}: {finding.rule} {finding.message}{tier}\n"
            )
            continue
        lines.append(f"{loc.path}:{loc.line}:{loc.column + 1}", style="bold")
        lines.append(": ")
        lines.append(finding.rule, style=_SEVERITY_STYLE[finding.severity])
        lines.append(f" {finding.message}")
        if tier:
            lines.append(tier, style="dim")
        lines.append("\n")
    if result.findings:
        lines.rstrip()
        console.print(lines, soft_wrap=True, highlight=False)
    problems = [f for f in result.files if f.status is not Status.OK]
    if quiet:
        # Still every file not audited and every internal error: a quiet run that exits 1 or 2
        # must say why (the pre-commit hook runs with --quiet).
        for outcome in problems:
            line = Text(f"{outcome.path}: not audited: {outcome.reason or outcome.status.value}")
            console.print(line, soft_wrap=True, highlight=False)
        for error in result.errors:
            console.print(Text(error, style="red"), soft_wrap=True, highlight=False)
        return
    from rich.table import Table  # not for --quiet, the pre-commit hook's output

    from ..audit import family_summaries

    if result.findings:
        console.print()
        table = Table(title="Findings by rule and tier", title_justify="left")
        for column in ("Rule", "Name", "Severity", "Tier", "Count"):
            table.add_column(
                column, justify="right" if column == "Count" else "left", overflow="fold"
            )
        counts = Counter((f.rule, f.name, f.severity, f.tier) for f in result.findings)
        for (rule, name, severity, tier), count in sorted(
            counts.items(), key=lambda kv: (kv[0][0], kv[0][3] or 0)
        ):
            table.add_row(rule, name, str(severity), "-" if tier is None else str(tier), str(count))
        console.print(table)
        for summary in family_summaries(result.findings):
            extra = Table(title=summary.title, title_justify="left")
            for column in summary.columns:
                extra.add_column(column, overflow="fold")  # paths wrap, never cut
            for row in summary.rows[:MAX_TABLE_ROWS]:
                extra.add_row(*("" if v is None else str(v) for v in row))
            hidden = len(summary.rows) - MAX_TABLE_ROWS
            if hidden > 0:
                extra.caption = f"... {hidden} more rows: --format json has them all"
            console.print(extra)
    if problems:
        table = Table(title="Files not audited", title_justify="left")
        table.add_column("File", overflow="fold")
        table.add_column("Outcome")
        table.add_column("Reason", overflow="fold")
        for outcome in problems:
            style = "red" if outcome.status is Status.FAILED else "yellow"
            table.add_row(outcome.path, Text(outcome.status.value, style=style), outcome.reason)
        console.print(table)
    for error in result.errors:
        console.print(Text(error, style="red"))
    fixmes = sum(1 for s in result.suppressed if s.kind is SuppressionKind.FIXME)
    ignored = len(result.suppressed) - fixmes
    audited = sum(1 for f in result.files if f.status is Status.OK)
    summary = (
        f"{len(result.findings)} finding{'s' if len(result.findings) != 1 else ''}"
        f" in {audited} file{'s' if audited != 1 else ''}"
        f" ({len(problems)} not audited, {ignored} suppressed, {fixmes} fixme;"
        f" {result.cache_hits} from cache"
        + (f"; target requires-python {result.requires_python}" if result.requires_python else "")
        + ")"
    )
    style = "bold red" if result.exit_code else "bold green"
    console.print(Text(summary, style=style))
