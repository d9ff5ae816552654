"""What a try body can raise: per-file facts (`collect`) and the cross-file analysis (`World`).

`collect(ctx)` reads one file in a single pass and keeps, as small picklable tuples, what the
analysis needs: per function (and per module body) every call and `raise` with the try blocks
around it, each try's handlers, the return type; per class its bases and typed attributes; the
file's broad handlers with their behaviour. Names are resolved the way Python binds them: locals
and parameters (flow-insensitively, typed from annotations and assignments), enclosing functions,
module globals, imports, builtins.

Values are symbolic references, evaluated across files by `World`:

* `("q", "a.b.c")`: a global dotted name (imports applied; module-level names prefixed with the
  module; builtins bare);
* `("self", "mod.Class")`: the instance a method runs on;
* `("attr", R, "x")`: attribute `x` of `R`;
* `("ret", R)`: what calling `R` returns (a class: an instance; a function: its return type);
* `("inst", R)`: an instance of the class `R` (from an annotation); `("inst", R, item, kind)`
  for a typed container (`queue.LifoQueue[Connection]`, `dict[str, Client]`, `Iterator[T]`);
* `("item", R)`, `("iter", R)`, `("enter", R)`: `R[...]`, the target of `for x in R`, the
  target of `with R as x` (a `@contextmanager` generator yields its item);
* literals are typed (`("inst", ("q", "str"))`); `None`: unknown.

`World` resolves those against every file's facts, computes for each project function the
exception types that escape it (calls into libraries mapped by `rules/exceptions.toml`,
explicit `raise`, the project's own functions transitively, minus what enclosing handlers catch)
and, for each broad handler, what its try body raises and what to narrow it to.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...config import load_rule_data, path_matches
from ...semantic import annotations, frameworks, imports
from ...semantic.project import ProjectModel
from ..base import FileContext
from . import helpers

Ref = tuple[Any, ...] | None
Value = tuple[Any, ...] | None

_BUILTIN_NAMES = frozenset(dir(builtins))
_MODULE_SCOPE = "<module>"
#: Nested parts of one expression followed into a reference (deeper is unknown).
_MAX_REF_DEPTH = 64
#: Containers whose items are their argument (`list[Client]`, `Iterator[Connection]`, a
#: generator that `@contextmanager` turns into a `with ... as conn`) and mappings (items are the
#: values): semantic/annotations.py.
_SEQUENCES = annotations.SEQUENCES | annotations.ITERATORS
_MAPPINGS = annotations.MAPPINGS
_LITERALS = annotations.LITERAL_TYPES
_CONSTANTS = {str: "str", bytes: "bytes", int: "int", float: "float"}
#: Methods of a container that return one of its items.
_ITEM_METHODS = frozenset(
    {"get", "get_nowait", "pop", "popleft", "setdefault", "__getitem__", "__next__", "__anext__"}
)


# -- facts (picklable) -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Site:
    """A call (`ref` is the callee) or a `raise` (`ref` is the raised class) inside a scope;
    `guards` are the indexes (into the scope's `tries`) of the try bodies around it, outermost
    first."""

    kind: str  # "call" | "raise" | "subscript" (only recorded inside try bodies)
    ref: Ref
    line: int
    label: str
    guards: tuple[int, ...]
    hint: str = ""  # subscripts: "str" / "int" for a constant key; calls: "sql-read" /
    # "sql-write" / "sql" (not a constant) for a first argument that is a statement, "spawned"
    # for a coroutine handed to a task (`create_task(f())`: what f raises stays in the task),
    # "key:NAME" for a call reading a setting by a constant upper-case name


@dataclass(frozen=True, slots=True)
class Catch:
    """One `except` clause: the classes it names, whether it is broad, whether it re-raises."""

    types: tuple[Ref, ...]
    broad: bool
    reraises: bool


@dataclass(frozen=True, slots=True)
class FunctionFacts:
    qualname: str
    sites: tuple[Site, ...]
    tries: tuple[tuple[Catch, ...], ...]
    returns: Ref
    ends: str | None = None  # "exit" / "raise": the body never returns normally
    entry: str | None = None  # "route GET /x" / "task": run by the framework, not by a caller
    line: int = 0
    decorated: bool = False  # a decorator may hand it to a framework (a property, a listener)


@dataclass(frozen=True, slots=True)
class ClassFacts:
    qualname: str
    bases: tuple[Ref, ...]
    attrs: tuple[tuple[str, Ref], ...]


@dataclass(frozen=True, slots=True)
class HandlerFacts:
    """A broad handler (`except:`, `except Exception`, `except BaseException` or a tuple with
    one) and what it does."""

    line: int
    column: int
    end_line: int  # the end of the `except ...:` clause (not of the handler body)
    end_column: int
    symbol: str
    scope: str  # the FunctionFacts key holding its try
    try_index: int
    handler_index: int
    catches: str  # the clause as written: "Exception", "(ValueError, Exception)", "bare"
    broad: tuple[str, ...]
    behaviour: str
    logs_traceback: bool
    isolation: bool
    dispatch: bool
    snippet: str
    mixed: bool = False  # re-raises on some paths, swallows on others
    #: Why catching everything is this handler's purpose, when it is ("" otherwise): a loop
    #: that must survive one item's failure, a wrapper that turns any error into an error
    #: result, request middleware, a cleanup that must not mask the error. narrow-except leaves
    #: these to isolate-handlers.
    boundary: str = ""
    tail: Ref = None  # the callee of the handler's last statement, when it is a call
    body_end: int = 0  # the last line of the handler's body


@dataclass(frozen=True, slots=True)
class FileFacts:
    path: str
    module: str
    functions: dict[str, FunctionFacts]
    classes: dict[str, ClassFacts]
    variables: dict[str, Ref]
    aliases: dict[str, str]
    packages: frozenset[str]
    handlers: tuple[HandlerFacts, ...]
    #: Functions handed to a scheduler, a thread or a background-task queue (`add_task(f)`,
    #: `Thread(target=f)`): entry points of work that runs outside any caller.
    entries: tuple[Ref, ...] = ()
    script: bool = False  # has an `if __name__ == "__main__":` block


def module_scope_key(module: str) -> str:
    return f"{module}.{_MODULE_SCOPE}"


# -- collection ----------------------------------------------------------------------------------
class _Scope:
    __slots__ = (
        "decorated",
        "ends",
        "entry",
        "function_names",
        "kind",
        "line",
        "locals",
        "loop_targets",
        "params",
        "parent",
        "qualname",
        "returns",
        "sites",
        "tries",
    )

    def __init__(self, kind: str, qualname: str, parent: _Scope | None, names: tuple[str, ...]):
        self.kind = kind
        self.qualname = qualname
        self.parent = parent
        self.locals: dict[str, Ref] = {}
        self.params: set[str] = set()
        self.loop_targets: set[str] = set()
        self.sites: list[tuple[Any, ...]] = []
        self.tries: list[list[tuple[tuple[Ref, ...], bool, bool]]] = []
        self.returns: list[Ref] = []
        self.function_names = names
        self.ends: str | None = None
        self.entry: str | None = None
        self.line = 0
        self.decorated = False

    def bind(self, name: str, ref: Ref) -> None:
        """Flow-insensitive typing: the first informative value wins."""
        if self.locals.get(name) is None:
            self.locals[name] = ref


class _ClassBuilder:
    __slots__ = ("attrs", "bases", "qualname", "scope")

    def __init__(self, qualname: str, scope: _Scope):
        self.qualname = qualname
        self.scope = scope  # where the class statement runs (names in its body resolve there)
        self.bases: list[Ref] = []
        self.attrs: dict[str, tuple[Ref, _Scope]] = {}

    def bind(self, name: str, ref: Ref, scope: _Scope) -> None:
        current = self.attrs.get(name)
        if current is None or current[0] is None:
            self.attrs[name] = (ref, scope)


#: Fields that never hold code worth visiting (names, operators, contexts, constants).
_SKIP_FIELDS = frozenset(
    {
        "ctx",
        "id",
        "attr",
        "arg",
        "op",
        "ops",
        "kind",
        "type_comment",
        "conversion",
        "is_async",
        "level",
        "module",
        "names",
        "value_is_constant",
    }
)
# consolidate: ignore[MEM001] keyed by AST class: bounded by the node types that exist
_FIELDS: dict[type, tuple[str, ...]] = {}


def _children(node: ast.AST) -> list[ast.AST]:
    """`ast.iter_child_nodes` without generators and with the irrelevant fields skipped."""
    kind = type(node)
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = _FIELDS[kind] = tuple(f for f in kind._fields if f not in _SKIP_FIELDS)
    out: list[ast.AST] = []
    for name in fields:
        value = getattr(node, name, None)
        if value is None:
            continue
        if type(value) is list:
            out.extend(v for v in value if isinstance(v, ast.AST))
        elif isinstance(value, ast.AST):
            out.append(value)
    return out


def _segment(lines: list[str], node: ast.AST) -> str | None:
    """The source of a node from the file's lines (no re-splitting of the whole source)."""
    start, end = node.lineno, node.end_lineno or node.lineno
    first, last = node.col_offset, node.end_col_offset
    if start < 1 or end > len(lines) or last is None:
        return None
    if start == end:
        return lines[start - 1].encode()[first:last].decode(errors="replace")
    chunk = [lines[start - 1].encode()[first:].decode(errors="replace")]
    chunk += lines[start : end - 1]
    chunk.append(lines[end - 1].encode()[:last].decode(errors="replace"))
    return "\n".join(chunk)


_SETTING_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\Z")


def _setting_key(call: ast.Call) -> str:
    """`key:NAME` for a call that reads a setting by a constant upper-case name
    (`get_config("AWS_SECRET_ACCESS_KEY")`, `os.getenv("API_TOKEN")`): the tiers judge whether
    the name says it is a secret."""
    for arg in call.args[:2]:
        value = arg.value if isinstance(arg, ast.Constant) else None
        if isinstance(value, str) and 3 <= len(value) <= 80 and _SETTING_NAME.match(value):
            return f"key:{value}"
    return ""


def _label(expr: ast.AST, depth: int = 0) -> str:
    if depth > 6:
        return "..."
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return f"{_label(expr.value, depth + 1)}.{expr.attr}"
    if isinstance(expr, ast.Call):
        return f"{_label(expr.func, depth + 1)}()"
    if isinstance(expr, ast.Subscript):
        return f"{_label(expr.value, depth + 1)}[...]"
    if isinstance(expr, ast.Await):
        return _label(expr.value, depth + 1)
    return "<expr>"


class _Collector:
    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.module = ctx.module
        # Local name -> qualified name, from every import in the file (as `FileContext.imports`,
        # built here during the one traversal instead of by a separate walk).
        self.imports: dict[str, str] = {}
        self.package = imports.package_of(self.module, ctx.path)
        self.scopes: list[_Scope] = []
        self.classes: list[_ClassBuilder] = []
        self.bindings: dict[str, str] = {}  # module-level name -> qualified name
        self.variables: dict[str, tuple[Ref, _Scope]] = {}
        self.handlers: list[tuple[ast.ExceptHandler, ast.AST, _Scope, int, int]] = []
        self.entries: list[tuple[Ref, _Scope]] = []
        self.spawned: set[int] = set()  # ids of calls whose coroutine a task runs
        self.keys: dict[int, str] = {}

    def qualify(self, expr: ast.AST) -> str | None:
        """`FileContext.qualified_name`, with the imports seen so far."""
        return imports.qualify(expr, self.imports)

    # -- references ----------------------------------------------------------------------------
    def ref(self, expr: ast.AST, scope: _Scope, depth: int = 0) -> Ref:
        """The symbolic value of an expression; unknown (None) past `_MAX_REF_DEPTH` nested
        parts (a 1,000-long attribute chain is unknown, not a stack overflow)."""
        if depth > _MAX_REF_DEPTH:
            return None
        deeper = depth + 1
        if isinstance(expr, ast.Name):
            return ("var", expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.ref(expr.value, scope, deeper)
            return None if base is None else ("attr", base, expr.attr)
        if isinstance(expr, ast.Call):
            inner = self.ref(expr.func, scope, deeper)
            return None if inner is None else ("ret", inner)
        if isinstance(expr, ast.Await):
            return self.ref(expr.value, scope, deeper)
        if isinstance(expr, ast.Subscript):
            inner = self.ref(expr.value, scope, deeper)
            return None if inner is None else ("item", inner)
        if isinstance(expr, ast.BoolOp):
            for value in expr.values:
                found = self.ref(value, scope, deeper)
                if found is not None:
                    return found
            return None
        if isinstance(expr, ast.IfExp):
            return self.ref(expr.body, scope, deeper) or self.ref(expr.orelse, scope, deeper)
        literal = _LITERALS.get(type(expr))
        if literal is None and isinstance(expr, ast.Constant):
            literal = _CONSTANTS.get(type(expr.value))
        return None if literal is None else ("inst", ("q", literal))

    def annotation(self, expr: ast.AST | None, scope: _Scope) -> Ref:
        """An instance of what an annotation names: `X`, `X | None`, `Optional[X]`,
        `Annotated[X, ...]`, `X[...]` (generic), `"X"` (semantic/annotations.py peels the
        wrappers); a typed container keeps what its items are."""
        expr = annotations.core(expr)
        if expr is None:
            return None
        if isinstance(expr, ast.Subscript):
            tail = annotations.tail(expr.value)
            args = annotations.arguments(expr)
            container = self.ref(expr.value, scope)
            if container is not None and args and (tail in _SEQUENCES or tail in _MAPPINGS):
                kind = "map" if tail in _MAPPINGS else "seq"
                element = self.annotation(args[-1] if kind == "map" else args[0], scope)
                return ("inst", container, element, kind)
            expr = expr.value
        if isinstance(expr, (ast.Name, ast.Attribute)):
            inner = self.ref(expr, scope)
            return None if inner is None else ("inst", inner)
        return None

    # -- statements ----------------------------------------------------------------------------
    def block(
        self,
        body: Sequence[ast.stmt],
        scope: _Scope,
        guards: tuple[int, ...],
        cls: _ClassBuilder | None = None,
    ) -> None:
        for stmt in body:
            self.stmt(stmt, scope, guards, cls)

    def stmt(
        self, node: ast.stmt, scope: _Scope, guards: tuple[int, ...], cls: _ClassBuilder | None
    ) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.function(node, scope, guards, cls)
        elif isinstance(node, ast.ClassDef):
            self.class_def(node, scope, guards, cls)
        elif isinstance(node, (ast.Try, ast.TryStar)):
            self.try_stmt(node, scope, guards, cls)
        elif isinstance(node, ast.Assign):
            self.expr(node.value, scope, guards)
            if scope.kind == "module" and cls is None and _looks_like_type(node.value):
                value = self.annotation(node.value, scope)  # `Connection = psycopg.Connection[T]`
            else:
                value = self.ref(node.value, scope)
            for target in node.targets:
                self.assign(target, value, scope, guards, cls)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.expr(node.value, scope, guards)
            typed = self.annotation(node.annotation, scope)
            value = typed or (self.ref(node.value, scope) if node.value is not None else None)
            self.assign(node.target, value, scope, guards, cls)
        elif isinstance(node, ast.Raise):
            self.raise_stmt(node, scope, guards)
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self.expr(node.value, scope, guards)
                scope.returns.append(self.ref(node.value, scope))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expr(item.context_expr, scope, guards)
                if isinstance(item.optional_vars, ast.Name):
                    entered = self.ref(item.context_expr, scope)
                    scope.bind(
                        item.optional_vars.id, None if entered is None else ("enter", entered)
                    )
            self.block(node.body, scope, guards, cls)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter, scope, guards)
            for name in ast.walk(node.target):
                if isinstance(name, ast.Name):
                    scope.loop_targets.add(name.id)
                    scope.bind(name.id, None)
            if isinstance(node.target, ast.Name):
                iterated = self.ref(node.iter, scope)
                if iterated is not None:
                    scope.bind(node.target.id, ("iter", iterated))
            self.block(node.body, scope, guards, cls)
            self.block(node.orelse, scope, guards, cls)
        elif isinstance(node, (ast.If, ast.While)):
            self.expr(node.test, scope, guards)
            self.block(node.body, scope, guards, cls)
            self.block(node.orelse, scope, guards, cls)
        elif isinstance(node, ast.Match):
            self.expr(node.subject, scope, guards)
            for case in node.cases:
                if case.guard is not None:
                    self.expr(case.guard, scope, guards)
                self.block(case.body, scope, guards, cls)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self.imports.update(imports.bindings(node, self.package))
        elif isinstance(node, (ast.Global, ast.Nonlocal, ast.Pass)):
            return
        else:  # Expr, AugAssign, Delete, Assert, Break, Continue, TypeAlias
            for child in _children(node):
                if isinstance(child, ast.expr):
                    self.expr(child, scope, guards)

    def assign(
        self,
        target: ast.AST,
        value: Ref,
        scope: _Scope,
        guards: tuple[int, ...],
        cls: _ClassBuilder | None,
    ) -> None:
        if isinstance(target, ast.Name):
            if cls is not None:
                cls.bind(target.id, value, scope)
            elif scope.kind == "module":
                qual = f"{self.module}.{target.id}"
                self.bindings.setdefault(target.id, qual)
                current = self.variables.get(qual)
                if current is None or current[0] is None:
                    self.variables[qual] = (value, scope)
            else:
                scope.bind(target.id, value)
        elif isinstance(target, ast.Attribute):
            self.expr(target.value, scope, guards)
            owner = self._self_class(target.value, scope)
            if owner is not None:
                owner.bind(target.attr, value, scope)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.assign(element, None, scope, guards, cls)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, None, scope, guards, cls)
        else:
            self.expr(target, scope, guards)

    def _self_class(self, expr: ast.AST, scope: _Scope) -> _ClassBuilder | None:
        if not isinstance(expr, ast.Name):
            return None
        bound = scope.locals.get(expr.id)
        if bound is not None and bound[0] == "self":
            return next((c for c in self.classes if c.qualname == bound[1]), None)
        return None

    def function(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        scope: _Scope,
        guards: tuple[int, ...],
        cls: _ClassBuilder | None,
    ) -> None:
        for decorator in node.decorator_list:
            self.expr(decorator, scope, guards)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.expr(default, scope, guards)
        owner = cls.qualname if cls is not None else scope.qualname
        if scope.kind == "module" and cls is None:
            owner = self.module
            self.bindings.setdefault(node.name, f"{self.module}.{node.name}")
        qualname = f"{owner}.{node.name}"
        parent = cls.scope if cls is not None else scope
        inner = _Scope("function", qualname, parent, (*scope.function_names, node.name))
        if cls is None and scope.kind == "function":
            scope.locals[node.name] = ("q", qualname)
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        decorators = {_label(d) for d in node.decorator_list}
        for index, arg in enumerate([*positional, *args.kwonlyargs]):
            inner.params.add(arg.arg)
            inner.locals[arg.arg] = self.annotation(arg.annotation, inner)
            if index == 0 and cls is not None and arg in positional:
                if "staticmethod" in decorators:
                    continue
                if "classmethod" in decorators:
                    inner.locals[arg.arg] = ("q", cls.qualname)
                else:
                    inner.locals[arg.arg] = ("self", cls.qualname)
        for arg in (args.vararg, args.kwarg):
            if arg is not None:
                inner.params.add(arg.arg)
                inner.locals[arg.arg] = None
        returns = self.annotation(node.returns, inner)
        if returns is not None:
            inner.returns.append(returns)
        inner.entry = frameworks.entry_point(node.decorator_list)
        inner.decorated = bool(node.decorator_list)
        inner.line = node.lineno
        self.scopes.append(inner)
        self.block(node.body, inner, ())
        inner.ends = helpers.never_returns(node.body)

    def class_def(
        self, node: ast.ClassDef, scope: _Scope, guards: tuple[int, ...], cls: _ClassBuilder | None
    ) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.expr(expr, scope, guards)
        owner = cls.qualname if cls is not None else scope.qualname
        if scope.kind == "module" and cls is None:
            owner = self.module
            self.bindings.setdefault(node.name, f"{self.module}.{node.name}")
        builder = _ClassBuilder(f"{owner}.{node.name}", cls.scope if cls is not None else scope)
        if cls is None and scope.kind == "function":
            scope.locals[node.name] = ("q", builder.qualname)
        builder.bases = [self.ref(base, scope) for base in node.bases]
        self.classes.append(builder)
        self.block(node.body, scope, guards, builder)

    def try_stmt(
        self,
        node: ast.Try | ast.TryStar,
        scope: _Scope,
        guards: tuple[int, ...],
        cls: _ClassBuilder | None,
    ) -> None:
        catches = []
        for handler in node.handlers:
            broad = bool(helpers.broad_names(handler, self.qualify))
            if handler.type is None:
                types: tuple[Ref, ...] = ()
            elif isinstance(handler.type, ast.Tuple):
                types = tuple(self.ref(e, scope) for e in handler.type.elts)
            else:
                types = (self.ref(handler.type, scope),)
            reraises = any(
                isinstance(n, ast.Raise)
                and (
                    n.exc is None
                    or (
                        handler.name is not None
                        and isinstance(n.exc, ast.Name)
                        and n.exc.id == handler.name
                    )
                )
                for n in helpers.walk_local(handler.body, into_try=False)
            )
            catches.append((types, broad, reraises))
        index = len(scope.tries)
        scope.tries.append(catches)
        self.block(node.body, scope, (*guards, index), cls)
        for position, handler in enumerate(node.handlers):
            if handler.name:
                scope.bind(handler.name, None)
            if catches[position][1]:
                self.handlers.append((handler, node, scope, index, position))
            self.block(handler.body, scope, guards, cls)
        self.block(node.orelse, scope, guards, cls)
        self.block(node.finalbody, scope, guards, cls)

    def raise_stmt(self, node: ast.Raise, scope: _Scope, guards: tuple[int, ...]) -> None:
        exc = node.exc
        if node.cause is not None:
            self.expr(node.cause, scope, guards)
        if exc is None:
            return
        if isinstance(exc, ast.Call):
            # The constructor of the raised class is not an interesting call; its arguments are.
            for child in [*exc.args, *(k.value for k in exc.keywords)]:
                self.expr(child, scope, guards)
            exc = exc.func
        else:
            self.expr(exc, scope, guards)
        scope.sites.append(("raise", self.ref(exc, scope), node.lineno, _label(exc), guards))

    # -- expressions ---------------------------------------------------------------------------
    def expr(self, node: ast.AST, scope: _Scope, guards: tuple[int, ...]) -> None:
        stack = [node]
        sites = scope.sites
        while stack:
            current = stack.pop()
            if isinstance(current, ast.Call):
                func = current.func
                site = ("call", self.ref(func, scope), current.lineno, _label(func), guards)
                spawned = frameworks.spawned_call(current)
                if spawned is not None:
                    # `create_task(self._loop())`: the coroutine runs in a task of its own; what
                    # it raises does not come back here. It is an entry point of background work.
                    self.entries.append((self.ref(spawned.func, scope), scope))
                    self.spawned.add(id(spawned))
                hint = (
                    "spawned"
                    if id(current) in self.spawned
                    else helpers.sql_kind(current) or _setting_key(current)
                )
                sites.append((*site, hint) if hint else site)
                for handed in frameworks.handed_callables(current):
                    self.entries.append((self.ref(handed, scope), scope))
                stack.append(func)
                stack.extend(current.args)
                stack.extend(k.value for k in current.keywords)
                continue
            if isinstance(current, ast.Lambda):
                stack.extend(d for d in current.args.defaults if d is not None)
                continue
            if isinstance(current, ast.NamedExpr) and isinstance(current.target, ast.Name):
                scope.bind(current.target.id, self.ref(current.value, scope))
            elif (
                guards
                and isinstance(current, ast.Subscript)
                and isinstance(current.ctx, ast.Load)
                and not isinstance(current.slice, ast.Slice)
            ):
                key = current.slice
                hint = ""
                if isinstance(key, ast.Constant):
                    hint = "str" if isinstance(key.value, str) else "int"
                sites.append(
                    (
                        "subscript",
                        self.ref(current.value, scope),
                        current.lineno,
                        f"{_label(current.value)}[...]",
                        guards,
                        hint,
                    )
                )
            if isinstance(current, (ast.Name, ast.Constant)):
                continue
            stack.extend(_children(current))

    # -- resolution at the end of the file -----------------------------------------------------
    def final(self, ref: Ref, scope: _Scope, seen: frozenset = frozenset()) -> Ref:
        if ref is None:
            return None
        tag = ref[0]
        if tag == "var":
            return self.lookup(ref[1], scope, seen)
        if tag == "attr":
            base = self.final(ref[1], scope, seen)
            if base is None:
                return None
            if base[0] == "q":
                return ("q", f"{base[1]}.{ref[2]}")
            return ("attr", base, ref[2])
        if tag in ("ret", "inst", "item", "iter", "enter"):
            inner = self.final(ref[1], scope, seen)
            if inner is None:
                return None
            if tag == "inst" and len(ref) == 4:
                return (tag, inner, self.final(ref[2], scope, seen), ref[3])
            return (tag, inner)
        return ref

    def lookup(self, name: str, scope: _Scope, seen: frozenset) -> Ref:
        current: _Scope | None = scope
        while current is not None and current.kind == "function":
            if name in current.locals:
                key = (id(current), name)
                if key in seen:
                    return None
                return self.final(current.locals[name], current, seen | {key})
            current = current.parent
        if name in self.bindings:
            return ("q", self.bindings[name])
        if name in self.imports:
            return ("q", self.imports[name])
        if name in _BUILTIN_NAMES:
            return ("q", name)
        return None

    def facts(self, tree: ast.Module) -> FileFacts:
        module_scope = _Scope("module", self.module, None, ())
        self.scopes.append(module_scope)
        self.block(tree.body, module_scope, ())
        functions: dict[str, FunctionFacts] = {}
        # A name defined twice (a redefinition, `@x.setter`, `if ...: def f` / `else: def f`)
        # binds the last definition, as Python does; the earlier ones keep facts of their own
        # under `name#n` so their handlers still find their try statements.
        last = {scope.qualname: scope for scope in self.scopes}
        self.keys = {}
        for number, scope in enumerate(self.scopes):
            if scope is module_scope:
                key = module_scope_key(self.module)
            elif last[scope.qualname] is scope:
                key = scope.qualname
            else:
                key = f"{scope.qualname}#{number}"
            self.keys[id(scope)] = key
            sites = tuple(
                Site(item[0], self.final(item[1], scope), *item[2:]) for item in scope.sites
            )
            tries = tuple(
                tuple(
                    Catch(tuple(self.final(t, scope) for t in types), broad, reraises)
                    for types, broad, reraises in catches
                )
                for catches in scope.tries
            )
            returns = next(
                (r for r in (self.final(x, scope) for x in scope.returns) if r is not None), None
            )
            functions[key] = FunctionFacts(
                key, sites, tries, returns, scope.ends, scope.entry, scope.line, scope.decorated
            )
        classes = {
            c.qualname: ClassFacts(
                c.qualname,
                tuple(self.final(b, c.scope) for b in c.bases),
                tuple((name, self.final(ref, where)) for name, (ref, where) in c.attrs.items()),
            )
            for c in self.classes
        }
        variables = {q: self.final(ref, where) for q, (ref, where) in self.variables.items()}
        aliases = {
            f"{self.module}.{local}": target
            for local, target in self.imports.items()
            if target != f"{self.module}.{local}"
        }
        packages = frozenset(t.split(".")[0] for t in self.imports.values())
        handlers = tuple(self.handler_facts(*item) for item in self.handlers)
        entries = tuple(
            ref for ref in (self.final(r, where) for r, where in self.entries) if ref is not None
        )
        return FileFacts(
            self.ctx.path,
            self.module,
            functions,
            classes,
            variables,
            aliases,
            packages,
            handlers,
            entries,
            any(frameworks.is_main_guard(stmt) for stmt in tree.body),
        )

    def handler_facts(
        self,
        handler: ast.ExceptHandler,
        try_node: ast.Try | ast.TryStar,
        scope: _Scope,
        try_index: int,
        position: int,
    ) -> HandlerFacts:
        ctx = self.ctx
        broad = tuple(helpers.broad_names(handler, self.qualify))
        what = helpers.behaviour(handler)
        traceback = helpers.logs_traceback(handler, self.qualify)
        isolation = traceback and helpers.ISOLATION_FUNCTION in scope.function_names
        dispatch = what in helpers.SWALLOWING and _is_dispatch(try_node, scope)
        if handler.type is None:
            catches = "bare"
        else:
            catches = _segment(ctx.lines, handler.type) or "Exception"
        end_line = handler.end_lineno or handler.lineno
        header = handler.type if handler.type is not None else handler
        if handler.type is None:
            header_end = (handler.lineno, handler.col_offset + len("except"))
        else:
            header_end = (header.end_lineno or handler.lineno, header.end_col_offset or 0)
        return HandlerFacts(
            line=handler.lineno,
            column=handler.col_offset,
            end_line=header_end[0],
            end_column=header_end[1],
            symbol=ctx.symbol_for(handler),
            scope=self.keys[id(scope)],
            try_index=try_index,
            handler_index=position,
            catches=" ".join(catches.split()),
            broad=broad,
            behaviour=what,
            logs_traceback=traceback,
            isolation=isolation,
            dispatch=dispatch,
            snippet="\n".join(ctx.lines[handler.lineno - 1 : min(end_line, handler.lineno + 40)]),
            mixed=helpers.is_mixed(handler),
            boundary=self._boundary(handler, try_node, scope, what),
            tail=self._tail_call(handler, scope),
            body_end=handler.end_lineno or handler.lineno,
        )

    def _boundary(
        self, handler: ast.ExceptHandler, try_node: ast.Try | ast.TryStar, scope: _Scope, what: str
    ) -> str:
        if what not in helpers.SWALLOWING:
            return ""
        if scope.kind == "function" and "call_next" in scope.params:
            return "request middleware: any error becomes the response"
        cleanup = helpers.cleanup_call(try_node)
        if cleanup is not None:
            return f"a cleanup (`{cleanup}`) that must not mask the error being handled"
        if what == "return_error" and helpers.runs_work(scope.qualname.rpartition(".")[2]):
            return "a wrapper that turns any error into an error result for its caller"
        if what in ("log_continue", "pass") and _in_loop(try_node, self.ctx.parents):
            return "a loop that must survive one item's failure"
        return ""

    def _tail_call(self, handler: ast.ExceptHandler, scope: _Scope) -> Ref:
        last = handler.body[-1]
        if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
            return self.final(self.ref(last.value.func, scope), scope)
        return None


def _looks_like_type(expr: ast.AST) -> bool:
    """A generic alias at module level: `Name[Type, ...]` (not `CONFIG["key"]`)."""
    if not isinstance(expr, ast.Subscript) or not isinstance(expr.value, (ast.Name, ast.Attribute)):
        return False
    args = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
    return all(
        isinstance(a, (ast.Name, ast.Attribute, ast.Subscript, ast.BinOp, ast.List))
        or (isinstance(a, ast.Constant) and a.value in (None, Ellipsis))
        for a in args
    )


def _in_loop(node: ast.AST, parents: Mapping[ast.AST, ast.AST]) -> bool:
    """Inside a `for`/`while` body of the same function (bounded walk up the parents)."""
    current = node
    for _ in range(64):
        parent = parents.get(current)
        if parent is None or isinstance(
            parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
        ):
            return False
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While)) and current in parent.body:
            return True
        current = parent
    return False


def _is_dispatch(try_node: ast.Try | ast.TryStar, scope: _Scope) -> bool:
    """An event-bus dispatch: the try body is one call of a callable the function received (a
    parameter) or iterates over (a loop variable), e.g. `await handler(event)`."""
    if len(try_node.body) != 1 or len(try_node.handlers) != 1:
        return False
    if try_node.orelse or try_node.finalbody:
        return False
    stmt = try_node.body[0]
    if not isinstance(stmt, ast.Expr):
        return False
    value = stmt.value.value if isinstance(stmt.value, ast.Await) else stmt.value
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Name):
        return False
    name = value.func.id
    return scope.kind == "function" and (name in scope.params or name in scope.loop_targets)


def collect(ctx: FileContext) -> FileFacts:
    return _Collector(ctx).facts(ctx.tree)


# -- rule data -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleRule:
    paths: tuple[str, ...]
    types: tuple[str, ...]
    requires: str | None = None


@dataclass(frozen=True)
class ExceptionMap:
    """`rules/exceptions.toml` plus the target's `calls`/`modules` options."""

    exact: Mapping[str, tuple[str, ...]]
    patterns: tuple[tuple[re.Pattern[str], int, tuple[str, ...]], ...]
    modules: tuple[ModuleRule, ...]

    @classmethod
    def build(
        cls, extra_calls: Mapping[str, Any] | None = None, extra_modules: Sequence[Any] = ()
    ) -> ExceptionMap:
        data = load_rule_data("exceptions")
        calls: dict[str, tuple[str, ...]] = {}
        for source, table in (
            ("rules/exceptions.toml", data.get("calls", {})),
            ("option `calls`", extra_calls or {}),
        ):
            if not isinstance(table, Mapping):
                raise ValueError(f"{source}: calls must be a table of pattern -> list of types")
            for pattern, types in table.items():
                if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                    raise ValueError(f"{source}: calls.{pattern} must be a list of type names")
                calls[str(pattern)] = tuple(types)
        modules = []
        for source, entries in (
            ("rules/exceptions.toml", data.get("modules", [])),
            ("option `modules`", extra_modules or []),
        ):
            for entry in entries:
                if not isinstance(entry, Mapping) or not isinstance(entry.get("types"), list):
                    raise ValueError(f"{source}: each module entry needs `paths` and `types`")
                paths = entry.get("paths", [])
                if not isinstance(paths, list) or not paths:
                    raise ValueError(f"{source}: each module entry needs a list of `paths`")
                modules.append(
                    ModuleRule(tuple(paths), tuple(entry["types"]), entry.get("requires"))
                )
        exact = {p: t for p, t in calls.items() if "*" not in p}
        patterns = tuple(
            sorted(
                (
                    (
                        re.compile(".*".join(re.escape(s) for s in p.split("*")) + r"\Z"),
                        len(p.replace("*", "")),
                        t,
                    )
                    for p, t in calls.items()
                    if "*" in p
                ),
                key=lambda item: -item[1],
            )
        )
        return cls(exact, patterns, tuple(modules))

    def for_call(self, name: str) -> tuple[str, ...] | None:
        """What a call raises: the types (maybe none: known safe), or None when unmapped."""
        if name in self.exact:
            return self.exact[name]
        for regex, _weight, types in self.patterns:
            if regex.match(name):
                return types
        return None

    def for_module(self, path: str, packages: Iterable[str]) -> tuple[str, ...]:
        available = set(packages)
        found: list[str] = []
        for rule in self.modules:
            if rule.requires is not None and rule.requires not in available:
                continue
            if path_matches(path, rule.paths):
                found.extend(t for t in rule.types if t not in found)
        return tuple(found)


@functools.cache
def default_map() -> ExceptionMap:
    return ExceptionMap.build()


# -- the cross-file analysis -----------------------------------------------------------------------
@dataclass
class HandlerAnalysis:
    """A broad handler with what the try body raises and what it can be narrowed to."""

    path: str
    facts: HandlerFacts
    raises: list[dict[str, str]]
    unresolved: list[str]
    narrow_to: list[str] | None
    narrow_source: str | None
    narrow_reason: str | None
    behaviour: str = ""  # the handler's, or "exit"/"wrap_raise" when it ends calling a function
    # that never returns (`cleanup()` ending in `sys.exit(1)`)
    tier: int | None = None  # from what the handler protects (tiers.py)
    tier_reason: str = ""
    incomplete: bool = False  # the step budget ran out: everything unresolved is unknown


_BROAD_TYPES = frozenset({"Exception", "BaseException"})
#: Raised deep in a callee, these mean a bug or an abstract method, not an error to handle.
_PROGRAMMING_ERRORS = frozenset({"AssertionError", "NotImplementedError"})
_MAX_DEPTH = 12
#: Resolution steps one audit may spend on the analysis. Past it, what is left is unknown (an
#: `AnalysisIncomplete`), so the audit always ends; real projects need a few hundred thousand.
STEP_BUDGET = 3_000_000
#: Unresolved calls kept per function and per handler (evidence, not an exhaustive list).
_MAX_UNKNOWN = 8


class AnalysisIncomplete(Exception):
    """The analysis spent its step budget; what it had not resolved stays unknown."""


class World(ProjectModel):
    """Every file's facts, resolved together: the symbol table and name resolution are the
    project model's (semantic/project.py); values, exception types and handlers are this
    analysis's own."""

    external = "lib"

    def __init__(self, facts: Mapping[str, FileFacts], mapping: ExceptionMap) -> None:
        super().__init__()
        self.mapping = mapping
        self.functions: dict[str, FunctionFacts] = {}
        self.function_paths: dict[str, str] = {}
        self.classes: dict[str, ClassFacts] = {}
        self.packages: set[str] = set()
        self.files = facts
        for path, item in sorted(facts.items()):
            self.modules.setdefault(item.module, item)
            self.packages |= item.packages
            for key, function in item.functions.items():
                self.functions[key] = function
                self.function_paths[key] = path
            for key, klass in item.classes.items():
                self.classes[key] = klass
                self.class_attrs[key] = dict(klass.attrs)
            self.variables.update(item.variables)
            self.aliases.update(item.aliases)
        self._values: dict[Ref, Any] = {}
        self.library: Any = None  # libsource.LibrarySource of the target's environment, if given
        self._steps = 0
        self.budget = STEP_BUDGET
        self._escapes: dict[str, dict[str, str]] = {}
        self._unknown: dict[str, tuple[str, ...]] = {}
        self._ancestors: dict[str, frozenset[str]] = {}

    # -- values --------------------------------------------------------------------------------
    def from_library(self, name: str) -> Any:
        """What the installed library's own source says of a call no mapping covers
        (`libsource.LibraryFacts`), when the target's environment is given; else None."""
        if self.library is None:
            return None
        self.tick()
        return self.library.describe(name)

    def tick(self) -> None:
        """One resolution step against the budget (`AnalysisIncomplete` past it)."""
        self._steps += 1
        if self._steps > self.budget:
            raise AnalysisIncomplete(
                f"the exception analysis stopped after {self.budget:,} resolution steps"
            )

    def bound_value(self, binding: Any, depth: int) -> Value:
        return self.value(binding, depth)

    def bases(self, cls: str) -> Iterable[Value]:
        return (self.value(base) for base in self.classes[cls].bases)

    def value(self, ref: Ref, depth: int = 0) -> Value:
        """`("func", q)`, `("class", q)`, `("obj", q)`, `("module", q)` for project entities,
        `("lib", name)` for everything outside the project (and builtins), `("seq", name, item,
        kind)` for a typed container and `("itemfn", name, item)` for its item-returning methods;
        None when unknown."""
        if ref is None or depth > _MAX_DEPTH:
            return None
        if ref in self._values:
            return self._values[ref]
        return self.guarded(self._values, ref, ref, lambda: self._ticked(ref, depth))

    def _ticked(self, ref: tuple[Any, ...], depth: int) -> Value:
        self.tick()
        return self._value(ref, depth)

    def _value(self, ref: tuple[Any, ...], depth: int) -> Value:
        tag = ref[0]
        if tag == "q":
            return self.resolve(ref[1], depth)
        if tag == "self":
            return ("obj", ref[1])
        if tag == "attr":
            base = self.value(ref[1], depth + 1)
            return self.attribute(base, ref[2], depth)
        if tag == "ret":
            callee = self.value(ref[1], depth + 1)
            if callee is None:
                return None
            kind, name = callee[0], callee[1]
            if kind == "class":
                return ("obj", name)
            if kind == "func":
                return self.value(self.functions[name].returns, depth + 1)
            if kind == "lib":
                return ("lib", f"{name}()")
            if kind == "itemfn":
                return self.value(callee[2], depth + 1)
            return None
        if tag == "inst":
            inner = self.value(ref[1], depth + 1)
            if inner is None:
                return None
            if inner[0] in ("class", "obj"):
                return ("obj", inner[1])
            if inner[0] == "seq":
                return inner
            if inner[0] == "lib":
                if len(ref) == 4:  # a typed container: remember what its items are
                    return ("seq", inner[1], ref[2], ref[3])
                return inner
            return None
        if tag in ("item", "iter", "enter"):
            base = self.value(ref[1], depth + 1)
            if base is None:
                return None
            if base[0] == "seq":
                if tag == "iter" and base[3] == "map":
                    return None  # iterating a mapping gives its keys
                return self.value(base[2], depth + 1)
            if tag == "enter" and base[0] == "obj":
                enter = self.attribute(base, "__enter__", depth)
                if enter is not None and enter[0] == "func":
                    entered = self.value(self.functions[enter[1]].returns, depth + 1)
                    return entered or base
            if tag == "enter" and base[0] in ("obj", "lib"):
                return base  # connections, cursors, files: `__enter__` returns self
            return None
        return None

    def attribute(self, entity: Value, name: str, depth: int = 0) -> Value:
        """The project model's attribute lookup, plus instances (`obj`) and typed containers
        (`seq`, whose item-returning methods give an item)."""
        if entity is None or depth > _MAX_DEPTH:
            return None
        kind = entity[0]
        if kind == "seq":
            if name in _ITEM_METHODS:
                return ("itemfn", f"{entity[1]}.{name}", entity[2])
            return ("lib", f"{entity[1]}.{name}")
        if kind == "obj":
            return self.class_member(entity[1], name, depth, instance=True)
        return super().attribute(entity, name, depth)

    # -- exception types -----------------------------------------------------------------------
    def ancestors(self, type_name: str) -> frozenset[str]:
        """A type and every class above it that the tool knows of (project classes, builtins)."""
        if type_name in self._ancestors:
            return self._ancestors[type_name]
        found: set[str] = {type_name}
        builtin = getattr(builtins, type_name, None) if "." not in type_name else None
        if isinstance(builtin, type):
            found |= {k.__name__ for k in builtin.__mro__}
        elif type_name in self.classes:
            for klass in self.mro(type_name):
                name = klass.removeprefix("lib:")
                found.add(name)
                base = getattr(builtins, name, None) if "." not in name else None
                if isinstance(base, type):
                    found |= {k.__name__ for k in base.__mro__}
        self._ancestors[type_name] = frozenset(found)
        return self._ancestors[type_name]

    def catch_names(self, catch: Catch) -> list[str]:
        names = []
        for ref in catch.types:
            resolved = self.value(ref)
            if resolved is not None and resolved[0] in ("class", "lib"):
                names.append(resolved[1])
        return names

    def caught_by(self, type_name: str, catches: Iterable[Catch], *, all_handlers: bool) -> bool:
        """Whether one of `catches` stops `type_name` (handlers that re-raise do not, unless
        `all_handlers`: an earlier handler of the same try takes it either way)."""
        ancestry = self.ancestors(type_name)
        for catch in catches:
            if catch.reraises and not all_handlers:
                continue
            if catch.broad:
                return True
            if any(name in ancestry for name in self.catch_names(catch)):
                return True
        return False

    def site_types(self, site: Site, path: str, depth: int) -> tuple[dict[str, str], bool]:
        """What one site raises (type -> how: a chain of `call() at path:line` hops) and whether
        the tool could tell at all."""
        if site.kind == "subscript":
            return {self.lookup_error(site): f"{site.label} at {path}:{site.line}"}, True
        if site.kind == "raise":
            resolved = self.value(site.ref)
            if resolved is None or resolved[0] not in ("class", "lib", "obj"):
                return {}, False
            name = resolved[1]
            if resolved[0] == "lib" and name.endswith(")"):
                return {}, False
            return {name: f"raise {site.label} at {path}:{site.line}"}, True
        resolved = self.value(site.ref)
        here = f"{site.label}() at {path}:{site.line}"
        if resolved is None:
            return {}, False
        kind, name = resolved[0], resolved[1]
        if kind == "func":
            if depth > _MAX_DEPTH:
                return {}, True
            inner = self.escapes(name, depth + 1)
            return {t: f"{here} -> {_short(via)}" for t, via in inner.items()}, True
        if kind == "class":
            init = self.attribute(("obj", name), "__init__")
            if init is not None and init[0] == "func":
                inner = self.escapes(init[1], depth + 1)
                return {t: f"{here} -> {_short(via)}" for t, via in inner.items()}, True
            if init is not None and init[0] == "lib":
                owner = init[1].removesuffix(".__init__")
                types = self.mapping.for_call(owner)
                if types is not None:
                    return {t: f"{here} ({owner})" for t in types}, True
            return {}, True  # a plain project class (an exception, a dataclass)
        if kind in ("lib", "itemfn"):
            types = self.mapping.for_call(name)
            if types is None:
                learnt = self.from_library(name)
                if learnt is None or learnt.exceptions is None:
                    return {}, False
                origin = f"{name}, library source {learnt.distribution} {learnt.version}"
                return {t: f"{here} ({origin})" for t in learnt.exceptions}, True
            via = here if name == site.label else f"{here} ({name})"
            return dict.fromkeys(types, via), True
        return {}, False

    def lookup_error(self, site: Site) -> str:
        """`KeyError` for a mapping (or a string key), `IndexError` for a sequence (or an integer
        index), `LookupError` when the tool cannot tell."""
        base = self.value(site.ref)
        if base is not None and base[0] == "seq":
            return "KeyError" if base[3] == "map" else "IndexError"
        if base is not None and base[0] == "lib" and base[1] in ("str", "bytes", "list", "tuple"):
            return "IndexError"
        if base is not None and base[0] == "lib" and base[1] == "dict":
            return "KeyError"
        return {"str": "KeyError", "int": "IndexError"}.get(site.hint, "LookupError")

    def escapes(self, function: str, depth: int = 0) -> dict[str, str]:
        """Types that can escape a project function (memoised; recursion sees a partial result,
        which is fine for the "what can it raise" question in practice). What the tool could not
        resolve on the way is kept by `unknowns`."""
        if function in self._escapes:
            return self._escapes[function]
        self.tick()
        self._escapes[function] = {}
        self._unknown[function] = ()
        facts = self.functions.get(function)
        path = self.function_paths.get(function, "?")
        result: dict[str, str] = {}
        unknown: list[str] = []
        if facts is not None:
            for site in facts.sites:
                if site.kind == "subscript" or site.hint == "spawned":
                    continue  # a lookup deep in a callee failing is a bug, not an expected error
                types, known = self.site_types(site, path, depth)
                swallowed = self._swallowed(site.guards, facts.tries)
                if not swallowed and len(unknown) < _MAX_UNKNOWN:
                    if not known:
                        unknown.append(self._unknown_text(site, path))
                    else:
                        callee = self.callee(site)
                        for inner in self._unknown.get(callee, ()) if callee else ():
                            text = f"{site.label}() at {path}:{site.line} -> {inner}"
                            if len(unknown) < _MAX_UNKNOWN and inner not in unknown:
                                unknown.append(_short(text, 4))
                for type_name, via in types.items():
                    if type_name in result or type_name in _PROGRAMMING_ERRORS:
                        continue
                    if any(
                        self.caught_by(type_name, facts.tries[g], all_handlers=False)
                        for g in site.guards
                    ):
                        continue
                    result[type_name] = via
        self._escapes[function] = result
        self._unknown[function] = tuple(unknown)
        return result

    def unknowns(self, function: str) -> tuple[str, ...]:
        """The calls inside `function` (and its callees) whose errors the tool cannot tell and
        that no broad handler on the way stops."""
        self.escapes(function)
        return self._unknown.get(function, ())

    def callee(self, site: Site) -> str | None:
        """The project function a call site runs (a function, or a class's `__init__`)."""
        if site.kind != "call":
            return None
        resolved = self.value(site.ref)
        if resolved is None:
            return None
        if resolved[0] == "func":
            return resolved[1]
        if resolved[0] == "class":
            init = self.attribute(("obj", resolved[1]), "__init__")
            if init is not None and init[0] == "func":
                return init[1]
        return None

    def _swallowed(self, guards: Sequence[int], tries: Sequence[Sequence[Catch]]) -> bool:
        """A broad handler that does not re-raise stops whatever the site raises."""
        return any(c.broad and not c.reraises for g in guards for c in tries[g])

    def _unknown_text(self, site: Site, path: str) -> str:
        where = f"{path}:{site.line}"
        if site.kind == "raise":
            return f"raise {site.label} at {where} (the raised class is not resolved)"
        resolved = self.value(site.ref)
        if resolved is not None and resolved[0] in ("lib", "itemfn"):
            learnt = self.from_library(resolved[1])
            known = (
                f"; its source leaves unknown: {learnt.unknown[0]}"
                if learnt is not None and learnt.unknown
                else ""
            )
            return (
                f"{site.label}() at {where}: `{resolved[1]}` has no exception mapping{known}"
                f' (add `"{resolved[1]}" = [...]` under'
                " [tool.gathering-consolidate.checks.EXC.calls])"
            )
        return f"{site.label}() at {where}: the callee is not resolved"

    # -- handlers ------------------------------------------------------------------------------
    def analyse(self, path: str, handler: HandlerFacts) -> HandlerAnalysis:
        """One broad handler. Past the step budget the answer is "unknown", never "nothing"."""
        try:
            return self._analyse(path, handler)
        except AnalysisIncomplete as exc:
            return HandlerAnalysis(
                path=path,
                facts=handler,
                raises=[],
                unresolved=[str(exc)],
                narrow_to=None,
                narrow_source=None,
                narrow_reason=f"unknown: {exc}",
                behaviour=handler.behaviour,
                incomplete=True,
            )

    def _analyse(self, path: str, handler: HandlerFacts) -> HandlerAnalysis:
        scope = self.functions.get(handler.scope)
        raises: dict[str, str] = {}
        unresolved: list[str] = []
        if scope is None or handler.try_index >= len(scope.tries):
            unresolved.append(f"the try statement at {path}:{handler.line} was not collected")
        else:
            earlier = scope.tries[handler.try_index][: handler.handler_index]
            for site in scope.sites:
                if handler.try_index not in site.guards or site.hint == "spawned":
                    continue
                inner = site.guards[site.guards.index(handler.try_index) + 1 :]
                types, known = self.site_types(site, path, 0)
                if site.kind != "subscript" and not self._swallowed(inner, scope.tries):
                    if not known:
                        found = [self._unknown_text(site, path)]
                    else:
                        callee = self.callee(site)
                        found = [
                            _short(f"{site.label}() at {path}:{site.line} -> {text}", 4)
                            for text in (self.unknowns(callee) if callee else ())
                        ]
                    unresolved.extend(t for t in found if t not in unresolved)
                for type_name, via in types.items():
                    if type_name in raises:
                        continue
                    if any(
                        self.caught_by(type_name, scope.tries[g], all_handlers=False) for g in inner
                    ):
                        continue
                    if self.caught_by(type_name, earlier, all_handlers=True):
                        continue
                    raises[type_name] = via
        narrow_to, source, reason = self._narrowing(path, raises, unresolved)
        return HandlerAnalysis(
            path=path,
            facts=handler,
            raises=[{"type": t, "via": v} for t, v in sorted(raises.items())],
            unresolved=unresolved[:_MAX_UNKNOWN],
            narrow_to=narrow_to,
            narrow_source=source,
            narrow_reason=reason,
            behaviour=self._behaviour(handler),
        )

    def _behaviour(self, handler: HandlerFacts) -> str:
        if handler.behaviour in helpers.RERAISING or handler.tail is None:
            return handler.behaviour
        callee = self.value(handler.tail)
        if callee is not None and callee[0] == "func":
            ends = self.functions[callee[1]].ends
            if ends is not None:
                return "exit" if ends == "exit" else "wrap_raise"
        return handler.behaviour

    def _local_class(self, type_name: str) -> bool:
        """A class defined inside a function cannot be named from anywhere else."""
        parts = type_name.split(".")
        return any(".".join(parts[:i]) in self.functions for i in range(1, len(parts)))

    def _narrowing(
        self, path: str, raises: Mapping[str, str], unresolved: Sequence[str]
    ) -> tuple[list[str] | None, str | None, str | None]:
        broad = sorted(t for t in raises if t in _BROAD_TYPES)
        if broad:
            return None, None, f"the try body raises `{broad[0]}` itself ({raises[broad[0]]})"
        local = sorted(t for t in raises if self._local_class(t))
        if local:
            return None, None, f"the try body raises {local[0]}, a class defined inside a function"
        if unresolved:
            more = f" (and {len(unresolved) - 1} more)" if len(unresolved) > 1 else ""
            reason = (
                f"unknown: the tool cannot tell what the try body raises: {unresolved[0]}{more}"
            )
            by_module = self.mapping.for_module(path, self.packages)
            if by_module:
                # A layer's usual errors are a hint, not knowledge of what this call raises.
                reason += f"; the module rule for this path suggests {', '.join(by_module)}"
            return None, None, reason
        types = set(raises)
        kept = sorted(t for t in types if not any(o != t and o in self.ancestors(t) for o in types))
        if kept:
            return kept, "calls", None
        by_module = self.mapping.for_module(path, self.packages)
        if by_module:
            return list(by_module), "module", None
        return None, None, "the try body makes no call that raises anything the tool knows of"


def _short(via: str, limit: int = 3) -> str:
    parts = via.split(" -> ")
    if len(parts) <= limit:
        return via
    return " -> ".join([*parts[: limit - 1], "...", parts[-1]])
