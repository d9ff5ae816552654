"""AST predicates shared by several audit families (kept here so no family imports another's
helpers)."""

from __future__ import annotations

import ast
import re

from .base import FileContext

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(name: str) -> list[str]:
    """`_runScheduleNow` -> ["run", "schedule", "now"]; `send_email` -> ["send", "email"]."""
    return [w for w in _CAMEL.sub("_", name).lower().split("_") if w]


FUNCTION_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def function_nodes(ctx: FileContext) -> dict[int, list[ast.AST]]:
    """`id(function)` -> the nodes of its body, in one walk of the file: nested functions,
    classes and lambdas appear as nodes but their insides belong to them. Decorators, defaults
    and annotations belong to the enclosing scope, where they are evaluated."""

    def compute() -> dict[int, list[ast.AST]]:
        owned: dict[int, list[ast.AST]] = {}
        stack: list[tuple[ast.AST, int]] = [(ctx.tree, 0)]
        while stack:
            node, owner = stack.pop()
            if owner:
                owned[owner].append(node)
            if isinstance(node, (*FUNCTION_DEFS, ast.Lambda)):
                inner = id(node)
                owned.setdefault(inner, [])
                args = node.args
                outer = [
                    *getattr(node, "decorator_list", []),
                    *args.defaults,
                    *(d for d in args.kw_defaults if d is not None),
                ]
                body = node.body if isinstance(node.body, list) else [node.body]
                stack.extend((child, inner) for child in reversed(body))
                stack.extend((child, owner) for child in reversed(outer))
                continue
            # A class body runs once, when the class is defined: not part of any function.
            inner_owner = 0 if isinstance(node, ast.ClassDef) else owner
            stack.extend((child, inner_owner) for child in reversed(_children(node)))
        return owned

    return ctx.memo("fn.nodes", compute)


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
