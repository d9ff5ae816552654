"""The two consolidation strategies for event-loop blocking, planned on the call graph.

* B, `async-to-def`: a blocking `async def` route handler becomes a plain `def`, which FastAPI
  runs in its threadpool (`plan_async_to_def`).
* A, `async-db`: every request handler (and the sync helpers on its chain to the DB service)
  awaits an async DB service instead, the whole app in one pass (`plan_async_db`).

The audit uses the plans to say which strategy is safe for each finding; the codemods use the
same plans to rewrite, so what the finding promises is what the codemod does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ...index import Call, Index
from ..base import ProjectContext
from .helpers import THREADPOOL_NOTE, Analysis, Matcher, Pattern, handler_context, reach, short

_short = short

#: What the `AsyncDatabaseService` written by `async-db` provides itself.
CORE_METHODS = frozenset({"execute", "execute_one", "open", "close", "transaction"})


@dataclass(frozen=True)
class Plans:
    to_def: DefPlan
    async_db: DbPlan


@dataclass(frozen=True)
class DefPlan:
    """Strategy B (`async-to-def`): which async route handlers can become plain `def`, why the
    others cannot, and the awaiting call sites to rewrite."""

    convertible: frozenset[str]
    refused: Mapping[str, str]  # handler -> reason
    rewrites: tuple[tuple[str, int], ...]  # (function, call index) of `await handler(...)`


def plan_async_to_def(analysis: Analysis, candidates: Iterable[str] | None = None) -> DefPlan:
    """Handlers that block (ASY001/ASY005) become `def` when their body has no async-only
    construct other than awaiting another handler that converts, they need no running event loop
    (directly or through sync helpers), are not websocket routes, and every reference to them in
    the project is a call that awaits them (rewritten) or a route registration."""
    index = analysis.index
    if candidates is None:
        candidates = [q for q in analysis.hits_by_function if analysis.route(q) is not None]
    refused: dict[str, str] = {}
    pool: set[str] = set()
    references = _references(index)
    for qualname in sorted(set(candidates)):
        function = index.functions.get(qualname)
        route = analysis.route(qualname)
        if function is None or not function.is_async:
            continue
        if route is None:
            refused[qualname] = "not a route handler (FastAPI runs only route handlers in threads)"
            continue
        if route.websocket:
            refused[qualname] = "a websocket route must stay `async def`"
            continue
        bound = _loop_bound_call(analysis, qualname)
        if bound:
            refused[qualname] = bound
            continue
        if function.routes and any(d.method == "websocket" for d in function.routes):
            refused[qualname] = "a websocket route must stay `async def`"
            continue
        bad = _bad_reference(index, qualname, references)
        if bad:
            refused[qualname] = bad
            continue
        pool.add(qualname)
    changed = True
    while changed:
        changed = False
        for qualname in sorted(pool):
            reason = _async_only(index, qualname, pool)
            if reason:
                pool.discard(qualname)
                refused[qualname] = reason
                changed = True
    rewrites: list[tuple[str, int]] = []
    for qualname in sorted(pool):
        for caller, site in index.callers(qualname):
            if index.functions[caller].calls[site].usage == "await":
                rewrites.append((caller, site))
    return DefPlan(frozenset(pool), refused, tuple(sorted(set(rewrites))))


def _loop_bound_call(analysis: Analysis, qualname: str) -> str | None:
    index = analysis.index
    function = index.functions[qualname]
    for i, target in enumerate(index.targets[qualname]):
        if target is None:
            continue
        call = function.calls[i]
        if call.usage == "await":
            continue
        if analysis.rules.loop_bound.match(target.name):
            return f"calls `{call.text}()` (line {call.line}), which needs the running event loop"
        if target.kind == "func" and target.name in analysis.loop_bound:
            chain = analysis.loop_bound[target.name]
            return (
                f"calls `{call.text}()` (line {call.line}), which needs the running event loop"
                f" ({' -> '.join(_short(q) for q in chain)})"
            )
    return None


def _async_only(index: Index, qualname: str, pool: set[str]) -> str | None:
    """Why the body needs `async def`, given that awaits of handlers in `pool` are removed."""
    function = index.functions[qualname]
    awaited_ok = {
        c.line
        for c, t in zip(function.calls, index.targets[qualname], strict=True)
        if c.usage == "await" and t is not None and t.kind == "func" and t.name in pool
    }
    for construct in function.constructs:
        if construct.kind == "await":
            if construct.line in awaited_ok and construct.text.endswith("(...)"):
                continue
            return f"awaits `{construct.text}` (line {construct.line})"
        return f"uses `{construct.kind}` (line {construct.line})"
    return None


def _references(index: Index) -> dict[str, list[tuple[str, str]]]:
    """Project functions passed as values (callbacks) to calls: function -> [(where, call)]."""
    found: dict[str, list[tuple[str, str]]] = {}
    for module in index.modules.values():
        owners: list[tuple[str, Sequence[Call]]] = [(module.module, module.calls)]
        owners += [(f.qualname, f.calls) for f in module.functions]
        for owner, calls in owners:
            for call in calls:
                method = call.text.rsplit(".", 1)[-1]
                if method in ("add_api_route", "include_router"):
                    continue
                for value in (*call.args, *(v for _, v in call.kwargs)):
                    if value is None or value[0] not in ("name", "attr"):
                        continue
                    entity = index.evaluate(value)
                    if entity is not None and entity[0] == "func":
                        found.setdefault(entity[1], []).append((owner, call.text))
    return found


def _bad_reference(
    index: Index, qualname: str, references: Mapping[str, list[tuple[str, str]]]
) -> str | None:
    for caller, site in index.callers(qualname):
        call = index.functions[caller].calls[site]
        if call.usage != "await":
            where = f"{_short(caller)} line {call.line}"
            return f"called without `await` in {where}: that caller needs a coroutine"
    for owner, text in references.get(qualname, []):
        return f"passed to `{text}()` in {_short(owner)}, which may need a coroutine function"
    return None


# -- strategy A: async-db ---------------------------------------------------------------------
@dataclass(frozen=True)
class DbEdit:
    """One rewrite at a call site: `await` a service method or a converted helper, call the
    async accessor instead of a sync provider, or replace `run_in_executor(None, db.m, ...)`."""

    function: str
    index: int
    kind: str  # await | provider | executor


@dataclass(frozen=True)
class DbPlan:
    service: str | None  # the sync DB service class
    providers: frozenset[str]  # functions that return the sync service (FastAPI dependencies)
    scope: frozenset[str]  # request handlers and helpers looked at
    to_async: frozenset[str]  # sync functions that become `async def` (helpers, sync handlers)
    methods: tuple[str, ...]  # service methods the async service copies (besides its core)
    edits: tuple[DbEdit, ...]
    params: tuple[tuple[str, str], ...]  # (function, parameter) typed as the sync service
    blockers: tuple[tuple[str | None, str], ...]  # (function or None, why)
    left: tuple[str, ...]  # async functions off the request path still on the sync service

    @property
    def possible(self) -> bool:
        return self.service is not None and not self.blockers

    def blockers_for(self, qualname: str) -> list[str]:
        return [why for where, why in self.blockers if where in (None, qualname)]


def _empty_db_plan(blockers: Sequence[tuple[str | None, str]] = ()) -> DbPlan:
    return DbPlan(None, frozenset(), frozenset(), frozenset(), (), (), (), tuple(blockers), ())


def find_service(analysis: Analysis, hint: str | None = None) -> tuple[str | None, str | None]:
    """The project's sync DB service class: the class of the DB-service roots the audit reached
    (`rules/blocking.toml` [db]), or `hint`. Returns (class, problem)."""
    index = analysis.index
    if hint:
        if hint in index.classes:
            return hint, None
        return None, f"no class `{hint}` in the project"
    found: set[str] = set()
    for hit in analysis.hits:
        if hit.db and hit.root in index.functions:
            owner = index.functions[hit.root].cls
            if owner is not None:
                found.add(owner)
    for qualname, function in index.functions.items():
        if function.cls is not None and analysis.is_db(qualname):
            found.add(function.cls)
    # A subclass of another candidate is the same service.
    roots = {c for c in found if not any(o != c and o in index.project_mro(c) for o in found)}
    if len(roots) > 1:
        names = ", ".join(sorted(roots))
        return None, f"several DB services ({names}); pick one with -O service=<qualified name>"
    return (next(iter(roots)), None) if roots else (None, None)


def plan_async_db(
    analysis: Analysis, service: str | None = None, skip: frozenset[str] = frozenset()
) -> DbPlan:
    """Which request handlers and helpers move to the async DB service, and what blocks it.

    The scope is every route handler and the async functions they await (the request path),
    plus the sync helpers on their (non-lazy) chains to the service, which become `async def`.
    Calls to service methods are awaited; zero-argument providers of the sync service
    (`get_db_service()`) become the async accessor; `Depends(get_db)` parameters typed as the
    service get the async dependency. It blocks when a call on that path reaches the service in
    a way this cannot swap: an attribute or global holding the service (`self._db`), a helper
    also called from outside the request path or passed around as a value, the service handed
    to a callee that is not converted, a method of the service with no async counterpart.
    First-access loads (ASY005) and non-DB blocking calls are left as they are. `skip`: entry
    points (handlers) left on the sync service, so the others can move (async-db converts per
    handler)."""
    index = analysis.index
    svc, problem = find_service(analysis, service)
    if problem:
        return _empty_db_plan([(None, problem)])
    if svc is None:
        return _empty_db_plan()

    def is_service(entity: object) -> bool:
        return (
            isinstance(entity, tuple)
            and len(entity) >= 2
            and entity[0] == "inst"
            and svc in index.project_mro(entity[1])
        )

    def service_method(qualname: str) -> bool:
        function = index.functions.get(qualname)
        return bool(function and function.cls and svc in index.project_mro(function.cls))

    providers = frozenset(
        q
        for q, f in index.functions.items()
        if f.cls is None
        and not f.is_async
        and not f.params
        and is_service(index.call_result(("func", q)))
    )
    methods = [Pattern(q, "", True) for q in sorted(index.functions) if service_method(q)]
    reaches = reach(index, Matcher(methods), allow_lazy=False, analysis=analysis)

    references = _references(index)
    nested = _nested(index)
    context = handler_context(analysis)
    entry = (set(context) | {q for q in index.routes if not index.functions[q].is_async}) - skip
    blockers: list[tuple[str | None, str]] = []
    edits: list[DbEdit] = []
    params: list[tuple[str, str]] = []
    needed: set[str] = set()
    helpers: set[str] = set()
    touched: set[str] = set()
    visited: set[str] = set()
    queue: deque[str] = deque(sorted(entry))
    while queue:
        qualname = queue.popleft()
        if qualname in visited:
            continue
        visited.add(qualname)
        function = index.functions[qualname]
        for param in function.params:
            if param.value is None or not is_service(index.evaluate(param.value)):
                continue
            params.append((qualname, param.name))
            touched.add(qualname)
            if param.depends is not None:
                provider = index.evaluate(param.depends)
                if provider is None or provider[1] not in providers:
                    blockers.append(
                        (qualname, f"parameter `{param.name}` comes from an unknown provider")
                    )
        for i, (call, target) in enumerate(
            zip(function.calls, index.targets[qualname], strict=True)
        ):
            if target is None:
                continue
            callee = index.functions.get(target.name) if target.kind == "func" else None
            if callee is not None and callee.is_async:
                continue
            if callee is not None and service_method(target.name) and not target.constructor:
                if call.usage == "await":
                    continue
                why = _receiver_problem(index, call, providers)
                if why:
                    blockers.append((qualname, why))
                    continue
                edits.append(DbEdit(qualname, i, "await"))
                needed.add(target.name)
                touched.add(qualname)
                continue
            if target.kind == "func" and target.name in providers:
                if call.args or call.kwargs:
                    blockers.append(
                        (qualname, f"`{call.text}(...)` (line {call.line}) takes arguments")
                    )
                else:
                    edits.append(DbEdit(qualname, i, "provider"))
                    touched.add(qualname)
                continue
            if call.text.endswith(".run_in_executor") and len(call.args) >= 2:
                handed = index.evaluate(call.args[1])
                if handed is not None and handed[0] == "func" and service_method(handed[1]):
                    if call.usage != "await":
                        blockers.append(
                            (qualname, f"`{call.text}(...)` (line {call.line}) is not awaited")
                        )
                    elif not _receiver_problem(index, call, providers, value=call.args[1]):
                        edits.append(DbEdit(qualname, i, "executor"))
                        needed.add(handed[1])
                        touched.add(qualname)
                    else:
                        blockers.append(
                            (
                                qualname,
                                _receiver_problem(index, call, providers, value=call.args[1]),
                            )
                        )
                    continue
            if (
                callee is not None
                and not service_method(target.name)
                and target.name in reaches
                and not analysis.is_lazy(qualname, call, target.name)
            ):
                edits.append(DbEdit(qualname, i, "await"))
                helpers.add(target.name)
                touched.add(qualname)
                queue.append(target.name)
                continue
        for call, target in zip(function.calls, index.targets[qualname], strict=True):
            passed = [index.evaluate(v) for v in (*call.args, *(v for _, v in call.kwargs)) if v]
            if call.text.endswith(".run_in_executor"):
                continue
            handed = next(
                (e for e in passed if e is not None and e[0] == "func" and service_method(e[1])),
                None,
            )
            if handed is not None:
                blockers.append(
                    (
                        qualname,
                        f"passes `{_short(handed[1])}` to `{call.text}(...)` (line {call.line}),"
                        " which would get a coroutine function",
                    )
                )
                continue
            if not any(is_service(e) for e in passed):
                continue
            if target is not None and (
                target.name in helpers
                or target.name in reaches
                or service_method(target.name)
                or (target.kind == "func" and index.functions[target.name].is_async)
            ):
                continue
            blockers.append(
                (
                    qualname,
                    f"passes the DB service to `{call.text}(...)` (line {call.line}), which is"
                    " not converted",
                )
            )
        for inner in nested.get(qualname, ()):
            if any(
                t is not None and (service_method(t.name) or t.name in providers)
                for t in index.targets[inner]
            ):
                blockers.append(
                    (
                        qualname,
                        f"the nested function {_short(inner)} uses the DB service; move it out"
                        " or convert it by hand",
                    )
                )
    for helper in sorted(helpers):
        function = index.functions[helper]
        if function.cls is not None:
            blockers.append(
                (
                    helper,
                    f"{_short(helper)} is a method: its class holds or shares the sync service",
                )
            )
        if any(c.kind == "yield" for c in function.constructs):
            blockers.append((helper, f"{_short(helper)} is a generator"))
        for owner, text in references.get(helper, []):
            blockers.append(
                (helper, f"{_short(helper)} is passed to `{text}()` in {_short(owner)}")
            )
        for caller, site in index.callers(helper):
            if caller not in visited:
                line = index.functions[caller].calls[site].line
                blockers.append(
                    (
                        helper,
                        f"{_short(helper)} is also called from {_short(caller)} (line {line}),"
                        " which is not a request handler",
                    )
                )
    to_async = set(helpers)
    for qualname in visited:
        function = index.functions[qualname]
        if function.is_async or qualname in helpers or qualname not in touched:
            continue
        to_async.add(qualname)  # a sync route handler that now awaits
        found = analysis.blocking_chain(qualname)
        if found is not None and not analysis.is_db(found[1]):
            blockers.append(
                (
                    qualname,
                    f"{_short(qualname)} is a plain `def` handler that also reaches `{found[1]}`:"
                    " as `async def` it would block the event loop",
                )
            )
    copy = _methods_to_copy(index, needed, service_method)
    left = sorted(
        {h.function for h in analysis.hits if h.db and not h.lazy and h.function not in visited}
    )
    return DbPlan(
        service=svc,
        providers=providers,
        scope=frozenset(visited),
        to_async=frozenset(to_async),
        methods=tuple(sorted(copy)),
        edits=tuple(edits),
        params=tuple(params),
        blockers=tuple(dict.fromkeys(blockers)),
        left=tuple(left),
    )


def _nested(index: Index) -> dict[str, list[str]]:
    """Function -> the functions defined inside it, at any depth (they run with its variables)."""
    found: dict[str, list[str]] = {}
    for qualname, function in index.functions.items():
        if not function.nested:
            continue
        parent = qualname.rsplit(".", 1)[0]
        for _ in range(qualname.count(".")):  # each step drops a name: bounded by the dots
            if parent not in index.functions:
                break
            found.setdefault(parent, []).append(qualname)
            if not index.functions[parent].nested:
                break
            parent = parent.rsplit(".", 1)[0]
    return found


def _receiver_problem(
    index: Index, call: Call, providers: frozenset[str], value: object = None
) -> str | None:
    """Why the object a service method is called on cannot be swapped for the async service."""
    receiver = value if value is not None else call.callee
    if not isinstance(receiver, tuple) or receiver[0] != "attr":
        return f"`{call.text}(...)` (line {call.line}): cannot tell where the service comes from"
    source = receiver[1]
    if isinstance(source, tuple) and source[0] == "inst":
        return None  # a parameter (or annotated local) typed as the service
    if isinstance(source, tuple) and source[0] == "call":
        provider = index.evaluate(source[1])
        if provider is not None and provider[0] == "func" and provider[1] in providers:
            return None
    where = "an attribute" if isinstance(source, tuple) and source[0] == "attr" else "a global"
    return (
        f"`{call.text}(...)` (line {call.line}) uses the sync service held by {where}"
        " (say `self._db`), which the codemod cannot swap"
    )


def _methods_to_copy(index: Index, needed: Iterable[str], service_method) -> set[str]:
    """Service methods called on the request path that the async service must provide beyond
    its core, with the service methods they call in turn."""
    copy: set[str] = set()
    stack = [m for m in needed if m.rsplit(".", 1)[-1] not in CORE_METHODS]
    while stack:
        method = stack.pop()
        if method in copy:
            continue
        copy.add(method)
        for target in index.targets.get(method, []):
            if (
                target is not None
                and target.kind == "func"
                and service_method(target.name)
                and target.name.rsplit(".", 1)[-1] not in CORE_METHODS
            ):
                stack.append(target.name)
    return copy


# -- what the audit says -------------------------------------------------------------------------
def strategy(analysis: Analysis, qualname: str, plans: Plans) -> tuple[str, str]:
    """("A" | "B" | "both" | "none", why) for the blocking findings of one async function."""
    hits = analysis.hits_by_function.get(qualname, [])
    b_ok = qualname in plans.to_def.convertible
    b_why = ""
    if not b_ok:
        b_why = plans.to_def.refused.get(qualname) or (
            "not a route handler (FastAPI runs only route handlers in its threadpool)"
            if analysis.route(qualname) is None
            else "its findings are not blocking calls"
        )
    db = plans.async_db
    a_why = ""
    non_db = sorted({h.root for h in hits if not h.db})
    lazy = sorted({h.chain[1] for h in hits if h.lazy})
    own = db.blockers_for(qualname)
    if db.service is None:
        a_why = "no DB-service call to convert"
    elif qualname not in db.scope:
        a_why = "not on the request path (async-db converts request handlers)"
    elif non_db:
        a_why = f"async-db only converts DB-service calls; this also reaches `{non_db[0]}`"
    elif lazy:
        a_why = f"async-db leaves first-access loads alone (`{_short(lazy[0])}`)"
    elif own:
        a_why = own[0]
    a_ok = not a_why and bool(hits)
    if a_ok and db.blockers:
        a_why = f"(async-db is blocked elsewhere: {db.blockers[0][1]})"
    if b_ok and a_ok:
        why = "B (async-to-def) is the smaller change; " + THREADPOOL_NOTE
        return "both", f"{why} {a_why}".strip()
    if a_ok:
        return "A", f"async-to-def (B) does not apply: {b_why} {a_why}".strip()
    if b_ok:
        return "B", f"async-db (A) does not apply: {a_why}; {THREADPOOL_NOTE}"
    return "none", f"B: {b_why}; A: {a_why}"


def plans_for(analysis: Analysis, project: ProjectContext) -> Plans:
    """The strategy plans (B: async-to-def, A: async-db), computed once per run."""
    return project.memoized(
        f"asy.plans:{analysis.rules.key()}",
        lambda: Plans(plan_async_to_def(analysis), plan_async_db(analysis)),
    )
