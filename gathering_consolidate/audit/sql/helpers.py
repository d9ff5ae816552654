"""Shared by the SQL checks: one collector per file, one analysis per run.

`collect` runs the site finder (`gathering_consolidate.sql.sites`) on a file; `analyse` combines
every file's facts: it decides which calls are execute-like sinks (the `sinks` option plus the
project's own wrappers around them), resolves the origins that need other files (pydantic models,
enums), gives each site a verdict, and applies the allowlist.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ...model import Applicability, Finding, Fix, Location, Severity, fingerprint
from ...sql import allowlist as allowlist_mod
from ...sql.kinds import IDENTIFIER, ORDER_OR_LIMIT, SET_CLAUSE, VALUE, WHERE_FRAGMENT
from ...sql.listing import SiteReport, SlotReport
from ...sql.origins import PARAMETER, REQUEST, SAFE, ClassIndex, Origin, resolve, worst
from ...sql.sites import DEFAULT_SINKS, Candidate, FileAnalysis, FileFacts, sink_matcher
from ..base import FileContext, Option, ProjectCheck, ProjectContext

INJECTABLE = "injectable"
NEEDS_REVIEW = "needs-review"
APPROVED = "approved"
SAFE_VERDICT = "safe"

PARAMETERISE = Fix("Bind the value as a query parameter", Applicability.UNSAFE, "parameterise-sql")
SAFE_UPDATE = Fix(
    "Build the SET clause with safe_update_builder over the allowed columns",
    Applicability.UNSAFE,
    "safe-update-builder",
)

OPTIONS = {
    "sinks": Option(
        list(DEFAULT_SINKS),
        'Execute-like calls: "*.name" is a method of any object (globs allowed), anything else'
        " a qualified function name (`sqlalchemy.text`). Functions of the project that pass a"
        " parameter straight to one are sinks too.",
    ),
    "allowlist": Option(
        allowlist_mod.DEFAULT_PATH,
        "The reviewed-sites file, relative to the project root.",
    ),
}


class SqlCheck(ProjectCheck):
    """Base of the SQL checks: shared collector, options and analysis."""

    collector: ClassVar[str] = "sql.sites"
    listing_key: ClassVar[str] = "sql_sites"
    OPTIONS: ClassVar[Mapping[str, Option]] = OPTIONS

    @classmethod
    def collect(cls, ctx: FileContext) -> FileFacts:
        analysis = FileAnalysis(
            ctx.path,
            ctx.module,
            ctx.source,
            ctx.tree,
            ctx.qualified_name,
            ctx.symbol_for,
            calls=ctx.nodes(ast.Call),
        )
        return analysis.collect()

    def cache_inputs(self, project: ProjectContext) -> str:
        path = Path(project.root) / str(self.options["allowlist"])
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return ""

    def analysis(self, facts: Mapping[str, Any], project: ProjectContext) -> Analysis:
        key = f"sql.analysis:{sorted(self.options['sinks'])}:{self.options['allowlist']}"
        return project.memoized(key, lambda: analyse(facts, project, self.options))

    def listing(self, facts: Mapping[str, Any], project: ProjectContext) -> list[SiteReport]:
        """Every dynamic SQL site reaching a sink, safe ones included (`sql sites`)."""
        analysis = self.analysis(facts, project)
        reports = [site_report(s) for s in (*analysis.sites, *analysis.safe)]
        return sorted(reports, key=lambda r: (r.path, r.line, r.sql))


@dataclass(frozen=True)
class ResolvedSlot:
    expr: str
    kind: str
    quoted: bool
    origin: Origin
    verdict: str
    element_of: str

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "expr": self.expr,
            "kind": self.kind,
            "quoted": self.quoted,
            "origin": self.origin.kind,
            "detail": self.origin.detail,
            "verdict": self.verdict,
        }
        if self.element_of:
            data["element_of"] = self.element_of
        return data


@dataclass(frozen=True)
class Site:
    candidate: Candidate
    slots: tuple[ResolvedSlot, ...]
    verdict: str  # injectable / needs-review / safe (before the allowlist)
    approved_by: allowlist_mod.Entry | None

    @property
    def fingerprint(self) -> str:
        return self.candidate.site_fingerprint


@dataclass(frozen=True)
class Analysis:
    sites: tuple[Site, ...]
    stale: tuple[allowlist_mod.Entry, ...]
    problems: tuple[tuple[int, str], ...]
    allowlist_path: str
    safe: tuple[Site, ...] = ()  # sites safe by construction: listed (`sql sites`), not reported


def slot_verdict(kind: str, origin: Origin) -> str:
    """injectable: request data anywhere, or a parameter in a value slot; needs-review: any other
    origin that is not provably code-chosen; safe otherwise."""
    if origin.kind in SAFE:
        return SAFE_VERDICT
    if origin.kind == REQUEST:
        return INJECTABLE
    if origin.kind == PARAMETER and kind == VALUE:
        return INJECTABLE
    return NEEDS_REVIEW


_ORDER = {SAFE_VERDICT: 0, NEEDS_REVIEW: 1, INJECTABLE: 2}


def analyse(
    facts: Mapping[str, Any], project: ProjectContext, options: Mapping[str, Any]
) -> Analysis:
    files: dict[str, FileFacts] = {p: f for p, f in facts.items() if isinstance(f, FileFacts)}
    classes = ClassIndex(
        (c for f in files.values() for c in f.classes),
        {k: v for f in files.values() for k, v in f.aliases},
        (c for f in files.values() for c in f.constants),
    )
    is_sink = sink_matcher(list(options["sinks"]))
    wrappers = _wrappers(files.values(), is_sink)
    allowlist_path = str(options["allowlist"])
    allowlist = allowlist_mod.read(Path(project.root) / allowlist_path)
    sites: list[Site] = []
    safe: list[Site] = []
    used: set[int] = set()
    for path in sorted(files):
        for candidate in files[path].candidates:
            if not (
                is_sink(candidate.call, candidate.method, candidate.attribute_call)
                or (candidate.method, candidate.argument) in wrappers
            ):
                continue
            slots = tuple(_resolve_slot(s, classes) for s in candidate.slots)
            verdict = max((s.verdict for s in slots), key=_ORDER.__getitem__, default=SAFE_VERDICT)
            if verdict == SAFE_VERDICT:
                safe.append(Site(candidate, slots, verdict, None))
                continue
            entry = allowlist.match(candidate.path, candidate.symbol, candidate.site_fingerprint)
            if entry is not None:
                used.add(id(entry))
            sites.append(Site(candidate, slots, verdict, entry))
    stale = tuple(
        e
        for e in allowlist.entries
        if id(e) not in used and (e.path in files or not (Path(project.root) / e.path).exists())
    )
    return Analysis(tuple(sites), stale, allowlist.problems, allowlist_path, tuple(safe))


def _wrappers(files: Iterable[FileFacts], is_sink: Any) -> set[tuple[str, int]]:
    """(function name, SQL argument position) of project functions that pass a parameter whole
    to a sink, directly or through another wrapper."""
    passthroughs = [p for f in files for p in f.passthroughs]
    found: set[tuple[str, int]] = set()
    changed = True
    while changed:
        changed = False
        for p in passthroughs:
            key = (p.name, p.index)
            if key in found or p.index < 0:
                continue
            if is_sink(p.call, p.method, p.attribute_call) or (p.method, 0) in found:
                found.add(key)
                changed = True
    return found


def _resolve_slot(slot: Any, classes: ClassIndex) -> ResolvedSlot:
    origins = [resolve(o, classes) for o in slot.origins]
    origin = worst(origins)
    return ResolvedSlot(
        slot.expr, slot.kind, slot.quoted, origin, slot_verdict(slot.kind, origin), slot.element_of
    )


def site_report(site: Site) -> SiteReport:
    """The plain record of a site for `sql sites` and the JSON `sql_sites` section."""
    candidate, entry = site.candidate, site.approved_by
    return SiteReport(
        path=candidate.path,
        line=candidate.line,
        function=candidate.symbol,
        sink=candidate.call,
        statement=candidate.statement,
        verdict=site.verdict,
        allowlisted=entry is not None,
        slots=tuple(
            SlotReport(
                s.expr, s.kind, s.quoted, s.origin.kind, s.origin.detail, s.verdict, s.element_of
            )
            for s in site.slots
        ),
        fingerprint=site.fingerprint,
        sql=candidate.shape,
        reviewer=entry.reviewer if entry is not None else "",
        reason=entry.reason if entry is not None else "",
    )


# -- findings ----------------------------------------------------------------------------------
def describe(site: Site) -> tuple[str, Fix]:
    """The finding message (what lands where, from where) and the fix to suggest."""
    bad = [s for s in site.slots if s.verdict == site.verdict] or list(site.slots)
    slot = bad[0]
    where = slot.kind.replace("_", " ") + " slot" + (" (inside quotes)" if slot.quoted else "")
    inside = f" of a fragment joined by `{slot.element_of}`" if slot.element_of else ""
    statement = site.candidate.statement
    more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
    article = "an" if where[0] in "aeiou" else "a"
    message = (
        f"`{slot.expr}` lands in {article} {where}{inside} of this {statement} and comes from"
        f" {slot.origin.detail or slot.origin.kind}{more}"
    )
    fix = suggested_fix(site)
    return message, fix


def suggested_fix(site: Site) -> Fix:
    bad = [s for s in site.slots if s.verdict != SAFE_VERDICT]
    if any(s.element_of and s.kind == IDENTIFIER for s in bad) or any(
        s.kind == SET_CLAUSE for s in bad
    ):
        return SAFE_UPDATE
    if any(s.kind == VALUE for s in bad):
        return PARAMETERISE
    if any(s.kind in (IDENTIFIER, ORDER_OR_LIMIT) for s in bad):
        return Fix(
            "Check the name against a hardcoded allowlist (or compose with psycopg.sql.Identifier)",
            Applicability.DISPLAY_ONLY,
        )
    if any(s.kind == WHERE_FRAGMENT for s in bad):
        return Fix(
            "Build the fragment from hardcoded conditions and bind the values",
            Applicability.DISPLAY_ONLY,
        )
    return Fix("Review the site and approve it with `sql approve`", Applicability.DISPLAY_ONLY)


def site_finding(check: ProjectCheck, site: Site, *, severity: Severity | None = None) -> Finding:
    candidate = site.candidate
    message, fix = describe(site)
    if site.approved_by is not None:
        entry = site.approved_by
        message = (
            f"approved by {entry.reviewer} ({entry.reason}): {message}" if entry.reason else message
        )
    evidence = {
        "statement": candidate.statement,
        "slots": [s.as_dict() for s in site.slots],
        "verdict": APPROVED if site.approved_by is not None else site.verdict,
        "acknowledged": candidate.acknowledged,
        "fix": fix.title,
        "site": site.fingerprint,
        "sql": candidate.shape,
        "sink": candidate.call,
        "parsed": candidate.parsed,
    }
    if not candidate.parsed:
        evidence["parse_error"] = candidate.parse_error
    if candidate.acknowledged:
        message += f"; `{candidate.acknowledged}` acknowledges it but is not honoured"
    return Finding(
        rule=check.id,
        name=check.name,
        message=message,
        severity=severity if severity is not None else check.severity,
        location=Location(
            candidate.path,
            candidate.line,
            candidate.column,
            candidate.end_line,
            candidate.end_column,
        ),
        symbol=candidate.symbol,
        evidence=evidence,
        fix=fix if site.approved_by is None else None,
        fingerprint=fingerprint(check.id, candidate.path, candidate.symbol, candidate.shape),
    )
