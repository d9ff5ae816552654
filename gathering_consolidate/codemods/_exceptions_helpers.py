"""Shared by the exception codemods (`narrow-except`, `isolate-handlers`, `lint-guard`): which
names a module binds at run time, how to spell an exception type there (and which import that
needs), and the comments inside a libcst node."""

from __future__ import annotations

import ast
import builtins
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import libcst as cst
import libcst.helpers

from ..audit.base import module_name
from ..model import Finding
from ..semantic import imports as semantic_imports

EXC_RULES = ("EXC001", "EXC002")


def findings_by_path(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.location.path, []).append(finding)
    return grouped


def _is_type_checking(test: ast.expr) -> bool:
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", "")
    return name == "TYPE_CHECKING"


def _module_statements(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import time at module level (into `if`/`try` blocks, not into
    `if TYPE_CHECKING:`, functions or classes)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            if not _is_type_checking(stmt.test):
                yield from _module_statements(stmt.body)
            yield from _module_statements(stmt.orelse)
        elif isinstance(stmt, (ast.Try, ast.TryStar)):
            yield from _module_statements(stmt.body)
            for handler in stmt.handlers:
                yield from _module_statements(handler.body)
            yield from _module_statements(stmt.orelse)
            yield from _module_statements(stmt.finalbody)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            yield from _module_statements(stmt.body)


@dataclass
class ModuleNames:
    """What a module binds at module level at run time: imports (local name -> qualified name,
    relative imports resolved) and every other name (defs, classes, assignments)."""

    module: str
    imports: dict[str, str]
    bound: set[str]
    classes: set[str]

    @classmethod
    def read(cls, tree: ast.Module, path: str) -> ModuleNames:
        module = module_name(path)
        package = semantic_imports.package_of(module, path)
        imports: dict[str, str] = {}
        bound: set[str] = set()
        classes: set[str] = set()
        for stmt in _module_statements(tree.body):
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                for local, target in semantic_imports.bindings(stmt, package):
                    imports[local] = target
                    bound.add(local)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                bound.add(stmt.name)
            elif isinstance(stmt, ast.ClassDef):
                bound.add(stmt.name)
                classes.add(stmt.name)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    bound |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
            elif isinstance(stmt, (ast.For, ast.AsyncFor)):
                bound |= {n.id for n in ast.walk(stmt.target) if isinstance(n, ast.Name)}
        return cls(module, imports, bound, classes)


class Unspellable(Exception):
    """An exception type cannot be named in this module without a clash."""


@dataclass(frozen=True)
class Spelling:
    text: str  # the expression to write in the `except` clause
    module: str | None = None  # an import to add: `import module` or `from module import obj`
    obj: str | None = None


def spell(type_name: str, names: ModuleNames, project_modules: set[str]) -> Spelling:
    """How to write `type_name` (a qualified name, or a bare builtin) in a module, reusing its
    imports where they already bind it. A project type is split at its module (the longest
    prefix that is a project module: `app.mail.Client.Error` is `Client.Error` in `app.mail`)."""
    if "." not in type_name:
        if type_name not in names.bound:
            return Spelling(type_name)
        if isinstance(getattr(builtins, type_name, None), type) and "builtins" not in names.bound:
            return Spelling(f"builtins.{type_name}", "builtins")
        raise Unspellable(f"`{type_name}` is bound to something else in this module")
    for local, target in sorted(names.imports.items()):
        if target == type_name:
            return Spelling(local)
    parts = type_name.split(".")
    module = next(
        (
            ".".join(parts[:i])
            for i in range(len(parts) - 1, 0, -1)
            if ".".join(parts[:i]) in project_modules or ".".join(parts[:i]) == names.module
        ),
        None,
    )
    if module is not None:  # a project type
        inner = type_name[len(module) + 1 :]
        first = inner.split(".")[0]
        if module == names.module:
            if first in names.classes:
                return Spelling(inner)
            raise Unspellable(f"`{first}` is not a class defined at module level here")
        for local, target in sorted(names.imports.items()):
            if target == f"{module}.{first}":
                return Spelling(".".join([local, *inner.split(".")[1:]]))
        if first not in names.bound:
            return Spelling(inner, module, first)
        raise Unspellable(f"`{first}` is bound to something else in this module")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        for local, target in sorted(names.imports.items()):
            if target == prefix and "." not in local:
                return Spelling(".".join([local, *parts[i:]]))
    top = parts[0]
    if top in names.bound and names.imports.get(top) != top:
        raise Unspellable(f"`{top}` is bound to something else in this module")
    return Spelling(type_name, type_name.rpartition(".")[0])


def handlers_in_order(tree: ast.Module) -> list[ast.ExceptHandler]:
    """Every except clause, in source order: the order libcst visits them in."""
    found = [
        handler
        for node in ast.walk(tree)
        if isinstance(node, (ast.Try, ast.TryStar))
        for handler in node.handlers
    ]
    return sorted(found, key=lambda h: (h.lineno, h.col_offset))


def tries_in_order(tree: ast.Module) -> list[ast.Try | ast.TryStar]:
    found = [node for node in ast.walk(tree) if isinstance(node, (ast.Try, ast.TryStar))]
    return sorted(found, key=lambda t: (t.lineno, t.col_offset))


def comments_in(node: cst.CSTNode) -> list[cst.Comment]:
    """Every comment inside a libcst node, in source order."""
    found: list[cst.Comment] = []

    class _Visitor(cst.CSTVisitor):
        def visit_Comment(self, comment: cst.Comment) -> None:
            found.append(comment)

    node.visit(_Visitor())
    return found


def project_modules(paths: Iterable[str]) -> set[str]:
    return {module_name(p) for p in paths}


# -- imports, placed the way isort (and ruff's `I` rules) would ----------------------------------
_FUTURE, _STDLIB, _THIRD, _FIRST, _LOCAL = range(5)


def _section(module: str, level: int, first_party: set[str]) -> int:
    if level:
        return _LOCAL
    top = module.split(".")[0]
    if top == "__future__":
        return _FUTURE
    if top in first_party:
        return _FIRST
    if top in sys.stdlib_module_names:
        return _STDLIB
    return _THIRD


def first_party(project_paths: Iterable[str]) -> set[str]:
    """Top-level package and module names of the project (what isort calls first party)."""
    return {module_name(p).split(".")[0] for p in project_paths}


# -- what ruff reports for broad handlers (ruff 0.6 - 0.17 semantics) ----------------------------
GUARD_CODES = ("BLE001", "E722", "S110", "S112")
_RUFF_LEVELS = frozenset({"debug", "info", "warn", "warning", "error", "critical", "log"})
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.I)
_FILE_NOQA = re.compile(
    r"#\s*(?:ruff|flake8)\s*:\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?",
    re.I,
)


@dataclass(frozen=True)
class GuardHit:
    """A broad handler ruff reports: the `except` line and the codes it reports there; `at` is
    where ruff reports each code (BLE001 is on the line of the broad name, which in a
    parenthesised tuple can be below the `except`), as (code, line) pairs."""

    line: int
    codes: frozenset[str]
    at: tuple[tuple[str, int], ...] = ()


_dotted = semantic_imports.dotted


class _RuffModel:
    """Just enough of ruff's semantic model for BLE001 / S110 / S112 / E722."""

    def __init__(self, tree: ast.Module) -> None:
        self.imports: dict[str, str] = {}
        self.shadowed: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.imports[local] = alias.name if alias.asname else local
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f".{alias.name}"
            elif isinstance(node, ast.ClassDef) and node.name in ("Exception", "BaseException"):
                self.shadowed.add(node.name)
        self.shadowed |= {"Exception", "BaseException"} & set(self.imports)

    def qualified(self, expr: ast.AST) -> str | None:
        parts = _dotted(expr)
        if parts is None or parts[0] not in self.imports:
            return None
        return ".".join([self.imports[parts[0]], *parts[1:]])

    def broad(self, expr: ast.AST | None) -> list[ast.AST]:
        if expr is None:
            return []
        elements = expr.elts if isinstance(expr, ast.Tuple) else [expr]
        return [
            e
            for e in elements
            if isinstance(e, ast.Name)
            and e.id in ("Exception", "BaseException")
            and e.id not in self.shadowed
        ]

    def logger_candidate(self, receiver: ast.AST) -> bool:
        if isinstance(receiver, ast.Call):
            return self.qualified(receiver.func) in ("logging.getLogger", "logging.Logger")
        qualified = self.qualified(receiver)
        if qualified is not None:
            return qualified in ("logging", "flask.current_app.logger")
        parts = _dotted(receiver)
        if parts is None:
            return False
        tail = parts[-1]
        return tail.startswith(("log", "LOG")) or tail.endswith(
            ("logger", "logging", "LOGGER", "LOGGING")
        )

    def logs_exception(self, body: Sequence[ast.stmt]) -> bool:
        for stmt in body:
            if isinstance(
                stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Try, ast.TryStar)
            ):
                continue
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                call = stmt.value
                exc_info = next((k.value for k in call.keywords if k.arg == "exc_info"), None)
                truthy = exc_info is not None and not (
                    isinstance(exc_info, ast.Constant) and not exc_info.value
                )
                func = call.func
                if isinstance(func, ast.Attribute) and self.logger_candidate(func.value):
                    if func.attr == "exception" or (func.attr in _RUFF_LEVELS and truthy):
                        return True
                elif isinstance(func, ast.Name):
                    name = self.qualified(func) or ""
                    if name == "logging.exception" or (
                        name.startswith("logging.") and name[8:] in _RUFF_LEVELS and truthy
                    ):
                        return True
            for field_name in ("body", "orelse", "handlers", "cases"):
                inner = getattr(stmt, field_name, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                    if self.logs_exception(inner):
                        return True
                elif isinstance(inner, list):
                    for case in inner:
                        if isinstance(case, ast.match_case) and self.logs_exception(case.body):
                            return True
        return False


def _reraises(body: Sequence[ast.stmt], bound: str | None) -> bool:
    for node in _walk_statements(body):
        if isinstance(node, ast.Raise):
            if node.exc is None:
                return True
            if bound and isinstance(node.exc, ast.Name) and node.exc.id == bound:
                return True
            if bound and isinstance(node.cause, ast.Name) and node.cause.id == bound:
                return True
    return False


def _walk_statements(body: Sequence[ast.stmt]) -> Iterator[ast.AST]:
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Try, ast.TryStar)
        ):
            continue  # as ruff: a nested try's own raises belong to it
        stack.extend(
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case))
        )


def ruff_guard_hits(
    source: str, tree: ast.Module, *, ignore_noqa: Callable[[str], bool] | None = None
) -> list[GuardHit]:
    """The broad handlers ruff reports with BLE001, S110, S112 and E722 (with ruff's defaults:
    `check-typed-exception = false`, no `logger-objects`), minus `# noqa` on the reported line
    and file-level `# ruff: noqa`. One entry per handler, at its `except` line.

    `ignore_noqa(comment)`: a line `# noqa` for which it is true silences nothing (lint-guard
    reads the handlers its own debt markers cover this way). As ruff, only the first `# noqa`
    of a line counts."""
    model = _RuffModel(tree)
    noqa: dict[int, frozenset[str] | None] = {}
    file_noqa: frozenset[str] | None = frozenset()
    if "noqa" in source:
        for number, text in enumerate(source.splitlines(), start=1):
            if "noqa" not in text:
                continue
            whole = _FILE_NOQA.search(text)
            if whole and text.lstrip().startswith("#"):
                codes = whole["codes"]
                if codes is None:
                    file_noqa = None
                elif file_noqa is not None:
                    file_noqa = file_noqa | frozenset(re.split(r"[,\s]+", codes.upper()))
                continue
            match = _NOQA.search(text)
            if match and not (ignore_noqa is not None and ignore_noqa(text[match.start() :])):
                codes = match["codes"]
                noqa[number] = (
                    None if codes is None else frozenset(re.split(r"[,\s]+", codes.upper()))
                )
    if file_noqa is None:
        return []

    def silenced(line: int, code: str) -> bool:
        if code in file_noqa:
            return True
        if line not in noqa:
            return False
        codes = noqa[line]
        return codes is None or code in codes

    hits = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Try, ast.TryStar)):
            continue
        for handler in node.handlers:
            broad = model.broad(handler.type)
            untyped = handler.type is None or bool(broad)
            body = handler.body
            single = body[0] if len(body) == 1 else None
            candidates = []
            if untyped and isinstance(single, ast.Pass):
                candidates.append(("S110", handler.lineno))
            if untyped and isinstance(single, ast.Continue):
                candidates.append(("S112", handler.lineno))
            if handler.type is None and not any(
                isinstance(s, ast.Raise) and s.exc is None for s in body
            ):
                candidates.append(("E722", handler.lineno))
            if broad and not _reraises(body, handler.name) and not model.logs_exception(body):
                candidates.extend(("BLE001", element.lineno) for element in broad)
            kept = sorted({(c, n) for c, n in candidates if not silenced(n, c)})
            if kept:
                hits.append(GuardHit(handler.lineno, frozenset(c for c, _ in kept), tuple(kept)))
    return sorted(hits, key=lambda h: h.line)


def _statement_info(stmt: ast.stmt, first_party: set[str]) -> tuple[int, tuple[int, str]] | None:
    if isinstance(stmt, ast.Import):
        name = stmt.names[0].name
        return _section(name, 0, first_party), (0, name.lower())
    if isinstance(stmt, ast.ImportFrom):
        name = stmt.module or ""
        return _section(name, stmt.level, first_party), (1, name.lower())
    return None


def add_import_text(source: str, module: str, obj: str | None, first_party: set[str]) -> str:
    """`place_import` on text, for codemods that edit text at `ast` positions: the new import
    goes into its isort section, in order, with a blank line between sections; a one-line
    `from module import ...` of the same module gets the name added."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    body = tree.body
    for stmt in body:
        if (
            isinstance(stmt, ast.Import)
            and obj is None
            and any(a.name == module and a.asname is None for a in stmt.names)
        ):
            return source
        if isinstance(stmt, ast.ImportFrom) and obj is not None and not stmt.level:
            if stmt.module != module:
                continue
            if any(a.name == obj and a.asname is None for a in stmt.names):
                return source
            if stmt.lineno == stmt.end_lineno and not any(a.name == "*" for a in stmt.names):
                line = lines[stmt.lineno - 1]
                raw = line.encode()
                head = raw[: stmt.col_offset].decode()
                tail = raw[stmt.end_col_offset :].decode()
                if "(" in raw[stmt.col_offset : stmt.end_col_offset].decode() or ";" in tail:
                    continue
                names = [
                    a.name if a.asname is None else f"{a.name} as {a.asname}" for a in stmt.names
                ]
                names = sorted([*names, obj], key=lambda n: n.lower())
                lines[stmt.lineno - 1] = f"{head}from {module} import {', '.join(names)}{tail}"
                return "".join(lines)
    text = (f"from {module} import {obj}" if obj else f"import {module}") + newline
    section = _section(module, 0, first_party)
    key = (0 if obj is None else 1, module.lower())
    start = 0
    first_stmt = body[0] if body else None
    if (
        isinstance(first_stmt, ast.Expr)
        and isinstance(first_stmt.value, ast.Constant)
        and isinstance(first_stmt.value.value, str)
    ):
        start = 1
    block = []
    for stmt in body[start:]:
        info = _statement_info(stmt, first_party)
        if info is None:
            break
        block.append((stmt, info[0], info[1]))

    def insert(at_line: int, chunk: str) -> str:
        """Insert `chunk` before 1-based line `at_line` (len(lines) + 1: at the end)."""
        if at_line > len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        lines.insert(at_line - 1, chunk)
        return "".join(lines)

    def blank(line: int) -> bool:
        return 1 <= line <= len(lines) and not lines[line - 1].strip()

    if not block:
        if start:
            after = body[0].end_lineno or body[0].lineno
            chunk = newline + text + ("" if blank(after + 1) else newline)
            return insert(after + 1, chunk)
        first = body[0].lineno if body else len(lines) + 1
        return insert(first, text + (newline if body else ""))
    same = [b for b in block if b[1] == section]
    if same:
        later = [b for b in same if b[2] > key]
        if later:
            return insert(later[0][0].lineno, text)
        last = same[-1][0]
        return insert((last.end_lineno or last.lineno) + 1, text)
    earlier = [b for b in block if b[1] < section]
    if earlier:
        last = earlier[-1][0]
        return insert((last.end_lineno or last.lineno) + 1, newline + text)
    return insert(block[0][0].lineno, text + newline)
