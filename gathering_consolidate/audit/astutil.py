"""AST predicates shared by several audit families (kept here so no family imports another's
helpers)."""

from __future__ import annotations

import ast
import functools
import re

from ..semantic.context import CHILD_FIELDS, child_fields
from .base import FileContext

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(name: str) -> list[str]:
    """`_runScheduleNow` -> ["run", "schedule", "now"]; `send_email` -> ["send", "email"]."""
    return list(_words(name))


@functools.lru_cache(maxsize=16384)
def _words(name: str) -> tuple[str, ...]:
    # Kept by name: the families split the same identifiers over and over (a fresh list is
    # returned each time, so a caller may change its copy).
    return tuple(w for w in _CAMEL.sub("_", name).lower().split("_") if w)


FUNCTION_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def function_nodes(ctx: FileContext) -> dict[int, list[ast.AST]]:
    """`id(function)` -> the nodes of its body, in one walk of the file: nested functions,
    classes and lambdas appear as nodes but their insides belong to them. Decorators, defaults
    and annotations belong to the enclosing scope, where they are evaluated."""
    return ctx.memo("fn.nodes", lambda: _function_nodes(ctx.tree))


def _function_nodes(tree: ast.Module) -> dict[int, list[ast.AST]]:
    # A depth-first pre-order walk with an explicit stack (no recursion limit): each entry is a
    # node and the list of the function that owns it (None outside any function body). This is
    # the hot loop of several families, hence the local names and the per-type field lists.
    owned: dict[int, list[ast.AST]] = {}
    stack: list[tuple[ast.AST, list[ast.AST] | None]] = [(tree, None)]
    pop, push = stack.pop, stack.append
    AST, ClassDef = ast.AST, ast.ClassDef
    functions = (*FUNCTION_DEFS, ast.Lambda)
    while stack:
        node, out = pop()
        if out is not None:
            out.append(node)
        cls = type(node)
        if cls in functions:
            inner = owned.setdefault(id(node), [])
            body = node.body  # type: ignore[attr-defined]
            if type(body) is list:
                for child in reversed(body):
                    push((child, inner))
            else:
                push((body, inner))
            args = node.args  # type: ignore[attr-defined]
            for default in reversed(args.kw_defaults):
                if default is not None:
                    push((default, out))
            for default in reversed(args.defaults):
                push((default, out))
            for decorator in reversed(getattr(node, "decorator_list", ())):
                push((decorator, out))
            continue
        if cls is ClassDef:
            out = None  # a class body runs once, when the class is defined: no function's
        fields = _PUSH_ORDER.get(cls)
        if fields is None:
            fields = tuple(reversed(child_fields(cls)))
        for name in fields:  # no `ctx`: no expression context is met below
            value = getattr(node, name, None)
            if type(value) is list:
                for item in reversed(value):
                    if isinstance(item, AST):
                        push((item, out))
            elif isinstance(value, AST):
                push((value, out))
    return owned


#: Node type -> its fields that can hold child nodes, last first (the order a stack pushes).
_PUSH_ORDER: dict[type, tuple[str, ...]] = {
    cls: tuple(reversed(fields)) for cls, fields in CHILD_FIELDS.items()
}


def own_nodes(func: ast.AST, ctx: FileContext | None = None) -> list[ast.AST]:
    """The nodes of `func`'s body, not descending into nested functions, classes' methods or
    lambdas (shared per file when `ctx` is given)."""
    if ctx is not None:
        return function_nodes(ctx).get(id(func), [])
    found: list[ast.AST] = []
    stack = list(reversed(getattr(func, "body", [])))
    while stack:
        node = stack.pop()
        found.append(node)
        if isinstance(node, (*FUNCTION_DEFS, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(reversed(_children(node)))
    return found


def _children(node: ast.AST) -> list[ast.AST]:
    """`list(ast.iter_child_nodes(node))` without the generator overhead (this is a hot loop),
    minus the shared expression-context singletons (Load/Store/Del), which carry nothing."""
    found: list[ast.AST] = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, list):
            found.extend(
                v for v in value if isinstance(v, ast.AST) and not isinstance(v, ast.expr_context)
            )
        elif isinstance(value, ast.AST) and not isinstance(value, ast.expr_context):
            found.append(value)
    return found


def is_test_path(relpath: str) -> bool:
    """Test code (`tests/`, `test_*.py`, `*_test.py`, `conftest.py`): fakes there are on purpose."""
    parts = relpath.split("/")
    name = parts[-1]
    return (
        any(p in {"tests", "test", "testing"} for p in parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )
