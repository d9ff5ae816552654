"""Inline suppressions: `# consolidate: ignore[RULE, ...] reason` and `# consolidate: fixme[...] ref`.

A directive at the end of a code line covers findings that start on that line; a directive alone on
its line covers the next line that is neither blank nor a comment. `ignore` needs a reason (or it
suppresses nothing and is reported as SUP002); `fixme` marks known debt and is counted as such.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .model import Finding, Location, Severity, Suppressed, SuppressionKind, fingerprint

_DIRECTIVE = re.compile(
    r"#\s*consolidate:\s*(?P<kind>ignore|fixme)\[(?P<rules>[^\]]*)\](?P<reason>[^#]*)"
)
_RULE = re.compile(r"^[A-Z]{3}(\d{3})?$")


@dataclass(frozen=True, slots=True)
class Directive:
    line: int  # where the comment is
    target: int  # the line it covers
    kind: SuppressionKind
    rules: tuple[str, ...]
    reason: str
    text: str


def parse_directives(source: str) -> tuple[Directive, ...]:
    """Find suppression comments. Only real comments count (tokenize tells a comment from a string),
    and tokenizing is done only when the text appears at all."""
    if "consolidate:" not in source:
        return ()
    lines = source.splitlines()
    found: list[Directive] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return ()
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _DIRECTIVE.search(token.string)
        if not match:
            continue
        line = token.start[0]
        own_line = not lines[line - 1][: token.start[1]].strip()
        target = _next_code_line(lines, line) if own_line else line
        rules = tuple(r.strip() for r in match["rules"].split(",") if r.strip())
        found.append(
            Directive(
                line=line,
                target=target,
                kind=SuppressionKind(match["kind"]),
                rules=rules,
                reason=match["reason"].strip(),
                text=token.string.strip(),
            )
        )
    return tuple(found)


def _next_code_line(lines: Sequence[str], line: int) -> int:
    for number in range(line + 1, len(lines) + 1):
        stripped = lines[number - 1].strip()
        if stripped and not stripped.startswith("#"):
            return number
    return line


def _covers(directive: Directive, rule: str) -> bool:
    return any(rule == r or (len(r) == 3 and rule.startswith(r)) for r in directive.rules)


def _covers_any(selector: str, rules: set[str]) -> bool:
    return selector in rules or (len(selector) == 3 and any(r.startswith(selector) for r in rules))


def apply(
    findings: Iterable[Finding],
    directives: dict[str, tuple[Directive, ...]],
    ran: set[str],
    enabled: set[str],
) -> tuple[list[Finding], list[Suppressed]]:
    """Split findings into kept and suppressed; add SUP001/SUP002 findings for the directives.

    `ran` holds the rules that ran (an unused suppression is only reported for those); `enabled`
    the SUP rules the configuration asks for."""
    kept: list[Finding] = []
    suppressed: list[Suppressed] = []
    used: set[tuple[str, int]] = set()
    for finding in findings:
        match = None
        for directive in directives.get(finding.location.path, ()):
            if directive.target == finding.location.line and _covers(directive, finding.rule):
                if directive.kind is SuppressionKind.IGNORE and not directive.reason:
                    continue
                match = directive
                break
        if match is None:
            kept.append(finding)
        else:
            used.add((finding.location.path, match.line))
            suppressed.append(Suppressed(finding, match.kind, match.reason))
    for path, items in directives.items():
        for directive in items:
            bad = [r for r in directive.rules if not _RULE.match(r)]
            if directive.kind is SuppressionKind.IGNORE and not directive.reason:
                if "SUP002" in enabled:
                    kept.append(
                        _engine_finding(
                            "SUP002",
                            "suppression-without-reason",
                            f"`{directive.text}` gives no reason, so it suppresses nothing",
                            path,
                            directive,
                        )
                    )
            elif (
                (path, directive.line) not in used
                and "SUP001" in enabled
                and (bad or any(_covers_any(r, ran) for r in directive.rules))
            ):
                kept.append(
                    _engine_finding(
                        "SUP001",
                        "unused-suppression",
                        f"`{directive.text}` suppresses nothing on line {directive.target}"
                        + (f" (not rule ids: {', '.join(bad)})" if bad else ""),
                        path,
                        directive,
                    )
                )
    return kept, suppressed


def _engine_finding(rule: str, name: str, message: str, path: str, d: Directive) -> Finding:
    return Finding(
        rule=rule,
        name=name,
        message=message,
        severity=Severity.LOW,
        location=Location(path, d.line),
        symbol="",
        evidence={"directive": d.text, "covers_line": d.target},
        fingerprint=fingerprint(rule, path, "", d.text),
    )
