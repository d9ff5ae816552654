"""The check API: what a check declares, what it is given, what it returns.

A check is a class with an id (`ABC123`), a name (`kebab-case`, read as "allow <name>"), a severity,
a docstring (first line: the summary; then `## Why is this bad?` and, where a fix exists,
`## Fix safety`) and examples (`VALID`, `INVALID`) that are also its tests.

Two kinds:

* `FileCheck.check(ctx)` sees one parsed file (`FileContext`) and yields findings.
* `ProjectCheck` works across files in two steps: `collect(ctx)` extracts picklable facts from one
  file (cached with the file), `finish(facts_by_path, project)` combines them and yields findings.
  Checks that share an analysis share a `collector` key and the same `collect` function, so it
  runs once per file.

Checks run on the stdlib `ast` (fast); codemods use libcst.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..model import Finding, Fix, Location, Severity, fingerprint
from ..semantic.context import ParsedModule
from ..semantic.context import module_name as module_name  # re-exported for the families

REQUIRED_HEADINGS = ("## Why is this bad?",)


@dataclass(frozen=True)
class Option:
    """A check option settable in `[tool.gathering-consolidate.checks.<ID or family>]`."""

    default: Any
    doc: str


@dataclass(frozen=True)
class Valid:
    """Code the check must stay quiet on. `files` adds other files for cross-file checks."""

    code: str
    path: str = "app/module.py"
    files: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invalid:
    """Code the check must report: exactly `count` findings in `path`; where given, the first one
    on `line`, with `tier`, with these `evidence` items, and a message containing `message`."""

    code: str
    path: str = "app/module.py"
    files: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None
    tier: int | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    message: str | None = None
    count: int = 1

    def sources(self) -> dict[str, str]:
        return {
            **{p: textwrap.dedent(c) for p, c in self.files.items()},
            self.path: dedent(self.code),
        }


def dedent(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


class Check:
    """Base of every check. Subclasses set the class attributes below."""

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    severity: ClassVar[Severity] = Severity.MEDIUM
    fix: ClassVar[Fix | None] = None
    OPTIONS: ClassVar[Mapping[str, Option]] = {}
    VALID: ClassVar[Sequence[Valid]] = ()
    INVALID: ClassVar[Sequence[Invalid]] = ()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        merged = {key: opt.default for key, opt in self.OPTIONS.items()}
        merged.update({k: v for k, v in (options or {}).items() if k in self.OPTIONS})
        self.options = merged

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.id:  # an abstract intermediate class
            return
        import re

        if not re.fullmatch(r"[A-Z]{3}\d{3}", cls.id):
            raise TypeError(
                f"{cls.__name__}: id {cls.id!r} must be three capitals and three digits"
            )
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cls.name):
            raise TypeError(f"{cls.__name__}: name {cls.name!r} must be kebab-case")
        doc = cls.__doc__ or ""
        if not doc.strip():
            raise TypeError(f"{cls.__name__}: a check needs a docstring")
        for heading in REQUIRED_HEADINGS + (("## Fix safety",) if cls.fix else ()):
            if heading not in doc:
                raise TypeError(f"{cls.__name__}: docstring lacks `{heading}`")

    @property
    def family(self) -> str:
        return self.id[:3]

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0].strip()

    @classmethod
    def docs(cls) -> str:
        doc = cls.__doc__ or ""
        first, _, rest = doc.strip().partition("\n")
        return (first.strip() + "\n" + textwrap.dedent(rest)).strip()


class FileCheck(Check):
    """A check that sees one file at a time."""

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        raise NotImplementedError


class ProjectCheck(Check):
    """A check across files: `collect` per file (cached), `finish` once per run."""

    #: Checks with the same collector key share one `collect` run per file.
    collector: ClassVar[str] = ""

    @classmethod
    def collector_key(cls) -> str:
        return cls.collector or cls.id

    @classmethod
    def collect(cls, ctx: FileContext) -> Any:
        raise NotImplementedError

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterable[Finding]:
        raise NotImplementedError

    #: The key of the records `listing` returns (say `sql_sites`): checks sharing a key list them
    #: once per run; they end up in `AuditResult.listings` and the JSON output.
    listing_key: ClassVar[str] = ""

    def listing(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterable[Any]:
        """Records of what the check saw besides its findings (frozen, picklable dataclasses),
        computed right after `finish` and cached with its findings."""
        return ()

    def cache_inputs(self, project: ProjectContext) -> str:
        """What `finish` reads besides the collected facts (a rules file in the target, say), as
        text that changes when it changes: part of the cache key of the project-wide results."""
        return ""


class EngineCheck(Check):
    """A rule the engine itself reports (suppression hygiene); it has no analysis of its own."""


@dataclass
class ProjectContext:
    """What `ProjectCheck.finish` gets besides the facts: tiers, options and a shared memo."""

    root: str
    tiers: Mapping[str, int]
    memo: dict[str, Any] = field(default_factory=dict)
    #: Tiers the project's own configuration sets by path (they override derived tiers).
    tier_overrides: Mapping[str, int] = field(default_factory=dict)
    #: The target environment's installed packages, read as source (`libsource.LibrarySource`,
    #: from `--python` or `$VIRTUAL_ENV`); None when no environment is given.
    library: Any = None

    def memoized(self, key: str, factory: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = factory()
        return self.memo[key]


class FileContext(ParsedModule):
    """One parsed file as a check sees it: the shared per-file semantic model
    (`semantic.context.ParsedModule`: nodes by type, parents, enclosing symbols, imports) plus
    the file's tier and `finding()`, which builds a finding with its symbol and fingerprint."""

    def __init__(self, relpath: str, source: str, tree: ast.Module, tier: int | None = None):
        super().__init__(relpath, source, tree)
        self.tier = tier

    # -- results -------------------------------------------------------------------------------
    def finding(
        self,
        check: Check,
        node: ast.AST,
        message: str,
        *,
        evidence: Mapping[str, Any] | None = None,
        tier: int | None = None,
        severity: Severity | None = None,
        fix: Fix | None = None,
        snippet: str | None = None,
        symbol: str | None = None,
    ) -> Finding:
        """Build a finding at `node`, with its enclosing symbol and a line-free fingerprint."""
        symbol = symbol or self.symbol_for(node)
        location = Location(
            self.path,
            getattr(node, "lineno", 1),
            getattr(node, "col_offset", 0),
            getattr(node, "end_lineno", None),
            getattr(node, "end_col_offset", None),
        )
        return Finding(
            rule=check.id,
            name=check.name,
            message=message,
            severity=severity if severity is not None else check.severity,
            location=location,
            symbol=symbol,
            tier=tier,
            evidence=dict(evidence or {}),
            fix=fix if fix is not None else check.fix,
            fingerprint=fingerprint(check.id, self.path, symbol, snippet or self.snippet(node)),
        )
