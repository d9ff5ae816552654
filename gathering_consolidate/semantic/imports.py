"""Import bindings as Python makes them, for one statement or one file.

`import a.b` binds `a`; `import a.b as c` binds `c -> a.b`; `from a.b import c as d` binds
`d -> a.b.c`; `from ..x import y` in module `p.q.r` binds `y -> p.x.y`. Star imports bind
nothing here: which names they bring needs the other module (the cross-file analyses do it).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator


def package_of(module: str, relpath: str) -> str:
    """The package relative imports in `module` start from (the module itself for a package's
    `__init__.py`)."""
    if relpath.endswith("__init__.py"):
        return module
    return module.rpartition(".")[0]


def from_base(node: ast.ImportFrom, package: str) -> str:
    """The module a `from ... import` reads from, relative levels applied."""
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def bindings(node: ast.Import | ast.ImportFrom, package: str) -> Iterator[tuple[str, str]]:
    """(local name, qualified name) for every name one import statement binds."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                yield alias.asname, alias.name
            else:
                head = alias.name.split(".")[0]
                yield head, head
        return
    base = from_base(node, package)
    for alias in node.names:
        if alias.name != "*":
            yield alias.asname or alias.name, f"{base}.{alias.name}" if base else alias.name


def table(nodes: Iterable[ast.Import | ast.ImportFrom], package: str) -> dict[str, str]:
    """Local name -> qualified name for a file's import statements: plain imports first, then
    `from` imports (a later binding of the same name wins within each kind)."""
    found: dict[str, str] = {}
    ordered = sorted(nodes, key=lambda n: isinstance(n, ast.ImportFrom))
    for node in ordered:
        found.update(bindings(node, package))
    return found


def qualify(expr: ast.AST, table: dict[str, str]) -> str | None:
    """A `Name`/`Attribute` chain with its head resolved through an import table (`table`:
    local name -> qualified name): with `from datetime import datetime`,
    `datetime.utcnow` -> `datetime.datetime.utcnow`. A head no import binds stays as written;
    other shapes give None."""
    parts = dotted(expr)
    if parts is None:
        return None
    return ".".join([table.get(parts[0], parts[0]), *parts[1:]])


def dotted(expr: ast.AST) -> list[str] | None:
    """`a.b.c` as `["a", "b", "c"]`; None for anything but a name or an attribute chain."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    return parts[::-1]


def module_aliases(
    tree: ast.Module, module: str, qualify: Callable[[ast.AST], str | None]
) -> tuple[tuple[str, str], ...]:
    """`module.Name` -> what a module-level `from ... import` binds it to (`qualify`: the file's
    own qualified-name lookup): the re-exports the cross-file models (`ProjectModel.aliases`)
    follow."""
    out: list[tuple[str, str]] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    continue
                local = alias.asname or alias.name
                target = qualify(ast.Name(local))
                if target and target != local:
                    out.append((f"{module}.{local}", target))
    return tuple(out)
