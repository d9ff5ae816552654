"""Shared by the MEM checks: find the mutable containers that live as long as the process
(module-level, class-level, `self.x` set in `__init__` of a process-wide object), and what the
functions of the project do to them (grow, remove, check the size, rebind).

Collected per file, combined across files in `finish`: a store defined in `app/store.py` and
filled from `app/api/users.py` is one container.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...model import Finding, Location, Severity, fingerprint
from ..astutil import is_test_path, own_nodes
from ..base import FileContext, ProjectCheck, ProjectContext
from ..stubs.helpers import call_edges, reexports, routes

FUNCTION_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(name: str) -> list[str]:
    return [w for w in _CAMEL.sub("_", name).lower().split("_") if w]


# -- containers ----------------------------------------------------------------------------------

_FACTORIES = {
    "dict": "dict",
    "set": "set",
    "list": "list",
    "collections.defaultdict": "defaultdict",
    "collections.OrderedDict": "OrderedDict",
    "collections.Counter": "Counter",
    "collections.deque": "deque",
    "typing.OrderedDict": "OrderedDict",
}
# Containers bounded by construction.
_BOUNDED_FACTORIES = {
    "cachetools.TTLCache": "TTLCache",
    "cachetools.LRUCache": "LRUCache",
    "cachetools.LFUCache": "LFUCache",
    "cachetools.RRCache": "RRCache",
    "cachetools.FIFOCache": "FIFOCache",
    "cachetools.TLRUCache": "TLRUCache",
    "cachetools.MRUCache": "MRUCache",
    "weakref.WeakValueDictionary": "WeakValueDictionary",
    "weakref.WeakKeyDictionary": "WeakKeyDictionary",
    "weakref.WeakSet": "WeakSet",
}
_BOUNDED_NAME = re.compile(r"(?:LRU|TTL|Bounded|Expiring)\w*(?:Cache|Dict|Map|Set|List)", re.I)


def container_kind(ctx: FileContext, value: ast.AST | None) -> tuple[str, str] | None:
    """`(kind, bound)` when `value` creates a mutable container: `("dict", "")`,
    `("deque", "maxlen=100")`, `("TTLCache", "TTLCache")`; None otherwise."""
    if isinstance(value, (ast.Dict, ast.DictComp)):
        return "dict", ""
    if isinstance(value, (ast.Set, ast.SetComp)):
        return "set", ""
    if isinstance(value, (ast.List, ast.ListComp)):
        return "list", ""
    if not isinstance(value, ast.Call):
        return None
    name = ctx.qualified_name(value.func) or ""
    if name in _BOUNDED_FACTORIES:
        return _BOUNDED_FACTORIES[name], _BOUNDED_FACTORIES[name]
    last = name.rsplit(".", 1)[-1]
    if _BOUNDED_NAME.fullmatch(last):
        return last, last
    kind = _FACTORIES.get(name)
    if kind is None:
        return None
    if kind == "deque":
        maxlen = next((k.value for k in value.keywords if k.arg == "maxlen"), None)
        if maxlen is None and len(value.args) > 1:
            maxlen = value.args[1]
        if maxlen is not None and not (isinstance(maxlen, ast.Constant) and maxlen.value is None):
            return kind, f"maxlen={ast.unparse(maxlen)}"
    return kind, ""


@dataclass
class Container:
    key: str  # "app.store._users" | "app.svc.Scheduler._running"
    name: str
    kind: str
    scope: str  # module | class | instance
    owner: str  # the class for class/instance scope, "" for module scope
    bound: str  # why it is bounded by construction ("maxlen=100", "TTLCache"), or ""
    annotation: str
    location: Location
    symbol: str
    snippet: str


@dataclass
class Use:
    key: str
    op: str  # grow | remove | release | size_check | truncate | rebind
    function: str  # qualified name of the function doing it
    how: str  # ".append()", "[key] = value", "len() < MAX", ...
    line: int
    value: str = ""  # what was added: "callable", "lock", "task" or ""


@dataclass
class Registration:
    """`obj.command("/x")(handler)` (or `@obj.on("x")` on a nested def) in a function's body:
    the function registers something on `target` each time it runs."""

    function: str
    target: str  # what the receiver resolves to ("app.bot.app"): a module-level object or not
    method: str
    line: int


@dataclass
class CallSite:
    caller: str
    callee: str  # resolved through imports and the module's own functions
    line: int
    col: int
    end_line: int
    end_col: int
    snippet: str


@dataclass
class StateFacts:
    containers: list[Container] = field(default_factory=list)
    uses: list[Use] = field(default_factory=list)
    # Classes with a process-wide instance (module-level, global singleton, lru_cache getter).
    singletons: list[str] = field(default_factory=list)
    # Functions registered for SQLAlchemy configuration events ("*.name" when only the
    # attribute name is known: `event.listen(mapper, "instrument_class", manager.process)`).
    configuration_hooks: list[str] = field(default_factory=list)
    # Module-level objects (`app = App(...)`), registrations in functions, and plain calls.
    objects: list[str] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    # For the routes that reach a function (the STB call graph, shared).
    defs: list[str] = field(default_factory=list)
    edges: dict[str, list[str]] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    aliases: tuple[tuple[str, str], ...] = ()


def _class_qual(ctx: FileContext, node: ast.AST) -> str | None:
    parent = ctx.parents.get(node)
    return ctx.symbol_for(parent) if isinstance(parent, ast.ClassDef) else None


def _assign_parts(node: ast.AST) -> tuple[list[ast.AST], ast.AST | None, str]:
    if isinstance(node, ast.Assign):
        return list(node.targets), node.value, ""
    if isinstance(node, ast.AnnAssign):
        return [node.target], node.value, ast.unparse(node.annotation)
    return [], None, ""


def _targets_and_value(node: ast.AST) -> tuple[list[ast.AST], ast.AST | None]:
    """`_assign_parts` without the annotation (which costs an unparse)."""
    if isinstance(node, ast.Assign):
        return list(node.targets), node.value
    if isinstance(node, ast.AnnAssign):
        return [node.target], node.value
    return [], None


def _on_state(target: ast.Attribute) -> bool:
    """`app.state.x = ...` and the like: `.state.` in the target as written. Only an attribute
    named `state` or a string constant can put that text in the unparsed target, so a target
    with neither is not unparsed."""
    if not any(
        (isinstance(n, ast.Attribute) and n.attr == "state") or isinstance(n, ast.Constant)
        for n in ast.walk(target)
    ):
        return False
    return ".state." in ast.unparse(target)


def _containers(ctx: FileContext) -> list[Container]:
    found: list[Container] = []

    def add(node: ast.AST, name: str, key: str, scope: str, owner: str) -> None:
        _targets, value, annotation = _assign_parts(node)
        kind = container_kind(ctx, value)
        if kind is None:
            return
        location = Location(
            ctx.path, node.lineno, node.col_offset, node.end_lineno, node.end_col_offset
        )
        found.append(
            Container(
                key,
                name,
                kind[0],
                scope,
                owner,
                kind[1],
                annotation,
                location,
                ctx.symbol_for(node),
                ctx.snippet(node),
            )
        )

    for node in ctx.tree.body:
        for target in _targets_and_value(node)[0]:
            if isinstance(target, ast.Name):
                add(node, target.id, f"{ctx.module}.{target.id}", "module", "")
    for cls in ctx.nodes(ast.ClassDef):
        qual = ctx.symbol_for(cls)
        for node in cls.body:
            for target in _targets_and_value(node)[0]:
                if isinstance(target, ast.Name):
                    add(node, target.id, f"{qual}.{target.id}", "class", qual)
            if isinstance(node, FUNCTION_DEFS) and node.name == "__init__":
                for stmt in ast.walk(node):
                    for target in _targets_and_value(stmt)[0]:
                        if _is_self_attr(target):
                            name = target.attr  # type: ignore[attr-defined]
                            add(stmt, name, f"{qual}.{name}", "instance", qual)
    return found


def _is_self_attr(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in {"self", "cls"}
    )


# -- uses ----------------------------------------------------------------------------------------

GROW_METHODS = {
    "append",
    "add",
    "extend",
    "insert",
    "appendleft",
    "extendleft",
    "update",
    "setdefault",
    "__setitem__",
    "put",
    "put_nowait",
}
REMOVE_METHODS = {"pop", "popitem", "popleft", "remove", "discard", "clear", "difference_update"}
_CALLABLE_NAME = re.compile(
    r"(?:^|_)(?:handler|callback|listener|hook|func|fn|cb|subscriber|observer|middleware|"
    r"plugin|coro|coroutine|factory|cls|klass|kls|class|method|decorator|wrapper|wrapped|view)s?$",
    re.IGNORECASE,
)


class _Scope:
    """Resolves references to containers inside one function."""

    def __init__(self, ctx: FileContext, func: ast.AST, owner: str | None) -> None:
        self.ctx = ctx
        self.func = func
        self.owner = owner
        self.qual = ctx.symbol_for(func)
        self.globals, self.locals, self.params_all = _bindings(ctx, func)
        self._params: dict[str, str] | None = None

    @property
    def params(self) -> dict[str, str]:
        """Parameter name -> its annotation as written (unparsed on first use)."""
        if self._params is None:
            args = self.func.args  # type: ignore[attr-defined]
            self._params = {
                arg.arg: ast.unparse(arg.annotation)
                for arg in [
                    *args.posonlyargs,
                    *args.args,
                    *args.kwonlyargs,
                    args.vararg,
                    args.kwarg,
                ]
                if arg is not None and arg.annotation is not None
            }
        return self._params

    def key(self, expr: ast.AST) -> str | None:
        ctx = self.ctx
        if isinstance(expr, ast.Name):
            if expr.id in self.locals:
                return None
            return ctx.imports.get(expr.id) or f"{ctx.module}.{expr.id}"
        if isinstance(expr, ast.Attribute):
            if _is_self_attr(expr) and self.owner:
                return f"{self.owner}.{expr.attr}"
            name = ctx.qualified_name(expr)
            if name is None:
                return None
            head = name.split(".", 1)[0]
            root = expr
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in self.locals:
                return None
            if isinstance(root, ast.Name) and root.id not in ctx.imports:
                return f"{ctx.module}.{name}"
            return name if head else None
        return None


def _bindings(ctx: FileContext, func: ast.AST) -> tuple[set[str], set[str], set[str]]:
    """`(globals, locals, parameters)` of `func`: names declared `global`/`nonlocal`, names
    bound in its body or as parameters (less the globals), and its parameters. Shared by the
    analyses of the file that resolve names in the same function (read-only sets)."""
    table: dict[int, tuple[set[str], set[str], set[str]]] = ctx.memo("mem.bindings", dict)
    found = table.get(id(func))
    if found is not None:
        return found
    declared: set[str] = set()
    bound: set[str] = set()
    params: set[str] = set()
    args = func.args  # type: ignore[attr-defined]
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None:
            bound.add(arg.arg)
            params.add(arg.arg)
    Name, Store, Del, Global, Nonlocal = ast.Name, ast.Store, ast.Del, ast.Global, ast.Nonlocal
    for node in own_nodes(func, ctx):
        kind = type(node)
        if kind is Name:
            if type(node.ctx) in (Store, Del):  # type: ignore[attr-defined]
                bound.add(node.id)  # type: ignore[attr-defined]
        elif kind is Global or kind is Nonlocal:
            declared.update(node.names)  # type: ignore[attr-defined]
    bound -= declared
    table[id(func)] = found = (declared, bound, params)
    return found


def _value_kind(ctx: FileContext, value: ast.AST | None, scope: _Scope) -> str:
    if value is None:
        return ""
    if isinstance(value, ast.Lambda):
        return "callable"
    if isinstance(value, ast.Name):
        annotation = scope.params.get(value.id, "")
        if _CALLABLE_NAME.search(value.id) or re.search(
            r"Callable|Handler|Callback|Awaitable\[", annotation
        ):
            return "callable"
    if isinstance(value, ast.Call):
        name = ctx.qualified_name(value.func) or ""
        last = name.rsplit(".", 1)[-1]
        if last in {"Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event"}:
            return "lock"
        if last in {"create_task", "ensure_future", "submit", "Thread", "Process", "Task"}:
            return "task"
    return ""


def _uses(ctx: FileContext) -> list[Use]:
    found: list[Use] = []
    decorators = {
        d.id if isinstance(d, ast.Name) else getattr(d, "attr", "")
        for f in ctx.nodes(*FUNCTION_DEFS, ast.ClassDef)
        for d in (x.func if isinstance(x, ast.Call) else x for x in f.decorator_list)
    }
    for func in ctx.nodes(*FUNCTION_DEFS):
        _function_uses(ctx, func, decorators, found)
    return found


def _function_uses(ctx: FileContext, func: ast.AST, decorators: set[str], found: list[Use]) -> None:
    """Record what `func` does to the containers it reaches (appends to `found`)."""
    owner_cls = ctx.parents.get(func)
    owner = ctx.symbol_for(owner_cls) if isinstance(owner_cls, ast.ClassDef) else None
    scope = _Scope(ctx, func, owner)
    in_init = func.name == "__init__"
    # Registering code, not data: a decorator that returns what it stored, a class hook.
    returned = (
        {
            n.value.id
            for n in own_nodes(func, ctx)
            if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)
        }
        & scope.params_all
        if func.name in decorators
        else set()
    )
    registers_classes = func.name == "__init_subclass__" or (
        isinstance(owner_cls, ast.ClassDef)
        and any((ctx.qualified_name(b) or "") == "type" for b in owner_cls.bases)
    )
    in_finally = (
        {
            id(sub)
            for t in own_nodes(func, ctx)
            if isinstance(t, ast.Try)
            for stmt in t.finalbody
            for sub in ast.walk(stmt)
        }
        if any(t.finalbody for t in ctx.nodes(ast.Try))  # no `finally` in the file: none here
        else set()
    )

    def use(expr: ast.AST, op: str, how: str, node: ast.AST, value: str = "") -> None:
        if op == "grow" and (registers_classes or _names(node) & returned):
            value = "callable"
        if op == "remove" and id(node) in in_finally:
            op = "release"
        key = scope.key(expr)
        # Filling its own containers in `__init__` is construction, not mutation.
        if key and not (in_init and owner and key.startswith(f"{owner}.")):
            found.append(Use(key, op, scope.qual, how, node.lineno, value))

    for node in own_nodes(func, ctx):
        if type(node) not in _USE_NODES:  # most nodes (names, constants): at once
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, node.func.value
            nested = isinstance(receiver, ast.Subscript)
            if nested:  # `store[key].append(x)`: grows `store` (a defaultdict) too
                receiver = receiver.value  # type: ignore[attr-defined]
            if method in GROW_METHODS:
                value = node.args[-1] if node.args else None
                kind = _value_kind(ctx, value, scope)
                if not kind and not nested and _fixed_keys(method, node):
                    kind = "fixed-key"
                use(receiver, "grow", f".{method}()", node, kind)
            elif method in REMOVE_METHODS and not nested:
                use(receiver, "remove", f".{method}()", node)
        elif isinstance(node, ast.Call) and _is_len(node) and node.args:
            if isinstance(ctx.parents.get(node), ast.Compare):
                use(node.args[0], "size_check", "len() compared", node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                _assignment(ctx, node, target, use, scope)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Subscript):
                    op = "truncate" if isinstance(target.slice, ast.Slice) else "remove"
                    use(target.value, op, "del [...]", node)


#: The node types `_function_uses` looks at (parsed trees hold no subclasses of them).
_USE_NODES = frozenset({ast.Call, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Delete})


def _fixed(key: ast.AST) -> bool:
    """A key chosen by the code: a literal, or a constant (`MAX_RETRIES`, `Kind.RUN`)."""
    if isinstance(key, ast.Constant):
        return True
    if isinstance(key, ast.Tuple):
        return all(_fixed(e) for e in key.elts)
    if isinstance(key, ast.Attribute):
        return key.attr.isupper()
    return isinstance(key, ast.Name) and key.id.isupper()


def _fixed_keys(method: str, call: ast.Call) -> bool:
    """`.setdefault("runs", 0)`, `.update(runs=1)`, `.update({"runs": 1})`: keys set by code."""
    if method == "setdefault":
        return bool(call.args) and _fixed(call.args[0])
    if method == "update":
        mapping = call.args[0] if len(call.args) == 1 else None
        if mapping is None:
            return bool(call.keywords) and all(k.arg for k in call.keywords)
        return isinstance(mapping, ast.Dict) and all(
            k is not None and _fixed(k) for k in mapping.keys
        )
    return False


def _names(node: ast.AST) -> set[str]:
    """The names a grow operation stores: `x` in `.append(x)`, `store[k] = x`."""
    values = node.args[-1:] if isinstance(node, ast.Call) else [getattr(node, "value", None)]
    return {v.id for v in values if isinstance(v, ast.Name)}


def _is_len(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id == "len"


def _assignment(ctx: FileContext, node: ast.AST, target: ast.AST, use: Any, scope: _Scope) -> None:
    value = getattr(node, "value", None)
    if isinstance(target, ast.Subscript):
        if isinstance(target.slice, ast.Slice):
            use(target.value, "truncate", "[a:b] = ...", node)
        else:
            kind = _value_kind(ctx, value, scope) or ("fixed-key" if _fixed(target.slice) else "")
            use(target.value, "grow", "[key] = value", node, kind)
        return
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _assignment(ctx, node, element, use, scope)
        return
    if isinstance(target, ast.Name) and target.id not in scope.globals:
        return
    if not isinstance(target, (ast.Name, ast.Attribute)):
        return
    if isinstance(node, ast.AugAssign):
        use(target, "grow", f"{type(node.op).__name__} assignment", node)
    elif isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Slice):
        use(target, "truncate", "rebound to a slice", node)
    elif isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Add, ast.BitOr)):
        use(target, "grow", "rebound to itself plus more", node)
    else:
        use(target, "rebind", "rebound", node)


def _singletons(ctx: FileContext) -> list[str]:
    """Classes instantiated once per process: at module level, into a `global`, onto
    `app.state`, or returned by an `@lru_cache`/`@cache` getter."""
    found: list[str] = []

    def add(call: ast.AST | None) -> None:
        if isinstance(call, ast.Call):
            name = ctx.qualified_name(call.func)
            root = call.func
            while isinstance(root, ast.Attribute):
                root = root.value
            if name and isinstance(root, ast.Name):
                found.append(name if root.id in ctx.imports else f"{ctx.module}.{name}")

    for node in ctx.tree.body:
        add(_targets_and_value(node)[1])
    for func in ctx.nodes(*FUNCTION_DEFS):
        declared = (
            {n for g in own_nodes(func, ctx) if isinstance(g, ast.Global) for n in g.names}
            if ctx.nodes(ast.Global)  # no `global` in the file: none here
            else set()
        )
        cached = any(
            (ctx.qualified_name(d.func if isinstance(d, ast.Call) else d) or "").rsplit(".", 1)[-1]
            in {"lru_cache", "cache"}
            for d in func.decorator_list
        )
        for node in own_nodes(func, ctx):
            kind = type(node)
            if kind is ast.Assign or kind is ast.AnnAssign:
                targets, value = _targets_and_value(node)
                for target in targets:
                    singleton = isinstance(target, ast.Name) and target.id in declared
                    on_state = isinstance(target, ast.Attribute) and _on_state(target)
                    if singleton or on_state:
                        add(value)
            elif cached and kind is ast.Return:
                add(node.value)  # type: ignore[attr-defined]
    return found


#: SQLAlchemy events that fire while mappers, tables and schemas are configured or created: once
#: per mapped class or table, never per request.
CONFIGURATION_EVENTS = frozenset(
    {
        "instrument_class",
        "class_instrument",
        "attribute_instrument",
        "mapper_configured",
        "before_mapper_configured",
        "before_configured",
        "after_configured",
        "before_create",
        "after_create",
        "before_drop",
        "after_drop",
        "before_parent_attach",
        "after_parent_attach",
        "column_reflect",
    }
)
_LISTEN = {"sqlalchemy.event.listen", "sqlalchemy.event.api.listen"}
_LISTENS_FOR = {"sqlalchemy.event.listens_for", "sqlalchemy.event.api.listens_for"}


def _configuration_hooks(ctx: FileContext) -> list[str]:
    """Functions registered here for a SQLAlchemy configuration event."""

    def event_of(call: ast.Call) -> str | None:
        name = call.args[1] if len(call.args) > 1 else None
        text = name.value if isinstance(name, ast.Constant) else None
        return text if text in CONFIGURATION_EVENTS else None

    found: list[str] = []
    for call in ctx.nodes(ast.Call):
        if event_of(call) and (ctx.qualified_name(call.func) or "") in _LISTEN:
            fn = call.args[2] if len(call.args) > 2 else None
            if isinstance(fn, ast.Name):
                found.append(ctx.imports.get(fn.id) or f"{ctx.module}.{fn.id}")
            elif isinstance(fn, ast.Attribute):
                found.append(f"*.{fn.attr}")
    for func in ctx.nodes(*FUNCTION_DEFS):
        for decorator in func.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and event_of(decorator)
                and (ctx.qualified_name(decorator.func) or "") in _LISTENS_FOR
            ):
                found.append(ctx.symbol_for(func))
    return found


def _objects(ctx: FileContext) -> list[str]:
    """Names bound at module level to an object built by a call (`app = App(...)`), not to a
    container (those are MEM001's)."""
    found: list[str] = []
    for node in ctx.tree.body:
        targets, value = _targets_and_value(node)
        if isinstance(value, ast.Call) and container_kind(ctx, value) is None:
            found.extend(f"{ctx.module}.{t.id}" for t in targets if isinstance(t, ast.Name))
    return found


def _registrations_and_calls(ctx: FileContext) -> tuple[list[Registration], list[CallSite]]:
    registrations: list[Registration] = []
    calls: list[CallSite] = []
    module_defs = {n.name for n in ctx.tree.body if isinstance(n, FUNCTION_DEFS)}
    for func in ctx.nodes(*FUNCTION_DEFS):
        scope = _Scope(ctx, func, None)
        qual = scope.qual
        for node in own_nodes(func, ctx):
            kind = type(node)
            if kind is not ast.Call and kind not in FUNCTION_DEFS:
                continue
            if isinstance(node, FUNCTION_DEFS):  # a nested def registered with `@obj.on(...)`
                for decorator in node.decorator_list:
                    registrations.extend(_registration(scope, decorator, decorator.lineno))
                continue
            if not isinstance(node, ast.Call):
                continue
            if (
                isinstance(node.func, ast.Call)
                and len(node.args) == 1
                and isinstance(node.args[0], (ast.Name, ast.Attribute, ast.Lambda))
            ):  # `obj.command("/x")(handler)`
                registrations.extend(_registration(scope, node.func, node.lineno))
            elif isinstance(node.func, ast.Name) and node.func.id not in scope.locals:
                name = node.func.id
                callee = ctx.imports.get(name) or (
                    f"{ctx.module}.{name}" if name in module_defs else ""
                )
                if callee:
                    calls.append(
                        CallSite(
                            qual,
                            callee,
                            node.lineno,
                            node.col_offset,
                            node.end_lineno or node.lineno,
                            node.end_col_offset or 0,
                            ctx.lines[node.lineno - 1].strip(),
                        )
                    )
    return registrations, calls


def _registration(scope: _Scope, decorator: ast.AST, line: int) -> list[Registration]:
    """`obj.method(...)` or `obj.method` used as a decorator, `obj` not a local or parameter."""
    attr = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(attr, ast.Attribute) and isinstance(attr.value, ast.Name):
        target = scope.key(attr.value)
        if target:
            return [Registration(scope.qual, target, attr.attr, line)]
    return []


def _facts(ctx: FileContext) -> StateFacts:
    registrations, calls = _registrations_and_calls(ctx)
    defs, edges = call_edges(ctx)
    return StateFacts(
        _containers(ctx),
        _uses(ctx),
        _singletons(ctx),
        _configuration_hooks(ctx),
        _objects(ctx),
        registrations,
        calls,
        list(defs),
        dict(edges),
        dict(routes(ctx)),
        reexports(ctx),
    )


def collect(ctx: FileContext) -> StateFacts:
    if is_test_path(ctx.path):  # test scaffolding: its containers and patches are not app state
        return StateFacts()
    return ctx.memo("mem.facts", lambda: _facts(ctx))


# -- the analysis across files -------------------------------------------------------------------


@dataclass
class Analysis:
    container: Container
    uses: list[Use]

    @property
    def grows(self) -> list[Use]:
        return [u for u in self.uses if u.op == "grow"]

    @property
    def mutated(self) -> bool:
        return bool(self.uses) and any(u.op != "size_check" for u in self.uses)

    def bounds(self) -> list[str]:
        """Why the container cannot grow without bound (empty: it can)."""
        reasons: list[str] = []
        if self.container.bound:
            reasons.append(self.container.bound)
        for use in self.uses:
            if use.op == "size_check":
                reasons.append(f"size checked in {use.function}")
            elif use.op == "truncate":
                reasons.append(f"truncated in {use.function}")
        grows = self.grows
        name_stems = set(_stems(self.container.name))
        if grows and all(u.value == "callable" for u in grows):
            reasons.append("holds registered callables (bounded by the code)")
        elif grows and name_stems & SUBSCRIBER_WORDS:
            reasons.append("a subscriber list (bounded by the code that registers)")
        elif grows and all(u.value in {"callable", "fixed-key"} for u in grows):
            reasons.append("keys fixed by the code (a catalogue or counters)")
        elif grows and all(u.value == "configuration" for u in grows):
            reasons.append("filled by schema configuration events (bounded by the models)")
        if name_stems & CONNECTION_WORDS and any(u.op in {"remove", "release"} for u in self.uses):
            reasons.append("live connections, removed when they close")
        released = {u.function for u in self.uses if u.op == "release"}
        if grows and all(u.function in released for u in grows):
            reasons.append("entries released in `finally` by the function that adds them")
        return reasons


def analyses(facts: Mapping[str, StateFacts], memo: dict[str, Any]) -> list[Analysis]:
    """Every process-lifetime container that some function mutates, with its uses."""
    if "mem.analyses" in memo:
        return memo["mem.analyses"]
    singletons = {s for fact in facts.values() for s in fact.singletons}
    hooks = {h for fact in facts.values() for h in fact.configuration_hooks}
    uses: dict[str, list[Use]] = {}
    for fact in facts.values():
        for use in fact.uses:
            last = use.function.rsplit(".", 1)[-1]
            if not use.value and (use.function in hooks or f"*.{last}" in hooks):
                use = replace(use, value="configuration")
            uses.setdefault(use.key, []).append(use)
    found: list[Analysis] = []
    for path in sorted(facts):
        for container in facts[path].containers:
            if container.scope == "instance" and container.owner not in singletons:
                continue
            mine = uses.get(container.key, [])
            if mine and any(u.op != "size_check" for u in mine):
                found.append(Analysis(container, mine))
    memo["mem.analyses"] = found
    return found


def evidence(analysis: Analysis) -> dict[str, Any]:
    c = analysis.container
    return {"container": c.name, "kind": c.kind, "scope": c.scope}


def finding(
    check: ProjectCheck,
    analysis: Analysis,
    message: str,
    extra: Mapping[str, Any],
    severity: Severity | None = None,
) -> Finding:
    c = analysis.container
    return Finding(
        rule=check.id,
        name=check.name,
        message=message,
        severity=severity if severity is not None else check.severity,
        location=c.location,
        symbol=c.symbol,
        evidence={**evidence(analysis), **extra},
        fix=check.fix,
        fingerprint=fingerprint(check.id, c.location.path, c.symbol, c.snippet),
    )


def describe(uses: Iterable[Use], limit: int = 4) -> list[str]:
    seen: list[str] = []
    for use in uses:
        text = f"{use.how} in {use.function}"
        if text not in seen:
            seen.append(text)
    return seen[:limit]


# -- what the state is --------------------------------------------------------------------------

#: Kinds of state that must survive a restart or be shared by every instance of the app.
CRITICAL: dict[str, frozenset[str]] = {
    "users": frozenset({"user", "account", "member", "profile", "principal", "identity"}),
    "tokens": frozenset(
        {"token", "blacklist", "blocklist", "denylist", "revoked", "revocation", "jti", "apikey"}
    ),
    "sessions": frozenset({"session", "login", "cookie", "credential"}),
    "running jobs": frozenset(
        {"running", "active", "inflight", "executing", "processing", "pending", "job", "task"}
    ),
    "schedules": frozenset({"schedule", "scheduled", "scheduler", "cron", "timer"}),
    "locks": frozenset({"lock", "mutex", "lease", "semaphore"}),
    "rate limits": frozenset({"rate", "ratelimit", "limiter", "attempt", "throttle", "quota"}),
}
#: Words that make a container disposable by design: losing it costs a recomputation.
EPHEMERAL = frozenset(
    {
        "cache",
        "cached",
        "memo",
        "memoized",
        "lru",
        "ttl",
        "history",
        "event",
        "log",
        "metric",
        "stat",
        "subscriber",
        "handler",
        "listener",
        "callback",
        "hook",
        "plugin",
        "registry",
        "buffer",
        "seen",
    }
)
#: A container named for these holds subscribers: it grows with the code that registers them.
SUBSCRIBER_WORDS = frozenset(
    {"subscriber", "listener", "observer", "handler", "callback", "hook", "receiver", "watcher"}
)
#: Live connections and sockets: bounded by the open connections when closing removes them, and
#: meaningless after a restart (the peers reconnect).
CONNECTION_WORDS = frozenset(
    {"connection", "conn", "socket", "websocket", "ws", "sock", "peer", "channel", "stream"}
)
#: A "session" of one of these is a terminal, process or connection handle, not a login.
NON_AUTH_SESSION_WORDS = frozenset(
    {
        "terminal",
        "pty",
        "tty",
        "shell",
        "process",
        "subprocess",
        "kernel",
        "sandbox",
        "browser",
        "ssh",
        "tmux",
        "console",
        "db",
        "database",
        "sql",
        "sqlalchemy",
        "http",
        "aiohttp",
        "httpx",
        "requests",
        "boto",
        "client",
    }
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _stems(text: str) -> list[str]:
    return [singular(w) for ident in _IDENT.findall(text) for w in words(ident)]


def _categories(stems: Iterable[str]) -> list[str]:
    stems = set(stems)
    return [category for category, vocab in CRITICAL.items() if stems & vocab]


def restart_critical(analysis: Analysis) -> tuple[list[str], list[str]]:
    """(categories, reasons): what kind of restart-critical state the container holds and how
    that was read (its name first; for a generic name, its type, owner class and usage)."""
    c = analysis.container
    name_stems = _stems(c.name)
    if (
        (EPHEMERAL | SUBSCRIBER_WORDS | CONNECTION_WORDS) & set(name_stems)
        or c.kind.startswith("Weak")
        or _code_defined(analysis)
    ):
        return [], []
    context = {*name_stems, *_stems(c.annotation), *_stems(c.owner.rsplit(".", 1)[-1])}
    not_login = bool(context & NON_AUTH_SESSION_WORDS)
    found = [f for f in _categories(name_stems) if not (not_login and f == "sessions")]
    if found:
        return found, [f"name `{c.name}` holds {', '.join(found)}"]
    reasons: list[str] = []
    categories: list[str] = []

    def note(new: list[str], why: str) -> None:
        fresh = [n for n in new if n not in categories and not (not_login and n == "sessions")]
        if fresh:
            categories.extend(fresh)
            reasons.append(f"{why}: {', '.join(fresh)}")

    for kind, category in (("lock", "locks"), ("task", "running jobs")):
        if any(u.value == kind for u in analysis.grows):
            note([category], f"stores {kind} objects")
    if c.annotation:
        note(_categories(_stems(c.annotation)), f"type `{c.annotation}`")
    if c.owner:
        owner = c.owner.rsplit(".", 1)[-1]
        owner_stems = _stems(owner)
        if not EPHEMERAL & set(owner_stems):
            note(_categories(owner_stems), f"owned by `{owner}`")
    for use in analysis.grows:
        function = use.function.rsplit(".", 1)[-1]
        note(_categories(_stems(function)), f"filled by `{function}`")
    return categories, reasons


def _code_defined(analysis: Analysis) -> bool:
    """Every entry is put there by the code itself (fixed keys, callables, schema configuration):
    the same code puts it back after a restart."""
    grows = analysis.grows
    return bool(grows) and all(u.value in {"callable", "fixed-key", "configuration"} for u in grows)


class StateCheck(ProjectCheck):
    """Base of the MEM checks: one shared per-file collection, combined in `finish`."""

    collector = "mem"

    @classmethod
    def collect(cls, ctx: FileContext) -> StateFacts:
        return collect(ctx)

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterable[Finding]:
        for analysis in analyses(facts, project.memo):
            yield from self.judge(analysis)

    def judge(self, analysis: Analysis) -> Iterable[Finding]:
        raise NotImplementedError
