"""Static test inventory: every test pytest would collect, read with `ast` (the target is never
imported nor run).

Honours the target's pytest configuration (`pytest_config`): `testpaths`, `python_files`,
`python_classes`, `python_functions`, `norecursedirs`, `--ignore`/`--deselect` in `addopts`,
`collect_ignore` lists of `conftest.py` files, `__test__ = False`. Collected: functions, methods of
test classes (inherited ones too, and those of `unittest.TestCase` subclasses whatever their
name), parametrized cases as pytest counts and names them (literal parameter lists, `ids`,
stacked decorators, `pytest.param(..., id=, marks=)`, parametrized fixtures, module and class
`pytestmark`), with the fixtures each test uses, its marks, and its skips and xfails (reasons
and conditions). What a static reading cannot see (hooks in `conftest.py` that generate or drop
tests, parameter lists computed at run time, `-m`/`-k` in `addopts`) is listed in `limits`, never
guessed silently.
"""

from __future__ import annotations

import ast
import enum
import fnmatch
import hashlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .pytest_config import PytestConfig, load_pytest_config, matches_prefix_or_glob

#: Marks pytest itself defines (never need registering).
BUILTIN_MARKS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings"}
)
#: Hooks in conftest.py files that change what is collected: reported as limits.
COLLECTION_HOOKS = frozenset(
    {
        "pytest_generate_tests",
        "pytest_collection_modifyitems",
        "pytest_collect_file",
        "pytest_ignore_collect",
        "pytest_pycollect_makeitem",
        "pytest_pycollect_makemodule",
        "pytest_collect_directory",
        "pytest_deselected",
    }
)
_UNITTEST_BASES = frozenset(
    {
        "unittest.TestCase",
        "unittest.IsolatedAsyncioTestCase",
        "unittest.case.TestCase",
        "django.test.TestCase",
        "django.test.SimpleTestCase",
        "django.test.TransactionTestCase",
        "asynctest.TestCase",
    }
)
_ISSUE = re.compile(
    r"(?:(?<![\w&])#\d+\b|\b(?:GH|gh)-\d+\b|\b[A-Z][A-Z0-9]+-\d+\b|"
    r"https?://\S+/(?:issues|pull|pulls|merge_requests|tickets?|browse)/[\w-]+|"
    r"\bissue\s+\d+\b)"
)


def issue_reference(text: str | None) -> str | None:
    """The first issue reference in a skip/xfail reason (`#157`, `GH-12`, `PROJ-42`, an issue
    URL), or None."""
    if not text:
        return None
    found = _ISSUE.search(text)
    return found.group(0) if found else None


# -- data ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mark:
    """A mark as written: `name`, its source, where it applies from (`function`, `class`,
    `module`, `param`), and for skip/skipif/xfail the reason and condition."""

    name: str
    source: str
    level: str
    line: int
    reason: str | None = None
    condition: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "level": self.level, "line": self.line}
        if self.reason is not None:
            data["reason"] = self.reason
        if self.condition is not None:
            data["condition"] = self.condition
        return data


@dataclass(frozen=True)
class Skip:
    """A skip or xfail of one test: by mark (`skip`, `skipif`, `xfail`) or by a call in its body
    (`pytest.skip(...)`, `pytest.xfail(...)`)."""

    kind: str  # skip | skipif | xfail | skip-call | xfail-call | importorskip
    reason: str
    condition: str | None
    line: int
    issue: str | None

    @property
    def is_xfail(self) -> bool:
        return self.kind.startswith("xfail")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "condition": self.condition,
            "line": self.line,
            "issue": self.issue,
        }


@dataclass
class TestItem:
    """One collected test (one parametrized case is one item)."""

    __test__ = False  # not a pytest test class, wherever it is imported

    nodeid: str
    path: str  # rootdir-relative POSIX path of the file
    name: str  # `test_x` or `TestClass::test_x` (no parameter id)
    line: int
    params: str | None = None  # the parameter id, `a-1`
    marks: list[Mark] = field(default_factory=list)
    fixtures: list[str] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    kind: str = "function"  # function | method | unittest
    uncertain: str | None = None  # why the id may differ from pytest's

    @property
    def function_id(self) -> str:
        return f"{self.path}::{self.name}"

    @property
    def mark_names(self) -> set[str]:
        return {m.name for m in self.marks}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nodeid": self.nodeid,
            "path": self.path,
            "name": self.name,
            "line": self.line,
            "kind": self.kind,
            "marks": sorted({m.name for m in self.marks}),
            "fixtures": self.fixtures,
            "skips": [s.to_dict() for s in self.skips],
        }
        if self.params is not None:
            data["params"] = self.params
        if self.uncertain:
            data["uncertain"] = self.uncertain
        return data


@dataclass
class Fixture:
    name: str
    path: str
    line: int
    node: ast.FunctionDef | ast.AsyncFunctionDef
    module: ModuleInfo
    autouse: bool = False
    params: list[str] | None = None  # ids of a parametrized fixture
    depends: list[str] = field(default_factory=list)


@dataclass
class ModuleInfo:
    """One parsed test or conftest module."""

    path: str  # rootdir-relative
    tree: ast.Module
    source: str
    imports: dict[str, str]
    constants: dict[str, ast.expr]
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    classes: dict[str, ast.ClassDef]
    fixtures: dict[str, Fixture] = field(default_factory=dict)

    def snippet(self, node: ast.AST) -> str:
        """The source text of a node (one split of the file, shared by every call)."""
        lines = self.__dict__.get("_lines")
        if lines is None:
            lines = self.__dict__["_lines"] = self.source.splitlines(keepends=True)
        start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        first, last = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
        if start is None or end is None or first is None or last is None or end > len(lines):
            return ast.unparse(node)
        if start == end:
            text = lines[start - 1].encode("utf-8")[first:last]
            return text.decode("utf-8", "replace")
        head = lines[start - 1].encode("utf-8")[first:].decode("utf-8", "replace")
        tail = lines[end - 1].encode("utf-8")[:last].decode("utf-8", "replace")
        return head + "".join(lines[start : end - 1]) + tail


@dataclass
class Inventory:
    root: Path
    config: PytestConfig
    items: list[TestItem]
    files: list[str]  # test files (rootdir-relative)
    conftests: list[str]
    errors: list[tuple[str, str]]  # (path, reason): files pytest could not import either
    limits: list[str]
    args: list[str]  # what was collected (rootdir-relative; empty: testpaths or rootdir)
    modules: dict[str, ModuleInfo] = field(default_factory=dict, repr=False)

    @property
    def total(self) -> int:
        return len(self.items)

    def by_file(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.path] = counts.get(item.path, 0) + 1
        return counts

    def fixtures_for(self, path: str) -> dict[str, Fixture]:
        """The fixtures visible from a test file: its conftests (rootdir down), then its own."""
        found: dict[str, Fixture] = {}
        parts = path.split("/")[:-1]
        for depth in range(len(parts) + 1):
            conftest = "/".join([*parts[:depth], "conftest.py"])
            module = self.modules.get(conftest)
            if module is not None:
                found.update(module.fixtures)
        own = self.modules.get(path)
        if own is not None:
            found.update(own.fixtures)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "config": self.config.to_dict(),
            "total": self.total,
            "files": self.by_file(),
            "conftests": self.conftests,
            "errors": [{"path": p, "reason": r} for p, r in self.errors],
            "limits": self.limits,
            "items": [item.to_dict() for item in self.items],
        }


# -- discovery -------------------------------------------------------------------------------------
def _in_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file() or (
        (path / "bin" / "activate").is_file() or (path / "Scripts" / "activate.bat").is_file()
    )


def _rel(path: Path, root: Path) -> str:
    try:
        rel = Path(os.path.abspath(path)).relative_to(root)
    except ValueError:
        rel = path.resolve().relative_to(root)
    return rel.as_posix() if rel.parts else "."


def _matches_python_files(name: str, relpath: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatch(relpath, pattern) or fnmatch.fnmatch(relpath, "*/" + pattern):
                return True
        elif fnmatch.fnmatch(name, pattern):
            return True
    return False


def _collect_ignore(conftest: ModuleInfo | None) -> tuple[list[str], list[str]]:
    """`collect_ignore` / `collect_ignore_glob` literal lists of a conftest (relative to it)."""
    if conftest is None:
        return [], []
    found: dict[str, list[str]] = {"collect_ignore": [], "collect_ignore_glob": []}
    for node in conftest.tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, value = [node.target.id], node.value
        else:
            continue
        for name in targets:
            if name in found and isinstance(value, (ast.List, ast.Tuple)):
                found[name] = [
                    e.value
                    for e in value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
    return found["collect_ignore"], found["collect_ignore_glob"]


class _Collector:
    def __init__(self, root: Path, config: PytestConfig):
        self.root = root
        self.config = config
        self.modules: dict[str, ModuleInfo] = {}
        self.errors: list[tuple[str, str]] = []
        self.limits: list[str] = list(config.limits)
        self.files: list[str] = []
        self.conftests: list[str] = []
        self.items: list[TestItem] = []
        self._class_cache: dict[str, ModuleInfo | None] = {}
        self._conftest_folders: set[Path] = set()
        self._import_names: dict[str, Path] = {}
        self._skip_cache: dict[int, list[Skip]] = {}

    # - files
    def walk(self, start: Path) -> Iterator[Path]:
        if start.is_file():
            yield start
            return
        conftest = start / "conftest.py"
        ignored, ignored_glob = self._ignores(conftest)
        try:
            entries = sorted(os.scandir(start), key=lambda e: e.name)
        except OSError as exc:
            self.errors.append((_rel(start, self.root), f"cannot list: {exc.strerror}"))
            return
        for entry in entries:
            path = Path(entry.path)
            if self._ignored(path, ignored, ignored_glob):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name == "__pycache__" or any(
                    fnmatch.fnmatch(entry.name, pattern) for pattern in self.config.norecursedirs
                ):
                    continue
                if _in_virtualenv(path):
                    continue
                yield from self.walk(path)
            elif entry.is_file() and entry.name.endswith(".py"):
                rel = _rel(path, self.root)
                if entry.name != "conftest.py" and _matches_python_files(
                    entry.name, rel, self.config.python_files
                ):
                    yield path

    def _ignores(self, conftest: Path) -> tuple[list[Path], list[str]]:
        if not conftest.is_file():
            return [], []
        module = self.load(conftest)
        names, globs = _collect_ignore(module)
        base = conftest.parent
        return [(base / n).resolve() for n in names], [str(base / g) for g in globs]

    def _ignored(self, path: Path, ignored: list[Path], globs: list[str]) -> bool:
        resolved = path.resolve()
        if resolved in ignored:
            return True
        if any(fnmatch.fnmatch(str(path), g) for g in globs):
            return True
        for option in self.config.ignore:
            if resolved == (self.root / option).resolve():
                return True
        return any(fnmatch.fnmatch(str(path), str(self.root / g)) for g in self.config.ignore_glob)

    def load(self, path: Path) -> ModuleInfo | None:
        rel = _rel(path, self.root)
        if rel in self.modules:
            return self.modules[rel]
        try:
            source = path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append((rel, f"cannot read: {exc}"))
            return None
        from .. import parsing

        try:
            tree = parsing.parse(source, rel, target=(3, 99)).tree
        except parsing.ParseError as exc:
            self.errors.append((rel, exc.reason))
            return None
        module = _module_info(rel, tree, source)
        module.__dict__["resolver"] = self.module_by_name
        module.__dict__["long_str"] = self.config.long_str_strategy
        self.modules[rel] = module
        if path.name == "conftest.py":
            self.conftests.append(rel)
            hooks = sorted(
                f.name
                for f in tree.body
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                and f.name in COLLECTION_HOOKS
            )
            for hook in hooks:
                self.limits.append(
                    f"{rel} defines `{hook}`: tests it adds, drops or parametrizes are not seen"
                )
        for hook in ("pytest_generate_tests",):
            if path.name != "conftest.py" and hook in module.functions:
                self.limits.append(f"{rel} defines `{hook}`: its parametrization is not seen")
        return module

    # - conftests up the tree
    def load_conftests(self, file: Path) -> None:
        folder = Path(os.path.abspath(file.parent))
        if folder in self._conftest_folders:
            return
        self._conftest_folders.add(folder)
        chain = []
        while True:
            chain.append(folder)
            if folder == self.root or self.root not in folder.parents:
                break
            folder = folder.parent
        for folder in reversed(chain):
            conftest = folder / "conftest.py"
            if conftest.is_file():
                self.load(conftest)

    # - tests in one module
    def import_name(self, path: Path) -> str:
        """The module name pytest's default import mode gives a test file: its basename, with
        the packages (`__init__.py` folders) around it."""
        parts = [path.stem]
        folder = path.parent
        while (folder / "__init__.py").is_file() and folder != folder.parent:
            parts.insert(0, folder.name)
            folder = folder.parent
        return ".".join(parts)

    def collect_module(self, path: Path) -> None:
        if self.config.import_mode in ("prepend", "append"):
            name = self.import_name(path)
            first = self._import_names.setdefault(name, path)
            if first != path:
                rel = _rel(path, self.root)
                self.errors.append(
                    (
                        rel,
                        f"import file mismatch: module `{name}` is already"
                        f" {_rel(first, self.root)}; pytest reports a collection error here"
                        " (rename one, or add `__init__.py` files)",
                    )
                )
                return
        module = self.load(path)
        if module is None:
            return
        self.files.append(module.path)
        self.load_conftests(path)
        if _false_test_flag(module.tree.body):
            return
        for node in module.tree.body:
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                name = _call_name(node.value, module)
                if name in ("pytest.importorskip", "pytest.skip"):
                    self.limits.append(
                        f"{module.path}:{node.lineno}: module-level `{name}`: counted; pytest"
                        " collects nothing here when it skips"
                    )
        module_marks = _pytestmark(module.tree.body, module, "module")
        fixtures = self.visible_fixtures(module)
        seen: set[str] = set()
        # The module namespace: a later definition of a name replaces the earlier one.
        last: dict[str, ast.stmt] = {}
        for node in module.tree.body:
            for name in _bound_names(node):
                last[name] = node
        for node in module.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if last.get(node.name) is not node or node.name in seen:
                    continue
                seen.add(node.name)
                if matches_prefix_or_glob(
                    node.name, self.config.python_functions
                ) and not _is_fixture(node, module):
                    self.add_function(module, node, [], module_marks, fixtures, node.name)
            elif isinstance(node, ast.ClassDef):
                if last.get(node.name) is not node:
                    continue
                self.collect_class(module, node, [], module_marks, fixtures)
            elif isinstance(node, ast.ImportFrom):
                self.collect_imported(module, node, last, module_marks, fixtures)

    def collect_imported(
        self,
        module: ModuleInfo,
        node: ast.ImportFrom,
        last: dict[str, ast.stmt],
        module_marks: list[Mark],
        fixtures: dict[str, Fixture],
    ) -> None:
        """pytest collects test functions and classes a test module imports, under that
        module's name for them."""
        from ..semantic import imports as imports_mod
        from ..semantic.context import module_name

        for alias in node.names:
            local = alias.asname or alias.name
            if alias.name == "*" or last.get(local) is not node:
                continue
            is_function = matches_prefix_or_glob(local, self.config.python_functions)
            is_class = matches_prefix_or_glob(local, self.config.python_classes)
            if not (is_function or is_class):
                continue
            package = imports_mod.package_of(module_name(module.path), module.path)
            base = imports_mod.from_base(node, package)
            other = self.module_by_name(base)
            if other is None:
                # a class from a library (`TestClient`, `TestCase`) has an `__init__` or no
                # tests: pytest collects nothing from it; a function would be a test
                if not is_function:
                    continue
                self.limits.append(
                    f"{module.path}:{node.lineno}: imports `{alias.name}` from `{base}`, which"
                    " is not in the project: its tests are not counted"
                )
                continue
            function = other.functions.get(alias.name)
            cls = other.classes.get(alias.name)
            if function is not None and is_function and not _is_fixture(function, other):
                self.add_function(module, function, [], module_marks, fixtures, local, owner=other)
            elif cls is not None:
                self.collect_class(module, cls, [], module_marks, fixtures, owner=other, name=local)

    def visible_fixtures(self, module: ModuleInfo) -> dict[str, Fixture]:
        found: dict[str, Fixture] = {}
        parts = module.path.split("/")[:-1]
        for depth in range(len(parts) + 1):
            conftest = self.modules.get("/".join([*parts[:depth], "conftest.py"]))
            if conftest is not None:
                found.update(conftest.fixtures)
        found.update(module.fixtures)
        return found

    def collect_class(
        self,
        module: ModuleInfo,
        cls: ast.ClassDef,
        outer: list[str],
        inherited_marks: list[Mark],
        fixtures: dict[str, Fixture],
        owner: ModuleInfo | None = None,
        name: str | None = None,
    ) -> None:
        home = owner or module  # the module the class is defined in
        unittest = self.is_unittest(home, cls)
        if not unittest and not matches_prefix_or_glob(
            name or cls.name, self.config.python_classes
        ):
            return
        chain = self.class_chain(home, cls)
        bodies = [stmt for _, klass in chain for stmt in klass.body]
        if _false_test_flag(bodies):
            return
        if not unittest and any(
            isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == "__init__"
            for s in bodies
        ):
            self.limits.append(
                f"{module.path}:{cls.lineno}: class `{cls.name}` has an `__init__`: pytest does"
                " not collect it"
            )
            return
        path = [*outer, name or cls.name]
        marks = list(inherited_marks)
        class_marks: list[Mark] = []
        for owner, klass in reversed(chain):
            class_marks = (
                _decorator_marks(klass.decorator_list, owner, "class")
                + _pytestmark(klass.body, owner, "class")
                + class_marks
            )
        marks = class_marks + marks
        class_fixtures = dict(fixtures)
        for owner, klass in reversed(chain):
            for stmt in klass.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_fixture(
                    stmt, owner
                ):
                    fixture = _fixture(stmt, owner)
                    class_fixtures[fixture.name] = fixture
        done: set[str] = set()
        for owner, klass in chain:  # the class itself first, then its bases (MRO-ish)
            for stmt in klass.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if stmt.name in done:
                        continue
                    done.add(stmt.name)
                    if unittest:
                        if stmt.name.startswith("test"):
                            self.add_unittest(module, owner, stmt, path, marks)
                    elif matches_prefix_or_glob(
                        stmt.name, self.config.python_functions
                    ) and not _is_fixture(stmt, owner):
                        self.add_function(
                            module, stmt, path, marks, class_fixtures, stmt.name, owner=owner
                        )
                elif isinstance(stmt, ast.ClassDef) and not unittest and owner is module:
                    if stmt.name not in done:
                        done.add(stmt.name)
                        self.collect_class(module, stmt, path, marks, class_fixtures)
                elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                    done.update(_bound_names(stmt))

    def is_unittest(self, module: ModuleInfo, cls: ast.ClassDef, depth: int = 0) -> bool:
        if depth > 10:
            return False
        for base in cls.bases:
            qualified = _qualify(base, module)
            if (
                qualified in _UNITTEST_BASES
                or (qualified or "").endswith(".TestCase")
                or (qualified == "TestCase")
            ):
                return True
            found = self.resolve_class(module, base)
            if found is not None and self.is_unittest(found[0], found[1], depth + 1):
                return True
        return False

    def class_chain(
        self, module: ModuleInfo, cls: ast.ClassDef
    ) -> list[tuple[ModuleInfo, ast.ClassDef]]:
        """The class and the bases this inventory can read (same file, or a project file),
        nearest first."""
        chain: list[tuple[ModuleInfo, ast.ClassDef]] = [(module, cls)]
        queue = [(module, cls)]
        seen = {id(cls)}
        while queue and len(chain) < 20:
            owner, klass = queue.pop(0)
            for base in klass.bases:
                found = self.resolve_class(owner, base)
                if found is not None and id(found[1]) not in seen:
                    seen.add(id(found[1]))
                    chain.append(found)
                    queue.append(found)
        return chain

    def resolve_class(
        self, module: ModuleInfo, base: ast.expr
    ) -> tuple[ModuleInfo, ast.ClassDef] | None:
        if isinstance(base, ast.Name) and base.id in module.classes:
            return module, module.classes[base.id]
        qualified = _qualify(base, module)
        if not qualified or "." not in qualified:
            return None
        modname, _, name = qualified.rpartition(".")
        other = self.module_by_name(modname)
        if other is not None and name in other.classes:
            return other, other.classes[name]
        return None

    def module_by_name(self, modname: str) -> ModuleInfo | None:
        if modname in self._class_cache:
            return self._class_cache[modname]
        rel = modname.replace(".", "/")
        found = None
        for candidate in (f"{rel}.py", f"{rel}/__init__.py", f"src/{rel}.py"):
            path = self.root / candidate
            if path.is_file():
                found = self.load(path)
                break
        self._class_cache[modname] = found
        return found

    def add_unittest(
        self,
        module: ModuleInfo,
        owner: ModuleInfo,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        path: list[str],
        marks: list[Mark],
    ) -> None:
        name = "::".join([*path, node.name])
        own = _decorator_marks(node.decorator_list, owner, "function")
        item = TestItem(
            nodeid=f"{module.path}::{name}",
            path=module.path,
            name=name,
            line=node.lineno,
            marks=own + marks,
            kind="unittest",
        )
        item.skips = _skips(item.marks, node, owner)
        self.items.append(item)

    def add_function(
        self,
        module: ModuleInfo,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        path: list[str],
        outer_marks: list[Mark],
        fixtures: dict[str, Fixture],
        name: str,
        owner: ModuleInfo | None = None,
    ) -> None:
        owner = owner or module
        qualname = "::".join([*path, name])
        own = _decorator_marks(node.decorator_list, owner, "function")
        marks = own + outer_marks
        argnames = _argnames(node, method=bool(path))
        # parametrize marks in pytest's order: the function's (nearest decorator first), then
        # the class's, then the module's
        cases: list[tuple[list[str], list[Mark]]] = [([], [])]
        uncertain: list[str] = []
        parametrized: set[str] = set()
        param_marks = [m for m in marks if m.name == "parametrize"]
        param_nodes = _parametrize_nodes(node, owner, module, path)
        usefixtures = [a for m in marks if m.name == "usefixtures" for a in _string_args(m.source)]
        for call, where in param_nodes:
            names, sets, why = _parameter_sets(call, where)
            parametrized.update(names)
            if why:
                uncertain.append(why)
            cases = [([*ids, pid], ms + pms) for ids, ms in cases for pid, pms in sets]
        del param_marks
        closure = _closure(argnames + usefixtures, fixtures, parametrized)
        fixture_cases: list[tuple[list[str], list[Mark]]] = [([], [])]
        for fixture_name in closure:
            fixture = fixtures.get(fixture_name)
            if fixture is not None and fixture.params is not None:
                fixture_cases = [
                    ([*ids, pid], ms) for ids, ms in fixture_cases for pid in fixture.params
                ]
        combined = [(f_ids + ids, ms) for f_ids, _ in fixture_cases for ids, ms in cases]
        for ids, extra in combined:
            params = "-".join(ids) if ids else None
            nodeid = f"{module.path}::{qualname}" + (f"[{params}]" if params is not None else "")
            item = TestItem(
                nodeid=nodeid,
                path=module.path,
                name=qualname,
                line=node.lineno,
                params=params,
                marks=marks + extra,
                fixtures=[f for f in closure if f != "request"],
                kind="method" if path else "function",
                uncertain="; ".join(uncertain) or None,
            )
            item.skips = _skips(item.marks, node, owner)
            self.items.append(item)


# -- module facts ---------------------------------------------------------------------------------
def _module_info(rel: str, tree: ast.Module, source: str) -> ModuleInfo:
    from ..semantic import imports as imports_mod
    from ..semantic.context import module_name

    modname = module_name(rel)
    package = imports_mod.package_of(modname, rel)
    table = imports_mod.table(list(_import_statements(tree.body)), package)
    constants: dict[str, ast.expr] = {}
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    classes: dict[str, ast.ClassDef] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                constants[target.id] = node.value
            elif (
                isinstance(target, ast.Tuple)
                and isinstance(node.value, ast.Tuple)
                and len(target.elts) == len(node.value.elts)
            ):  # `STRONG, WEAK = 2, 1`
                for name, value in zip(target.elts, node.value.elts, strict=True):
                    if isinstance(name, ast.Name):
                        constants[name.id] = value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            constants[node.target.id] = node.value
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = node
    module = ModuleInfo(rel, tree, source, table, constants, functions, classes)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_fixture(node, module):
            fixture = _fixture(node, module)
            module.fixtures[fixture.name] = fixture
    return module


def _import_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (imports are statements: no need to walk the
    expressions)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        for name in ("body", "orelse", "finalbody"):
            inner = getattr(node, name, None)
            if isinstance(inner, list):
                yield from _import_statements(inner)
        for handler in getattr(node, "handlers", None) or []:
            yield from _import_statements(handler.body)
        for case in getattr(node, "cases", None) or []:
            yield from _import_statements(case.body)


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.ImportFrom):
        return [a.asname or a.name for a in node.names if a.name != "*"]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _false_test_flag(body: list[ast.stmt]) -> bool:
    for node in body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__test__" for t in node.targets
        ):
            return isinstance(node.value, ast.Constant) and node.value.value is False
    return False


def _qualify(expr: ast.AST, module: ModuleInfo) -> str | None:
    from ..semantic import imports as imports_mod

    return imports_mod.qualify(expr, module.imports)


def _call_name(call: ast.Call, module: ModuleInfo) -> str | None:
    return _qualify(call.func, module)


def _mark_name(expr: ast.expr, module: ModuleInfo, depth: int = 0) -> tuple[str, ast.expr] | None:
    """`pytest.mark.NAME` / `pytest.mark.NAME(...)` (any import spelling) -> (NAME, the call or
    attribute); a module-level name bound to a mark resolves too."""
    target = expr.func if isinstance(expr, ast.Call) else expr
    qualified = _qualify(target, module)
    if qualified:
        parts = qualified.split(".")
        if len(parts) == 3 and parts[0] == "pytest" and parts[1] == "mark":
            return parts[2], expr
        if len(parts) == 2 and parts[0] in ("_pytest.mark", "pytest.mark"):
            return parts[1], expr
    if (
        depth < 3
        and isinstance(target, ast.Name)
        and target.id in module.constants
        and not isinstance(expr, ast.Call)
    ):
        return _mark_name(module.constants[target.id], module, depth + 1)
    if qualified and qualified.startswith("unittest."):
        name = qualified.rsplit(".", 1)[1]
        mapped = {"skip": "skip", "skipIf": "skipif", "skipUnless": "skipif"}
        if name == "expectedFailure":
            return "xfail", expr
        if name in mapped:
            return mapped[name], expr
    return None


def _mark(expr: ast.expr, module: ModuleInfo, level: str) -> Mark | None:
    found = _mark_name(expr, module)
    if found is None:
        return None
    name, node = found
    source = module.snippet(expr)
    reason = condition = None
    call = node if isinstance(node, ast.Call) else None
    if call is None and isinstance(expr, ast.Name):
        resolved = module.constants.get(expr.id)
        call = resolved if isinstance(resolved, ast.Call) else None
    if call is not None and name in ("skip", "skipif", "xfail"):
        unittest_style = (_qualify(call.func, module) or "").startswith("unittest.")
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        reason_node = keywords.get("reason")
        args = list(call.args)
        if unittest_style:
            if name == "skip" and args:
                reason_node = args[0]
            elif name == "skipif" and len(args) > 1:
                condition = module.snippet(args[0])
                reason_node = args[1]
                if (_qualify(call.func, module) or "").endswith("skipUnless"):
                    condition = f"not ({condition})"
        elif name == "skip" and args and reason_node is None:
            reason_node = args[0]
        elif name in ("skipif", "xfail") and args:
            condition = (
                args[0].value
                if isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)
                else module.snippet(args[0])
            )
            if "condition" in keywords:
                condition = module.snippet(keywords["condition"])
        if reason_node is not None:
            reason = _text(reason_node, module)
        if name == "xfail" and "raises" in keywords and reason is None:
            reason = f"raises {module.snippet(keywords['raises'])}"
    return Mark(name, source, level, getattr(expr, "lineno", 0), reason, condition)


def _text(node: ast.expr, module: ModuleInfo) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{…}" for v in node.values)
    return module.snippet(node)


def _decorator_marks(decorators: list[ast.expr], module: ModuleInfo, level: str) -> list[Mark]:
    found = []
    for decorator in reversed(decorators):  # the nearest decorator applies first
        mark = _mark(decorator, module, level)
        if mark is not None:
            found.append(mark)
    return found


def _pytestmark(body: list[ast.stmt], module: ModuleInfo, level: str) -> list[Mark]:
    value: ast.expr | None = None
    for node in body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        ) or (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "pytestmark"
        ):
            value = node.value
    if value is None:
        return []
    elements = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
    return [m for m in (_mark(e, module, level) for e in elements) if m is not None]


def _is_fixture(node: ast.FunctionDef | ast.AsyncFunctionDef, module: ModuleInfo) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        qualified = _qualify(target, module) or ""
        if qualified in (
            "pytest.fixture",
            "pytest_asyncio.fixture",
            "_pytest.fixtures.fixture",
            "fixture",
            "pytest.yield_fixture",
        ):
            return True
    return False


def _fixture(node: ast.FunctionDef | ast.AsyncFunctionDef, module: ModuleInfo) -> Fixture:
    name = node.name
    autouse = False
    params: list[str] | None = None
    for decorator in node.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        keywords = {k.arg: k.value for k in decorator.keywords if k.arg}
        if isinstance(keywords.get("name"), ast.Constant):
            name = str(keywords["name"].value)  # type: ignore[attr-defined]
        if isinstance(keywords.get("autouse"), ast.Constant):
            autouse = bool(keywords["autouse"].value)  # type: ignore[attr-defined]
        if "params" in keywords:
            values = _literal_list(keywords["params"], module)
            ids = keywords.get("ids")
            if values is None:
                params = ["?"]
            else:
                given = _literal_list(ids, module) if ids is not None else None
                sets = []
                for index, value in enumerate(values):
                    value_node, pid, _ = _unwrap_param(value, module)
                    chosen = None
                    if given is not None and index < len(given):
                        chosen = _id_from_ids(given[index])
                    if chosen is None:
                        chosen = pid if pid is not None else _idval(value_node, name, index, module)
                    sets.append(chosen)
                params = _unique(sets)
    depends = _argnames(node, method=False)
    return Fixture(name, module.path, node.lineno, node, module, autouse, params, depends)


def _argnames(node: ast.FunctionDef | ast.AsyncFunctionDef, *, method: bool) -> list[str]:
    args = [*node.args.posonlyargs, *node.args.args]
    names = [a.arg for a in args]
    # defaults are not fixtures
    defaults = len(node.args.defaults)
    if defaults:
        names = names[: len(names) - defaults]
    names += [
        a.arg
        for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=False)
        if d is None
    ]
    is_static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if method and names and not is_static:
        names = names[1:]
    return names


def _closure(names: list[str], fixtures: dict[str, Fixture], parametrized: set[str]) -> list[str]:
    """Every fixture a test needs: its arguments, `usefixtures`, autouse fixtures in scope,
    and what those need in turn (a parametrized argument is not a fixture)."""
    order: list[str] = []
    autouse = [f.name for f in fixtures.values() if f.autouse]
    stack = list(autouse) + list(names)
    seen: set[str] = set()
    while stack:
        name = stack.pop(0)
        if name in seen:
            continue
        seen.add(name)
        order.append(name)
        if name in parametrized:
            continue
        fixture = fixtures.get(name)
        if fixture is not None:
            stack.extend(d for d in fixture.depends if d not in seen)
    return order


def _string_args(source: str) -> list[str]:
    try:
        call = ast.parse(source, mode="eval").body
    except SyntaxError:
        return []
    if not isinstance(call, ast.Call):
        return []
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


# -- parametrize ----------------------------------------------------------------------------------
def _parametrize_nodes(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    owner: ModuleInfo,
    module: ModuleInfo,
    class_path: list[str],
) -> list[tuple[ast.Call, ModuleInfo]]:
    found: list[tuple[ast.Call, ModuleInfo]] = []
    for decorator in reversed(node.decorator_list):
        named = _mark_name(decorator, owner)
        if named and named[0] == "parametrize" and isinstance(named[1], ast.Call):
            found.append((named[1], owner))
    # class and module level
    if class_path:
        cls = _find_class(module, class_path)
        if cls is not None:
            for decorator in reversed(cls.decorator_list):
                named = _mark_name(decorator, module)
                if named and named[0] == "parametrize" and isinstance(named[1], ast.Call):
                    found.append((named[1], module))
            found.extend(_pytestmark_calls(cls.body, module))
    found.extend(_pytestmark_calls(module.tree.body, module))
    return found


def _find_class(module: ModuleInfo, path: list[str]) -> ast.ClassDef | None:
    body: list[ast.stmt] = module.tree.body
    found = None
    for name in path:
        found = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == name), None)
        if found is None:
            return None
        body = found.body
    return found


def _pytestmark_calls(
    body: list[ast.stmt], module: ModuleInfo
) -> list[tuple[ast.Call, ModuleInfo]]:
    found = []
    for node in body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            value = node.value
            elements = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
            for element in elements:
                named = _mark_name(element, module)
                if named and named[0] == "parametrize" and isinstance(named[1], ast.Call):
                    found.append((named[1], module))
    return found


def _literal_list(
    node: ast.expr | None, module: ModuleInfo, depth: int = 0
) -> list[ast.expr] | None:
    if node is None:
        return None
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        out: list[ast.expr] = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                inner = _literal_list(element.value, module, depth + 1)
                if inner is None:
                    return None
                out.extend(inner)
            else:
                out.append(element)
        return out
    if isinstance(node, ast.Name) and node.id in module.constants and depth < 5:
        return _literal_list(module.constants[node.id], module, depth + 1)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _literal_list(node.left, module, depth + 1)
        right = _literal_list(node.right, module, depth + 1)
        if left is not None and right is not None:
            return left + right
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("list", "tuple")
        and len(node.args) == 1
    ):
        return _literal_list(node.args[0], module, depth + 1)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        try:
            bounds = [ast.literal_eval(a) for a in node.args]
            return [ast.Constant(v) for v in range(*bounds)]
        except (ValueError, TypeError):
            return None
    return None


def _unwrap_param(node: ast.expr, module: ModuleInfo) -> tuple[Any, str | None, list[Mark]]:
    """A `pytest.param(*values, id=, marks=)` -> (values node(s), id, marks)."""
    if isinstance(node, ast.Call) and (_qualify(node.func, module) or "") in (
        "pytest.param",
        "_pytest.mark.param",
    ):
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        pid = None
        if isinstance(keywords.get("id"), ast.Constant) and isinstance(
            keywords["id"].value,
            str,  # type: ignore[attr-defined]
        ):
            pid = keywords["id"].value  # type: ignore[attr-defined]
        marks: list[Mark] = []
        if "marks" in keywords:
            value = keywords["marks"]
            elements = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
            marks = [m for m in (_mark(e, module, "param") for e in elements) if m is not None]
        return ("param", list(node.args)), pid, marks
    return node, None, []


def _ascii_escaped(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")


def _python_id(value: Any) -> str | None:
    """pytest's id for a value it can name (`_idval_from_value`), else None."""
    if isinstance(value, enum.Enum):
        return str(value)
    if isinstance(value, str):
        return _ascii_escaped(value)
    if isinstance(value, bytes):
        return _ascii_escaped(value.decode("latin-1"))
    if value is None or isinstance(value, (bool, int, float, complex)):
        return str(value)
    name = getattr(value, "__name__", None)
    return name if isinstance(name, str) else None


def _stdlib_value(qualified: str) -> tuple[bool, Any]:
    """The value of a standard-library name (`signal.SIGINT`) from a module this process has
    already imported (nothing is imported for it, and never a module of the target)."""
    modname, _, attr = qualified.rpartition(".")
    if modname.split(".")[0] not in sys.stdlib_module_names:
        return False, None
    loaded = sys.modules.get(modname)
    if loaded is None or not hasattr(loaded, attr):
        return False, None
    return True, getattr(loaded, attr)


_VALUE_ENUMS = ("enum.IntEnum", "enum.IntFlag", "enum.StrEnum")


def _enum_member_id(cls: ast.ClassDef, member: str, owner: ModuleInfo) -> str | None:
    """`str(Cls.MEMBER)` as Python 3.11+ prints it: the value for IntEnum / IntFlag / StrEnum,
    `Cls.MEMBER` for other enums; None when `cls` is not an enum."""
    bases = [(_qualify(b, owner) or "") for b in cls.bases]
    if not any(b.startswith("enum.") for b in bases):
        return None
    if any(b in _VALUE_ENUMS for b in bases):
        for stmt in cls.body:
            if (
                isinstance(stmt, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == member for t in stmt.targets)
                and isinstance(stmt.value, ast.Constant)
            ):
                return str(stmt.value.value)
        return None
    return f"{cls.name}.{member}"


def _idval(node: Any, argname: str, index: int, module: ModuleInfo, depth: int = 0) -> str:
    """pytest's automatic id for one parameter value (`_idval`), or `argname<index>`."""
    fallback = f"{argname}{index}"
    if depth > 4:
        return fallback
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, (str, bytes)) and len(value) > 100:
            strategy = module.__dict__.get("long_str", "short")
            if strategy == "short":
                return fallback
            if strategy == "sha256":
                data = value.encode("utf-8") if isinstance(value, str) else value
                return hashlib.sha256(data).hexdigest()
        found = _python_id(value)
        return found if found is not None else fallback
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        try:
            return str(ast.literal_eval(node))
        except ValueError:
            return fallback
    resolver = module.__dict__.get("resolver")
    if isinstance(node, ast.Name):
        if node.id in module.functions or node.id in module.classes:
            return node.id
        if node.id in module.constants:
            return _idval(module.constants[node.id], argname, index, module, depth + 1)
        qualified = module.imports.get(node.id)
        if qualified and "." in qualified:
            modname, _, attr = qualified.rpartition(".")
            other = resolver(modname) if resolver else None
            if other is not None:
                if attr in other.functions or attr in other.classes:
                    return attr
                if attr in other.constants:
                    return _idval(other.constants[attr], argname, index, other, depth + 1)
            known, value = _stdlib_value(qualified)
            if known:
                found = _python_id(value)
                return found if found is not None else fallback
            if not node.id[:1].isupper() and other is None:
                return attr  # an imported function, by convention: its __name__
        return fallback
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        owner = module.classes.get(node.value.id)
        if owner is not None:
            found = _enum_member_id(owner, node.attr, module)
            return found if found is not None else fallback
        qualified = _qualify(node, module) or ""
        modname, _, cls_name = qualified.rpartition(".")[0].rpartition(".")
        other = resolver(modname) if resolver and modname else None
        if other is not None and cls_name in other.classes:
            found = _enum_member_id(other.classes[cls_name], node.attr, other)
            return found if found is not None else fallback
        known, value = _stdlib_value(qualified)
        if known:
            found = _python_id(value)
            return found if found is not None else fallback
        return fallback
    if (
        isinstance(node, ast.Call)
        and (_qualify(node.func, module) or "") == "re.compile"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return _ascii_escaped(str(node.args[0].value))
    return fallback


def _id_from_ids(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant):
        if node.value is None:
            return None
        if isinstance(node.value, str):
            return _ascii_escaped(node.value)
        return str(node.value)
    return None


def _unique(ids: list[str]) -> list[str]:
    """pytest's `make_unique_parameterset_ids`: duplicates get a counter suffix."""
    if len(ids) == len(set(ids)):
        return ids
    counts: dict[str, int] = {}
    for pid in ids:
        counts[pid] = counts.get(pid, 0) + 1
    suffixes: dict[str, int] = {}
    result = list(ids)
    taken = set(ids)
    for index, pid in enumerate(ids):
        if counts[pid] > 1:
            sep = "_" if pid and pid[-1].isdigit() else ""
            n = suffixes.get(pid, 0)
            new = f"{pid}{sep}{n}"
            while new in taken:
                n += 1
                new = f"{pid}{sep}{n}"
            result[index] = new
            taken.add(new)
            suffixes[pid] = n + 1
    return result


def _parameter_sets(
    call: ast.Call, module: ModuleInfo
) -> tuple[list[str], list[tuple[str, list[Mark]]], str | None]:
    """(argnames, [(id, marks)], why the ids or count may be off) of one parametrize call."""
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    names_node = call.args[0] if call.args else keywords.get("argnames")
    values_node = call.args[1] if len(call.args) > 1 else keywords.get("argvalues")
    argnames: list[str] = []
    if isinstance(names_node, ast.Constant) and isinstance(names_node.value, str):
        argnames = [n.strip() for n in names_node.value.split(",") if n.strip()]
    elif isinstance(names_node, (ast.List, ast.Tuple)):
        argnames = [
            e.value
            for e in names_node.elts
            if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
    values = _literal_list(values_node, module)
    where = f"{module.path}:{call.lineno}"
    if values is None:
        return (
            argnames,
            [("?", [])],
            (f"{where}: parameter values computed at run time; counted as one case"),
        )
    if not values:
        return argnames, [("NOTSET", [])], None
    ids_node = call.args[2] if len(call.args) > 2 else keywords.get("ids")
    given: list[ast.expr] | None = None
    why = None
    if ids_node is not None:
        given = _literal_list(ids_node, module)
        if given is None:
            why = f"{where}: ids computed by a function; ids shown may differ"
    results: list[str] = []
    marks: list[list[Mark]] = []
    for index, value in enumerate(values):
        unwrapped, pid, pmarks = _unwrap_param(value, module)
        marks.append(pmarks)
        if given is not None and index < len(given):
            chosen = _id_from_ids(given[index])
            if chosen is not None:
                results.append(chosen)
                continue
        if pid is not None:
            results.append(_ascii_escaped(pid))
            continue
        if isinstance(unwrapped, tuple):
            parts = unwrapped[1]
        elif len(argnames) > 1 and isinstance(unwrapped, (ast.Tuple, ast.List)):
            parts = list(unwrapped.elts)
        elif len(argnames) > 1:
            parts = [None] * len(argnames)
        else:
            parts = [unwrapped]
        if len(argnames) == 1 and isinstance(unwrapped, tuple):
            parts = parts[:1]
        results.append(
            "-".join(
                _idval(part, argname, index, module)
                for part, argname in zip(parts, argnames, strict=False)
            )
        )
    unique = _unique(results)
    return argnames, list(zip(unique, marks, strict=True)), why


# -- skips ----------------------------------------------------------------------------------------
def _skips(
    marks: list[Mark], node: ast.FunctionDef | ast.AsyncFunctionDef, module: ModuleInfo
) -> list[Skip]:
    found: list[Skip] = []
    for mark in marks:
        if mark.name in ("skip", "skipif", "xfail"):
            reason = mark.reason or ""
            found.append(
                Skip(
                    mark.name,
                    reason,
                    mark.condition,
                    mark.line,
                    issue_reference(reason) or issue_reference(mark.condition),
                )
            )
    for call in _skip_calls(node, module):
        name = _qualify(call.func, module) or ""
        kind = {"pytest.skip": "skip-call", "pytest.xfail": "xfail-call"}.get(name)
        if kind is None and name.endswith(".skipTest") and name.startswith("self."):
            kind = "skip-call"
        if kind is None:
            continue
        reason_node = call.args[0] if call.args else None
        for keyword in call.keywords:
            if keyword.arg in ("reason", "msg"):
                reason_node = keyword.value
        reason = _text(reason_node, module) if reason_node is not None else ""
        condition = _guard(call, node)
        found.append(Skip(kind, reason, condition, call.lineno, issue_reference(reason)))
    return found


_SKIP_WORDS = re.compile(r"\b(?:skip|xfail|skipTest)\b")


def _skip_calls(func: ast.AST, module: ModuleInfo) -> list[ast.Call]:
    """The calls in a test body that may skip it, found once per function (and only walked when
    its text mentions a skip)."""
    cache = module.__dict__.setdefault("_skip_calls", {})
    found = cache.get(id(func))
    if found is None:
        found = []
        if _SKIP_WORDS.search(module.snippet(func)):
            found = [n for n in ast.walk(func) if isinstance(n, ast.Call)]
        cache[id(func)] = found
    return found


def _guard(call: ast.Call, func: ast.AST) -> str | None:
    """The `if` test around a skip call in the body, when there is one."""
    for node in ast.walk(func):
        if isinstance(node, ast.If) and any(call is n for b in node.body for n in ast.walk(b)):
            return ast.unparse(node.test)
    return None


# -- entry point ----------------------------------------------------------------------------------
def inventory(path: str | os.PathLike[str]) -> Inventory:
    """Every test pytest would collect under `path` (a project folder: its `testpaths`; a test
    folder or file: that), read statically. Raises FileNotFoundError for a missing path and
    `PytestConfigError` for an unreadable configuration."""
    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    target = target.resolve()
    config = load_pytest_config(target)
    root = config.rootdir.resolve()
    collector = _Collector(root, config)
    args: list[str] = []
    if target == root:
        starts: list[Path] = []
        for testpath in config.testpaths:
            matched = (
                sorted(root.glob(testpath))
                if any(c in testpath for c in "*?[")
                else [root / testpath]
            )
            starts.extend(p for p in matched if p.exists())
        if not starts:
            starts = [root]
    else:
        starts = [target]
        args = [_rel(target, root)]
    for start in starts:
        for file in collector.walk(start):
            collector.collect_module(file)
    items = collector.items
    if config.deselect:
        items = [i for i in items if not any(i.nodeid.startswith(d) for d in config.deselect)]
    computed = [i for i in items if i.uncertain and "computed at run time" in i.uncertain]
    if computed:
        first = computed[0].uncertain.split(";")[0].split(": ")[0] if computed[0].uncertain else ""
        collector.limits.append(
            f"{len(computed)} tests are parametrized by values computed at run time (first at"
            f" {first}): each counts as one case here; `--python` counts them with pytest"
        )
    return Inventory(
        root=root,
        config=config,
        items=items,
        files=collector.files,
        conftests=sorted(set(collector.conftests)),
        errors=collector.errors,
        limits=list(dict.fromkeys(collector.limits)),
        args=args,
        modules=collector.modules,
    )
