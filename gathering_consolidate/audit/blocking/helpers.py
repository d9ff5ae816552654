"""Shared by the ASY checks: the blocking-call rules, the per-file collector and the one analysis
of the call graph that every ASY check reads (built once per run, memoized on the project).

Reachability is computed backwards from the blocking roots with a multi-source breadth-first
search over synchronous call edges, so each function gets its shortest chain to a root once,
however many async functions call it.

Unknown is an answer of its own: a call the index cannot resolve, or that leaves the project for
a package neither the standard library nor `[known]` in `rules/blocking.toml`, may block.
`Analysis.unknown_calls(f)` lists them for `f`'s synchronous call tree (bounded), so that no
check claims "does not block" where it could not tell, and findings say what stayed unknown.

With a target environment (`--python` or `$VIRTUAL_ENV`: `ProjectContext.library`), such a call
is first looked up in the installed library's source (`libsource.LibrarySource.describe`, read,
never run): a chain there to a catalogued blocking call makes it block (source "library
source", the chain and the distribution in the evidence); a library call that reaches nothing
blocking and nothing unresolved is known not to block; anything else stays unknown. Without an
environment nothing is looked up.
"""

from __future__ import annotations

import builtins
import fnmatch
import functools
import hashlib
import json
import re
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...config import ConfigError, load_rule_data
from ...index import Call, Function, Index, ModuleFacts, Route, build_index, collect_module
from ...libsource import SOURCE
from ...model import Applicability, Finding, Fix, Location, Severity, fingerprint
from ..base import Check, FileContext, Option, ProjectCheck, ProjectContext, module_name

COLLECTOR = "asy.module_facts:2"  # bump when the facts change shape (cached per file)

#: Options shared by the ASY checks (set them once in `[tool.gathering-consolidate.checks.ASY]`).
OPTIONS = {
    "blocking-calls": Option(
        [], "Extra blocking calls, as `pattern -> suggestion` (patterns match qualified names)."
    ),
    "db-calls": Option(
        [], "Extra project DB-service calls (blocking, and converted by codemod `async-db`)."
    ),
    "known-modules": Option(
        [],
        "Third-party packages known not to block beyond the `blocking-calls` they have (calls"
        " into them are then not unknown).",
    ),
}

#: Bounds of the walk over a function's synchronous call tree for unknown calls.
TREE_DEPTH = 32
TREE_FUNCTIONS = 400
#: At most this many unknown calls in a finding's evidence.
UNKNOWN_SHOWN = 10
_BUILTINS = frozenset(dir(builtins)) | {"object"}

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
    origin: str = "catalogue"  # "catalogue" (rules/blocking.toml) or "config" (the options)


def parse_entry(entry: str, where: str, db: bool = False, origin: str = "catalogue") -> Pattern:
    """`"time.sleep -> asyncio.sleep"` -> Pattern("time.sleep", "asyncio.sleep")."""
    if not isinstance(entry, str) or not entry.strip():
        raise ConfigError(f"{where}: entries must be `pattern -> suggestion` strings")
    pattern, _, suggestion = entry.partition("->")
    pattern = pattern.strip()
    if not re.fullmatch(r"[\w.*?\[\]!-]+", pattern):
        raise ConfigError(f"{where}: `{pattern}` is not a dotted-name pattern")
    return Pattern(pattern, suggestion.strip(), db, origin)


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
    non_blocking: Matcher = field(default_factory=lambda: Matcher([]))
    known_modules: frozenset[str] = frozenset()

    def key(self) -> str:
        data = [
            [(p.pattern, p.suggestion, p.db, p.origin) for p in self.blocking.patterns],
            [p.pattern for p in self.loop_bound.patterns],
            [p.pattern for p in self.executors.patterns],
            sorted(self.returns.items()),
            [p.pattern for p in self.non_blocking.patterns],
            sorted(self.known_modules),
        ]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]

    def blocking_pattern(self, name: str) -> Pattern | None:
        """The [blocking]/[db] entry (or option) `name` matches, unless [non-blocking] says
        otherwise."""
        if self.non_blocking.match(name) is not None:
            return None
        return self.blocking.match(name)

    def is_known(self, name: str) -> bool:
        """An external call whose blocking is known (listed, or in a package whose blocking
        calls are listed: the standard library, builtins, [known] modules)."""
        if self.blocking.match(name) is not None or self.non_blocking.match(name) is not None:
            return True
        head = re.split(r"[.(\[]", name, maxsplit=1)[0]  # `open().read`, `sorted()[].x`
        return head in _BUILTINS or head in sys.stdlib_module_names or head in self.known_modules


@functools.lru_cache(maxsize=16)
def _rules_cached(
    extra_blocking: tuple[str, ...], extra_db: tuple[str, ...], extra_known: tuple[str, ...] = ()
) -> Rules:
    data = load_rule_data("blocking")
    where = "rules/blocking.toml"
    blocking = [parse_entry(e, f"{where} [blocking]") for e in data["blocking"]["calls"]]
    blocking += [parse_entry(e, f"{where} [db]", db=True) for e in data["db"]["calls"]]
    option = "[tool.gathering-consolidate.checks.ASY]"
    blocking += [
        parse_entry(e, f"{option} blocking-calls", origin="config") for e in extra_blocking
    ]
    blocking += [parse_entry(e, f"{option} db-calls", db=True, origin="config") for e in extra_db]
    # User entries win over defaults for the same name: most specific (latest) first.
    ordered = list(reversed(blocking))
    known = [*data.get("known", {}).get("modules", []), *extra_known]
    for module in known:
        if not isinstance(module, str) or not re.fullmatch(r"[\w.]+", module):
            raise ConfigError(f"{where} [known] / {option} known-modules: `{module}` is not a name")
    return Rules(
        blocking=Matcher(ordered),
        loop_bound=Matcher([parse_entry(e, where) for e in data["loop-bound"]["calls"]]),
        executors=Matcher([parse_entry(e, where) for e in data["executors"]["calls"]]),
        returns=dict(data.get("returns", {})),
        non_blocking=Matcher(
            [
                parse_entry(e, f"{where} [non-blocking]")
                for e in data.get("non-blocking", {}).get("calls", [])
            ]
        ),
        known_modules=frozenset(m.split(".", 1)[0] for m in known),
    )


def load_rules(options: Mapping[str, Any] | None = None) -> Rules:
    options = options or {}
    return _rules_cached(
        tuple(options.get("blocking-calls") or ()),
        tuple(options.get("db-calls") or ()),
        tuple(options.get("known-modules") or ()),
    )


# -- the collector ------------------------------------------------------------------------------
class AsyncCheck(ProjectCheck):
    """Base of the ASY checks: one shared collector (the index facts) and one analysis."""

    collector = COLLECTOR
    OPTIONS = OPTIONS

    @classmethod
    def collect(cls, ctx: FileContext) -> ModuleFacts:
        return collect_module(ctx)

    def cache_inputs(self, project: ProjectContext) -> str:
        """The installed distributions and versions when a target environment is read: an
        upgrade in it changes what the library source says."""
        return "" if project.library is None else project.library.signature()

    def analysis(self, facts: Mapping[str, ModuleFacts], project: ProjectContext) -> Analysis:
        return get_analysis(facts, project, self.options)


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
    source: str = "catalogue"  # where the knowledge came from: catalogue, config, project,
    # library source
    library_call: str | None = None  # the external call the installed library source resolved


@dataclass
class Analysis:
    index: Index
    rules: Rules
    paths: dict[str, str]  # function -> file
    #: The target environment's installed packages (`libsource.LibrarySource`), or None.
    library: Any = None
    hits: list[Hit] = field(default_factory=list)
    hits_by_function: dict[str, list[Hit]] = field(default_factory=dict)
    loop_bound: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sync fn -> chain
    _strict: dict[str, tuple[int, str]] = field(default_factory=dict)
    _lazy: dict[str, tuple[int, str]] = field(default_factory=dict)
    _own_unknown: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _tree_unknown: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _library: dict[str, Any] = field(default_factory=dict)

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
                inside = self.library_chain(root)
                if inside is not None:  # continue through the library's own functions
                    chain.extend(inside[1:])
                    root = inside[-1]
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
        pattern = self.rules.blocking_pattern(root)
        return bool(pattern and pattern.db)

    # -- the installed library source ---------------------------------------------------------
    def library_facts(self, name: str) -> Any:
        """What the target environment's source says about an external call the catalogue does
        not settle (`libsource.LibraryFacts`), or None: no environment, a catalogued, standard
        library or `[known]` name, or a package that is not installed."""
        if self.library is None or name in self.index.functions or self.rules.is_known(name):
            return None  # project functions are never looked up (the project may be installed)
        if name not in self._library:
            self._library[name] = self.library.describe(name)
        return self._library[name]

    def library_chain(self, name: str) -> tuple[str, ...] | None:
        """The shortest chain, from `name` through the installed library's source, to a
        catalogued blocking call; None when the library source shows none."""
        facts = self.library_facts(name)
        if facts is None or not facts.blocking:
            return None
        return min(facts.blocking, key=len)

    def library_known(self, name: str) -> bool:
        """An external call the installed library source settles: it blocks (a chain to a
        catalogued blocking call) or it reaches nothing blocking and nothing unresolved."""
        facts = self.library_facts(name)
        return facts is not None and (bool(facts.blocking) or not facts.unknown)

    def library_evidence(self, name: str) -> dict[str, Any] | None:
        """The evidence of a blocking chain read from the library source (plain data)."""
        facts = self.library_facts(name)
        chain = self.library_chain(name)
        if facts is None or chain is None:
            return None
        return {
            "call": name,
            "chain": list(chain),
            "distribution": facts.distribution,
            "version": facts.version,
            "source": facts.source,
        }

    # -- unknown calls ---------------------------------------------------------------------------
    def own_unknown(self, qualname: str) -> list[dict[str, Any]]:
        """The calls of `qualname` itself that may block for all we know: unresolved, or into
        a third-party package the catalogue does not cover. Awaited external calls are async
        APIs and do not count; calls in nested functions and lambdas are not made here."""
        if qualname in self._own_unknown:
            return self._own_unknown[qualname]
        index = self.index
        function = index.functions[qualname]
        found: list[dict[str, Any]] = []
        if function.truncated:
            found.append(
                {
                    "call": f"def {function.name}",
                    "resolved": None,
                    "path": self.paths[qualname],
                    "line": function.line,
                    "function": qualname,
                    "reason": "body nested too deeply to read every call",
                }
            )
        for i, call in enumerate(function.calls):
            if call.usage == "await":
                continue  # an awaited call is an async API (or analysed on its own)
            targets = index.all_targets(qualname, i)
            reason = None
            if not targets:
                resolved = None
            elif all(t.kind != "ext" or self._ext_known(t.name) for t in targets):
                partial = _partial_param(index, call.callee)
                if partial is None:
                    continue
                resolved = targets[0].name
                reason = f"some callers pass `{partial}` something unknown"
            else:
                resolved = next(t.name for t in targets if t.kind == "ext")
                reason = self._library_reason(resolved)
            entry = {
                "call": call.text,
                "resolved": resolved,
                "path": self.paths[qualname],
                "line": call.line,
                "function": qualname,
            }
            if reason:
                entry["reason"] = reason
            found.append(entry)
        self._own_unknown[qualname] = found
        return found

    def _ext_known(self, name: str) -> bool:
        return self.rules.is_known(name) or self.library_known(name)

    def _library_reason(self, name: str) -> str | None:
        """Why the library source left an external call unknown, when it was read."""
        facts = self.library_facts(name)
        if facts is None or not facts.unknown:
            return None
        where = f"{facts.distribution} {facts.version}" if facts.distribution else "the library"
        shown = "; ".join(facts.unknown[:3])
        more = f" and {len(facts.unknown) - 3} more" if len(facts.unknown) > 3 else ""
        return f"read from the installed {where} source, where {shown}{more} stayed unknown"

    def unknown_calls(self, qualname: str) -> list[dict[str, Any]]:
        """The unknown calls of `qualname` and of the synchronous project functions it calls,
        transitively (breadth-first, with a visited set; at most `TREE_FUNCTIONS` functions and
        `TREE_DEPTH` calls deep: past either bound the rest of the tree is itself reported
        unknown). At most `UNKNOWN_SHOWN` entries, nearest first."""
        if qualname in self._tree_unknown:
            return self._tree_unknown[qualname]
        index = self.index
        found: list[dict[str, Any]] = []
        visited = {qualname}
        queue: deque[tuple[str, int]] = deque([(qualname, 0)])
        while queue and len(found) < UNKNOWN_SHOWN:
            current, depth = queue.popleft()
            found.extend(self.own_unknown(current)[: UNKNOWN_SHOWN - len(found)])
            function = index.functions[current]
            for i, call in enumerate(function.calls):
                for target in index.all_targets(current, i):
                    if target.kind != "func" or target.name in visited:
                        continue
                    callee = index.functions[target.name]
                    if callee.is_async:
                        continue  # awaited: analysed on its own; not awaited: it does not run
                    if depth + 1 > TREE_DEPTH or len(visited) >= TREE_FUNCTIONS:
                        found.append(
                            {
                                "call": call.text,
                                "resolved": target.name,
                                "path": self.paths[current],
                                "line": call.line,
                                "function": current,
                                "reason": "call tree too large to follow"
                                f" ({TREE_FUNCTIONS} functions, {TREE_DEPTH} deep)",
                            }
                        )
                        queue.clear()
                        break
                    visited.add(target.name)
                    queue.append((target.name, depth + 1))
        self._tree_unknown[qualname] = found[:UNKNOWN_SHOWN]
        return self._tree_unknown[qualname]


def _partial_param(index: Index, value: Any) -> str | None:
    """The name of a parameter in `value` that the index typed from some callers only (others
    pass something unknown), if any; the walk over the nested value is bounded."""
    if not index.partial_params:
        return None
    stack = [value]
    for _ in range(64):
        if not stack:
            return None
        current = stack.pop()
        if not isinstance(current, tuple) or not current:
            continue
        if current[0] == "param" and (current[1], current[2]) in index.partial_params:
            return str(current[2])
        stack.extend(part for part in current[1:] if isinstance(part, tuple))
    return None


def reach(
    index: Index,
    matcher: Any,
    allow_lazy: bool,
    analysis: Analysis | None,
    library: Analysis | None = None,
) -> dict[str, tuple[int, str]]:
    """Multi-source BFS: for each sync function that reaches a call matching `matcher` through
    sync calls, (call index, next function or "root:<name>") on a shortest path. With `library`,
    an external call whose installed source reaches a blocking call is a root too."""
    table: dict[str, tuple[int, str]] = {}
    queue: deque[str] = deque()
    functions = index.functions
    for qualname, function in functions.items():
        if function.is_async:
            continue
        for i in range(len(function.calls)):
            target = _matching_target(index, matcher, qualname, i, library)
            if target is None:
                continue
            call = function.calls[i]
            if call.usage == "await" and target.kind == "ext":
                continue
            if target.kind == "func" and functions[target.name].is_async:
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


def _matching_target(
    index: Index, matcher: Any, qualname: str, i: int, library: Analysis | None = None
) -> Any:
    """The first target of call `i` that `matcher` matches (a union has several), or, with
    `library`, an external one whose installed source blocks (project names are never looked
    up there: the project may be installed in its own environment)."""
    targets = index.all_targets(qualname, i)
    for target in targets:
        if matcher.match(target.name) is not None:
            return target
    if library is not None and library.library is not None:
        for target in targets:
            if target.kind == "ext" and library.library_chain(target.name) is not None:
                return target
    return None


class _BlockingMatcher:
    """`Rules.blocking_pattern` with the `Matcher.match` signature `reach` expects."""

    def __init__(self, rules: Rules):
        self.rules = rules

    def match(self, name: str) -> Pattern | None:
        return self.rules.blocking_pattern(name)


def analyse(facts: Mapping[str, ModuleFacts], rules: Rules, library: Any = None) -> Analysis:
    """The call-graph analysis; `library` (a `libsource.LibrarySource`) settles external calls
    the catalogue does not know from the installed source."""
    opaque = rules.known_modules
    if library is not None:  # results of installed libraries get a name the source can follow
        heads = {target.split(".", 1)[0] for m in facts.values() for _, target in m.imports}
        opaque |= {h for h in heads if h not in sys.stdlib_module_names and library.installed(h)}
    index = build_index(facts.values(), rules.returns, opaque)
    analysis = Analysis(index=index, rules=rules, paths=index.paths, library=library)
    blocking = _BlockingMatcher(rules)
    analysis._strict = reach(index, blocking, False, analysis, analysis)
    analysis._lazy = reach(index, blocking, True, analysis, analysis)
    loop = reach(index, rules.loop_bound, allow_lazy=True, analysis=None)
    for qualname in loop:
        chain = [qualname]
        current = qualname
        for _ in range(len(loop) + 1):  # the BFS table has no cycle; bounded all the same
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
        for i, call in enumerate(function.calls):
            for target in index.all_targets(qualname, i):
                hit = _hit(analysis, qualname, call, target.kind, target.name)
                if hit is not None:
                    analysis.hits.append(hit)
                    analysis.hits_by_function.setdefault(qualname, []).append(hit)
                    break  # one finding per call, whichever member of a union blocks
    return analysis


def _hit(analysis: Analysis, qualname: str, call: Call, kind: str, name: str) -> Hit | None:
    index = analysis.index
    if kind == "ext" and call.usage == "await":
        return None  # an awaited external call is an async API
    if kind == "func" and index.functions[name].is_async:
        return None  # a coroutine: awaited it is analysed on its own, else it does not run
    callee = name if kind == "func" else None
    lazy_edge = analysis.is_lazy(qualname, call, callee)
    pattern = analysis.rules.blocking_pattern(name)
    if pattern is None and kind == "ext":
        inside = analysis.library_chain(name)
        if inside is not None:
            root_pattern = analysis.rules.blocking_pattern(inside[-1])
            return Hit(
                qualname,
                call,
                (qualname, *inside),
                inside[-1],
                "",  # the catalogue's fix names the library's call, not the project's
                bool(root_pattern and root_pattern.db),
                lazy_edge,
                SOURCE,
                name,
            )
    if pattern is not None:
        return Hit(
            qualname,
            call,
            (qualname, name),
            name,
            pattern.suggestion,
            pattern.db,
            lazy_edge,
            pattern.origin,
        )
    if kind != "func":
        return None
    found = analysis.blocking_chain(name)
    if found is None:
        return None
    chain, root, lazy = found
    if lazy_edge and not lazy and name in analysis._lazy:
        chain, root = analysis.chain_from(name, lazy=True)
    root_pattern = analysis.rules.blocking_pattern(root)
    through = None
    if analysis.library is not None and root_pattern is not None:
        through = next((c for c in chain if analysis.library_chain(c) is not None), None)
    return Hit(
        qualname,
        call,
        (qualname, *chain),
        root,
        root_pattern.suggestion if root_pattern and through is None else "",
        bool(root_pattern and root_pattern.db),
        lazy or lazy_edge,
        "project" if through is None else SOURCE,
        through,
    )


def get_analysis(
    facts: Mapping[str, ModuleFacts], project: ProjectContext, options: Mapping[str, Any]
) -> Analysis:
    rules = load_rules(options)
    library = project.library
    return project.memoized(f"asy.graph:{rules.key()}", lambda: analyse(facts, rules, library))


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
    evidence = {"unknown_calls": analysis.unknown_calls(qualname), **evidence}
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
            # `project`: found by following the project's own code to a catalogued root;
            # `catalogue` / `config`: the call itself is listed (rules/blocking.toml / options).
            "source": hit.source,
            "root_source": analysis.rules.blocking_pattern(hit.root).origin
            if analysis.rules.blocking_pattern(hit.root)
            else "catalogue",
            "strategy": chosen,
            "strategy_reason": why,
            **(
                {"library": analysis.library_evidence(hit.library_call)}
                if getattr(hit, "library_call", None)
                else {}
            ),
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
    files: Mapping[str, str], options: Mapping[str, Any] | None = None, library: Any = None
) -> Analysis:
    """The analysis of in-memory files (path -> text), for codemods; unparsable files are left
    out (the engine reports them). `library`: as for `analyse`."""
    import ast

    facts: dict[str, ModuleFacts] = {}
    for path, text in files.items():
        try:
            tree = ast.parse(text, filename=path)
        except (SyntaxError, ValueError):
            continue
        facts[path] = collect_module(FileContext(path, text, tree))
    return analyse(facts, load_rules(options), library)
