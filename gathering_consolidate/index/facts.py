"""Per-module facts for the call graph: what one file defines and calls, resolved as far as one
file allows, as small picklable tuples (cached with the file by the scanner).

Values are symbolic expressions, evaluated across modules by `graph.Index`:

* `("name", "a.b.c")`: a global dotted name, already resolved through the file's imports
  (`from gathering.api.dependencies import DatabaseService` makes `DatabaseService` that);
  module-level names of this file are prefixed with the module (`app.api.routes.router`);
  unbound names (builtins) stay bare (`open`).
* `("inst", V)`: an instance of the class `V` names (from an annotation); `("inst", V, E)` a
  typed container whose elements are `E` (`queue.Queue[Connection]`, `list[Session]`).
* `("call", V)`: what calling `V` returns (a class: an instance; a function: its return value).
* `("attr", V, "x")`: attribute `x` of `V`.
* `("const", "text")`: a string constant (route paths, prefixes).
* `("or", V1, V2)`: the first of the two that resolves (`a or b`, `x if c else y`).
* `("param", function, name)`: an untyped (or `Any`) parameter, typed by the index from what
  the callers pass.
* `("super", V)`: `super()` in a method of the class `V` names.
* `("binop", V)`: `V / x`, `V + x`: the type of the left operand when it is a builtin or
  standard-library instance (`Path / "x"` is a Path), else unknown.
* `("item", V)`: `V[...]`: a generic alias of a class (`Connection[dict]`) is the class, an
  element of a typed container its element type; also what `for x in V` binds.
* `("enter", V)`: what `with V as x` binds: what a `@contextmanager` function yields, else `V`.
* `None`: unknown.

Local variables are typed in statement order: parameters from annotations and FastAPI
`Depends(provider)` defaults, assignments from their right-hand side (the last one seen wins),
`self` from the enclosing class. Branches that never run (`if TYPE_CHECKING:`, `if False:`) are
skipped; lambdas are not walked (their calls run later, if at all).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from ..semantic import annotations, frameworks
from ..semantic import imports as semantic_imports
from ..semantic.context import ParsedModule

Value = tuple[Any, ...] | None

#: Decorator methods on `APIRouter` / `FastAPI` objects that register a route, and
#: `router.add_api_route(path, endpoint)` style registrations (semantic/frameworks.py).
ROUTE_METHODS = frozenset(frameworks.ROUTE_METHODS)
ROUTE_ADDERS = frameworks.ROUTE_ADDERS
_DEPENDS = frozenset({"fastapi.Depends", "fastapi.params.Depends", "fastapi.Security"})
_CACHE_DECORATORS = frozenset(
    {"functools.cache", "functools.lru_cache", "functools.cached_property", "cached_property"}
)
#: The expression children to walk for calls, by node type (faster than `ast.iter_child_nodes`).
_CHILDREN: dict[type, tuple[str, ...]] = {
    ast.BinOp: ("left", "right"),
    ast.BoolOp: ("values",),
    ast.Compare: ("left", "comparators"),
    ast.Subscript: ("value", "slice"),
    ast.Dict: ("keys", "values"),
    ast.List: ("elts",),
    ast.Tuple: ("elts",),
    ast.Set: ("elts",),
    ast.JoinedStr: ("values",),
    ast.FormattedValue: ("value", "format_spec"),
    ast.UnaryOp: ("operand",),
    ast.Starred: ("value",),
    ast.IfExp: ("test", "body", "orelse"),
    ast.Slice: ("lower", "upper", "step"),
}
#: Typed containers and generator results (semantic/annotations.py).
_CONTAINERS = annotations.SEQUENCES | annotations.MAPPINGS
_MAPPINGS = tuple(annotations.MAPPINGS)
_ITERATORS = annotations.ITERATORS
_ANNOTATED = frozenset({"typing.Annotated", "typing_extensions.Annotated", "Annotated"})
_TYPE_OF = frozenset({"type", "typing.Type", "Type"})
#: Literal and comprehension expressions -> the builtin type they build.
_LITERALS: dict[type, str] = {
    ast.Dict: "dict",
    ast.DictComp: "dict",
    ast.List: "list",
    ast.ListComp: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.SetComp: "set",
    ast.JoinedStr: "str",
}
#: How many distinct elements of a literal are kept as candidates for its element type.
_LITERAL_ELEMENTS = 8


@dataclass(frozen=True, slots=True)
class Call:
    """One call site. `usage` is what happens to the result: `await`, `discard` (an expression
    statement), `return`, `assign` (to the local `assigned`), `arg` (passed to another call),
    `other`. `guard` names the state an enclosing `if` tests for "not loaded yet"
    (`self._loaded`, `g:module._cache`) when the call sits in that branch."""

    line: int
    col: int
    end_line: int
    end_col: int
    callee: Value
    text: str
    usage: str
    assigned: str | None = None
    outer: str | None = None  # for usage "arg": the text of the call receiving the result
    guard: tuple[str, ...] = ()
    args: tuple[Value, ...] = ()
    kwargs: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    value: Value  # its type, from the annotation or a Depends provider
    depends: Value = None  # the `Depends(...)` provider, when there is one
    annotation: str | None = None  # the annotation as written


@dataclass(frozen=True, slots=True)
class RouteDecorator:
    receiver: Value
    method: str  # get/post/.../api_route/websocket (or add_api_route for registrations)
    path: str | None
    methods: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class AsyncConstruct:
    kind: str  # await | async for | async with | async comprehension | yield
    line: int
    text: str = ""


@dataclass(frozen=True, slots=True)
class Function:
    qualname: str
    name: str
    line: int  # the `def` line
    col: int
    end_line: int
    is_async: bool
    cls: str | None  # qualname of the class, for methods
    kind: str  # function | method | staticmethod | classmethod | property
    nested: bool
    params: tuple[Param, ...]
    returns: Value
    yields: Value  # what it yields (generators, `@contextmanager` functions)
    return_values: tuple[Value, ...]
    calls: tuple[Call, ...]
    constructs: tuple[AsyncConstruct, ...]  # async-only constructs (and yields) in the body
    is_stub: bool
    cached: bool  # functools.cache / lru_cache / cached_property
    routes: tuple[RouteDecorator, ...]
    self_assigns: frozenset[str]
    global_assigns: frozenset[str]
    loads: frozenset[str]  # names read in the body (to tell an unused coroutine result)
    decorators: tuple[str, ...]
    #: The body nests deeper than Python's recursion allows to walk: `calls` is incomplete.
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ClassInfo:
    qualname: str
    name: str
    line: int
    bases: tuple[Value, ...]
    attrs: tuple[tuple[str, Value], ...]  # instance/class attribute -> value candidates
    methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModuleFacts:
    path: str
    module: str
    imports: tuple[tuple[str, str], ...]
    globals: tuple[tuple[str, Value], ...]
    prefixes: tuple[tuple[str, str], ...]  # router variable -> APIRouter(prefix=...)
    functions: tuple[Function, ...]
    classes: tuple[ClassInfo, ...]
    calls: tuple[Call, ...]  # module-level calls (include_router, add_api_route, ...)


def collect_module(ctx: ParsedModule) -> ModuleFacts:
    """The facts of one parsed file (shared by every check that needs the call graph)."""
    return ctx.memo("index.facts", lambda: _Collector(ctx).run())


_SIMPLE_STATEMENTS = frozenset(
    {
        ast.Expr,
        ast.Assign,
        ast.AnnAssign,
        ast.AugAssign,
        ast.Return,
        ast.Pass,
        ast.Raise,
        ast.Break,
        ast.Continue,
        ast.Global,
        ast.Nonlocal,
        ast.Delete,
        ast.Assert,
    }
)


def import_table(ctx: ParsedModule) -> dict[str, str]:
    """`ParsedModule.imports` (local name -> what it is bound to), from the statements only: the
    import statements are found without walking every expression of the file."""
    package = semantic_imports.package_of(ctx.module, ctx.path)
    table: dict[str, str] = {}
    stack: list[ast.stmt] = list(reversed(ctx.tree.body))
    imports: list[ast.Import | ast.ImportFrom] = []
    while stack:
        stmt = stack.pop()
        kind = type(stmt)
        if kind is ast.Import or kind is ast.ImportFrom:
            imports.append(stmt)  # type: ignore[arg-type]
            continue
        if kind in _SIMPLE_STATEMENTS:
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(stmt, field, None)
            if children:
                for child in reversed(children):
                    if isinstance(child, (ast.ExceptHandler, ast.match_case)):
                        stack.extend(reversed(child.body))
                    else:
                        stack.append(child)
    table.update(semantic_imports.table(imports, package))
    return table


def dotted_text(node: ast.AST) -> str:
    """`self._db.execute` for an attribute chain; `f(...)` parts are shown as `f()`."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            parts.append("()")
            node = node.func
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            break
        else:
            parts.append("<expr>")
            break
    out = ""
    for part in reversed(parts):
        out = out + part if part == "()" or not out else f"{out}.{part}"
    return out


class _Scope:
    __slots__ = ("cls", "env", "globals_declared", "qualname")

    def __init__(self, qualname: str, cls: str | None, env: dict[str, Value] | None = None):
        self.qualname = qualname
        self.cls = cls
        self.env: dict[str, Value] = dict(env or {})
        self.globals_declared: set[str] = set()


class _FunctionState:
    __slots__ = (
        "calls",
        "constructs",
        "global_assigns",
        "guards",
        "loads",
        "return_values",
        "self_assigns",
        "truncated",
    )

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.constructs: list[AsyncConstruct] = []
        self.return_values: list[Value] = []
        self.self_assigns: set[str] = set()
        self.global_assigns: set[str] = set()
        self.loads: set[str] = set()
        self.guards: list[tuple[str, ...]] = []
        self.truncated = False


class _Collector:
    def __init__(self, ctx: ParsedModule):
        self.ctx = ctx
        self.module = ctx.module
        self.imports = import_table(ctx)
        self.functions: list[Function] = []
        self.classes: list[ClassInfo] = []
        self.globals: list[tuple[str, Value]] = []
        self.prefixes: list[tuple[str, str]] = []
        self.module_calls: list[Call] = []
        self.class_attrs: dict[str, list[tuple[str, Value]]] = {}
        self.defined: set[str] = set()
        self.module_names = self._module_level_names(ctx.tree.body)

    # -- names -------------------------------------------------------------------------------
    @staticmethod
    def _module_level_names(body: list[ast.stmt]) -> set[str]:
        names: set[str] = set()
        stack = list(body)
        while stack:
            stmt = stack.pop()
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(stmt.name)
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    names.update(_target_names(target))
            elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
                names.update(_target_names(stmt.target))
            elif isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(stmt, field, ()):
                        if isinstance(child, ast.ExceptHandler):
                            stack.extend(child.body)
                        else:
                            stack.append(child)
        return names

    def global_name(self, name: str) -> Value:
        if name in self.imports:
            return ("name", self.imports[name])
        if name in self.module_names:
            return ("name", f"{self.module}.{name}")
        return ("name", name)

    def resolve_dotted(self, node: ast.AST) -> str | None:
        """A Name/Attribute chain resolved through imports and module names, for decorators and
        annotations (no local variables)."""
        parts = semantic_imports.dotted(node)
        if parts is None:
            return None
        head = self.global_name(parts[0])
        assert head is not None
        return ".".join([head[1], *parts[1:]])

    # -- values ------------------------------------------------------------------------------
    def annotation(self, node: ast.AST | None) -> Value:
        """The instance type an annotation promises: `X`, `X | None`, `Optional[X]`, `"X"`,
        `Annotated[X, ...]`, `X[...]` (generic); unions of several types are unknown."""
        node = annotations.core(node)  # strings, `X | None`, Optional, Annotated, ... peeled
        if node is None:
            return None
        if isinstance(node, ast.Subscript):
            base = self.resolve_dotted(node.value)
            inner = node.slice
            if base in _TYPE_OF:  # type[X]: the class itself
                target = self.resolve_dotted(inner)
                return ("name", target) if target is not None else None
            if (
                base is not None
                and base.rsplit(".", 1)[-1] in _CONTAINERS
                and not (isinstance(inner, ast.Tuple) and not inner.elts)
            ):
                # queue.Queue[Connection], list[Session], dict[str, Client]: keep the element
                args = inner.elts if isinstance(inner, ast.Tuple) else [inner]
                element = self.annotation(args[-1 if base.endswith(_MAPPINGS) else 0])
                if element is not None:
                    return ("inst", ("name", base), element)
            node = node.value  # Connection[dict[str, Any]] -> Connection
        name = self.resolve_dotted(node)
        if name is None or name in ("None", "typing.Any", "Any"):
            return None
        return ("inst", ("name", name))

    def value(self, node: ast.AST | None, scope: _Scope | None) -> Value:
        if node is None:
            return None
        if isinstance(node, ast.Name):
            if scope is not None and node.id in scope.env and node.id not in scope.globals_declared:
                return scope.env[node.id]
            return self.global_name(node.id)
        if isinstance(node, ast.Attribute):
            inner = self.value(node.value, scope)
            return ("attr", inner, node.attr) if inner is not None else None
        if isinstance(node, ast.Call):
            if (
                isinstance(node.func, ast.Name)
                and node.func.id == "super"
                and scope is not None
                and scope.cls is not None
                and "super" not in scope.env
            ):
                return ("super", ("name", scope.cls))
            func = self.value(node.func, scope)
            return ("call", func) if func is not None else None
        if isinstance(node, ast.Await):
            return self.value(node.value, scope)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return ("const", node.value)
        literal = _LITERALS.get(type(node))
        if literal is not None:
            return self.literal(node, literal, scope)
        if isinstance(node, ast.BinOp):  # `path / "x"`, `text + "!"`: typed as the left operand
            left = self.value(node.left, scope)
            return ("binop", left) if left is not None else None
        if isinstance(node, ast.Constant) and node.value is not None:
            return ("inst", ("name", type(node.value).__name__))
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and len(node.values) == 2:
            return _or(self.value(node.values[0], scope), self.value(node.values[1], scope))
        if isinstance(node, ast.IfExp):
            return _or(self.value(node.body, scope), self.value(node.orelse, scope))
        if isinstance(node, ast.NamedExpr):
            return self.value(node.value, scope)
        if isinstance(node, ast.Subscript):
            if self.resolve_dotted(node.value) in _ANNOTATED:  # `Db = Annotated[Service, ...]`
                return self.annotation(node)
            inner = self.value(node.value, scope)
            return ("item", inner) if inner is not None else None
        return None

    def literal(self, node: ast.AST, kind: str, scope: _Scope | None) -> Value:
        """`[A, B]`, `{"k": v}`, `f"..."`, comprehensions: a builtin container (or `str`); lists,
        tuples and sets keep an element type, the first of their first elements that
        resolves (a bounded `or`), so `for cls in [A, B]: cls()` is typed."""
        elements: list[ast.AST] = []
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            elements = [e for e in node.elts if not isinstance(e, ast.Starred)]
        elif isinstance(node, ast.Dict):
            elements = [v for v in node.values if v is not None]
        element: Value = None
        seen: list[Value] = []
        for item in elements[:_LITERAL_ELEMENTS]:
            value = self.value(item, scope)
            if value is not None and value not in seen:
                seen.append(value)
        for value in reversed(seen):
            element = value if element is None else ("or", value, element)
        return (
            ("inst", ("name", kind), element) if element is not None else ("inst", ("name", kind))
        )

    def yields(self, node: ast.AST | None) -> Value:
        """What a generator (or `@contextmanager`) function yields, from its return annotation:
        `Iterator[X]`, `Generator[X, ...]`, `AsyncIterator[X]` -> X."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None
        if not isinstance(node, ast.Subscript):
            return None
        base = (self.resolve_dotted(node.value) or "").rsplit(".", 1)[-1]
        if base not in _ITERATORS:
            return None
        first = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice
        return self.annotation(first)

    # -- module ------------------------------------------------------------------------------
    def run(self) -> ModuleFacts:
        for stmt in self.ctx.tree.body:
            try:
                self.statement(stmt, None, None, module_level=True)
            except RecursionError:  # a module-level expression nested ~1000 deep: skip it
                continue
        classes = [
            ClassInfo(
                c.qualname,
                c.name,
                c.line,
                c.bases,
                tuple(self.class_attrs.get(c.qualname, ())),
                c.methods,
            )
            for c in self.classes
        ]
        return ModuleFacts(
            path=self.ctx.path,
            module=self.module,
            imports=tuple(sorted(self.imports.items())),
            globals=tuple(self.globals),
            prefixes=tuple(self.prefixes),
            functions=tuple(self.functions),
            classes=tuple(classes),
            calls=tuple(self.module_calls),
        )

    def block(
        self,
        body: list[ast.stmt],
        scope: _Scope | None,
        state: _FunctionState | None,
        *,
        module_level: bool = False,
        cls: str | None = None,
    ) -> None:
        for stmt in body:
            self.statement(stmt, scope, state, module_level=module_level, cls=cls)

    def statement(
        self,
        stmt: ast.stmt,
        scope: _Scope | None,
        state: _FunctionState | None,
        *,
        module_level: bool = False,
        cls: str | None = None,
    ) -> None:
        prefix = scope.qualname if scope is not None else (cls or self.module)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested_loads = self.function(stmt, prefix, cls, scope)
            if state is not None:
                state.loads |= nested_loads  # a closure reading a local uses it
            if scope is not None:
                scope.env[stmt.name] = ("name", f"{prefix}.{stmt.name}")
            return
        if isinstance(stmt, ast.ClassDef):
            self.class_def(stmt, prefix)
            if scope is not None:
                scope.env[stmt.name] = ("name", f"{prefix}.{stmt.name}")
            return
        if isinstance(stmt, ast.Global) and scope is not None:
            scope.globals_declared.update(stmt.names)
            return
        if isinstance(stmt, ast.Assign):
            self.expr(
                stmt.value,
                scope,
                state,
                "assign" if _single_name(stmt.targets) else "other",
                assigned=_single_name(stmt.targets),
            )
            value = self.value(stmt.value, scope)
            for target in stmt.targets:
                self.bind(
                    target,
                    value if len(stmt.targets) == 1 else None,
                    scope,
                    state,
                    module_level=module_level,
                    cls=cls,
                    rhs=stmt.value,
                )
            return
        if isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                name = stmt.target.id if isinstance(stmt.target, ast.Name) else None
                self.expr(stmt.value, scope, state, "assign" if name else "other", assigned=name)
            value = self.annotation(stmt.annotation) or self.value(stmt.value, scope)
            self.bind(
                stmt.target, value, scope, state, module_level=module_level, cls=cls, rhs=stmt.value
            )
            return
        if isinstance(stmt, ast.AugAssign):
            self.expr(stmt.value, scope, state, "other")
            if isinstance(stmt.target, ast.Name) and state is not None:
                state.loads.add(stmt.target.id)
            return
        if isinstance(stmt, ast.Expr):
            self.expr(stmt.value, scope, state, "discard")
            return
        if isinstance(stmt, ast.Return):
            if stmt.value is not None:
                self.expr(stmt.value, scope, state, "return")
                if state is not None:
                    state.return_values.append(self.value(stmt.value, scope))
            return
        if isinstance(stmt, ast.If):
            static = _static_truth(stmt.test)
            if static is not None:  # `if True:`, `if TYPE_CHECKING:`: only one branch runs
                taken = stmt.body if static else stmt.orelse
                self.block(taken, scope, state, module_level=module_level, cls=cls)
                return
            self.expr(stmt.test, scope, state, "other")
            guard = _guard_keys(stmt.test, scope, self.module) if state is not None else ()
            if guard and state is not None:
                state.guards.append(guard)
                self.block(stmt.body, scope, state, module_level=module_level, cls=cls)
                state.guards.pop()
            else:
                self.block(stmt.body, scope, state, module_level=module_level, cls=cls)
            self.block(stmt.orelse, scope, state, module_level=module_level, cls=cls)
            return
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            if isinstance(stmt, ast.AsyncFor) and state is not None:
                state.constructs.append(AsyncConstruct("async for", stmt.lineno))
            self.expr(stmt.iter, scope, state, "other")
            iterated = self.value(stmt.iter, scope)
            self.bind(
                stmt.target, ("item", iterated) if iterated is not None else None, scope, state
            )
            self.block(stmt.body, scope, state, module_level=module_level, cls=cls)
            self.block(stmt.orelse, scope, state, module_level=module_level, cls=cls)
            return
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            if isinstance(stmt, ast.AsyncWith) and state is not None:
                state.constructs.append(AsyncConstruct("async with", stmt.lineno))
            for item in stmt.items:
                self.expr(item.context_expr, scope, state, "other")
                if item.optional_vars is not None:
                    entered = self.value(item.context_expr, scope)
                    self.bind(
                        item.optional_vars,
                        ("enter", entered) if entered is not None else None,
                        scope,
                        state,
                    )
            self.block(stmt.body, scope, state, module_level=module_level, cls=cls)
            return
        if isinstance(stmt, ast.While):
            self.expr(stmt.test, scope, state, "other")
            self.block(stmt.body, scope, state, module_level=module_level, cls=cls)
            self.block(stmt.orelse, scope, state, module_level=module_level, cls=cls)
            return
        if isinstance(stmt, (ast.Try, ast.TryStar)):
            self.block(stmt.body, scope, state, module_level=module_level, cls=cls)
            for handler in stmt.handlers:
                if handler.type is not None:
                    self.expr(handler.type, scope, state, "other")
                if handler.name and scope is not None:
                    scope.env[handler.name] = None
                self.block(handler.body, scope, state, module_level=module_level, cls=cls)
            self.block(stmt.orelse, scope, state, module_level=module_level, cls=cls)
            self.block(stmt.finalbody, scope, state, module_level=module_level, cls=cls)
            return
        if isinstance(stmt, ast.Match):
            self.expr(stmt.subject, scope, state, "other")
            for case in stmt.cases:
                self.block(case.body, scope, state, module_level=module_level, cls=cls)
            return
        if isinstance(
            stmt, (ast.Import, ast.ImportFrom, ast.Pass, ast.Break, ast.Continue, ast.Nonlocal)
        ):
            return
        # Raise, Assert, Delete, ...: walk their expressions for calls.
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.expr):
                self.expr(child, scope, state, "other")

    def bind(
        self,
        target: ast.AST,
        value: Value,
        scope: _Scope | None,
        state: _FunctionState | None,
        *,
        module_level: bool = False,
        cls: str | None = None,
        rhs: ast.AST | None = None,
    ) -> None:
        if isinstance(target, ast.Name):
            if scope is not None:
                if target.id in scope.globals_declared:
                    if state is not None:
                        state.global_assigns.add(target.id)
                    if value is not None:
                        self.globals.append((target.id, value))
                else:
                    scope.env[target.id] = value
            elif module_level:
                self.globals.append((target.id, value))
                if isinstance(rhs, ast.Call):
                    for keyword in rhs.keywords:
                        if (
                            keyword.arg == "prefix"
                            and isinstance(keyword.value, ast.Constant)
                            and isinstance(keyword.value.value, str)
                        ):
                            self.prefixes.append((target.id, keyword.value.value))
            elif cls is not None:
                self.class_attrs.setdefault(cls, []).append((target.id, value))
        elif isinstance(target, ast.Attribute):
            if (
                scope is not None
                and scope.cls is not None
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                if state is not None:
                    state.self_assigns.add(target.attr)
                self.class_attrs.setdefault(scope.cls, []).append((target.attr, value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.bind(element, None, scope, state, module_level=module_level, cls=cls)
        elif isinstance(target, ast.Starred):
            self.bind(target.value, None, scope, state, module_level=module_level, cls=cls)

    # -- expressions -----------------------------------------------------------------------
    def expr(
        self,
        node: ast.AST,
        scope: _Scope | None,
        state: _FunctionState | None,
        usage: str,
        *,
        assigned: str | None = None,
        outer: str | None = None,
    ) -> None:
        """Record the calls and async constructs in an expression, each with what happens to
        its result."""
        kind = type(node)
        if kind is ast.Constant:
            return
        if kind is ast.Name:
            if state is not None and type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                state.loads.add(node.id)  # type: ignore[attr-defined]
            return
        if kind is ast.Call:
            self.call(node, scope, state, usage, assigned, outer)  # type: ignore[arg-type]
            return
        if kind is ast.Attribute:
            self.expr(node.value, scope, state, "other")  # type: ignore[attr-defined]
            return
        fields = _CHILDREN.get(kind)
        if fields is not None:
            for name in fields:
                child = getattr(node, name)
                if child is None:
                    continue
                if type(child) is list:
                    for item in child:
                        if item is not None:
                            self.expr(item, scope, state, "other")
                else:
                    self.expr(child, scope, state, "other")
            return
        if kind is ast.Await:
            assert isinstance(node, ast.Await)
            if state is not None:
                state.constructs.append(AsyncConstruct("await", node.lineno, _short(node.value)))
            self.expr(node.value, scope, state, "await")
            return
        if kind is ast.Lambda:
            if state is not None:  # runs later, if at all; the names it reads are used
                state.loads.update(
                    n.id
                    for n in ast.walk(node)
                    if isinstance(n, ast.Name)  # type: ignore[arg-type]
                )
            return
        if kind is ast.Yield or kind is ast.YieldFrom:
            assert isinstance(node, (ast.Yield, ast.YieldFrom))
            if state is not None:
                state.constructs.append(AsyncConstruct("yield", node.lineno))
            if node.value is not None:
                self.expr(node.value, scope, state, "return")
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = _Scope(scope.qualname, scope.cls, scope.env) if scope is not None else None
            if inner is not None and scope is not None:
                inner.globals_declared = scope.globals_declared
            for generator in node.generators:
                if generator.is_async and state is not None:
                    state.constructs.append(AsyncConstruct("async comprehension", node.lineno))
                self.expr(generator.iter, inner, state, "other")
                iterated = self.value(generator.iter, inner)
                self.bind(
                    generator.target,
                    ("item", iterated) if iterated is not None else None,
                    inner,
                    None,
                )
                for condition in generator.ifs:
                    self.expr(condition, inner, state, "other")
            if isinstance(node, ast.DictComp):
                self.expr(node.key, inner, state, "other")
                self.expr(node.value, inner, state, "other")
            else:
                self.expr(node.elt, inner, state, "other")
            return
        if isinstance(node, ast.NamedExpr):
            self.expr(node.value, scope, state, "assign", assigned=node.target.id)
            self.bind(node.target, self.value(node.value, scope), scope, state)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, scope, state, "other")
            elif isinstance(child, ast.keyword):
                self.expr(child.value, scope, state, "other")

    def call(
        self,
        node: ast.Call,
        scope: _Scope | None,
        state: _FunctionState | None,
        usage: str,
        assigned: str | None,
        outer: str | None,
    ) -> None:
        text = dotted_text(node.func)
        # The callee expression first (`a().b()` calls `a()` too), then the arguments.
        if not isinstance(node.func, (ast.Name, ast.Attribute)) or _has_call(node.func):
            self.expr(node.func, scope, state, "other")
        elif state is not None and isinstance(node.func, ast.Attribute):
            base = node.func
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name):
                state.loads.add(base.id)
        for arg in node.args:
            inner = arg.value if isinstance(arg, ast.Starred) else arg
            self.expr(inner, scope, state, "arg", outer=text)
        for keyword in node.keywords:
            self.expr(keyword.value, scope, state, "arg", outer=text)
        record = Call(
            line=node.lineno,
            col=node.col_offset,
            end_line=node.end_lineno or node.lineno,
            end_col=node.end_col_offset or node.col_offset,
            callee=self.value(node.func, scope),
            text=text,
            usage=usage,
            assigned=assigned if usage == "assign" else None,
            outer=outer if usage == "arg" else None,
            guard=tuple(k for g in state.guards for k in g) if state is not None else (),
            args=tuple(
                None if isinstance(a, ast.Starred) else self.value(a, scope) for a in node.args
            ),
            kwargs=tuple(
                (k.arg, self.value(k.value, scope)) for k in node.keywords if k.arg is not None
            ),
        )
        if state is not None:
            state.calls.append(record)
        else:
            self.module_calls.append(record)

    # -- definitions -------------------------------------------------------------------------
    def class_def(self, node: ast.ClassDef, prefix: str) -> None:
        qualname = f"{prefix}.{node.name}"
        for decorator in node.decorator_list:
            self.expr(decorator, None, None, "other")
        methods = tuple(
            s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
        bases = tuple(self.value(b, None) for b in node.bases)
        self.classes.append(ClassInfo(qualname, node.name, node.lineno, bases, (), methods))
        self.block(node.body, None, None, cls=qualname)

    def function(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        prefix: str,
        cls: str | None,
        outer_scope: _Scope | None,
    ) -> set[str]:
        """Collect one function (and its nested ones); returns the names its body reads."""
        qualname = f"{prefix}.{node.name}"
        if qualname in self.defined:  # defined again (two routes named `root`, a setter):
            qualname = f"{qualname}@{node.lineno}"  # keep both; the name resolves to the first
        self.defined.add(qualname)
        decorators: list[str] = []
        routes: list[RouteDecorator] = []
        kind = "method" if cls is not None else "function"
        cached = False
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            name = self.resolve_dotted(target) or ""
            decorators.append(name)
            if name in ("staticmethod", "classmethod", "property") and cls is not None:
                kind = name
            elif name.endswith(".setter") or name.endswith(".deleter"):
                kind = "property"
            if name in _CACHE_DECORATORS:
                cached = True
                if name.endswith("cached_property"):
                    kind = "property"
            if (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr in ROUTE_METHODS
            ):
                routes.append(self.route(decorator, decorator.func.attr, outer_scope))
        scope = _Scope(qualname, cls, outer_scope.env if outer_scope is not None else None)
        params: list[Param] = []
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults += list(args.defaults)
        pairs = list(zip(positional, defaults, strict=True))
        pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
        for index, (arg, default) in enumerate(pairs):
            if index == 0 and cls is not None and kind in ("method", "property"):
                value: Value = ("inst", ("name", cls))
                params.append(Param(arg.arg, value))
                scope.env[arg.arg] = value
                continue
            if index == 0 and cls is not None and kind == "classmethod":
                scope.env[arg.arg] = ("name", cls)
                params.append(Param(arg.arg, ("name", cls)))
                continue
            value = self.annotation(arg.annotation)
            depends = self.depends(default, arg.annotation)
            if value is None and depends is not None:
                value = ("call", depends) if depends[0] != "inst" else depends
            annotation_text = ast.unparse(arg.annotation) if arg.annotation is not None else None
            params.append(Param(arg.arg, value, depends, annotation_text))
            # Untyped (or `Any`): what the callers pass, inferred by the index.
            scope.env[arg.arg] = value if value is not None else ("param", qualname, arg.arg)
        for extra in (args.vararg, args.kwarg):
            if extra is not None:
                scope.env[extra.arg] = None
        state = _FunctionState()
        try:
            self.block(node.body, scope, state)
        except RecursionError:  # an expression nested ~1000 deep: keep what was read, say so
            state.truncated = True
        self.functions.append(
            Function(
                qualname=qualname,
                name=node.name,
                line=node.lineno,
                col=node.col_offset,
                end_line=node.end_lineno or node.lineno,
                is_async=isinstance(node, ast.AsyncFunctionDef),
                cls=cls,
                kind=kind,
                nested=outer_scope is not None,
                params=tuple(params),
                returns=self.annotation(node.returns),
                yields=self.yields(node.returns),
                return_values=tuple(v for v in state.return_values if v is not None),
                calls=tuple(state.calls),
                constructs=tuple(state.constructs),
                is_stub=_is_stub(node.body),
                cached=cached,
                routes=tuple(routes),
                self_assigns=frozenset(state.self_assigns),
                global_assigns=frozenset(state.global_assigns),
                loads=frozenset(state.loads),
                decorators=tuple(decorators),
                truncated=state.truncated,
            )
        )
        return state.loads

    def depends(self, default: ast.expr | None, annotation: ast.expr | None) -> Value:
        """The provider of `Depends(provider)` (also inside `Annotated[T, Depends(p)]`)."""
        candidates: list[ast.expr] = []
        if default is not None:
            candidates.append(default)
        if (
            isinstance(annotation, ast.Subscript)
            and isinstance(annotation.slice, ast.Tuple)
            and self.resolve_dotted(annotation.value) in _ANNOTATED
        ):
            candidates.extend(annotation.slice.elts[1:])
        for node in candidates:
            if isinstance(node, ast.Call) and self.resolve_dotted(node.func) in _DEPENDS:
                if node.args:
                    return self.value(node.args[0], None)
                for keyword in node.keywords:
                    if keyword.arg == "dependency":
                        return self.value(keyword.value, None)
                return self.annotation(annotation)  # Depends() with the class as annotation
        return None

    def route(self, decorator: ast.Call, method: str, scope: _Scope | None) -> RouteDecorator:
        spec = frameworks.route_decorator(decorator)
        assert spec is not None
        receiver = self.value(spec.receiver, scope)
        return RouteDecorator(receiver, method, spec.path, spec.methods, decorator.lineno)


# -- small helpers -------------------------------------------------------------------------------
def _or(first: Value, second: Value) -> Value:
    if first is None:
        return second
    if second is None or second == first:
        return first
    return ("or", first, second)


def _target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for e in target.elts for n in _target_names(e)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _single_name(targets: list[ast.expr]) -> str | None:
    if len(targets) == 1 and isinstance(targets[0], ast.Name):
        return targets[0].id
    return None


def _has_call(node: ast.AST) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Call)


def _short(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return dotted_text(node.func) + "(...)"
    return dotted_text(node)


def _is_stub(body: list[ast.stmt]) -> bool:
    """`...`, `pass` or `raise NotImplementedError` (after an optional docstring)."""
    statements = body
    if (
        statements
        and isinstance(statements[0], ast.Expr)
        and isinstance(statements[0].value, ast.Constant)
        and isinstance(statements[0].value.value, str)
    ):
        statements = statements[1:]
    if not statements:
        return True
    if len(statements) != 1:
        return False
    only = statements[0]
    if isinstance(only, ast.Pass):
        return True
    if isinstance(only, ast.Expr) and isinstance(only.value, ast.Constant):
        return only.value.value is Ellipsis
    if isinstance(only, ast.Raise) and only.exc is not None:
        exc = only.exc.func if isinstance(only.exc, ast.Call) else only.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def _static_truth(test: ast.AST) -> bool | None:
    """The value of an `if` test known before run time: `True`, `False`, `TYPE_CHECKING`."""
    if isinstance(test, ast.Constant) and isinstance(test.value, bool):
        return test.value
    if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    ):
        return False
    return None


def _state_key(node: ast.AST, scope: _Scope | None, module: str) -> str | None:
    """`self._loaded` -> "self._loaded"; a module global `_cache` -> "g:<module>._cache"."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("self", "cls")
    ):
        return f"self.{node.attr}"
    if isinstance(node, ast.Name):
        if scope is not None and node.id in scope.env and node.id not in scope.globals_declared:
            return None  # a local variable is not state that survives the call
        return f"g:{module}.{node.id}"
    return None


def _guard_keys(test: ast.AST, scope: _Scope | None, module: str) -> tuple[str, ...]:
    """The state an `if` tests for "not set up yet": `not self._loaded`, `self._x is None`,
    `_cache is None`, `not _registry`, `len(self._items) == 0`, or an `or` of those."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        keys: list[str] = []
        for operand in test.values:
            found = _guard_keys(operand, scope, module)
            if not found:
                return ()
            keys.extend(found)
        return tuple(keys)
    subject: ast.AST | None = None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        subject = test.operand
    elif (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], (ast.Is, ast.Eq))
        and annotations.is_none(test.comparators[0])
    ):
        subject = test.left
    elif (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == 0
        and isinstance(test.left, ast.Call)
        and isinstance(test.left.func, ast.Name)
        and test.left.func.id == "len"
        and len(test.left.args) == 1
    ):
        subject = test.left.args[0]
    if subject is None:
        return ()
    key = _state_key(subject, scope, module)
    return (key,) if key else ()
