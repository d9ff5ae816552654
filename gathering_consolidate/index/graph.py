"""The project index: symbols, types, call graph and FastAPI routes across modules, built once
from the per-module facts (`facts.py`).

Entities that values evaluate to:

* `("func", "pkg.mod.Class.method")`: a project function or method;
* `("class", "pkg.mod.Class")`, `("inst", "pkg.mod.Class")`: a project class, an instance of it;
* `("module", "pkg.mod")`;
* `("ext", "psycopg.connect")`: something outside the project, by its dotted name;
* `("extinst", "psycopg.Connection")`: an instance of an external class, so that methods called
  on it have a dotted name too (`psycopg.Connection.execute`).

Names resolve the way Python binds them: through each module's imports (following re-exports
from package `__init__` modules), module globals, class attributes (assigned in the class body or
as `self.x = ...` in any method, including base classes), annotations and return values.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a graph is built: it costs ~0.1 s of every run's start-up
    import networkx as nx

from .facts import ROUTE_ADDERS, Call, ClassInfo, Function, ModuleFacts, Value

Entity = tuple[Any, ...] | None

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
    which resolve to `__init__`) or an external dotted name (`kind` "ext")."""

    kind: str
    name: str
    constructor: bool = False


class Index:
    """Cross-module symbols, types, call graph (`graph`, a networkx DiGraph of project functions,
    edges carrying the call sites) and routes."""

    def __init__(
        self,
        facts: Iterable[ModuleFacts],
        returns: Mapping[str, str] | None = None,
    ) -> None:
        self.returns = dict(returns or {})
        self.modules: dict[str, ModuleFacts] = {}
        self.paths: dict[str, str] = {}  # function qualname -> file path
        self.functions: dict[str, Function] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.globals: dict[str, list[Value]] = {}
        self.prefixes: dict[str, str] = {}
        self.imports: dict[str, dict[str, str]] = {}
        self.class_attrs: dict[str, dict[str, list[Value]]] = {}
        for module in sorted(facts, key=lambda m: m.path):
            if module.module in self.modules:
                continue  # two files for one module name (say, scripts); keep the first
            self.modules[module.module] = module
            self.imports[module.module] = dict(module.imports)
            for name, value in module.globals:
                self.globals.setdefault(f"{module.module}.{name}", []).append(value)
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
        # Imports written relative to a source root below the audited directory (`app.db` for
        # `backend/app/db.py`) resolve through unique module-name suffixes.
        self._suffixes: dict[str, str | None] = {}
        packages = {m.rsplit(".", 1)[0] for m in self.modules if "." in m}
        for name in self.modules:
            parts = name.split(".")
            for i in range(1, len(parts)):
                suffix = ".".join(parts[i:])
                if suffix in self.modules or parts[i] in sys.stdlib_module_names:
                    continue
                if i == len(parts) - 1 and name not in packages:
                    continue  # a lone module name (`utils`) is too likely a third-party one
                known = self._suffixes.get(suffix, name)
                self._suffixes[suffix] = name if known == name else None
        self._names: dict[str, Entity] = {}
        self._values: dict[Value, Entity] = {}
        self._results: dict[str, Entity] = {}
        self._active: set[Any] = set()
        self._mro: dict[str, list[str]] = {}
        self.targets: dict[str, list[Target | None]] = {}
        self.graph = self._build_graph()
        self.routes: dict[str, list[Route]] = self._find_routes()

    # -- name resolution ---------------------------------------------------------------------
    def _guarded(
        self, memo: dict[Any, Entity], key: Any, active: Any, compute: Callable[[], Entity]
    ) -> Entity:
        """`memo[key]`, computed once; a cycle back into the same computation (`active` is in
        progress) answers None instead of recursing."""
        if key in memo:
            return memo[key]
        if active in self._active:
            return None
        self._active.add(active)
        try:
            result = compute()
        finally:
            self._active.discard(active)
        memo[key] = result
        return result

    def resolve_name(self, dotted: str) -> Entity:
        return self._guarded(
            self._names, dotted, ("resolve", dotted), lambda: self._resolve_name(dotted)
        )

    def _resolve_name(self, dotted: str) -> Entity:
        if dotted in self.functions:
            return ("func", dotted)
        if dotted in self.classes:
            return ("class", dotted)
        if dotted in self.modules:
            return ("module", dotted)
        parts = dotted.split(".")
        for i in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:i])
            if head in self.modules:
                entity: Entity = ("module", head)
            elif head in self.classes:
                entity = ("class", head)
            else:
                continue
            for part in parts[i:]:
                entity = self.attribute(entity, part)
                if entity is None:
                    return None
            return entity
        for i in range(len(parts), 0, -1):
            module = self._suffixes.get(".".join(parts[:i]))
            if module is not None:
                return self.resolve_name(".".join([module, *parts[i:]]))
        return ("ext", dotted)

    def member(self, module: str, name: str) -> Entity:
        dotted = f"{module}.{name}"
        if dotted in self.functions:
            return ("func", dotted)
        if dotted in self.classes:
            return ("class", dotted)
        if dotted in self.modules:
            return ("module", dotted)
        if dotted in self.globals:
            return self._first(self.globals[dotted])
        target = self.imports.get(module, {}).get(name)
        if target is not None and target != dotted:
            return self.resolve_name(target)
        return None

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
            module, _, name = dotted.rpartition(".")
            if not module:
                return None
            if dotted in self.globals:
                return dotted
            target = self.imports.get(module, {}).get(name)
            if target is None or target == dotted:
                return None
            dotted = target
        return None

    # -- values ------------------------------------------------------------------------------
    def evaluate(self, value: Value) -> Entity:
        if value is None:
            return None
        return self._guarded(self._values, value, value, lambda: self._evaluate(value))

    def _evaluate(self, value: tuple[Any, ...]) -> Entity:
        kind = value[0]
        if kind == "name":
            return self.resolve_name(value[1])
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
            return None
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

    def attribute(self, entity: Entity, name: str) -> Entity:
        if entity is None:
            return None
        kind, dotted = entity[0], entity[1]
        if kind == "module":
            return self.member(dotted, name)
        if kind in ("class", "inst"):
            for cls in self.mro(dotted):
                method = f"{cls}.{name}"
                function = self.functions.get(method)
                if function is not None:
                    if kind == "inst" and function.kind == "property":
                        return self.call_result(("func", method))
                    return ("func", method)
                values = self.class_attrs.get(cls, {}).get(name)
                if values:
                    found = self._first(values)
                    if found is not None:
                        return found
            for base in self.external_bases(dotted):
                return ("ext", f"{base}.{name}")
            return None
        if kind == "extinst" and len(entity) > 2 and name in _ELEMENT_GETTERS:
            return ("elemfn", f"{dotted}.{name}", entity[2])  # type: ignore[return-value]
        if kind in ("ext", "extinst"):
            return ("ext", f"{dotted}.{name}")
        return None

    def call_result(self, entity: Entity) -> Entity:
        if entity is None:
            return None
        kind, dotted = entity[0], entity[1]
        if kind == "elemfn":
            return entity[2]  # type: ignore[misc]
        if kind == "class":
            return ("inst", dotted)
        if kind == "func":
            function = self.functions[dotted]
            return self._guarded(
                self._results,
                dotted,
                ("result", dotted),
                lambda: self.evaluate(function.returns) or self._first(function.return_values),
            )
        if kind == "ext":
            if dotted in self.returns:
                return ("extinst", self.returns[dotted])
            last = dotted.rsplit(".", 1)[-1]
            if last[:1].isupper():
                return ("extinst", dotted)
            return None
        if kind == "extinst":
            produced = self.returns.get(f"{dotted}.__call__")
            return ("extinst", produced) if produced else None
        if kind == "inst":
            return self.call_result(self.attribute(entity, "__call__"))
        return None

    # -- classes -----------------------------------------------------------------------------
    def mro(self, cls: str) -> list[str]:
        if cls in self._mro:
            return self._mro[cls]
        self._mro[cls] = [cls]  # guards against cycles while computing
        order = [cls]
        info = self.classes.get(cls)
        if info is not None:
            for base in info.bases:
                entity = self.evaluate(base)
                if entity is not None and entity[0] == "class":
                    for item in self.mro(entity[1]):
                        if item not in order:
                            order.append(item)
        self._mro[cls] = order
        return order

    def external_bases(self, cls: str) -> list[str]:
        found: list[str] = []
        for item in self.mro(cls):
            info = self.classes.get(item)
            if info is None:
                continue
            for base in info.bases:
                entity = self.evaluate(base)
                if entity is not None and entity[0] == "ext":
                    found.append(entity[1])
        return found

    def overridden(self, qualname: str) -> list[str]:
        """Methods of base classes that `qualname` overrides."""
        function = self.functions.get(qualname)
        if function is None or function.cls is None:
            return []
        return [
            f"{base}.{function.name}"
            for base in self.mro(function.cls)[1:]
            if f"{base}.{function.name}" in self.functions
        ]

    # -- calls -------------------------------------------------------------------------------
    def target(self, call: Call) -> Target | None:
        entity = self.evaluate(call.callee)
        if entity is None:
            return None
        kind, dotted = entity[0], entity[1]
        if kind == "elemfn":
            return Target("ext", dotted)
        if kind == "func":
            return Target("func", dotted)
        if kind == "class":
            for cls in self.mro(dotted):
                if f"{cls}.__init__" in self.functions:
                    return Target("func", f"{cls}.__init__", constructor=True)
            bases = self.external_bases(dotted)
            return Target("ext", bases[0], constructor=True) if bases else None
        if kind == "ext":
            return Target("ext", dotted)
        if kind == "inst":
            call_method = self.attribute(entity, "__call__")
            if call_method is not None and call_method[0] == "func":
                return Target("func", call_method[1])
        return None

    def _build_graph(self) -> nx.DiGraph:
        import networkx as nx

        graph = nx.DiGraph()
        for qualname, function in self.functions.items():
            graph.add_node(qualname, is_async=function.is_async, path=self.paths[qualname])
        for qualname, function in self.functions.items():
            targets: list[Target | None] = []
            for index, call in enumerate(function.calls):
                target = self.target(call)
                targets.append(target)
                if target is not None and target.kind == "func":
                    if graph.has_edge(qualname, target.name):
                        graph.edges[qualname, target.name]["sites"].append(index)
                    else:
                        graph.add_edge(qualname, target.name, sites=[index])
            self.targets[qualname] = targets
        return graph

    def callers(self, qualname: str) -> list[tuple[str, int]]:
        """(caller, call index) of every resolved call to `qualname`."""
        if qualname not in self.graph:
            return []
        return [
            (caller, site)
            for caller in self.graph.predecessors(qualname)
            for site in self.graph.edges[caller, qualname]["sites"]
        ]

    # -- routes ------------------------------------------------------------------------------
    def is_router(self, value: Value) -> bool | None:
        """True for an APIRouter/FastAPI object, False for something else, None if unknown."""
        entity = self.evaluate(value)
        if entity is None:
            return None
        if entity[0] == "extinst":
            return entity[1] in ROUTER_CLASSES
        if entity[0] == "inst":
            return any(b in ROUTER_CLASSES for b in self.external_bases(entity[1]))
        return False

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

        def mount(router: str | None, depth: int = 0) -> str:
            if router is None or depth > 8:
                return ""
            if router in mounted:
                return mounted[router]
            own = self.prefixes.get(router, "")
            outer = ""
            for parent, prefix in includes.get(router, [])[:1]:
                outer = mount(self.canonical_global(parent), depth + 1) + prefix
            mounted[router] = outer + own
            return mounted[router]

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


def build_index(facts: Iterable[ModuleFacts], returns: Mapping[str, str] | None = None) -> Index:
    return Index(facts, returns)
