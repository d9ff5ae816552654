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
import bisect
import textwrap
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..model import Finding, Fix, Location, Severity, fingerprint
from ..semantic import imports

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


def module_name(relpath: str) -> str:
    """`src/app/api/auth.py` -> `app.api.auth`; `app/__init__.py` -> `app`."""
    parts = relpath.removesuffix(".py").removesuffix(".pyi").split("/")
    if parts and parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__init__"


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class FileContext:
    """One parsed file, with the lookups checks share: nodes by type, enclosing symbols, import
    aliases. Everything is computed on first use and kept for the other checks."""

    def __init__(self, relpath: str, source: str, tree: ast.Module, tier: int | None = None):
        self.path = relpath
        self.module = module_name(relpath)
        self.source = source
        self.tree = tree
        self.tier = tier
        self._lines: list[str] | None = None
        self._by_type: dict[type, list[ast.AST]] | None = None
        self._parents: dict[ast.AST, ast.AST] | None = None
        self._scopes: tuple[list[int], list[tuple[int, int, str]]] | None = None
        self._imports: dict[str, str] | None = None
        self._memo: dict[str, Any] = {}

    # -- lookups -------------------------------------------------------------------------------
    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.source.splitlines()
        return self._lines

    def nodes(self, *types: type) -> list[Any]:
        """Every node of the given types, in `ast.walk` order (one walk per file, shared)."""
        if self._by_type is None:
            self._index()
        assert self._by_type is not None
        if len(types) == 1:
            return self._by_type.get(types[0], [])
        return [n for t in types for n in self._by_type.get(t, [])]

    @property
    def parents(self) -> dict[ast.AST, ast.AST]:
        """Node -> its parent node, for every node but the module."""
        if self._parents is None:
            self._index()
        assert self._parents is not None
        return self._parents

    def _index(self) -> None:
        # One breadth-first pass (the order of `ast.walk`) that files nodes by type and records
        # parents; expression contexts (shared Load/Store singletons) are left out.
        by_type: dict[type, list[ast.AST]] = defaultdict(list)
        parents: dict[ast.AST, ast.AST] = {}
        queue = deque([self.tree])
        pop, push = queue.popleft, queue.append
        AST, context = ast.AST, ast.expr_context
        while queue:
            node = pop()
            by_type[type(node)].append(node)
            for name in node._fields:
                value = getattr(node, name, None)
                if isinstance(value, list):
                    for item in value:
                        if isinstance(item, AST) and not isinstance(item, context):
                            parents[item] = node
                            push(item)
                elif isinstance(value, AST) and not isinstance(value, context):
                    parents[value] = node
                    push(value)
        self._by_type, self._parents = by_type, parents

    def memo(self, key: str, factory: Callable[[], Any]) -> Any:
        """Share an analysis between the checks of a family within this file."""
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]

    def symbol_for(self, node: ast.AST) -> str:
        """The qualified name of the innermost function or class around `node`'s first line
        (`app.api.auth.AuthService.login`), or the module name at module level."""
        if self._scopes is None:
            spans: list[tuple[int, int, str]] = []

            def visit(body: Iterable[ast.AST], prefix: str) -> None:
                for item in body:
                    if isinstance(item, _DEFS):
                        qual = f"{prefix}.{item.name}"
                        start = min([item.lineno] + [d.lineno for d in item.decorator_list])
                        spans.append((start, item.end_lineno or item.lineno, qual))
                        visit(item.body, qual)
                    elif isinstance(item, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                        visit(ast.iter_child_nodes(item), prefix)

            visit(self.tree.body, self.module)
            spans.sort()
            self._scopes = ([s[0] for s in spans], spans)
        starts, spans = self._scopes
        line = getattr(node, "lineno", 0)
        # Spans are sorted by start, so walking back from the last one that starts at or before
        # `line`, the first that contains it is the innermost.
        for i in range(bisect.bisect_right(starts, line) - 1, -1, -1):
            start, end, qual = spans[i]
            if start <= line <= end:
                return qual
        return self.module

    @property
    def imports(self) -> dict[str, str]:
        """Local name -> what it is bound to by imports anywhere in the file:
        `import datetime as dt` gives `dt -> datetime`; `from a.b import c as d` gives `d -> a.b.c`."""
        if self._imports is None:
            package = imports.package_of(self.module, self.path)
            self._imports = imports.table(
                [*self.nodes(ast.Import), *self.nodes(ast.ImportFrom)], package
            )
        return self._imports

    def qualified_name(self, expr: ast.AST) -> str | None:
        """Resolve a `Name`/`Attribute` chain through the file's imports:
        with `from datetime import datetime`, `datetime.utcnow` -> `datetime.datetime.utcnow`.
        Names not bound by an import resolve to themselves (`foo.bar`); other shapes to None."""
        parts: list[str] = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name):
            return None
        head = self.imports.get(expr.id, expr.id)
        return ".".join([head, *reversed(parts)])

    def snippet(self, node: ast.AST) -> str:
        start = getattr(node, "lineno", 1)
        end = getattr(node, "end_lineno", None) or start
        return "\n".join(self.lines[start - 1 : end])

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
