"""The project index: symbols, types, call graph and FastAPI routes across modules, built once
from the per-module facts (`facts.py`).

Entities that values evaluate to:

* `("func", "pkg.mod.Class.method")`: a project function or method;
* `("class", "pkg.mod.Class")`, `("inst", "pkg.mod.Class")`: a project class, an instance of it;
* `("module", "pkg.mod")`;
* `("ext", "psycopg.connect")`: something outside the project, by its dotted name;
* `("extinst", "psycopg.Connection")`: an instance of an external class, so that methods called
  on it have a dotted name too (`psycopg.Connection.execute`);
* `("union", (e1, e2))`: one of several (a parameter whose callers pass different classes).

`None` is unknown: a call whose callee evaluates to None is unresolved (`targets` holds None),
never "calls nothing".

Untyped parameters (no annotation, or `Any`) take their type from the callers: after a first
pass over the call graph, the arguments every resolved call site passes are evaluated; one class
types the parameter, several make a union, any caller whose argument stays unknown leaves it
partial (`partial_params`). The passes repeat while they type something new, at most
`PARAM_ROUNDS` times.

Every walk terminates by construction: evaluation is memoised with the project model's cycle
guard and depth bound (`MAX_DEPTH`; deeper chains are unknown and listed in `incomplete`), class
hierarchies and router mounts carry a visited set and a bound, unions keep at most `MAX_UNION`
members.

Names resolve as the project model (semantic/project.py) resolves them for every analysis:
through each module's imports (following re-exports from package `__init__` modules), module
globals, class attributes (assigned in the class body or as `self.x = ...` in any method,
including base classes, in MRO order); annotations and return values are this index's own.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a graph is built: it costs ~0.1 s of every run's start-up
    import networkx as nx

from ..semantic.project import ProjectModel
from .facts import ROUTE_ADDERS, Call, ClassInfo, Function, ModuleFacts, Value

Entity = tuple[Any, ...] | None

#: Nested evaluations deeper than this are unknown (a re-export chain, an attribute chain).
MAX_DEPTH = 80
#: Rounds of caller-based parameter typing after the first pass.
PARAM_ROUNDS = 3
#: At most this many members in a union type.
MAX_UNION = 4
_BUILTIN_NAMES = frozenset(dir(builtins)) | {"object"}
#: Builtin types: calling one builds an instance.
_BUILTIN_TYPES = frozenset(
    {"str", "bytes", "bytearray", "int", "float", "bool", "complex", "list", "dict", "set"}
    | {"frozenset", "tuple", "object", "range", "memoryview", "slice"}
)
#: Methods of `str`/`bytes` that return the same type; `split` and co. return a list of it.
_SAME_TYPE = frozenset(
    {"strip", "lstrip", "rstrip", "lower", "upper", "replace", "format", "join", "title"}
    | {"casefold", "removeprefix", "removesuffix", "zfill", "center", "ljust", "rjust"}
    | {"capitalize", "swapcase", "expandtabs", "translate", "format_map"}
)
_SPLITS = frozenset({"split", "rsplit", "splitlines"})

#: Methods of typed containers that return an element (`queue.get()`, `items.pop()`).
_ELEMENT_GETTERS = frozenset(
    {"get", "get_nowait", "pop", "popleft", "popitem", "setdefault", "__getitem__"}
)
_CONTEXT_MANAGERS = frozenset(
    {"contextlib.contextmanager", "contextlib.asynccontextmanager", "contextmanager"}
)

#: Classes whose decorator methods register FastAPI routes.
ROUTER_CLASSES = frozenset(
    {
        "fastapi.APIRouter",
        "fastapi.FastAPI",
        "fastapi.routing.APIRouter",
        "fastapi.applications.FastAPI",
    }
)


@dataclass(frozen=True, slots=True)
class Route:
    """A FastAPI route: the handler's qualified name, HTTP methods and full path (router
    prefixes and `include_router(prefix=...)` included)."""

    function: str
    methods: tuple[str, ...]
    path: str
    line: int

    @property
    def websocket(self) -> bool:
        return self.methods == ("WEBSOCKET",)

    @property
    def label(self) -> str:
        return f"{'|'.join(self.methods)} {self.path or '/'}"


@dataclass(frozen=True, slots=True)
class Target:
    """What a call site resolves to: a project function (`kind` "func", also for constructors,
    which resolve to `__init__`), a project class with no `__init__` of its own or of a base
    (`kind` "class": constructing it runs no project code) or an external dotted name (`kind`
    "ext")."""

    kind: str
    name: str
    constructor: bool = False


class Index(ProjectModel):
    """Cross-module types, call graph and routes, over the project model's symbol table and name
    resolution (semantic/project.py).

    The call graph is kept as tables: `targets` (what each call resolves to) and, the other way,
    the resolved call sites of each function (`callers`). That is all the analyses read, and it
    is a fraction of a networkx DiGraph's size (three dicts per node and one per edge: ~50 MB
    on the standard library); `graph` builds the DiGraph when one is asked for."""

    external = "ext"
    max_depth = MAX_DEPTH

    def __init__(
        self,
        facts: Iterable[ModuleFacts],
        returns: Mapping[str, str] | None = None,
        known_modules: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.returns = dict(returns or {})
        #: Top-level packages (besides the standard library and builtins) whose call results
        #: may be named opaquely (`jwt.decode()`), so that methods called on them have a name.
        self.known_modules = frozenset(known_modules)
        self.modules: dict[str, ModuleFacts] = {}
        self.paths: dict[str, str] = {}  # function qualname -> file path
        self.functions: dict[str, Function] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.variables: dict[str, list[Value]] = {}
        self.class_attrs: dict[str, dict[str, list[Value]]] = {}
        self.prefixes: dict[str, str] = {}
        #: Module -> its import table (local name -> qualified name), as the codemods read it.
        self.imports: dict[str, dict[str, str]] = {}
        for module in sorted(facts, key=lambda m: m.path):
            if module.module in self.modules:
                continue  # two files for one module name (say, scripts); keep the first
            self.modules[module.module] = module
            self.imports[module.module] = dict(module.imports)
            for local, target in self.imports[module.module].items():
                if target != f"{module.module}.{local}":
                    self.aliases[f"{module.module}.{local}"] = target
            for name, value in module.globals:
                self.variables.setdefault(f"{module.module}.{name}", []).append(value)
            for name, prefix in module.prefixes:
                self.prefixes.setdefault(f"{module.module}.{name}", prefix)
            for cls in module.classes:
                self.classes.setdefault(cls.qualname, cls)
                attrs = self.class_attrs.setdefault(cls.qualname, {})
                for attr, value in cls.attrs:
                    attrs.setdefault(attr, []).append(value)
            for function in module.functions:
                if function.qualname not in self.functions:
                    self.functions[function.qualname] = function
                    self.paths[function.qualname] = module.path
        self.resolve_source_roots()
        self._values: dict[Value, Entity] = {}
        self._results: dict[str, Entity] = {}
        #: (function, parameter) -> the entity inferred from its callers.
        self.param_types: dict[tuple[str, str], Entity] = {}
        #: (function, parameter) typed from some callers while others pass something unknown.
        self.partial_params: set[tuple[str, str]] = set()
        #: Function -> what each of its calls resolves to (None: unknown).
        self.targets: dict[str, tuple[Target | None, ...]] = {}
        #: (function, call index) -> further targets of a call on a union (the first is in
        #: `targets`).
        self.alternatives: dict[tuple[str, int], list[Target]] = {}
        #: Project function -> (caller, call index) of every resolved call to it.
        self._callers: dict[str, list[tuple[str, int]]] = {}
        #: One `Target` per distinct target (a large project has ~10 calls per target).
        self._target_memo: dict[tuple[str, str, bool], Target] = {}
        self._add_edges()
        self._infer_params()
        self.routes: dict[str, list[Route]] = self._find_routes()

    # -- the project model's hooks ------------------------------------------------------------
    def bound_value(self, binding: Any, depth: int) -> Entity:
        return self._first(binding)

    def bases(self, cls: str) -> Iterable[Entity]:
        return (self.evaluate(base) for base in self.classes[cls].bases)

    def method(self, qualname: str, instance: bool) -> Entity:
        """A property read on an instance is what it returns."""
        if instance and self.functions[qualname].kind == "property":
            return self.call_result(("func", qualname))
        return ("func", qualname)

    def canonical_global(self, value: Value) -> str | None:
        """The `module.variable` a value names, through import aliases (router identity)."""
        parts: list[str] = []
        while value and value[0] == "attr":
            parts.append(value[2])
            value = value[1]
        if not value or value[0] != "name":
            return None
        dotted = ".".join([value[1], *reversed(parts)])
        for _ in range(8):
            if "." not in dotted:
                return None
            if dotted in self.variables:
                return dotted
            target = self.aliases.get(dotted)
            if target is None:
                return None
            dotted = target
        return None

    # -- values ------------------------------------------------------------------------------
    def evaluate(self, value: Value) -> Entity:
        if value is None:
            return None
        return self.guarded(self._values, value, value, lambda: self._evaluate(value))

    def _evaluate(self, value: tuple[Any, ...]) -> Entity:
        kind = value[0]
        if kind == "name":
            return self.resolve(value[1])
        if kind == "attr":
            return self.attribute(self.evaluate(value[1]), value[2])
        if kind == "call":
            return self.call_result(self.evaluate(value[1]))
        if kind == "inst":
            entity = self.evaluate(value[1])
            if entity is None:
                return None
            if entity[0] == "class":
                return ("inst", entity[1])
            if entity[0] in ("inst", "extinst"):  # an alias of an annotation: `db: Db`
                return entity
            if entity[0] == "ext":
                if len(value) > 2:  # a container annotation: remember the element type
                    element = self.evaluate(value[2])
                    if element is not None:
                        return ("extinst", entity[1], element)  # type: ignore[return-value]
                return ("extinst", entity[1])
            return None
        if kind == "or":
            return self.evaluate(value[1]) or self.evaluate(value[2])
        if kind == "item":  # `Alias = Connection[dict]`: a generic alias is the class
            entity = self.evaluate(value[1])
            if entity is not None and entity[0] in ("class", "ext"):
                return entity
            if entity is not None and len(entity) > 2:  # an element of a typed container
                return entity[2]  # type: ignore[misc]
            if entity is not None and entity[0] == "extinst":
                if entity[1] in ("str", "bytes"):
                    return entity
                if "()" in entity[1] and self._opaque_ok(entity[1]):
                    return ("extinst", f"{entity[1]}[]")  # an element of an opaque result
            return None
        if kind == "const":
            return ("extinst", "str")
        if kind == "binop":
            entity = self.evaluate(value[1])
            if entity is not None and entity[0] == "extinst" and self._opaque_ok(entity[1]):
                return entity
            return None
        if kind == "param":  # an untyped parameter: what its callers pass
            return self.param_types.get((value[1], value[2]))
        if kind == "super":  # `super()` in a method of the class `value[1]` names
            entity = self.evaluate(value[1])
            return ("super", entity[1]) if entity is not None and entity[0] == "class" else None
        if kind == "enter":  # `with x as y`: a @contextmanager yields, other objects are `y`
            inner = value[1]
            if inner and inner[0] == "call":
                factory = self.evaluate(inner[1])
                if factory is not None and factory[0] == "func":
                    function = self.functions[factory[1]]
                    if any(d in _CONTEXT_MANAGERS for d in function.decorators):
                        return self.evaluate(function.yields)
            return self.evaluate(inner)
        return None

    def _first(self, values: Iterable[Value]) -> Entity:
        for value in values:
            entity = self.evaluate(value)
            if entity is not None:
                return entity
        return None

    def attribute(self, entity: Entity, name: str, depth: int = 0) -> Entity:
        """The project model's attribute lookup, plus unions, `super()`, instances and
        external instances (typed containers' element getters)."""
        if entity is None:
            return None
        kind, dotted = entity[0], entity[1]
        if kind == "union":
            return _union(self.attribute(member, name) for member in dotted)
        if kind == "super":  # the next class in the MRO that defines it
            for cls in self.project_mro(dotted)[1:]:
                if f"{cls}.{name}" in self.functions:
                    return ("func", f"{cls}.{name}")
            for base in self.external_bases(dotted):
                return ("ext", f"{base}.{name}")
            return ("ext", f"object.{name}")
        if kind == "inst":
            return self.class_member(dotted, name, depth, instance=True)
        if kind == "extinst" and len(entity) > 2 and name in _ELEMENT_GETTERS:
            return ("elemfn", f"{dotted}.{name}", entity[2])  # type: ignore[return-value]
        if kind == "extinst":
            return ("ext", f"{dotted}.{name}")
        return super().attribute(entity, name, depth)

    def call_result(self, entity: Entity) -> Entity:
        if entity is None:
            return None
        kind, dotted = entity[0], entity[1]
        if kind == "union":
            return _union(self.call_result(member) for member in dotted)
        if kind == "elemfn":
            return entity[2]  # type: ignore[misc]
        if kind == "class":
            return ("inst", dotted)
        if kind == "func":
            function = self.functions[dotted]
            return self.guarded(
                self._results,
                dotted,
                ("result", dotted),
                lambda: self.evaluate(function.returns) or self._first(function.return_values),
            )
        if kind == "ext":
            if dotted in self.returns:
                return ("extinst", self.returns[dotted])
            last = dotted.rsplit(".", 1)[-1]
            if last[:1].isupper() or dotted in _BUILTIN_TYPES:
                return ("extinst", dotted)
            owner = dotted.rsplit(".", 1)[0] if "." in dotted else ""
            if owner in ("str", "bytes") and last in _SAME_TYPE:
                return ("extinst", owner)
            if owner in ("str", "bytes") and last in _SPLITS:
                return ("extinst", "list", ("extinst", owner))  # type: ignore[return-value]
            if self._opaque_ok(dotted):
                return ("extinst", f"{dotted}()")  # a value of a known package, type unnamed
            return None
        if kind == "extinst":
            produced = self.returns.get(f"{dotted}.__call__")
            return ("extinst", produced) if produced else None
        if kind == "inst":
            return self.call_result(self.attribute(entity, "__call__"))
        return None

    # -- classes -----------------------------------------------------------------------------
    def overridden(self, qualname: str) -> list[str]:
        """Methods of base classes that `qualname` overrides."""
        function = self.functions.get(qualname)
        if function is None or function.cls is None:
            return []
        return [
            f"{base}.{function.name}"
            for base in self.project_mro(function.cls)[1:]
            if f"{base}.{function.name}" in self.functions
        ]

    # -- calls -------------------------------------------------------------------------------
    def target(self, call: Call) -> Target | None:
        found = self.targets_of(call)
        return found[0] if found else None

    def targets_of(self, call: Call) -> list[Target]:
        """Every target of a call: one, or one per member of a union (empty: unresolved)."""
        entity = self.evaluate(call.callee)
        members = entity[1] if entity is not None and entity[0] == "union" else (entity,)
        found: list[Target] = []
        for member in members:
            target = self._entity_target(member)
            if target is None:
                return []  # one unknown member leaves the call unknown
            if target not in found:
                found.append(target)
        return found

    def _entity_target(self, entity: Entity) -> Target | None:
        if entity is None:
            return None
        kind, dotted = entity[0], entity[1]
        if kind == "elemfn":
            return self._target("ext", dotted)
        if kind == "func":
            return self._target("func", dotted)
        if kind == "class":
            for cls in self.project_mro(dotted):
                if f"{cls}.__init__" in self.functions:
                    return self._target("func", f"{cls}.__init__", constructor=True)
            bases = self.external_bases(dotted)
            if bases:
                return self._target("ext", bases[0], constructor=True)
            return self._target("class", dotted, constructor=True)
        if kind == "ext":
            return self._target("ext", dotted)
        if kind == "extinst":  # calling an external object: its class's `__call__`
            return self._target("ext", f"{dotted}.__call__")
        if kind == "inst":
            call_method = self.attribute(entity, "__call__")
            if call_method is not None and call_method[0] == "func":
                return self._target("func", call_method[1])
        return None

    def _target(self, kind: str, name: str, constructor: bool = False) -> Target:
        """The one `Target` for these fields (targets are compared by value; sharing them
        saves one object per call)."""
        key = (kind, name, constructor)
        found = self._target_memo.get(key)
        if found is None:
            found = self._target_memo[key] = Target(kind, name, constructor)
        return found

    def _add_edges(self) -> None:
        """Resolve every call: `targets`, `alternatives` and the callers table."""
        self.alternatives = {}
        self._callers = {}
        for qualname, function in self.functions.items():
            targets: list[Target | None] = []
            for index, call in enumerate(function.calls):
                found = self.targets_of(call)
                targets.append(found[0] if found else None)
                if len(found) > 1:
                    self.alternatives[(qualname, index)] = found[1:]
                for target in found:
                    if target.kind != "func":
                        continue
                    sites = self._callers.setdefault(target.name, [])
                    if not sites or sites[-1] != (qualname, index):  # a site once per callee
                        sites.append((qualname, index))
            self.targets[qualname] = tuple(targets)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The call graph as a networkx DiGraph, built on first use (the analyses read the
        tables): a node per project function (its data is in `functions` and `paths`), an edge
        per caller and callee, carrying the caller's call indices (`sites`)."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(self.functions)
        for callee, sites in self._callers.items():
            for caller, site in sites:
                if graph.has_edge(caller, callee):
                    graph.edges[caller, callee]["sites"].append(site)
                else:
                    graph.add_edge(caller, callee, sites=[site])
        return graph

    def all_targets(self, qualname: str, index: int) -> list[Target]:
        """The target of call `index` of `qualname` and its alternatives (empty: unknown)."""
        first = self.targets[qualname][index]
        if first is None:
            return []
        return [first, *self.alternatives.get((qualname, index), ())]

    # -- parameters typed by their callers ------------------------------------------------------
    def _untyped_params(self) -> dict[str, list[tuple[int, str]]]:
        """Function -> (position, name) of its parameters that have no type of their own."""
        found: dict[str, list[tuple[int, str]]] = {}
        for qualname, function in self.functions.items():
            skip_first = function.cls is not None and function.kind != "staticmethod"
            for position, param in enumerate(function.params):
                if skip_first and position == 0:
                    continue
                if param.value is None:
                    found.setdefault(qualname, []).append((position, param.name))
        return found

    def _argument(self, caller: str, site: int, callee: str, position: int, name: str) -> Value:
        """The value the call `site` of `caller` passes for parameter `name` of `callee`,
        "missing" when it passes none (the default applies)."""
        call = self.functions[caller].calls[site]
        for keyword, value in call.kwargs:
            if keyword == name:
                return value
        function = self.functions[callee]
        offset = 0
        if function.cls is not None and function.kind != "staticmethod":
            offset = 1  # bound: `obj.method(a)`, `Class(a)` -> `__init__(self, a)`
            receiver = call.callee[1] if call.callee and call.callee[0] == "attr" else None
            if function.kind == "method" and receiver is not None:
                owner = self.evaluate(receiver)
                if owner is not None and owner[0] == "class":
                    offset = 0  # `Class.method(obj, a)`: unbound
        slot = position - offset
        if 0 <= slot < len(call.args):
            return call.args[slot]
        return ("missing",)

    def _infer_params(self) -> None:
        untyped = self._untyped_params()
        if not untyped:
            return
        for _ in range(PARAM_ROUNDS):
            inferred: dict[tuple[str, str], Entity] = {}
            partial: set[tuple[str, str]] = set()
            for qualname, params in untyped.items():
                callers = self.callers(qualname)
                if not callers:
                    continue
                for position, name in params:
                    members: list[Entity] = []
                    unknown = False
                    for caller, site in callers:
                        value = self._argument(caller, site, qualname, position, name)
                        if value == ("missing",):
                            continue
                        entity = self.evaluate(value)
                        if entity is None or entity[0] == "module":
                            unknown = True
                            continue
                        members.append(entity)
                    typed = _union(members)
                    if typed is not None:
                        inferred[(qualname, name)] = typed
                        if unknown:
                            partial.add((qualname, name))
            if inferred == self.param_types:
                break
            self.param_types = inferred
            self.partial_params = partial
            self._names.clear()
            self._values.clear()
            self._results.clear()
            self._add_edges()

    def callers(self, qualname: str) -> list[tuple[str, int]]:
        """(caller, call index) of every resolved call to `qualname`, callers in `functions`
        order, each caller's calls in order."""
        return list(self._callers.get(qualname, ()))

    # -- routes ------------------------------------------------------------------------------
    def _opaque_ok(self, dotted: str) -> bool:
        """Whether a value from `dotted` may be named opaquely: it comes from a builtin, the
        standard library or a known package (so calls on it stay in that package)."""
        head = dotted.split(".", 1)[0].split("(", 1)[0]
        return (
            head in _BUILTIN_NAMES or head in sys.stdlib_module_names or head in self.known_modules
        )

    def is_router(self, value: Value) -> bool | None:
        """True for an APIRouter/FastAPI object, False for something else, None if unknown."""
        entity = self.evaluate(value)
        if entity is None:
            return None
        if entity[0] == "extinst" and "()" in entity[1]:
            return None  # an opaque result: could be a router
        if entity[0] == "extinst":
            return entity[1] in ROUTER_CLASSES
        if entity[0] == "inst":
            return any(b in ROUTER_CLASSES for b in self.external_bases(entity[1]))
        return False

    def _mount_prefix(
        self,
        router: str | None,
        includes: dict[str, list[tuple[Value, str]]],
        mounted: dict[str, str],
        depth: int,
    ) -> str:
        """The path prefix `router` is mounted under (`include_router(..., prefix=...)`, the
        first inclusion, outer routers first), memoised in `mounted`. A method, not a recursive
        closure: that closure would be a reference cycle holding the whole index alive until
        the cyclic collector runs."""
        if router is None or depth > 8:
            return ""
        if router in mounted:
            return mounted[router]
        own = self.prefixes.get(router, "")
        outer = ""
        for parent, prefix in includes.get(router, [])[:1]:
            outer = self._mount_prefix(self.canonical_global(parent), includes, mounted, depth + 1)
            outer += prefix
        mounted[router] = outer + own
        return mounted[router]

    def _find_routes(self) -> dict[str, list[Route]]:
        includes: dict[str, list[tuple[Value, str]]] = {}
        adders: list[tuple[Call, str]] = []
        for module in self.modules.values():
            calls = [(c, module.module) for c in module.calls]
            calls += [(c, f.qualname) for f in module.functions for c in f.calls]
            for call, _owner in calls:
                method = call.text.rsplit(".", 1)[-1]
                if method == "include_router" and call.args:
                    child = self.canonical_global(call.args[0])
                    if child is None:
                        continue
                    prefix = next(
                        (v[1] for k, v in call.kwargs if k == "prefix" and v and v[0] == "const"),
                        "",
                    )
                    receiver = call.callee[1] if call.callee and call.callee[0] == "attr" else None
                    includes.setdefault(child, []).append((receiver, prefix))
                elif method in ROUTE_ADDERS:
                    adders.append((call, method))

        mounted: dict[str, str] = {}

        def mount(router: str | None) -> str:
            return self._mount_prefix(router, includes, mounted, 0)

        routes: dict[str, list[Route]] = {}
        for qualname, function in self.functions.items():
            for decorator in function.routes:
                if self.is_router(decorator.receiver) is False or decorator.path is None:
                    continue
                if decorator.method == "websocket":
                    methods: tuple[str, ...] = ("WEBSOCKET",)
                elif decorator.method == "api_route":
                    methods = decorator.methods or ("GET",)
                else:
                    methods = (decorator.method.upper(),)
                path = mount(self.canonical_global(decorator.receiver)) + decorator.path
                routes.setdefault(qualname, []).append(
                    Route(qualname, methods, path, decorator.line)
                )
        for call, method in adders:
            if len(call.args) < 2 or not call.args[0] or call.args[0][0] != "const":
                continue
            endpoint = self.evaluate(call.args[1])
            if endpoint is None or endpoint[0] != "func":
                continue
            receiver = call.callee[1] if call.callee and call.callee[0] == "attr" else None
            if receiver is not None and self.is_router(receiver) is False:
                continue
            if method == "add_api_route":
                listed = next((v for k, v in call.kwargs if k == "methods"), None)
                methods = ("GET",) if listed is None else ("*",)
            else:
                methods = ("WEBSOCKET",)
            path = mount(self.canonical_global(receiver)) + call.args[0][1]
            routes.setdefault(endpoint[1], []).append(Route(endpoint[1], methods, path, call.line))
        return routes

    def route_of(self, qualname: str) -> Route | None:
        found = self.routes.get(qualname)
        return found[0] if found else None


def _union(members: Iterable[Entity]) -> Entity:
    """One entity for several: itself when they agree, a union of at most `MAX_UNION`
    members, None when any member is unknown or there are none."""
    found: list[tuple[Any, ...]] = []
    for member in members:
        if member is None:
            return None
        for item in member[1] if member[0] == "union" else (member,):
            if item not in found:
                found.append(item)
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    return ("union", tuple(found[:MAX_UNION]))


def build_index(
    facts: Iterable[ModuleFacts],
    returns: Mapping[str, str] | None = None,
    known_modules: Iterable[str] = (),
) -> Index:
    return Index(facts, returns, known_modules)
