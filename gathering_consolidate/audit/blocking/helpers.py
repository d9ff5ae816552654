"""Shared by the ASY checks: the blocking-call rules, the per-file collector and the one analysis
of the call graph that every ASY check reads (built once per run, memoized on the project).

Reachability is computed backwards from the blocking roots with a multi-source breadth-first
search over synchronous call edges, so each function gets its shortest chain to a root once,
however many async functions call it.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...config import ConfigError, load_rule_data
from ...index import Call, Function, Index, ModuleFacts, Route, build_index, collect_module
from ...model import Applicability, Finding, Fix, Location, Severity, fingerprint
from ..base import Check, FileContext, Option, ProjectCheck, ProjectContext, module_name

if TYPE_CHECKING:
    from .strategies import Plans

COLLECTOR = "asy.module_facts"

#: Options shared by the ASY checks (set them once in `[tool.gathering-consolidate.checks.ASY]`).
OPTIONS = {
    "blocking-calls": Option(
        [], "Extra blocking calls, as `pattern -> suggestion` (patterns match qualified names)."
    ),
    "db-calls": Option(
        [], "Extra project DB-service calls (blocking, and converted by codemod `async-db`)."
    ),
}

ASYNC_TO_DEF = Fix(
    "Make the handler a plain `def` (FastAPI runs it in its threadpool)",
    Applicability.UNSAFE,
    "async-to-def",
)
ASYNC_DB = Fix("Await an async DB service instead", Applicability.UNSAFE, "async-db")

THREADPOOL_NOTE = (
    "a plain `def` handler runs in FastAPI's threadpool, shared by every sync handler and"
    " dependency (AnyIO's default limit: 40 threads)"
)


# -- rules -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    pattern: str
    suggestion: str
    db: bool = False


def parse_entry(entry: str, where: str, db: bool = False) -> Pattern:
    """`"time.sleep -> asyncio.sleep"` -> Pattern("time.sleep", "asyncio.sleep")."""
    if not isinstance(entry, str) or not entry.strip():
        raise ConfigError(f"{where}: entries must be `pattern -> suggestion` strings")
    pattern, _, suggestion = entry.partition("->")
    pattern = pattern.strip()
    if not re.fullmatch(r"[\w.*?\[\]!-]+", pattern):
        raise ConfigError(f"{where}: `{pattern}` is not a dotted-name pattern")
    return Pattern(pattern, suggestion.strip(), db)


class Matcher:
    """Match qualified names against many patterns with one regex (memoized per name)."""

    def __init__(self, patterns: Sequence[Pattern]):
        self.patterns = list(patterns)
        if self.patterns:
            joined = "|".join(
                f"(?P<p{i}>{fnmatch.translate(p.pattern)})" for i, p in enumerate(self.patterns)
            )
            self._regex: re.Pattern[str] | None = re.compile(joined)
        else:
            self._regex = None
        self._memo: dict[str, Pattern | None] = {}

    def match(self, name: str) -> Pattern | None:
        if name in self._memo:
            return self._memo[name]
        found = None
        if self._regex is not None:
            hit = self._regex.match(name)
            if hit is not None and hit.lastgroup is not None:
                found = self.patterns[int(hit.lastgroup[1:])]
            elif hit is not None:  # pragma: no cover - every alternative is a named group
                found = next(p for p in self.patterns if fnmatch.fnmatchcase(name, p.pattern))
        self._memo[name] = found
        return found


@dataclass
class Rules:
    blocking: Matcher
    loop_bound: Matcher
    executors: Matcher
    returns: Mapping[str, str]

    def key(self) -> str:
        data = [
            [(p.pattern, p.suggestion, p.db) for p in self.blocking.patterns],
            [p.pattern for p in self.loop_bound.patterns],
            [p.pattern for p in self.executors.patterns],
            sorted(self.returns.items()),
        ]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=16)
def _rules_cached(extra_blocking: tuple[str, ...], extra_db: tuple[str, ...]) -> Rules:
    data = load_rule_data("blocking")
    where = "rules/blocking.toml"
    blocking = [parse_entry(e, f"{where} [blocking]") for e in data["blocking"]["calls"]]
    blocking += [parse_entry(e, f"{where} [db]", db=True) for e in data["db"]["calls"]]
    option = "[tool.gathering-consolidate.checks.ASY]"
    blocking += [parse_entry(e, f"{option} blocking-calls") for e in extra_blocking]
    blocking += [parse_entry(e, f"{option} db-calls", db=True) for e in extra_db]
    # User entries win over defaults for the same name: most specific (latest) first.
    ordered = list(reversed(blocking))
    return Rules(
        blocking=Matcher(ordered),
        loop_bound=Matcher([parse_entry(e, where) for e in data["loop-bound"]["calls"]]),
        executors=Matcher([parse_entry(e, where) for e in data["executors"]["calls"]]),
        returns=dict(data.get("returns", {})),
    )


def load_rules(options: Mapping[str, Any] | None = None) -> Rules:
    options = options or {}
    return _rules_cached(
        tuple(options.get("blocking-calls") or ()), tuple(options.get("db-calls") or ())
    )


# -- the collector ------------------------------------------------------------------------------
class AsyncCheck(ProjectCheck):
    """Base of the ASY checks: one shared collector (the index facts) and one analysis."""

    collector = COLLECTOR
    OPTIONS = OPTIONS

    @classmethod
    def collect(cls, ctx: FileContext) -> ModuleFacts:
        return collect_module(ctx)

    def analysis(self, facts: Mapping[str, ModuleFacts], project: ProjectContext) -> Analysis:
        return get_analysis(facts, project, self.options)

    def plans(self, analysis: Analysis, project: ProjectContext) -> Plans:
        """The strategy plans (B: async-to-def, A: async-db), computed once per run."""
        from .strategies import Plans, plan_async_db, plan_async_to_def

        return project.memoized(
            f"asy.plans:{analysis.rules.key()}",
            lambda: Plans(plan_async_to_def(analysis), plan_async_db(analysis)),
        )


# -- the analysis --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Hit:
    """A call in an async function that blocks: ASY001 (`lazy` False) or ASY005."""

    function: str
    call: Call
    chain: tuple[str, ...]  # from the async function to the blocking root
    root: str
    suggestion: str
    db: bool
    lazy: bool


@dataclass
class Analysis:
    index: Index
    rules: Rules
    paths: dict[str, str]  # function -> file
    hits: list[Hit] = field(default_factory=list)
    hits_by_function: dict[str, list[Hit]] = field(default_factory=dict)
    loop_bound: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sync fn -> chain
    _strict: dict[str, tuple[int, str]] = field(default_factory=dict)
    _lazy: dict[str, tuple[int, str]] = field(default_factory=dict)

    # -- helpers -------------------------------------------------------------------------------
    def function(self, qualname: str) -> Function:
        return self.index.functions[qualname]

    def route(self, qualname: str) -> Route | None:
        return self.index.route_of(qualname)

    def is_lazy(self, caller: str, call: Call, callee: str | None) -> bool:
        """A first-access load: the call sits under `if <state not set>` and the caller or the
        callee sets that state, or the callee is memoized (`functools.cache`/`lru_cache`)."""
        if (
            callee is not None
            and callee in self.index.functions
            and self.index.functions[callee].cached
        ):
            return True
        if not call.guard:
            return False
        for key in call.guard:
            for who in (caller, callee):
                if who is None or who not in self.index.functions:
                    continue
                function = self.index.functions[who]
                if key.startswith("self."):
                    if key[5:] in function.self_assigns:
                        return True
                elif key.startswith("g:"):
                    module, _, name = key[2:].rpartition(".")
                    if name in function.global_assigns and self.paths_module(who) == module:
                        return True
        return False

    def paths_module(self, qualname: str) -> str:
        return module_name(self.paths.get(qualname, ""))

    def chain_from(self, start: str, lazy: bool) -> tuple[tuple[str, ...], str]:
        """The shortest chain from a sync function to its blocking root."""
        table = self._lazy if lazy else self._strict
        chain = [start]
        current = start
        for _ in range(len(table) + 1):
            _, nxt = table[current]
            if nxt.startswith("root:"):
                root = nxt[5:]
                chain.append(root)
                return tuple(chain), root
            chain.append(nxt)
            current = nxt
        raise RuntimeError(f"cycle in blocking chain from {start}")  # pragma: no cover

    def blocking_chain(self, qualname: str) -> tuple[tuple[str, ...], str, bool] | None:
        """(chain, root, lazy) for a sync function that reaches a blocking root."""
        if qualname in self._strict:
            chain, root = self.chain_from(qualname, lazy=False)
            return chain, root, False
        if qualname in self._lazy:
            chain, root = self.chain_from(qualname, lazy=True)
            return chain, root, True
        return None

    def is_db(self, root: str) -> bool:
        pattern = self.rules.blocking.match(root)
        return bool(pattern and pattern.db)


def _reach(
    index: Index,
    matcher: Any,
    allow_lazy: bool,
    analysis: Analysis | None,
) -> dict[str, tuple[int, str]]:
    """Multi-source BFS: for each sync function that reaches a call matching `matcher` through
    sync calls, (call index, next function or "root:<name>") on a shortest path."""
    table: dict[str, tuple[int, str]] = {}
    queue: deque[str] = deque()
    functions = index.functions
    for qualname, function in functions.items():
        if function.is_async:
            continue
        for i, target in enumerate(index.targets[qualname]):
            if target is None:
                continue
            call = function.calls[i]
            if call.usage == "await" and target.kind == "ext":
                continue
            if target.kind == "func" and functions[target.name].is_async:
                continue
            if matcher.match(target.name) is None:
                continue
            callee = target.name if target.kind == "func" else None
            if not allow_lazy and analysis is not None and analysis.is_lazy(qualname, call, callee):
                continue
            table[qualname] = (i, f"root:{target.name}")
            queue.append(qualname)
            break
    while queue:
        current = queue.popleft()
        for caller, site in index.callers(current):
            if caller in table or functions[caller].is_async:
                continue
            call = functions[caller].calls[site]
            if not allow_lazy and analysis is not None and analysis.is_lazy(caller, call, current):
                continue
            table[caller] = (site, current)
            queue.append(caller)
    return table


def analyse(facts: Mapping[str, ModuleFacts], rules: Rules) -> Analysis:
    index = build_index(facts.values(), rules.returns)
    analysis = Analysis(index=index, rules=rules, paths=dict(index.paths))
    analysis._strict = _reach(index, rules.blocking, allow_lazy=False, analysis=analysis)
    analysis._lazy = _reach(index, rules.blocking, allow_lazy=True, analysis=analysis)
    loop = _reach(index, rules.loop_bound, allow_lazy=True, analysis=None)
    for qualname in loop:
        chain = [qualname]
        current = qualname
        while True:
            _, nxt = loop[current]
            if nxt.startswith("root:"):
                chain.append(nxt[5:])
                break
            chain.append(nxt)
            current = nxt
        analysis.loop_bound[qualname] = tuple(chain)

    for qualname, function in index.functions.items():
        if not function.is_async:
            continue
        for i, target in enumerate(index.targets[qualname]):
            if target is None:
                continue
            call = function.calls[i]
            hit = _hit(analysis, qualname, call, target.kind, target.name)
            if hit is not None:
                analysis.hits.append(hit)
                analysis.hits_by_function.setdefault(qualname, []).append(hit)
    return analysis


def _hit(analysis: Analysis, qualname: str, call: Call, kind: str, name: str) -> Hit | None:
    index = analysis.index
    if kind == "ext" and call.usage == "await":
        return None  # an awaited external call is an async API
    if kind == "func" and index.functions[name].is_async:
        return None  # a coroutine: awaited it is analysed on its own, else it does not run
    callee = name if kind == "func" else None
    lazy_edge = analysis.is_lazy(qualname, call, callee)
    pattern = analysis.rules.blocking.match(name)
    if pattern is not None:
        return Hit(
            qualname, call, (qualname, name), name, pattern.suggestion, pattern.db, lazy_edge
        )
    if kind != "func":
        return None
    found = analysis.blocking_chain(name)
    if found is None:
        return None
    chain, root, lazy = found
    if lazy_edge and not lazy and name in analysis._lazy:
        chain, root = analysis.chain_from(name, lazy=True)
    root_pattern = analysis.rules.blocking.match(root)
    return Hit(
        qualname,
        call,
        (qualname, *chain),
        root,
        root_pattern.suggestion if root_pattern else "",
        bool(root_pattern and root_pattern.db),
        lazy or lazy_edge,
    )


def get_analysis(
    facts: Mapping[str, ModuleFacts], project: ProjectContext, options: Mapping[str, Any]
) -> Analysis:
    rules = load_rules(options)
    return project.memoized(f"asy.graph:{rules.key()}", lambda: analyse(facts, rules))


# -- findings ---------------------------------------------------------------------------------
def make_finding(
    check: Check,
    analysis: Analysis,
    project: ProjectContext,
    qualname: str,
    line: int,
    col: int,
    end_line: int | None,
    end_col: int | None,
    message: str,
    snippet: str,
    evidence: Mapping[str, Any],
    severity: Severity | None = None,
    fix: Fix | str | None = "default",
) -> Finding:
    path = analysis.paths[qualname]
    return Finding(
        rule=check.id,
        name=check.name,
        message=message,
        severity=severity if severity is not None else check.severity,
        location=Location(path, line, col, end_line, end_col),
        symbol=qualname,
        tier=project.tiers.get(path),
        evidence=dict(evidence),
        fix=check.fix if isinstance(fix, str) else fix,
        fingerprint=fingerprint(check.id, path, qualname, snippet),
    )


#: The fix a chain finding names, by the strategy that is safe for its function.
STRATEGY_FIX = {"B": ASYNC_TO_DEF, "both": ASYNC_TO_DEF, "A": ASYNC_DB}


def hit_finding(
    check: Check,
    analysis: Analysis,
    project: ProjectContext,
    hit: Any,
    message: str,
    route: str | None,
    chosen: str,
    why: str,
    **evidence: Any,
) -> Finding:
    """A finding at the call that starts a blocking chain (ASY001, ASY005), the chain, the root
    and the safe strategy as evidence."""
    call = hit.call
    return make_finding(
        check,
        analysis,
        project,
        hit.function,
        call.line,
        call.col,
        call.end_line,
        call.end_col,
        message,
        f"{call.text} {' '.join(hit.chain[1:])}",
        {
            "chain": list(hit.chain),
            "route": route,
            "root": hit.root,
            "strategy": chosen,
            "strategy_reason": why,
            **evidence,
        },
        fix=STRATEGY_FIX.get(chosen),
    )


def _short(qualname: str) -> str:
    """`gathering.api.dependencies.DatabaseService.execute` -> `DatabaseService.execute`."""
    parts = qualname.split(".")
    for i, part in enumerate(parts):
        if part[:1].isupper():
            return ".".join(parts[i:])
    return ".".join(parts[-2:]) if len(parts) > 1 else qualname


short = _short


def handler_context(analysis: Analysis) -> dict[str, str]:
    """Async functions that run as part of handling a request: route handlers and the async
    functions they await (transitively) -> the route handler they serve."""
    index = analysis.index
    served: dict[str, str] = {}
    queue: deque[str] = deque()
    for qualname in index.routes:
        if index.functions[qualname].is_async:
            served[qualname] = qualname
            queue.append(qualname)
    while queue:
        current = queue.popleft()
        function = index.functions[current]
        for call, target in zip(function.calls, index.targets[current], strict=True):
            if target is None or target.kind != "func" or call.usage != "await":
                continue
            callee = index.functions[target.name]
            if callee.is_async and target.name not in served:
                served[target.name] = served[current]
                queue.append(target.name)
    return served


def route_label(analysis: Analysis, qualname: str) -> str | None:
    route = analysis.route(qualname)
    return route.label if route is not None else None


def chain_text(chain: Sequence[str]) -> str:
    return " -> ".join(_short(q) for q in chain)


def analysis_of_sources(
    files: Mapping[str, str], options: Mapping[str, Any] | None = None
) -> Analysis:
    """The analysis of in-memory files (path -> text), for codemods; unparsable files are left
    out (the engine reports them)."""
    import ast

    facts: dict[str, ModuleFacts] = {}
    for path, text in files.items():
        try:
            tree = ast.parse(text, filename=path)
        except (SyntaxError, ValueError):
            continue
        facts[path] = collect_module(FileContext(path, text, tree))
    return analyse(facts, load_rules(options))
