"""The per-file semantic model: one parsed module and the lookups every family, the index and
the codemods share (nodes by type and parents from one breadth-first walk, enclosing symbols,
the import table, qualified names). Below the audit layer: it knows nothing of checks or
findings (`audit.base.FileContext` adds those)."""

from __future__ import annotations

import ast
import bisect
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from . import imports


def module_name(relpath: str) -> str:
    """`src/app/api/auth.py` -> `app.api.auth`; `app/__init__.py` -> `app`."""
    parts = relpath.removesuffix(".py").removesuffix(".pyi").split("/")
    if parts and parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__init__"


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

#: Fields that never hold a node, whatever the node type (identifiers, numbers, flags, the
#: expression context singletons), and `Constant.value`: walks skip them.
_LEAF_FIELDS = frozenset(
    {"ctx", "id", "attr", "arg", "asname", "module", "level", "kind", "type_comment"}
    | {"conversion", "is_async", "tag"}
)


def _fields_holding_nodes(cls: type) -> tuple[str, ...]:
    return tuple(
        f
        for f in getattr(cls, "_fields", ())
        if f not in _LEAF_FIELDS and not (cls is ast.Constant and f == "value")
    )


def _node_classes() -> list[type]:
    found: list[type] = []
    stack: list[type] = [ast.AST]
    while stack:
        cls = stack.pop()
        if cls not in found:
            found.append(cls)
            stack.extend(cls.__subclasses__())
    return found


#: Node type -> the fields that can hold child nodes, for every node type `ast` defines (built
#: once at import; read-only).
CHILD_FIELDS: dict[type, tuple[str, ...]] = {
    cls: _fields_holding_nodes(cls) for cls in _node_classes()
}


def child_fields(cls: type) -> tuple[str, ...]:
    """The fields of node type `cls` that can hold child nodes, in `_fields` order (a table the
    hot walks share: skipping `Name.id` and the like is a good part of their time)."""
    found = CHILD_FIELDS.get(cls)
    return found if found is not None else _fields_holding_nodes(cls)


def _symbol_spans(body: Iterable[ast.AST], prefix: str, spans: list[tuple[int, int, str]]) -> None:
    """(first line, last line, qualified name) of every function and class in `body`, nested
    ones too. A module-level function, not a recursive closure: a closure that calls itself is a
    reference cycle, which keeps the file's tree alive until the cyclic collector runs."""
    for item in body:
        if isinstance(item, _DEFS):
            qual = f"{prefix}.{item.name}"
            start = min([item.lineno] + [d.lineno for d in item.decorator_list])
            spans.append((start, item.end_lineno or item.lineno, qual))
            _symbol_spans(item.body, qual, spans)
        elif isinstance(item, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            _symbol_spans(ast.iter_child_nodes(item), prefix, spans)


class ParsedModule:
    """One parsed file, with the lookups every family, the index and the codemods share: nodes
    by type, parents, enclosing symbols, import aliases, qualified names. Everything is
    computed on first use and kept for the next user."""

    def __init__(self, relpath: str, source: str, tree: ast.Module):
        self.path = relpath
        self.module = module_name(relpath)
        self.source = source
        self.tree = tree
        self._lines: list[str] | None = None
        self._by_type: dict[type, list[ast.AST]] | None = None
        self._parents: dict[ast.AST, ast.AST] | None = None
        self._scopes: tuple[list[int], list[tuple[int, int, str]]] | None = None
        self._imports: dict[str, str] | None = None
        self._qualified: dict[ast.AST, str | None] = {}
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
        AST, table = ast.AST, CHILD_FIELDS
        while queue:
            node = pop()
            cls = type(node)
            by_type[cls].append(node)
            fields = table.get(cls)
            if fields is None:
                fields = child_fields(cls)
            for name in fields:  # no `ctx`: no expression context is met below
                value = getattr(node, name, None)
                if type(value) is list:
                    for item in value:
                        if isinstance(item, AST):
                            parents[item] = node
                            push(item)
                elif isinstance(value, AST):
                    parents[value] = node
                    push(value)
        self._by_type, self._parents = by_type, parents

    def release(self) -> None:
        """Forget what was computed for this file (the analyses its checks shared, the node
        index, the qualified names) once the file is done. What those hold is then freed at once
        by reference counting; kept, it waits in reference cycles through this object for the
        cyclic collector, which the audit pauses (its collections of such trees were a third of
        a cold run)."""
        self._memo.clear()
        self._qualified.clear()
        self._by_type = self._parents = None
        self._scopes = self._imports = None
        self._lines = None

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
            _symbol_spans(self.tree.body, self.module, spans)
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
        Names not bound by an import resolve to themselves (`foo.bar`); other shapes to None.
        Kept per node: the families ask for the same callees many times (the cache holds the
        node, so its id is not reused while the answer is kept)."""
        known = self._qualified
        if expr in known:
            return known[expr]
        found = known[expr] = imports.qualify(expr, self.imports)
        return found

    def snippet(self, node: ast.AST) -> str:
        start = getattr(node, "lineno", 1)
        end = getattr(node, "end_lineno", None) or start
        return "\n".join(self.lines[start - 1 : end])
