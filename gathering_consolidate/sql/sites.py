"""Find SQL built in Python and describe each place it is built: the site finder.

A *candidate* is a call one of whose arguments is SQL text built at run time: an f-string,
`str.format`, `%` formatting, `+` concatenation or `join`, directly or through local variables
(`sql = ...; sql += ...`), module constants and small helper functions of the same module. Text
that does not start like a SQL statement is ignored. Whether the call is an execute-like *sink*
is decided later (`is_sink`), so the per-file facts do not depend on configuration.

For each candidate the template (literal text and holes) is classified with `classify` and each
hole's value is traced with the rules of `origins`. Sites whose every hole is code-chosen are safe
by construction: they are recorded too, so `sql sites` can list every site, but no check reports
them (the analysis gives them the verdict `safe`).
"""

from __future__ import annotations

import ast
import bisect
import fnmatch
import functools
import hashlib
import io
import itertools
import re
import string
import tokenize
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..semantic import annotations as semantic_annotations
from ..semantic.imports import module_aliases
from .origins import (
    ALLOWLISTED,
    ANNOTATED,
    CONSTANT,
    IMPORTED,
    MODEL_KEYS,
    PARAMETER,
    REQUEST,
    UNKNOWN,
    VALIDATED,
    ClassFact,
    Env,
    Origin,
    collect_classes,
)

# -- facts (picklable, cached with the file) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotFact:
    expr: str  # the interpolated Python expression, as written
    kind: str  # see classify.KINDS
    quoted: bool
    origins: tuple[Origin, ...]
    line: int
    element_of: str = ""  # for a hole inside a joined fragment: the join expression


@dataclass(frozen=True, slots=True)
class Candidate:
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    symbol: str  # enclosing function
    call: str  # qualified name of the called function (through imports), or the dotted text
    method: str  # the last name of the call (`execute`)
    attribute_call: bool  # `x.execute(...)` rather than `execute(...)`
    argument: int  # positional index of the SQL argument (-1: a keyword)
    statement: str
    slots: tuple[SlotFact, ...]
    parsed: bool
    parse_error: str
    shape: str  # the normalised SQL shape (holes as {expr}); the allowlist fingerprint uses it
    acknowledged: str | None  # a bandit nosec or ruff noqa comment on the site
    has_params: bool  # a second (parameters) argument is passed

    @property
    def site_fingerprint(self) -> str:
        return site_fingerprint(self.path, self.symbol, self.shape)


@dataclass(frozen=True, slots=True)
class Passthrough:
    """Function `function` passes its parameter number `index` whole to the call `call`: if that
    call is a sink, the function is a sink wrapper (`DatabaseService.execute` -> `cur.execute`)."""

    function: str
    name: str
    index: int
    call: str
    method: str
    attribute_call: bool


@dataclass(frozen=True, slots=True)
class FileFacts:
    candidates: tuple[Candidate, ...] = ()
    passthroughs: tuple[Passthrough, ...] = ()
    classes: tuple[ClassFact, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    constants: tuple[str, ...] = ()  # `module.NAME` bound once, at module level, to a str literal


def site_fingerprint(path: str, symbol: str, shape: str) -> str:
    blob = "\x1f".join((path, symbol, " ".join(shape.split())))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


# -- sinks -------------------------------------------------------------------------------------
DEFAULT_SINKS = (
    "*.execute*",
    "*.fetch*",
    "*.exec_driver_sql",
    "*.mogrify",
    "*.copy",
    "*.copy_expert",
    "*.read_sql*",
    "sqlalchemy.text",
    "sqlalchemy.sql.text",
    "sqlalchemy.DDL",
    "sqlalchemy.schema.DDL",
    "sqlalchemy.sql.ddl.DDL",
    "sqlalchemy.sql.expression.text",
    "psycopg.sql.SQL",
    "psycopg2.sql.SQL",
)


def sink_matcher(patterns: Sequence[str]) -> Callable[[str, str, bool], bool]:
    """`"*.name"` matches a method call by its name (any receiver); anything else matches the
    call's qualified name (`sqlalchemy.text`). Shell-style wildcards."""
    methods = [p[2:] for p in patterns if p.startswith("*.")]
    names = [p for p in patterns if not p.startswith("*.")]

    def matches(call: str, method: str, attribute_call: bool) -> bool:
        if attribute_call and any(fnmatch.fnmatchcase(method, m) for m in methods):
            return True
        return any(fnmatch.fnmatchcase(call, n) for n in names)

    return matches


# -- SQL-looking text --------------------------------------------------------------------------
_STATEMENT_START = re.compile(
    r"^[\s(]*(?:SELECT|INSERT|UPDATE|DELETE|WITH|MERGE|VALUES|TRUNCATE|CREATE|ALTER|DROP|COPY"
    r"|GRANT|REVOKE|CALL|EXPLAIN|SHOW|LOCK|REFRESH|VACUUM|ANALYZE|COMMENT\s+ON|LISTEN|NOTIFY"
    r"|UPSERT|REINDEX|CLUSTER|TABLE|RESET"
    r"|SET\s+(?:LOCAL\s+|SESSION\s+)?(?:ROLE|TIME\s+ZONE|[\w.]+\s*(?:=|TO\b)))\b",
    re.I,
)
_CLAUSE = re.compile(r"\b(?:FROM|WHERE|SET|VALUES|INTO|JOIN|RETURNING)\b")
_FILE_HINT = re.compile(
    r"(?is)\bselect\b.{0,600}?\bfrom\b|\binsert\s+into\b|\bdelete\s+from\b"
    r"|\bupdate\b.{0,300}?\bset\b|\btruncate\b|\bmerge\s+into\b|\bwith\s+\w+\s+as\s*\("
    r"|\b(?:drop|create|alter)\s+(?:table|index|schema|view|database|extension|type|function"
    r"|sequence|role|user)\b"
    r"|\bset\s+(?:local\s+|session\s+)?(?:role|time\s+zone|search_path|[\w.]+\s*(?:=|to\s))"
)


#: Text that is only names: `dispatch_core`, `auth.users`, `"Users"`, `id, name, created_at`.
_NAMES_ONLY = re.compile(
    r'\s*"?[A-Za-z_][\w$]*"?(?:\."?[A-Za-z_][\w$]*"?)*(?:\s*,\s*"?[A-Za-z_][\w$.]*"?)*\s*'
)


def looks_like_sql(parts: Sequence[str | Hole]) -> bool:
    text = "".join(p if isinstance(p, str) else " __h__ " for p in parts)
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    if _STATEMENT_START.match(text):
        return True
    if parts and isinstance(parts[0], Hole):  # f"{verb} ... FROM t": the statement is a hole
        return bool(_CLAUSE.search(text))
    return False


def file_may_have_sql(source: str) -> bool:
    """Whether `_FILE_HINT` matches somewhere in `source` (the same answer as a search).

    Every match begins with one of `_HINT_WORDS`, so the pattern is tried only where one of
    them occurs (found by `str.find` in a copy folded to lower case one character for one, so
    positions agree): a search tries every position of the file, several times slower on the
    files that have no SQL, which are most of them."""
    folded = source.lower() if source.isascii() else source.translate(_FOLD)
    match = _FILE_HINT.match
    for word in _HINT_WORDS:
        at = folded.find(word)
        while at != -1:
            if match(source, at):
                return True
            at = folded.find(word, at + 1)
    return False


#: The words a `_FILE_HINT` match starts with, lower case.
_HINT_WORDS = (
    "select",
    "insert",
    "delete",
    "update",
    "truncate",
    "merge",
    "with",
    "drop",
    "create",
    "alter",
    "set",
)
#: Every character that case-insensitive matching pairs with an ASCII letter, mapped to that
#: letter: the ASCII capitals, and four others (capital I with dot, dotless i, long s and the
#: Kelvin sign; a test checks that there are no more). Other characters are kept: one
#: character stays one, so positions in the copy are positions in the source.
_FOLD = {
    **{ord(c): ord(c.lower()) for c in string.ascii_uppercase},
    0x130: ord("i"),
    0x131: ord("i"),
    0x17F: ord("s"),
    0x212A: ord("k"),
}


# -- templates ---------------------------------------------------------------------------------
@dataclass(eq=False)
class Hole:
    """An interpolation: `expr` evaluated in `scope` with `env` bindings. A join hole
    (`", ".join(parts)`) lists its element templates when the code builds them visibly."""

    expr: ast.AST
    scope: Scope | None
    env: Env
    elements: list[list[str | Hole]] | None = None
    numeric: bool = False  # `%d` / `{:d}`: always a number
    label: str = ""

    def text(self) -> str:
        return self.label or _unparse(self.expr)


Part = str | Hole
Template = list[Part]
_MAX_ALTERNATIVES = 8


def _unparse(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # consolidate: ignore[EXC001] display only
        text = type(node).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _is_str_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _merge(parts: Iterable[Part]) -> Template:
    out: Template = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if out and isinstance(out[-1], str):
                out[-1] += part
                continue
        out.append(part)
    return out


def _product(left: list[Template], right: list[Template]) -> list[Template]:
    combos = itertools.islice(itertools.product(left, right), _MAX_ALTERNATIVES)
    return [_merge([*a, *b]) for a, b in combos]


# -- scopes ------------------------------------------------------------------------------------
_ROUTE_METHODS = {
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "options",
    "head",
    "trace",
    "api_route",
    "websocket",
}
_SCALARS = {
    "int",
    "float",
    "bool",
    "uuid.UUID",
    "UUID",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "decimal.Decimal",
    "pydantic.PositiveInt",
    "pydantic.NonNegativeInt",
    "pydantic.conint",
}
_REQUEST_OBJECTS = {"fastapi.Request", "starlette.requests.Request", "fastapi.WebSocket"}
_DEPENDENCY_OBJECTS = {
    "fastapi.BackgroundTasks",
    "fastapi.Response",
    "starlette.background.BackgroundTasks",
    "fastapi.security.HTTPAuthorizationCredentials",
}
_NUMERIC_CALLS = {"int", "float", "len", "bool", "round", "abs", "range", "hash", "ord"}
_PRESERVING_METHODS = {
    "strip",
    "lstrip",
    "rstrip",
    "lower",
    "upper",
    "title",
    "casefold",
    "capitalize",
    "replace",
    "removeprefix",
    "removesuffix",
    "format",
    "encode",
    "decode",
    "isoformat",
    "strftime",
    "copy",
}
_DUMP_METHODS = {"model_dump", "dict", "model_dump_json", "json"}
#: Helpers that validate identifiers against an allowlist (the one `safe-update-builder` writes).
_SAFE_BUILDERS = {"safe_update_builder"}


@dataclass
class Param:
    name: str
    index: int  # positional index, excluding self/cls of methods
    annotation: ast.expr | None
    default: ast.expr | None


class Scope:
    """One function: its parameters, and (indexed on first use) what is assigned, appended,
    checked against a constant collection and returned in its body."""

    def __init__(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        qualname: str,
        class_name: str | None,
        params: dict[str, Param],
        is_route: bool,
        indexer: Callable[[Scope], None],
    ) -> None:
        self.node = node
        self.qualname = qualname
        self.class_name = class_name
        self.params = params
        self.is_route = is_route
        self._indexer: Callable[[Scope], None] | None = indexer
        self._assigns: dict[str, list[tuple[ast.AST, str, int]]] = {}
        self._appends: dict[str, list[tuple[ast.AST, str]]] = {}
        self._guarded: dict[str, str] = {}
        self._returns: list[ast.expr] = []

    def _ensure(self) -> None:
        if self._indexer is not None:
            indexer, self._indexer = self._indexer, None
            indexer(self)

    @property
    def assigns(self) -> dict[str, list[tuple[ast.AST, str, int]]]:
        self._ensure()
        return self._assigns

    @property
    def appends(self) -> dict[str, list[tuple[ast.AST, str]]]:
        self._ensure()
        return self._appends

    @property
    def guarded(self) -> dict[str, str]:
        self._ensure()
        return self._guarded

    @property
    def returns(self) -> list[ast.expr]:
        self._ensure()
        return self._returns


class FileAnalysis:
    """The site finder for one parsed file."""

    def __init__(
        self,
        path: str,
        module: str,
        source: str,
        tree: ast.Module,
        qualified_name: Callable[[ast.AST], str | None],
        symbol_for: Callable[[ast.AST], str],
        calls: Sequence[ast.Call] | None = None,
    ):
        self.path = path
        self.module = module
        self.source = source
        self.tree = tree
        self.qualified_name = qualified_name
        self.symbol_for = symbol_for
        self.scopes: dict[ast.AST, Scope] = {}
        self.scope_of: dict[ast.AST, Scope] = {}  # call node -> enclosing scope
        self.functions: dict[str, list[Scope]] = {}  # short name -> scopes
        self.class_bases: dict[str, list[str]] = {}  # class of this file -> base class names
        self.module_values: dict[str, list[ast.expr]] = {}
        self.class_values: dict[str, dict[str, list[ast.expr]]] = {}
        self._calls: list[tuple[ast.Call, Scope | None]] = []
        self._all_calls = calls  # every Call node of the file, when the caller has them
        self._acks: dict[int, str] | None = None
        self._visiting: set[tuple[int, str]] = set()

    # -- indexing --------------------------------------------------------------------------
    def index(self) -> None:
        for node in self.tree.body:
            self._index_module_stmt(node)
        self._walk_scopes(self.tree.body, self.module, None, None)

    def _index_module_stmt(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.module_values.setdefault(target.id, []).append(node.value)
        elif (
            isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value
        ) or (isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name)):
            self.module_values.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, ast.ClassDef):
            values: dict[str, list[ast.expr]] = {}
            for item in node.body:
                if isinstance(item, ast.Assign):
                    for target in item.targets:
                        if isinstance(target, ast.Name):
                            values.setdefault(target.id, []).append(item.value)
                elif (
                    isinstance(item, ast.AnnAssign)
                    and isinstance(item.target, ast.Name)
                    and item.value
                ):
                    values.setdefault(item.target.id, []).append(item.value)
            self.class_values[node.name] = values
        elif isinstance(node, (ast.If, ast.Try)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    self._index_module_stmt(child)

    def _walk_scopes(
        self, body: Iterable[ast.AST], prefix: str, class_name: str | None, scope: Scope | None
    ) -> None:
        """Make a Scope per function, then give each call of the file its innermost function."""
        spans: list[tuple[int, int, Scope]] = []
        self._scope_spans(body, prefix, class_name, spans)
        spans.sort(key=lambda s: (s[0], -s[1]))
        starts = [s[0] for s in spans]
        calls = self._all_calls
        if calls is None:
            calls = [n for n in ast.walk(self.tree) if isinstance(n, ast.Call)]
        for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
            found: Scope | None = None
            for i in range(bisect.bisect_right(starts, call.lineno) - 1, -1, -1):
                start, end, candidate = spans[i]
                if start <= call.lineno <= end:
                    found = candidate
                    break
            self._calls.append((call, found))
            if found is not None:
                self.scope_of[call] = found

    def _scope_spans(
        self,
        nodes: Iterable[ast.AST],
        prefix: str,
        class_name: str | None,
        spans: list[tuple[int, int, Scope]],
    ) -> None:
        # A method, not a recursive closure: a closure that calls itself is a reference cycle,
        # which keeps the file's tree alive until the cyclic collector runs.
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = f"{prefix}.{node.name}"
                inner = self._make_scope(node, qual, class_name)
                self.scopes[node] = inner
                self.functions.setdefault(node.name, []).append(inner)
                spans.append((node.lineno, node.end_lineno or node.lineno, inner))
                self._scope_spans(node.body, qual, None, spans)
            elif isinstance(node, ast.ClassDef):
                self.class_bases.setdefault(node.name, []).extend(
                    b.id for b in node.bases if isinstance(b, ast.Name)
                )
                self._scope_spans(node.body, f"{prefix}.{node.name}", node.name, spans)
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                self._scope_spans(ast.iter_child_nodes(node), prefix, class_name, spans)

    def _make_scope(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, qual: str, class_name: str | None
    ) -> Scope:
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        is_method = class_name is not None and not any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list
        )
        if is_method and positional:
            positional = positional[1:]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults += list(args.defaults)
        params: dict[str, Param] = {}
        for i, (arg, default) in enumerate(zip(positional, defaults, strict=False)):
            params[arg.arg] = Param(arg.arg, i, arg.annotation, default)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            params[arg.arg] = Param(arg.arg, -1, arg.annotation, default)
        for arg in (args.vararg, args.kwarg):
            if arg is not None:
                params[arg.arg] = Param(arg.arg, -1, None, None)
        return Scope(
            node,
            qual,
            class_name,
            params,
            _is_route(node),
            lambda s: self._index_body(s, node.body),
        )

    def _index_body(self, scope: Scope, body: list[ast.stmt]) -> None:
        """Index a function body statement by statement (expressions are only looked into where
        a guard or a walrus can be: the tests of `if`/`while`/`assert` and conditional values)."""
        order = 0
        stack: list[ast.AST] = list(reversed(body))
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            order += 1
            children: list[ast.AST] = []
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._bind_target(scope, target, node.value, "=", order)
                self._scan_value(scope, node.value, order)
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                self._bind_target(scope, node.target, node.value, "=", order)
                self._scan_value(scope, node.value, order)
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                if isinstance(node.op, ast.Add):
                    scope._assigns.setdefault(node.target.id, []).append((node.value, "+=", order))
                    if isinstance(node.value, (ast.List, ast.Tuple)):
                        for elt in node.value.elts:
                            scope._appends.setdefault(node.target.id, []).append((elt, "append"))
                else:
                    scope._assigns.setdefault(node.target.id, []).append((node, "other", order))
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                self._bind_loop(scope, node.target, node.iter, order)
                children = [*node.body, *node.orelse]
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        self._bind_target(
                            scope, item.optional_vars, item.context_expr, "with", order
                        )
                children = list(node.body)
            elif isinstance(node, ast.Return):
                if node.value is not None:
                    scope._returns.append(node.value)
                    self._scan_value(scope, node.value, order)
            elif isinstance(node, ast.Expr):
                call = node.value
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and isinstance(call.func.value, ast.Name)
                ):
                    owner, attr = call.func.value.id, call.func.attr
                    if attr in ("append", "add") and call.args:
                        scope._appends.setdefault(owner, []).append((call.args[0], "append"))
                    elif attr == "insert" and len(call.args) > 1:
                        scope._appends.setdefault(owner, []).append((call.args[1], "append"))
                    elif attr == "extend" and call.args:
                        scope._appends.setdefault(owner, []).append((call.args[0], "extend"))
            elif isinstance(node, (ast.If, ast.While)):
                self._scan_test(scope, node.test, order)
                children = [*node.body, *node.orelse]
            elif isinstance(node, ast.Assert):
                self._scan_test(scope, node.test, order)
            elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
                children = [*node.body]  # type: ignore[attr-defined]
                for handler in node.handlers:  # type: ignore[attr-defined]
                    if handler.name:
                        scope._assigns.setdefault(handler.name, []).append(
                            (handler, "other", order)
                        )
                    children += handler.body
                children += [*node.orelse, *node.finalbody]  # type: ignore[attr-defined]
            elif isinstance(node, ast.Match):
                for case in node.cases:
                    children += case.body
            stack.extend(reversed(children))

    def _scan_test(self, scope: Scope, test: ast.AST, order: int) -> None:
        for sub in ast.walk(test):
            if isinstance(sub, ast.Compare):
                self._note_guard(scope, sub)
            elif isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                scope._assigns.setdefault(sub.target.id, []).append((sub.value, "=", order))

    def _scan_value(self, scope: Scope, value: ast.AST, order: int) -> None:
        if isinstance(value, ast.IfExp):
            self._scan_test(scope, value.test, order)

    def _bind_target(
        self, scope: Scope, target: ast.AST, value: ast.AST, how: str, order: int
    ) -> None:
        if isinstance(target, ast.Name):
            scope._assigns.setdefault(target.id, []).append((value, how, order))
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                for t, v in zip(target.elts, value.elts, strict=True):
                    self._bind_target(scope, t, v, how, order)
            else:
                for t in target.elts:
                    self._bind_target(scope, t, value, "unpack", order)
        elif isinstance(target, ast.Starred):
            self._bind_target(scope, target.value, value, "unpack", order)

    def _bind_loop(self, scope: Scope, target: ast.AST, iterable: ast.AST, order: int) -> None:
        if isinstance(target, ast.Name):
            scope._assigns.setdefault(target.id, []).append((iterable, "for", order))
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = _items_receiver(iterable)
            for i, elt in enumerate(target.elts):
                if not isinstance(elt, ast.Name):
                    continue
                if items is not None and len(target.elts) == 2:
                    how = "for-key" if i == 0 else "for-value"
                    scope._assigns.setdefault(elt.id, []).append((items, how, order))
                else:
                    scope._assigns.setdefault(elt.id, []).append((iterable, "for", order))

    def _note_guard(self, scope: Scope, node: ast.Compare) -> None:
        if len(node.ops) != 1 or not isinstance(node.ops[0], (ast.In, ast.NotIn)):
            return
        left, right = node.left, node.comparators[0]
        if isinstance(left, ast.Name) and self._is_constant_collection(right, scope):
            scope._guarded[left.id] = _unparse(right)

    # -- constants -------------------------------------------------------------------------
    def _is_constant_collection(self, node: ast.AST, scope: Scope | None, depth: int = 0) -> bool:
        if depth > 10:  # `a = b; b = a`: not provably constant
            return False
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return all(self._is_constant(e, scope) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(k is not None and self._is_constant(k, scope) for k in node.keys)
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name in ("frozenset", "set", "tuple", "list") and len(node.args) == 1:
                return self._is_constant_collection(node.args[0], scope, depth + 1)
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("keys", "values"):
                return self._is_constant_collection(node.func.value, scope, depth + 1)
            return False
        if isinstance(node, ast.Name):
            if scope is not None and node.id in scope.assigns:
                values = scope.assigns[node.id]
                return all(
                    how == "=" and self._is_constant_collection(v, scope, depth + 1)
                    for v, how, _ in values
                )
            values = self.module_values.get(node.id)
            return bool(values) and all(
                self._is_constant_collection(v, None, depth + 1) for v in values
            )
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = node.value.id
            if scope is not None and owner in ("self", "cls") and scope.class_name:
                owner = scope.class_name
            values = self.class_values.get(owner, {}).get(node.attr)
            return bool(values) and all(
                self._is_constant_collection(v, None, depth + 1) for v in values
            )
        return False

    def _is_constant(self, node: ast.AST, scope: Scope | None, depth: int = 0) -> bool:
        if depth > 10:
            return False
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return all(self._is_constant(e, scope, depth + 1) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(
                (k is None or self._is_constant(k, scope, depth + 1))
                and self._is_constant(v, scope, depth + 1)
                for k, v in zip(node.keys, node.values, strict=True)
            )
        if isinstance(node, ast.JoinedStr):
            return all(
                isinstance(v, ast.Constant) or self._is_constant(v.value, scope, depth + 1)
                for v in node.values
                if isinstance(v, (ast.Constant, ast.FormattedValue))
            )
        if isinstance(node, ast.BinOp):
            return self._is_constant(node.left, scope, depth + 1) and self._is_constant(
                node.right, scope, depth + 1
            )
        if isinstance(node, ast.Name):
            if scope is not None and node.id in scope.assigns:
                return all(
                    how == "=" and self._is_constant(v, scope, depth + 1)
                    for v, how, _ in scope.assigns[node.id]
                )
            if scope is not None and node.id in scope.params:
                return False
            values = self.module_values.get(node.id)
            return bool(values) and all(self._is_constant(v, None, depth + 1) for v in values)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = node.value.id
            if scope is not None and owner in ("self", "cls") and scope.class_name:
                owner = scope.class_name
            values = self.class_values.get(owner, {}).get(node.attr)
            return bool(values) and all(self._is_constant(v, None, depth + 1) for v in values)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            # ", ".join(CONSTANTS), "x".upper()
            return self._is_constant(node.func.value, scope, depth + 1) and all(
                self._is_constant(a, scope, depth + 1) for a in node.args
            )
        return False

    # -- templates -------------------------------------------------------------------------
    def templates(
        self,
        expr: ast.AST,
        scope: Scope | None,
        env: Env,
        depth: int = 0,
        lines: set[int] | None = None,
    ) -> list[Template]:
        """The alternative templates an expression can build (at most a handful)."""
        if depth > 6:
            return [[Hole(expr, scope, env)]]
        if _is_str_constant(expr):
            return [[expr.value]]  # type: ignore[attr-defined]
        if isinstance(expr, ast.JoinedStr):
            result: list[Template] = [[]]
            for value in expr.values:
                if isinstance(value, ast.Constant):
                    result = [_merge([*t, str(value.value)]) for t in result]
                elif isinstance(value, ast.FormattedValue):
                    result = _product(result, self._hole_templates(value, scope, env, depth, lines))
            return result
        if (
            isinstance(expr, ast.BinOp)
            and isinstance(expr.op, ast.Add)
            and (self._stringish(expr.left, scope) or self._stringish(expr.right, scope))
        ):
            left = self.templates(expr.left, scope, env, depth + 1, lines)
            right = self.templates(expr.right, scope, env, depth + 1, lines)
            return _product(left, right)
        if (
            isinstance(expr, ast.BinOp)
            and isinstance(expr.op, ast.Mod)
            and self._stringish(expr.left, scope)
        ):
            return self._percent_templates(expr, scope, env, depth, lines)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            if expr.func.attr == "format" and self._stringish(expr.func.value, scope):
                return self._format_templates(expr, scope, env, depth, lines)
            if expr.func.attr == "join" and _is_str_constant(expr.func.value) and expr.args:
                elements = self.element_templates(expr.args[0], scope, env, depth + 1, lines)
                if elements is not None and isinstance(expr.args[0], (ast.List, ast.Tuple)):
                    sep = expr.func.value.value  # type: ignore[attr-defined]
                    joined: Template = []
                    for i, element in enumerate(elements):
                        joined += [sep, *element] if i else element
                    return [_merge(joined)]
                return [[Hole(expr, scope, env, elements)]]
        if isinstance(expr, ast.IfExp):
            return (
                self.templates(expr.body, scope, env, depth + 1, lines)
                + self.templates(expr.orelse, scope, env, depth + 1, lines)
            )[:_MAX_ALTERNATIVES]
        if isinstance(expr, ast.Name) and expr.id not in env.names:
            inlined = self._name_templates(expr, scope, env, depth, lines)
            if inlined is not None:
                return inlined
        if isinstance(expr, ast.Call):
            helper = self._helper_templates(expr, scope, env, depth, lines)
            if helper is not None:
                return helper
            built = self._str_templates(expr, scope, env, depth, lines)
            if built is not None:
                return built
        return [[Hole(expr, scope, env)]]

    def _str_templates(
        self, expr: ast.Call, scope: Scope | None, env: Env, depth: int, lines: set[int] | None
    ) -> list[Template] | None:
        """`str(obj)` where `obj` is an instance of a class of this file whose `__str__` builds
        SQL text (`str(CreateTriggerSQL(column))`, or one object per class of a literal list
        the code loops over): the returns of that `__str__`, with `self` unknown."""
        if not (
            isinstance(expr.func, ast.Name)
            and expr.func.id == "str"
            and len(expr.args) == 1
            and not expr.keywords
            and depth <= 3
        ):
            return None
        result: list[Template] = []
        for class_name in self._instance_classes(expr.args[0], scope):
            method = self._inherited_method(class_name, "__str__")
            if method is None or not method.returns:
                return None
            if not all(self._stringish(r, method) for r in method.returns):
                return None
            for ret in method.returns:
                _note_lines(lines, ret)
                result += self.templates(ret, method, Env(), depth + 1, lines)
        return result[:_MAX_ALTERNATIVES] or None

    def _instance_classes(self, node: ast.AST, scope: Scope | None, depth: int = 0) -> list[str]:
        """The classes of this file `node` is an instance of, when the code shows them: a
        constructor call, a local assigned from one, a constructor named by a loop variable over
        a literal list of classes. [] when unknown."""
        if depth > 4:
            return []
        if isinstance(node, ast.Call):
            return self._class_names(node.func, scope, depth + 1)
        if isinstance(node, ast.Name) and scope is not None and node.id in scope.assigns:
            defs = scope.assigns[node.id]
            if not all(how == "=" for _, how, _ in defs):
                return []
            out: list[str] = []
            for value, _, _ in defs:
                found = self._instance_classes(value, scope, depth + 1)
                if not found:
                    return []
                out += [c for c in found if c not in out]
            return out
        return []

    def _class_names(self, node: ast.AST, scope: Scope | None, depth: int) -> list[str]:
        """The classes of this file an expression names: `Cls`, or a loop variable / local over a
        literal list or tuple of such names."""
        if depth > 8:
            return []
        if (
            isinstance(node, ast.Name)
            and node.id in self.class_bases
            and (scope is None or node.id not in scope.assigns)
        ):
            return [node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            names = [self._class_names(e, scope, depth + 1) for e in node.elts]
            if not names or not all(names):
                return []
            return [c for group in names for c in group]
        if isinstance(node, ast.Name) and scope is not None and node.id in scope.assigns:
            out: list[str] = []
            for value, how, _ in scope.assigns[node.id]:
                if how not in ("=", "for"):
                    return []
                found = self._class_names(value, scope, depth + 1)
                if not found:
                    return []
                out += [c for c in found if c not in out]
            return out
        return []

    def _inherited_method(self, class_name: str, method: str) -> Scope | None:
        """`class_name.method` defined in this file, on the class or a base of this file."""
        seen: set[str] = set()
        queue = [class_name]
        while queue and len(seen) < 32:
            current = queue.pop(0)
            if current in seen:
                continue
            seen.add(current)
            found = [s for s in self.functions.get(method, []) if s.class_name == current]
            if len(found) == 1:
                return found[0]
            queue += self.class_bases.get(current, [])
        return None

    def _stringish(self, node: ast.AST, scope: Scope | None, depth: int = 0) -> bool:
        if depth > 6:
            return False
        if _is_str_constant(node) or isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            return self._stringish(node.left, scope, depth + 1) or (
                isinstance(node.op, ast.Add) and self._stringish(node.right, scope, depth + 1)
            )
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return node.func.attr in ("format", "join") and self._stringish(
                node.func.value, scope, depth + 1
            )
        if isinstance(node, ast.Name):
            if scope is not None and node.id in scope.assigns:
                return any(
                    how in ("=", "+=") and self._stringish(v, scope, depth + 1)
                    for v, how, _ in scope.assigns[node.id]
                )
            if scope is not None and node.id in scope.params:
                return False
            values = self.module_values.get(node.id, [])
            return any(self._stringish(v, None, depth + 1) for v in values)
        return False

    def _hole_templates(
        self,
        value: ast.FormattedValue,
        scope: Scope | None,
        env: Env,
        depth: int,
        lines: set[int] | None,
    ) -> list[Template]:
        inner = value.value
        numeric = _numeric_spec(value.format_spec)
        if value.conversion == -1 and value.format_spec is None:
            # Splice string-building values in (`WHERE {where}` with `where = " AND ".join(...)`)
            if isinstance(inner, ast.Name) and inner.id not in env.names:
                if self._module_constant(inner, scope):
                    # `f'SET search_path TO "{SCHEMA}"'`: a slot of constant origin, so the
                    # site is listed (safe) rather than read as literal text
                    return [[Hole(inner, scope, env, numeric=numeric)]]
                spliced = self._name_templates(inner, scope, env, depth + 1, lines)
                if spliced is not None:
                    return spliced
            if (
                isinstance(inner, ast.Call)
                and isinstance(inner.func, ast.Attribute)
                and inner.func.attr == "join"
                and _is_str_constant(inner.func.value)
                and inner.args
            ):
                elements = self.element_templates(inner.args[0], scope, env, depth + 1, lines)
                return [[Hole(inner, scope, env, elements)]]
            if _is_str_constant(inner) or isinstance(inner, (ast.JoinedStr, ast.IfExp)):
                return self.templates(inner, scope, env, depth + 1, lines)
        return [[Hole(inner, scope, env, numeric=numeric)]]

    def _module_constant(self, name: ast.Name, scope: Scope | None) -> bool:
        """`name` is a module-level string constant (not shadowed by a local) holding names
        only (a schema, a table, a column list): a slot. A constant holding SQL text
        (`BASE = "SELECT ... FROM t"`) is inlined instead, so the statement around it parses."""
        if scope is not None and (name.id in scope.assigns or name.id in scope.params):
            return False
        values = self.module_values.get(name.id)
        if not (values and len(values) == 1 and isinstance(values[0], ast.Constant)):
            return False
        text = values[0].value
        return isinstance(text, str) and bool(_NAMES_ONLY.fullmatch(text))

    def _name_templates(
        self, expr: ast.Name, scope: Scope | None, env: Env, depth: int, lines: set[int] | None
    ) -> list[Template] | None:
        """Inline a local (or module-level) variable built from strings; None if it is not."""
        name = expr.id
        if scope is not None and name in scope.assigns:
            defs = scope.assigns[name]
            plain = [(v, o) for v, how, o in defs if how == "="]
            augment = [(v, o) for v, how, o in defs if how == "+="]
            if len(plain) + len(augment) != len(defs) or not plain:
                return None
            if not all(self._stringish(v, scope) for v, _ in plain):
                # `set_sql = ", ".join(parts)` is a join hole under the variable's name
                if len(plain) == 1 and not augment:
                    value = plain[0][0]
                    if (
                        isinstance(value, ast.Call)
                        and isinstance(value.func, ast.Attribute)
                        and value.func.attr == "join"
                        and _is_str_constant(value.func.value)
                        and value.args
                    ):
                        _note_lines(lines, value)
                        elements = self.element_templates(
                            value.args[0], scope, env, depth + 1, lines
                        )
                        return [[Hole(value, scope, env, elements, label=name)]]
                return None
            result: list[Template] = []
            for value, order in plain:
                _note_lines(lines, value)
                alternatives = self.templates(value, scope, env, depth + 1, lines)
                for aug, aug_order in augment:
                    if aug_order > order:
                        _note_lines(lines, aug)
                        alternatives = _product(
                            alternatives, self.templates(aug, scope, env, depth + 1, lines)
                        )
                result += alternatives
            for template in result:
                if len(template) == 1 and isinstance(template[0], Hole) and not template[0].label:
                    template[0].label = name  # `SET {assignments}`: name the join by its variable
            return result[:_MAX_ALTERNATIVES]
        if scope is not None and name in scope.params:
            return None
        values = self.module_values.get(name)
        if (
            values
            and len(values) == 1
            and self._is_constant(values[0], None)
            and self._stringish(values[0], None)
        ):
            return self.templates(values[0], None, Env(), depth + 1, lines)
        return None

    def _percent_templates(
        self, expr: ast.BinOp, scope: Scope | None, env: Env, depth: int, lines: set[int] | None
    ) -> list[Template]:
        lefts = self.templates(expr.left, scope, env, depth + 1, lines)
        right = expr.right
        positional = list(right.elts) if isinstance(right, ast.Tuple) else None
        named: dict[str, ast.expr] | None = None
        if isinstance(right, ast.Dict) and all(_is_str_constant(k) for k in right.keys):
            named = {k.value: v for k, v in zip(right.keys, right.values, strict=True)}  # type: ignore[union-attr]
        out: list[Template] = []
        spec = re.compile(r"%(?:\((?P<name>[^)]*)\))?[-#0 +]*\d*(?:\.\d+)?(?P<conv>[a-zA-Z%])")
        for left in lefts:
            parts: Template = []
            index = 0
            for part in left:
                if not isinstance(part, str):
                    parts.append(part)
                    continue
                pos = 0
                for match in spec.finditer(part):
                    parts.append(part[pos : match.start()])
                    pos = match.end()
                    conv = match["conv"]
                    if conv == "%":
                        parts.append("%")
                        continue
                    numeric = conv in "dixXeEfFgGo"
                    if match["name"] is not None:
                        value = named.get(match["name"]) if named is not None else None
                        hole_expr: ast.AST = value if value is not None else right
                    elif positional is not None:
                        hole_expr = positional[index] if index < len(positional) else right
                        index += 1
                    else:
                        hole_expr = right
                    parts.append(Hole(hole_expr, scope, env, numeric=numeric))
                parts.append(part[pos:])
            out.append(_merge(parts))
        return out

    def _format_templates(
        self, expr: ast.Call, scope: Scope | None, env: Env, depth: int, lines: set[int] | None
    ) -> list[Template]:
        assert isinstance(expr.func, ast.Attribute)
        bases = self.templates(expr.func.value, scope, env, depth + 1, lines)
        keywords = {k.arg: k.value for k in expr.keywords if k.arg}
        out: list[Template] = []
        for base in bases:
            parts: Template = []
            auto = 0
            for part in base:
                if not isinstance(part, str):
                    parts.append(part)
                    continue
                try:
                    parsed = list(string.Formatter().parse(part))
                except ValueError:
                    return [[Hole(expr, scope, env)]]
                for literal, field_name, spec, _conv in parsed:
                    parts.append(literal)
                    if field_name is None:
                        continue
                    head = re.split(r"[.\[]", field_name, maxsplit=1)[0]
                    value: ast.AST | None
                    if head == "":
                        value = expr.args[auto] if auto < len(expr.args) else None
                        auto += 1
                    elif head.isdigit():
                        i = int(head)
                        value = expr.args[i] if i < len(expr.args) else None
                    else:
                        value = keywords.get(head)
                    parts.append(
                        Hole(
                            value if value is not None else expr,
                            scope,
                            env,
                            numeric=_numeric_text(spec),
                        )
                    )
            out.append(_merge(parts))
        return out

    def _helper_templates(
        self, expr: ast.Call, scope: Scope | None, env: Env, depth: int, lines: set[int] | None
    ) -> list[Template] | None:
        """A call to a same-module function that returns SQL text: inline its returns, with its
        parameters bound to the origins of the arguments."""
        callee = self._callee(expr, scope)
        if callee is None or depth > 3:
            return None
        if not callee.returns or not all(self._stringish(r, callee) for r in callee.returns):
            return None
        bound = self._bind_arguments(expr, callee, scope, env)
        if bound is None:
            return None
        result: list[Template] = []
        for ret in callee.returns:
            _note_lines(lines, ret)
            result += self.templates(ret, callee, Env(bound), depth + 1, lines)
        return result[:_MAX_ALTERNATIVES]

    def _callee(self, call: ast.Call, scope: Scope | None) -> Scope | None:
        func = call.func
        candidates: list[Scope] = []
        if isinstance(func, ast.Name):
            candidates = [s for s in self.functions.get(func.id, []) if s.class_name is None]
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and scope is not None
            and scope.class_name is not None
            and func.value.id in ("self", "cls")
        ):
            candidates = [
                s for s in self.functions.get(func.attr, []) if s.class_name == scope.class_name
            ]
        return candidates[0] if len(candidates) == 1 else None

    def _bind_arguments(
        self, call: ast.Call, callee: Scope, scope: Scope | None, env: Env
    ) -> dict[str, tuple[Origin, ...]] | None:
        bound: dict[str, tuple[Origin, ...]] = {}
        if any(isinstance(a, ast.Starred) for a in call.args) or any(
            k.arg is None for k in call.keywords
        ):
            return None
        by_index = {p.index: p for p in callee.params.values() if p.index >= 0}
        for i, arg in enumerate(call.args):
            param = by_index.get(i)
            if param is not None:
                bound[param.name] = self.origins(arg, scope, env, caller_depth=1)
        for keyword in call.keywords:
            if keyword.arg in callee.params:
                bound[keyword.arg] = self.origins(keyword.value, scope, env, caller_depth=1)
        for param in callee.params.values():
            if param.name not in bound:
                bound[param.name] = (
                    self.origins(param.default, callee, Env(), caller_depth=1)
                    if param.default is not None
                    else (Origin(UNKNOWN, f"parameter `{param.name}`"),)
                )
        return bound

    def element_templates(
        self, iterable: ast.AST, scope: Scope | None, env: Env, depth: int, lines: set[int] | None
    ) -> list[Template] | None:
        """The templates of the elements a join iterates over, when the code shows them."""
        if depth > 6:
            return None
        if isinstance(iterable, (ast.List, ast.Tuple, ast.Set)):
            out: list[Template] = []
            for elt in iterable.elts:
                if isinstance(elt, ast.Starred):
                    return None
                out += self.templates(elt, scope, env, depth + 1, lines)
            return out
        if isinstance(iterable, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            inner = self._comprehension_env(iterable.generators, scope, env, depth)
            return self.templates(iterable.elt, scope, inner, depth + 1, lines)
        if isinstance(iterable, ast.Name) and scope is not None and iterable.id in scope.assigns:
            defs = scope.assigns[iterable.id]
            out = []
            for value, how, _ in defs:
                _note_lines(lines, value)
                if how not in ("=", "+="):
                    return None
                sub = self.element_templates(value, scope, env, depth + 1, lines)
                if sub is None:
                    return None
                out += sub
            for value, how in scope.appends.get(iterable.id, []):
                _note_lines(lines, value)
                if how == "append":
                    out += self.templates(value, scope, env, depth + 1, lines)
                else:
                    sub = self.element_templates(value, scope, env, depth + 1, lines)
                    if sub is None:
                        return None
                    out += sub
            return out
        if isinstance(iterable, ast.Name) and (scope is None or iterable.id not in scope.params):
            values = self.module_values.get(iterable.id)
            if values and len(values) == 1 and self._is_constant(values[0], None):
                return self.element_templates(values[0], None, Env(), depth + 1, lines)
        return None

    def _comprehension_env(
        self, generators: list[ast.comprehension], scope: Scope | None, env: Env, depth: int = 0
    ) -> Env:
        """Bind a comprehension's targets. `depth` is the caller's: the origins of the iterables
        count on it, so `{k: v for k in d}` over `d` built from itself cannot recurse unbounded."""
        inner = env
        for gen in generators:
            guards = [
                c
                for cond in gen.ifs
                for c in ast.walk(cond)
                if isinstance(c, ast.Compare)
                and len(c.ops) == 1
                and isinstance(c.ops[0], ast.In)
                and isinstance(c.left, ast.Name)
                and self._is_constant_collection(c.comparators[0], scope)
            ]
            guarded = {g.left.id: _unparse(g.comparators[0]) for g in guards}  # type: ignore[attr-defined]
            targets = gen.target
            bindings: dict[str, tuple[Origin, ...]] = {}
            items = _items_receiver(gen.iter)
            if isinstance(targets, ast.Name):
                bindings[targets.id] = self.element_origins(gen.iter, scope, inner, 0, depth + 1)
            elif isinstance(targets, ast.Tuple):
                for i, elt in enumerate(targets.elts):
                    if not isinstance(elt, ast.Name):
                        continue
                    if items is not None and len(targets.elts) == 2:
                        bindings[elt.id] = (
                            self.key_origins(items, scope, inner, 0, depth + 1)
                            if i == 0
                            else self.value_origins(items, scope, inner, 0, depth + 1)
                        )
                    else:
                        bindings[elt.id] = self.element_origins(
                            gen.iter, scope, inner, 0, depth + 1
                        )
            for name, where in guarded.items():
                bindings[name] = (Origin(ALLOWLISTED, f"`{name}` checked against {where}"),)
            inner = inner.child(**bindings)
        return inner

    # -- origins ---------------------------------------------------------------------------
    def origins(
        self,
        expr: ast.AST | None,
        scope: Scope | None,
        env: Env,
        caller_depth: int = 0,
        depth: int = 0,
    ) -> tuple[Origin, ...]:
        """Every origin the value of `expr` can have (deduplicated)."""
        if expr is None:
            return (Origin(CONSTANT, "default"),)
        found = self._origins(expr, scope, env, caller_depth, depth)
        return tuple(sorted(set(found)))

    def _origins(
        self, expr: ast.AST, scope: Scope | None, env: Env, caller_depth: int, depth: int
    ) -> Iterable[Origin]:
        if depth > 12:
            return (Origin(UNKNOWN, f"`{_unparse(expr)}` (too deep to follow)"),)
        sub = depth + 1
        if isinstance(expr, ast.Constant):
            return (Origin(CONSTANT, "literal"),)
        if isinstance(expr, ast.JoinedStr):
            out: list[Origin] = []
            for value in expr.values:
                if isinstance(value, ast.FormattedValue):
                    if _numeric_spec(value.format_spec):
                        out.append(Origin(VALIDATED, "formatted as a number"))
                    else:
                        out += self.origins(value.value, scope, env, caller_depth, sub)
            return out or (Origin(CONSTANT, "literal"),)
        if isinstance(expr, ast.BinOp):
            if isinstance(expr.op, ast.Mod) and self._stringish(expr.left, scope):
                return self._template_origins(
                    self._percent_templates(expr, scope, env, sub, None), caller_depth, sub
                )
            return [
                *self.origins(expr.left, scope, env, caller_depth, sub),
                *self.origins(expr.right, scope, env, caller_depth, sub),
            ]
        if isinstance(expr, (ast.List, ast.Tuple, ast.Set)):
            out = []
            for elt in expr.elts:
                out += self.origins(elt, scope, env, caller_depth, sub)
            return out or (Origin(CONSTANT, "empty collection"),)
        if isinstance(expr, ast.Dict):
            out = []
            for k, v in zip(expr.keys, expr.values, strict=True):
                if k is not None:
                    out += self.origins(k, scope, env, caller_depth, sub)
                out += self.origins(v, scope, env, caller_depth, sub)
            return out or (Origin(CONSTANT, "empty dict"),)
        if isinstance(expr, ast.IfExp):
            return [
                *self.origins(expr.body, scope, env, caller_depth, sub),
                *self.origins(expr.orelse, scope, env, caller_depth, sub),
            ]
        if isinstance(expr, (ast.Compare, ast.BoolOp, ast.UnaryOp)):
            if isinstance(expr, ast.BoolOp):
                out = []
                for value in expr.values:
                    out += self.origins(value, scope, env, caller_depth, sub)
                return out
            if isinstance(expr, ast.UnaryOp):
                return self.origins(expr.operand, scope, env, caller_depth, sub)
            return (Origin(VALIDATED, "a comparison (bool)"),)
        if isinstance(expr, ast.Name):
            return self._name_origins(expr, scope, env, caller_depth, sub)
        if isinstance(expr, ast.Attribute):
            return self._attribute_origins(expr, scope, env, caller_depth, sub)
        if isinstance(expr, ast.Subscript):
            container = expr.value
            if self._is_constant_collection(container, scope):
                return (Origin(ALLOWLISTED, f"looked up in {_unparse(container)}"),)
            return self.origins(container, scope, env, caller_depth, sub)
        if isinstance(expr, ast.Call):
            return self._call_origins(expr, scope, env, caller_depth, sub)
        if isinstance(expr, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            inner = self._comprehension_env(expr.generators, scope, env, sub)
            return self.origins(expr.elt, scope, inner, caller_depth, sub)
        if isinstance(expr, ast.DictComp):
            inner = self._comprehension_env(expr.generators, scope, env, sub)
            return [
                *self.origins(expr.key, scope, inner, caller_depth, sub),
                *self.origins(expr.value, scope, inner, caller_depth, sub),
            ]
        if isinstance(expr, ast.Starred):
            return self.origins(expr.value, scope, env, caller_depth, sub)
        if isinstance(expr, ast.Await):
            return (Origin(UNKNOWN, f"result of `{_unparse(expr.value)}`"),)
        return (Origin(UNKNOWN, f"`{_unparse(expr)}`"),)

    def _template_origins(
        self, templates: list[Template], caller_depth: int, depth: int
    ) -> list[Origin]:
        out: list[Origin] = []
        for template in templates:
            for part in template:
                if isinstance(part, Hole):
                    out += self.hole_origins(part, caller_depth, depth)
        return out or [Origin(CONSTANT, "literal")]

    def hole_origins(self, hole: Hole, caller_depth: int = 0, depth: int = 0) -> list[Origin]:
        if hole.numeric:
            return [Origin(VALIDATED, "formatted as a number")]
        if hole.elements is not None:
            return self._template_origins(hole.elements, caller_depth, depth)
        expr = hole.expr
        if (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr == "join"
            and expr.args
        ):
            return list(
                self.element_origins(expr.args[0], hole.scope, hole.env, caller_depth, depth)
            )
        return list(self.origins(expr, hole.scope, hole.env, caller_depth, depth))

    def _name_origins(
        self, expr: ast.Name, scope: Scope | None, env: Env, caller_depth: int, depth: int
    ) -> Iterable[Origin]:
        name = expr.id
        if name in env.names:
            return env.names[name]
        if scope is not None:
            if name in scope.guarded:
                return (Origin(ALLOWLISTED, f"`{name}` checked against {scope.guarded[name]}"),)
            if name in scope.assigns:
                key = (id(scope), name)
                if key in self._visiting:
                    return ()
                self._visiting.add(key)
                try:
                    out: list[Origin] = []
                    for value, how, _ in scope.assigns[name]:
                        out += self._def_origins(value, how, scope, env, caller_depth, depth)
                    for value, how in scope.appends.get(name, []):
                        if how == "append":
                            out += self.origins(value, scope, env, caller_depth, depth)
                        else:
                            out += self.element_origins(value, scope, env, caller_depth, depth)
                    if name in scope.params:
                        out += self._param_origins(scope.params[name], scope, caller_depth, depth)
                    return out
                finally:
                    self._visiting.discard(key)
            if name in scope.params:
                return self._param_origins(scope.params[name], scope, caller_depth, depth)
        values = self.module_values.get(name)
        if values:
            if all(self._is_constant(v, None) for v in values):
                return (Origin(CONSTANT, f"module constant {name}"),)
            out = []
            for value in values:
                out += self.origins(value, None, Env(), caller_depth, depth)
            return out
        target = self.qualified_name(expr)
        if target and target != name and "." in target:
            return (Origin(IMPORTED, f"`{name}`", target),)
        return (Origin(UNKNOWN, f"`{name}`"),)

    def _def_origins(
        self, value: ast.AST, how: str, scope: Scope, env: Env, caller_depth: int, depth: int
    ) -> Iterable[Origin]:
        if how in ("=", "+=", "with"):
            return self.origins(value, scope, env, caller_depth, depth)
        if how == "for":
            return self.element_origins(value, scope, env, caller_depth, depth)
        if how == "for-key":
            return self.key_origins(value, scope, env, caller_depth, depth)
        if how == "for-value":
            return self.value_origins(value, scope, env, caller_depth, depth)
        if how == "unpack":
            return self.element_origins(value, scope, env, caller_depth, depth)
        return (Origin(UNKNOWN, f"`{_unparse(value)}`"),)

    def _param_origins(
        self, param: Param, scope: Scope, caller_depth: int, depth: int
    ) -> Iterable[Origin]:
        if scope.is_route:
            return (self._route_param_origin(param, scope),)
        described = f"parameter `{param.name}` of {scope.qualname.rsplit('.', 1)[-1]}()"
        if caller_depth == 0:
            calls = self._callers(scope)
            if calls:
                out: list[Origin] = []
                for call, caller in calls:
                    arg = _argument_for(call, param)
                    if arg is _UNKNOWN_ARG:
                        out.append(Origin(UNKNOWN, f"{described}: passed with * or **"))
                    elif arg is None:
                        out += self.origins(param.default, scope, Env(), 1, depth)
                    else:
                        out += self.origins(arg, caller, Env(), 1, depth)  # type: ignore[arg-type]
                return out
        return (Origin(PARAMETER, described),)

    def _route_param_origin(self, param: Param, scope: Scope) -> Origin:
        what = f"route parameter `{param.name}` of {scope.qualname.rsplit('.', 1)[-1]}()"
        default = param.default
        if isinstance(default, ast.Call):
            name = self.qualified_name(default.func) or ""
            if name.rsplit(".", 1)[-1] in ("Depends", "Security"):
                return Origin(UNKNOWN, f"{what}: a dependency")
        annotation = param.annotation
        if annotation is None:
            return Origin(REQUEST, what)
        inner = _unwrap_annotation(annotation, self.qualified_name)
        if inner is None:
            return Origin(UNKNOWN, f"{what}: a dependency")
        if isinstance(inner, ast.Subscript):
            head = self.qualified_name(inner.value) or ""
            if head.rsplit(".", 1)[-1] == "Literal":
                return Origin(ALLOWLISTED, f"{what}: a Literal, validated by FastAPI")
            return Origin(REQUEST, what)
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            return Origin(REQUEST, what)
        name = self.qualified_name(inner) or ""
        if name in _SCALARS or name.rsplit(".", 1)[-1] in _SCALARS:
            return Origin(VALIDATED, f"{what}: a {name.rsplit('.', 1)[-1]}, validated by FastAPI")
        if name in _REQUEST_OBJECTS:
            return Origin(REQUEST, f"{what}: the raw request")
        if name in _DEPENDENCY_OBJECTS:
            return Origin(UNKNOWN, what)
        if name in ("str", "bytes", "dict", "list", "typing.Any", "Any", "set", "tuple"):
            return Origin(REQUEST, what)
        local = self._local_alias(inner)
        if local is not None:
            return Origin(local[0], f"{what}: {local[1]}")
        qual = self._class_ref(inner)
        if qual:
            return Origin(ANNOTATED, what, qual)
        return Origin(REQUEST, what)

    def _local_alias(self, node: ast.AST) -> tuple[str, str] | None:
        """`Provider = Literal[...]` at module level, used as an annotation."""
        if not isinstance(node, ast.Name):
            return None
        values = self.module_values.get(node.id)
        if values and len(values) == 1 and isinstance(values[0], ast.Subscript):
            head = self.qualified_name(values[0].value) or ""
            if head.rsplit(".", 1)[-1] == "Literal":
                return ALLOWLISTED, f"a Literal ({node.id}), validated by FastAPI"
        return None

    def _class_ref(self, node: ast.AST) -> str:
        """The qualified name of a class annotation: a class of this module or an import."""
        if isinstance(node, ast.Name) and node.id in self.class_values:
            return f"{self.module}.{node.id}"
        return self.qualified_name(node) or ""

    def _callers(self, scope: Scope) -> list[tuple[ast.Call, Scope | None]]:
        name = scope.node.name
        found: list[tuple[ast.Call, Scope | None]] = []
        for call, caller in self._calls:
            func = call.func
            if scope.class_name is None:
                if isinstance(func, ast.Name) and func.id == name:
                    found.append((call, caller))
            elif (
                isinstance(func, ast.Attribute)
                and func.attr == name
                and isinstance(func.value, ast.Name)
                and (
                    func.value.id == scope.class_name
                    or (
                        func.value.id in ("self", "cls")
                        and caller is not None
                        and caller.class_name == scope.class_name
                    )
                )
            ):
                found.append((call, caller))
        return found

    def _attribute_origins(
        self, expr: ast.Attribute, scope: Scope | None, env: Env, caller_depth: int, depth: int
    ) -> Iterable[Origin]:
        base = expr.value
        if isinstance(base, ast.Name):
            owner = base.id
            if scope is not None and owner in ("self", "cls") and scope.class_name:
                owner = scope.class_name
            if owner in self.class_values and (scope is None or base.id not in scope.assigns):
                values = self.class_values[owner].get(expr.attr)
                if values and all(self._is_constant(v, None) for v in values):
                    return (Origin(CONSTANT, f"class constant {owner}.{expr.attr}"),)
            if base.id in ("self", "cls"):
                return (Origin(UNKNOWN, f"`{_unparse(expr)}`"),)
            if (
                scope is None or (base.id not in scope.params and base.id not in scope.assigns)
            ) and (base.id not in env.names and base.id not in self.module_values):
                target = self.qualified_name(expr)  # `cols.COLUMNS`: a module's constant?
                if target and target != _unparse(expr) and "." in target:
                    return (Origin(IMPORTED, f"`{_unparse(expr)}`", target),)
                return (Origin(UNKNOWN, f"`{_unparse(expr)}`"),)
        inner = self.origins(base, scope, env, caller_depth, depth)
        out: list[Origin] = []
        for origin in inner:
            if origin.kind in (CONSTANT, VALIDATED) and origin.detail.startswith("module constant"):
                out.append(Origin(UNKNOWN, f"`{_unparse(expr)}`"))
            elif origin.kind == CONSTANT:
                out.append(origin)
            else:
                out.append(origin)
        return out

    def _call_origins(
        self, expr: ast.Call, scope: Scope | None, env: Env, caller_depth: int, depth: int
    ) -> Iterable[Origin]:
        func = expr.func
        name = self.qualified_name(func) or ""
        short = name.rsplit(".", 1)[-1]
        if short in _SAFE_BUILDERS:
            return (Origin(ALLOWLISTED, f"built by `{short}()` from allowed columns"),)
        if isinstance(func, ast.Name) and func.id in _NUMERIC_CALLS:
            return (Origin(VALIDATED, f"`{func.id}(...)`"),)
        if name in ("uuid.uuid4", "uuid.UUID") or short in ("uuid4",):
            return (Origin(VALIDATED, f"`{short}()`"),)
        if (
            isinstance(func, ast.Name)
            and func.id
            in ("str", "repr", "sorted", "list", "tuple", "set", "frozenset", "reversed")
            and expr.args
        ):
            return self.origins(expr.args[0], scope, env, caller_depth, depth)
        if isinstance(func, ast.Attribute):
            receiver = func.value
            if func.attr == "join" and expr.args:
                return self.element_origins(expr.args[0], scope, env, caller_depth, depth)
            if func.attr == "get" and expr.args and self._is_constant_collection(receiver, scope):
                out: list[Origin] = [Origin(ALLOWLISTED, f"looked up in {_unparse(receiver)}")]
                if len(expr.args) > 1:
                    out += self.origins(expr.args[1], scope, env, caller_depth, depth)
                return out
            if func.attr in ("get", "getlist", "pop", "setdefault") and expr.args:
                out = list(self.value_origins(receiver, scope, env, caller_depth, depth))
                for arg in expr.args[1:]:
                    out += self.origins(arg, scope, env, caller_depth, depth)
                return out
            if func.attr in _PRESERVING_METHODS:
                out = list(self.origins(receiver, scope, env, caller_depth, depth))
                for arg in expr.args:
                    out += self.origins(arg, scope, env, caller_depth, depth)
                return out
            if func.attr in ("keys",):
                return self.key_origins(receiver, scope, env, caller_depth, depth)
            if func.attr in ("values", "items") or func.attr in _DUMP_METHODS:
                return self.value_origins(receiver, scope, env, caller_depth, depth)
            if func.attr in ("split", "splitlines", "partition"):
                return self.origins(receiver, scope, env, caller_depth, depth)
        callee = self._callee(expr, scope)
        if callee is not None and callee.returns and depth < 8:
            bound = self._bind_arguments(expr, callee, scope, env)
            if bound is not None:
                out = []
                for ret in callee.returns:
                    out += self.origins(ret, callee, Env(bound), 1, depth)
                return out
        return (Origin(UNKNOWN, f"result of `{_unparse(func)}(...)`"),)

    def element_origins(
        self,
        iterable: ast.AST,
        scope: Scope | None,
        env: Env,
        caller_depth: int = 0,
        depth: int = 0,
    ) -> tuple[Origin, ...]:
        """Origins of the items produced by iterating `iterable`."""
        if depth > 12:
            return (Origin(UNKNOWN, "too deep to follow"),)
        if self._is_constant_collection(iterable, scope):
            return (Origin(ALLOWLISTED, f"drawn from {_unparse(iterable)}"),)
        if isinstance(iterable, (ast.Dict, ast.DictComp)):
            return self.key_origins(iterable, scope, env, caller_depth, depth)
        if isinstance(iterable, ast.Call):
            func = iterable.func
            if isinstance(func, ast.Attribute):
                if func.attr == "keys":
                    return self.key_origins(func.value, scope, env, caller_depth, depth + 1)
                if func.attr == "values":
                    return self.value_origins(func.value, scope, env, caller_depth, depth + 1)
                if func.attr == "items":
                    return (
                        *self.key_origins(func.value, scope, env, caller_depth, depth + 1),
                        *self.value_origins(func.value, scope, env, caller_depth, depth + 1),
                    )
            if (
                isinstance(func, ast.Name)
                and func.id
                in ("sorted", "list", "set", "tuple", "reversed", "frozenset", "enumerate")
                and iterable.args
            ):
                return self.element_origins(iterable.args[0], scope, env, caller_depth, depth + 1)
            if isinstance(func, ast.Name) and func.id == "range":
                return (Origin(VALIDATED, "range()"),)
        if isinstance(iterable, ast.Name):
            name = iterable.id
            if name in env.names:
                return env.names[name]
            if scope is not None and name in scope.assigns and name not in scope.guarded:
                out: list[Origin] = []
                key = (id(scope), "elements:" + name)
                if key in self._visiting:
                    return ()
                self._visiting.add(key)
                try:
                    for value, how, _ in scope.assigns[name]:
                        if how in ("=", "+="):
                            if _is_dump(value):
                                out += self.key_origins(value, scope, env, caller_depth, depth + 1)
                            else:
                                out += self.element_origins(
                                    value, scope, env, caller_depth, depth + 1
                                )
                        else:
                            out += self._def_origins(
                                value, how, scope, env, caller_depth, depth + 1
                            )
                    for value, how in scope.appends.get(name, []):
                        if how == "append":
                            out += self.origins(value, scope, env, caller_depth, depth + 1)
                        else:
                            out += self.element_origins(value, scope, env, caller_depth, depth + 1)
                finally:
                    self._visiting.discard(key)
                return tuple(sorted(set(out)))
        if isinstance(iterable, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            inner = self._comprehension_env(iterable.generators, scope, env, depth + 1)
            return self.origins(iterable.elt, scope, inner, caller_depth, depth + 1)
        if _is_dump(iterable):
            return self.key_origins(iterable, scope, env, caller_depth, depth + 1)
        return self.origins(iterable, scope, env, caller_depth, depth + 1)

    def key_origins(
        self, mapping: ast.AST, scope: Scope | None, env: Env, caller_depth: int = 0, depth: int = 0
    ) -> tuple[Origin, ...]:
        """Origins of the keys of a mapping (what `for k in d` / `d.keys()` yields)."""
        if depth > 12:
            return (Origin(UNKNOWN, "too deep to follow"),)
        if isinstance(mapping, ast.Dict):
            out: list[Origin] = []
            for k, v in zip(mapping.keys, mapping.values, strict=True):
                if k is None:
                    out += self.key_origins(v, scope, env, caller_depth, depth + 1)
                else:
                    out += self.origins(k, scope, env, caller_depth, depth + 1)
            return tuple(sorted(set(out))) or (Origin(CONSTANT, "empty dict"),)
        if isinstance(mapping, ast.DictComp):
            inner = self._comprehension_env(mapping.generators, scope, env, depth + 1)
            return self.origins(mapping.key, scope, inner, caller_depth, depth + 1)
        if isinstance(mapping, ast.Call):
            func = mapping.func
            if isinstance(func, ast.Attribute) and func.attr in _DUMP_METHODS:
                model = self._model_of(func.value, scope)
                if model:
                    return (Origin(MODEL_KEYS, f"keys of `{_unparse(mapping)}`", model),)
                return self.origins(func.value, scope, env, caller_depth, depth + 1)
            if isinstance(func, ast.Name) and func.id in ("dict", "vars") and mapping.args:
                model = self._model_of(mapping.args[0], scope)
                if model:
                    return (Origin(MODEL_KEYS, f"keys of `{_unparse(mapping)}`", model),)
                return self.key_origins(mapping.args[0], scope, env, caller_depth, depth + 1)
        if isinstance(mapping, ast.Name) and scope is not None and mapping.id in scope.assigns:
            if mapping.id in scope.guarded:
                return (Origin(ALLOWLISTED, f"checked against {scope.guarded[mapping.id]}"),)
            out = []
            for value, how, _ in scope.assigns[mapping.id]:
                if how == "=":
                    out += self.key_origins(value, scope, env, caller_depth, depth + 1)
                else:
                    out += self._def_origins(value, how, scope, env, caller_depth, depth + 1)
            return tuple(sorted(set(out)))
        if isinstance(mapping, ast.Name) and scope is not None and mapping.id in scope.params:
            model = self._model_of(mapping, scope)
            if model:
                return (Origin(MODEL_KEYS, f"fields of `{mapping.id}`", model),)
        return self.origins(mapping, scope, env, caller_depth, depth + 1)

    def value_origins(
        self, mapping: ast.AST, scope: Scope | None, env: Env, caller_depth: int = 0, depth: int = 0
    ) -> tuple[Origin, ...]:
        """Origins of the values of a mapping (or of a model's dump)."""
        if depth > 12:
            return (Origin(UNKNOWN, "too deep to follow"),)
        if isinstance(mapping, ast.Dict):
            out: list[Origin] = []
            for k, v in zip(mapping.keys, mapping.values, strict=True):
                if k is None:
                    out += self.value_origins(v, scope, env, caller_depth, depth + 1)
                else:
                    out += self.origins(v, scope, env, caller_depth, depth + 1)
            return tuple(sorted(set(out))) or (Origin(CONSTANT, "empty dict"),)
        if (
            isinstance(mapping, ast.Call)
            and isinstance(mapping.func, ast.Attribute)
            and mapping.func.attr in _DUMP_METHODS
        ):
            return self.origins(mapping.func.value, scope, env, caller_depth, depth + 1)
        if isinstance(mapping, ast.Name) and scope is not None and mapping.id in scope.assigns:
            out = []
            for value, how, _ in scope.assigns[mapping.id]:
                if how == "=":
                    out += self.value_origins(value, scope, env, caller_depth, depth + 1)
                else:
                    out += self._def_origins(value, how, scope, env, caller_depth, depth + 1)
            return tuple(sorted(set(out)))
        return self.origins(mapping, scope, env, caller_depth, depth + 1)

    def _model_of(self, expr: ast.AST, scope: Scope | None) -> str:
        """The class of a value, when it is a parameter annotated with a class."""
        if isinstance(expr, ast.Name) and scope is not None and expr.id in scope.params:
            annotation = scope.params[expr.id].annotation
            if annotation is None:
                return ""
            inner = _unwrap_annotation(annotation, self.qualified_name)
            if inner is None or isinstance(inner, (ast.Subscript, ast.Constant)):
                return ""
            name = self.qualified_name(inner) or ""
            if not name or name in _SCALARS or name in ("str", "dict", "list", "typing.Any", "Any"):
                return ""
            return self._class_ref(inner)
        return ""

    # -- candidates ------------------------------------------------------------------------
    def acknowledgements(self) -> dict[int, str]:
        """Line -> comment text of a bandit `nosec` / ruff `noqa` that covers SQL injection: bare,
        or naming B608 / S608 (a `noqa: E501` on a long SQL line is not one)."""
        if self._acks is None:
            acks: dict[int, str] = {}
            if "nosec" in self.source or "noqa" in self.source:
                try:
                    tokens = tokenize.generate_tokens(io.StringIO(self.source).readline)
                    for token in tokens:
                        if token.type == tokenize.COMMENT and _ACK.search(token.string):
                            acks[token.start[0]] = token.string.strip()
                except (tokenize.TokenError, SyntaxError):
                    pass
            self._acks = acks
        return self._acks

    def calls(self) -> list[tuple[ast.Call, Scope | None]]:
        """Every call of the file with its enclosing function (after `index()`)."""
        return list(self._calls)

    def sql_templates(self, call: ast.Call, scope: Scope | None) -> list[Template]:
        """The SQL templates of a call's first argument (for codemods)."""
        if not call.args:
            return []
        return self.templates(call.args[0], scope, Env())

    def collect(self) -> FileFacts:
        classes = collect_classes(self.tree, self.module, self.qualified_name)
        aliases = module_aliases(self.tree, self.module, self.qualified_name)
        constants = module_string_constants(self.tree, self.module)
        if not file_may_have_sql(self.source):
            # No SQL text here, but maybe a wrapper (`def run(self, sql): cur.execute(sql)`)
            # that other files call with SQL: look only at execute-like calls of a name.
            calls = self._all_calls
            if calls is None:
                calls = [n for n in ast.walk(self.tree) if isinstance(n, ast.Call)]
            if not any(_may_pass_through(c) for c in calls):
                return FileFacts(classes=tuple(classes), aliases=aliases, constants=constants)
            self.index()
            passthroughs = [
                self._passthrough(call, scope, scope.params[call.args[0].id])  # type: ignore[attr-defined]
                for call, scope in self._calls
                if scope is not None
                and _may_pass_through(call)
                and call.args[0].id in scope.params  # type: ignore[attr-defined]
                and call.args[0].id not in scope.assigns  # type: ignore[attr-defined]
            ]
            return FileFacts((), tuple(passthroughs), tuple(classes), aliases, constants)
        self.index()
        candidates: list[Candidate] = []
        passthroughs: list[Passthrough] = []
        for call, scope in self._calls:
            for position, arg in _sql_arguments(call):
                if (
                    scope is not None
                    and isinstance(arg, ast.Name)
                    and arg.id in scope.params
                    and arg.id not in scope.assigns
                ):
                    passthroughs.append(self._passthrough(call, scope, scope.params[arg.id]))
                    continue
                if isinstance(arg, ast.Constant):
                    continue
                candidate = self._candidate(call, scope, position, arg)
                if candidate is not None:
                    candidates.append(candidate)
        return FileFacts(tuple(candidates), tuple(passthroughs), tuple(classes), aliases, constants)

    def _call_names(self, call: ast.Call) -> tuple[str, str, bool]:
        func = call.func
        qual = self.qualified_name(func) or _unparse(func)
        if isinstance(func, ast.Attribute):
            return qual, func.attr, True
        if isinstance(func, ast.Name):
            return qual, func.id, False
        return qual, "", False

    def _passthrough(self, call: ast.Call, scope: Scope, param: Param) -> Passthrough:
        qual, method, attribute = self._call_names(call)
        return Passthrough(scope.qualname, scope.node.name, param.index, qual, method, attribute)

    def _candidate(
        self, call: ast.Call, scope: Scope | None, position: int, arg: ast.AST
    ) -> Candidate | None:
        lines: set[int] = set()
        alternatives = self.templates(arg, scope, Env(), 0, lines)
        alternatives = [t for t in alternatives if any(isinstance(p, Hole) for p in t)]
        alternatives = [t for t in alternatives if looks_like_sql(t)]
        if not alternatives:
            return None
        if len(alternatives) == 1 and len(alternatives[0]) == 1:
            return None  # the whole text is one value: passed through, not built here
        slots: list[SlotFact] = []
        statement = ""
        parsed = True
        error = ""
        for template in alternatives:
            result = self._slots_of(template)
            if result is None:
                continue
            st, template_slots, ok, err = result
            statement = statement or st
            if not ok:
                parsed, error = False, error or err
            slots += template_slots
        unique: list[SlotFact] = []
        for slot in slots:
            if slot not in unique:
                unique.append(slot)
        if not unique:
            return None
        qual, method, attribute = self._call_names(call)
        span = set(range(call.lineno, (call.end_lineno or call.lineno) + 1)) | lines
        acks = self.acknowledgements()
        acknowledged = next((acks[line] for line in sorted(span) if line in acks), None)
        symbol = scope.qualname if scope is not None else self.symbol_for(call)
        return Candidate(
            path=self.path,
            line=call.lineno,
            column=call.col_offset,
            end_line=call.end_lineno or call.lineno,
            end_column=call.end_col_offset or 0,
            symbol=symbol,
            call=qual,
            method=method,
            attribute_call=attribute,
            argument=position,
            statement=statement or "UNKNOWN",
            slots=tuple(unique),
            parsed=parsed,
            parse_error=error,
            shape=" | ".join(_shape(t) for t in alternatives),
            acknowledged=acknowledged,
            has_params=len(call.args) > 1 or any(k.arg in _PARAM_KEYWORDS for k in call.keywords),
        )

    def _slots_of(self, template: Template) -> tuple[str, list[SlotFact], bool, str] | None:
        from . import classify as cls_  # sqlglot: only imported once a SQL site is found

        holes = [p for p in template if isinstance(p, Hole)]
        classes = [cls_.Hole(h.text()) if isinstance(h, Hole) else h for h in template]
        result = cls_.classify([p if isinstance(p, str) else cls_.Hole() for p in classes])
        slots: list[SlotFact] = []
        for hole, slot in zip(holes, result.slots, strict=True):
            if hole.elements is not None:
                origins: tuple[Origin, ...] = (
                    Origin(CONSTANT, f"joined from {len(hole.elements)} code-built fragment(s)"),
                )
                slots.append(
                    SlotFact(hole.text(), slot.kind, slot.quoted, origins, _line(hole.expr))
                )
                slots += self._element_slots(template, hole)
                continue
            origins = tuple(sorted(set(self.hole_origins(hole))))
            slots.append(SlotFact(hole.text(), slot.kind, slot.quoted, origins, _line(hole.expr)))
        return result.statement, slots, result.parsed, result.error

    def _element_slots(self, template: Template, join: Hole) -> list[SlotFact]:
        from . import classify as cls_

        """Classify the holes of each fragment a join puts in place, in the statement itself."""
        out: list[SlotFact] = []
        seen: set[str] = set()
        for element in join.elements or []:
            inner = [p for p in element if isinstance(p, Hole)]
            if not inner:
                continue
            key = _shape(element)
            if key in seen:
                continue
            seen.add(key)
            spliced: list[Part] = []
            for part in template:
                if part is join:
                    spliced += element
                else:
                    spliced.append(part)
            holes = [p for p in spliced if isinstance(p, Hole)]
            result = cls_.classify([p if isinstance(p, str) else cls_.Hole() for p in spliced])
            for hole, slot in zip(holes, result.slots, strict=True):
                if not any(hole is h for h in inner):
                    continue
                origins = tuple(sorted(set(self.hole_origins(hole))))
                out.append(
                    SlotFact(
                        hole.text(),
                        slot.kind,
                        slot.quoted,
                        origins,
                        _line(hole.expr),
                        element_of=join.text(),
                    )
                )
        return out


_PARAM_KEYWORDS = {"params", "parameters", "args", "vars", "values"}
_SQL_KEYWORDS = {"sql", "query", "statement", "operation", "stmt", "text"}
_ACK = re.compile(
    r"#.*?\b(?:nosec(?![:\s]*\[?\s*B\d)|nosec[:\s]*\[?[\w\s,]*B608|noqa(?!\s*:)|noqa\s*:[\w\s,]*S608)",
    re.I,
)


class _Unknown:
    pass


_UNKNOWN_ARG = _Unknown()


def _argument_for(call: ast.Call, param: Param) -> ast.AST | _Unknown | None:
    for keyword in call.keywords:
        if keyword.arg == param.name:
            return keyword.value
        if keyword.arg is None:
            return _UNKNOWN_ARG
    if param.index >= 0:
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                return _UNKNOWN_ARG
            if i == param.index:
                return arg
    return None


_DEFAULT_METHODS = tuple(p[2:] for p in DEFAULT_SINKS if p.startswith("*."))


def _may_pass_through(call: ast.Call) -> bool:
    """An execute-like method (by the default sink names) called with a bare name first."""
    return (
        isinstance(call.func, ast.Attribute)
        and bool(call.args)
        and isinstance(call.args[0], ast.Name)
        and _default_method(call.func.attr)
    )


@functools.lru_cache(maxsize=4096)
def _default_method(name: str) -> bool:
    """A method name one of the default sink patterns matches (kept by name: every call of a
    file is asked)."""
    return any(fnmatch.fnmatchcase(name, m) for m in _DEFAULT_METHODS)


def _sql_arguments(call: ast.Call) -> list[tuple[int, ast.AST]]:
    out: list[tuple[int, ast.AST]] = []
    if call.args and not isinstance(call.args[0], ast.Starred):
        out.append((0, call.args[0]))
    for keyword in call.keywords:
        if keyword.arg in _SQL_KEYWORDS:
            out.append((-1, keyword.value))
    return out


def _items_receiver(iterable: ast.AST) -> ast.AST | None:
    """The mapping `d` of `d.items()`, also inside `sorted(...)`, `list(...)` and the like, so
    that `for key, value in sorted(d.items())` binds `key` to the keys and `value` to the values
    (not both to keys and values: a value's origin would be reported for a column name)."""
    while (
        isinstance(iterable, ast.Call)
        and isinstance(iterable.func, ast.Name)
        and iterable.func.id in ("sorted", "list", "tuple", "reversed")
        and len(iterable.args) == 1
    ):
        iterable = iterable.args[0]
    if (
        isinstance(iterable, ast.Call)
        and isinstance(iterable.func, ast.Attribute)
        and iterable.func.attr == "items"
        and not iterable.args
    ):
        return iterable.func.value
    return None


def _is_dump(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _DUMP_METHODS
    )


def _numeric_spec(spec: ast.AST | None) -> bool:
    if isinstance(spec, ast.JoinedStr) and len(spec.values) == 1:
        value = spec.values[0]
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return _numeric_text(value.value)
    return False


def _numeric_text(spec: str | None) -> bool:
    return bool(spec) and spec[-1] in "dxXoeEfFgGn%b"  # type: ignore[index]


def _line(node: ast.AST) -> int:
    return getattr(node, "lineno", 0)


def _note_lines(lines: set[int] | None, node: ast.AST) -> None:
    if lines is not None and hasattr(node, "lineno"):
        lines.update(range(node.lineno, (getattr(node, "end_lineno", None) or node.lineno) + 1))


def _shape(template: Template) -> str:
    out = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
        elif part.elements is not None:
            fragments = sorted({_shape(e) for e in part.elements})
            out.append("{" + part.text() + "=[" + " | ".join(fragments) + "]}")
        else:
            out.append("{" + part.text() + "}")
    return " ".join("".join(out).split())


def _unwrap_annotation(
    annotation: ast.AST, qualify: Callable[[ast.AST], str | None]
) -> ast.AST | None:
    """`Annotated[T, ...]` -> T (None when its metadata is a `Depends`), `T | None` and
    `Optional[T]` -> T (semantic/annotations.py); a union of several types stays as written."""
    core, metadata = semantic_annotations.peel(annotation)
    for meta in metadata:
        if isinstance(meta, ast.Call):
            name = (qualify(meta.func) or "").rsplit(".", 1)[-1]
            if name in ("Depends", "Security"):
                return None
    return core if core is not None else annotation


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_route(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr in _ROUTE_METHODS
        ):
            return True
    return False


def module_string_constants(tree: ast.Module, module: str) -> tuple[str, ...]:
    """`module.NAME` for each name bound exactly once at module level, to a string literal."""
    bound: dict[str, int] = {}
    literal: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.AST | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, (ast.AugAssign, ast.For, ast.With, ast.If, ast.Try)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    bound[sub.id] = bound.get(sub.id, 0) + 2
            continue
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    bound[sub.id] = bound.get(sub.id, 0) + 1
            if isinstance(target, ast.Name) and _is_str_constant(value):
                literal.add(target.id)
    return tuple(sorted(f"{module}.{n}" for n in literal if bound.get(n) == 1))
