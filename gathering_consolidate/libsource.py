"""Third-party knowledge from the target's installed library source: read, never run.

What: the audit knows third-party libraries through its catalogues (`rules/blocking.toml`,
`rules/exceptions.toml`). A wrapper library no catalogue names (a `dbkit` whose `Client.query()`
calls `self._run()`, which calls `psycopg.connect(...)`) would stay invisible. This module finds
the target's environment on disk (`--python PATH` or `$VIRTUAL_ENV`), maps import names to
distributions, and follows a dotted call through the library's own source with `ast`:

    source = LibrarySource(find_environment("/x/.venv/bin/python"))
    facts = source.describe("dbkit.Client.query")   # LibraryFacts | None

`LibraryFacts` says which catalogued blocking calls are reached (with the chain), which exception
classes can escape (explicit `raise`, catalogued calls' types, minus what the library's own
visible `try`/`except` catches) and what stayed unknown (an unresolved call: then the exceptions
are unknown, never "nothing").

Why this way: the target's environment is untrusted code. Nothing here imports, executes or
unpickles from it, and its interpreter is never run: a venv's `.pth` files may run code at
start-up, so site-packages is found from `pyvenv.cfg` and the `lib/python3.*/site-packages`
layout, and `.pth` files are only read for plain directory lines.

Bounds: calls are followed at most `MAX_DEPTH` deep, each function once per (class, depth) with a
cycle guard, at most `MAX_FILES` newly parsed files and `MAX_STEPS` function walks per query;
hitting a bound is listed in `unknown`. Results are cached as JSON in the user cache folder, keyed
by distribution, version, tool version and a hash of the catalogues; the versions of every other
distribution read on the way are checked on load. A corrupt entry is a miss.

Layering: below the audit families (reads config and rule data only); the EXC analysis, the ASY
index and the codemods call `library_source_for(config)` then `describe(name)`.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import hashlib
import io
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import load_rule_data, match_call_pattern, types_for_call
from .semantic.annotations import LITERAL_TYPES

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "MAX_DEPTH",
    "MAX_FILES",
    "Catalogue",
    "Distribution",
    "Environment",
    "LibraryFacts",
    "LibrarySource",
    "find_environment",
    "library_source_for",
    "read_distributions",
]

MAX_DEPTH = 6  # calls followed below the described function
MAX_FILES = 200  # files newly parsed per query
MAX_STEPS = 5000  # function walks per query
MAX_FILE_SIZE = 2_000_000  # bytes; larger modules are generated code: unknown
_MAX_UNKNOWN = 50
_MAX_CHAINS = 20
_CACHE_FORMAT = 1
SOURCE = "library source"
CATALOGUE = "catalogue"

#: Standard-library top-level names: never followed (the catalogues speak for them).
STDLIB = frozenset(sys.stdlib_module_names) | {"builtins", "__main__"}
_BUILTIN_EXCEPTIONS = frozenset(
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), BaseException)
)
#: Bases that add no behaviour worth following (a method not found stays "not found").
_INERT_BASES = frozenset(
    {"object", "abc.ABC", "typing.Generic", "typing.Protocol", "typing.NamedTuple"}
)
_LITERALS = LITERAL_TYPES
_NOT_EXCEPTION = frozenset({"KeyboardInterrupt", "SystemExit", "GeneratorExit", "BaseException"})


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LibraryFacts:
    """What one dotted call does, learnt from the library's source (plain data, JSON-able).

    `blocking`: chains from `name` to a call that `rules/blocking.toml` matches
    (`("dbkit.Client.query", "dbkit.Client._run", "psycopg.connect")`).
    `raises`: exception type (`dbkit.errors.QueryError`, builtins bare) -> the chain it comes
    through (ending at the raising function or the catalogued call).
    `unknown`: what could not be resolved; when non-empty the exceptions are unknown.
    """

    name: str
    blocking: tuple[tuple[str, ...], ...]
    raises: Mapping[str, tuple[str, ...]]
    unknown: tuple[str, ...]
    distribution: str | None
    version: str | None
    source: str = SOURCE

    @property
    def exceptions(self) -> tuple[str, ...] | None:
        """The types that can escape, or None when something stayed unknown (never "nothing")."""
        return None if self.unknown else tuple(sorted(self.raises))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "blocking": [list(c) for c in self.blocking],
            "raises": {t: list(v) for t, v in sorted(self.raises.items())},
            "unknown": list(self.unknown),
            "distribution": self.distribution,
            "version": self.version,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LibraryFacts:
        def strings(value: Any) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("expected a list of strings")
            return tuple(value)

        raises = data["raises"]
        if not isinstance(raises, dict):
            raise ValueError("raises: expected an object")
        optional = (data["distribution"], data["version"])
        if not isinstance(data["name"], str) or not isinstance(data["source"], str):
            raise ValueError("name/source: expected strings")
        if not all(v is None or isinstance(v, str) for v in optional):
            raise ValueError("distribution/version: expected strings")
        return cls(
            name=data["name"],
            blocking=tuple(strings(c) for c in data["blocking"]),
            raises={str(t): strings(v) for t, v in raises.items()},
            unknown=strings(data["unknown"]),
            distribution=data["distribution"],
            version=data["version"],
            source=data["source"],
        )


# -- the environment ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Distribution:
    name: str
    version: str
    top_level: tuple[str, ...]


@dataclass(frozen=True)
class Environment:
    """A Python environment as found on disk: its prefix, site-packages folders (the venv's own
    first, then the base interpreter's when `include-system-site-packages`), and the import
    search path (those plus plain directory lines of `.pth` files)."""

    prefix: Path
    site_packages: tuple[Path, ...]
    search_path: tuple[Path, ...]


def find_environment(python: str | os.PathLike[str]) -> Environment | None:
    """The environment of an interpreter path (`/x/.venv/bin/python`) or an environment folder
    (`$VIRTUAL_ENV`), from the filesystem only; None when no site-packages is found.

    A venv's `bin/python` is a symlink to the base interpreter, so the path is not resolved; a
    link to a venv's interpreter from elsewhere (`/usr/local/bin/tool -> /opt/venv/bin/python`)
    is followed one hop at a time until a folder with `pyvenv.cfg` shows up."""
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(python))))
    if path.is_dir():
        return _environment(path, None)
    candidates = [path]
    while candidates[-1].is_symlink() and len(candidates) < 10:
        try:
            target = Path(os.readlink(candidates[-1]))
        except OSError:
            break
        candidates.append(Path(os.path.abspath(candidates[-1].parent / target)))
    for candidate in candidates:
        if (_prefix(candidate) / "pyvenv.cfg").is_file():
            return _environment(_prefix(candidate), candidate.name)
    for candidate in candidates:
        found = _environment(_prefix(candidate), candidate.name)
        if found is not None:
            return found
    return None


def _prefix(interpreter: Path) -> Path:
    parent = interpreter.parent
    return parent.parent if parent.name in ("bin", "Scripts") else parent


def _environment(prefix: Path, interpreter_name: str | None) -> Environment | None:
    cfg = _read_pyvenv_cfg(prefix / "pyvenv.cfg")
    version = _short_version(cfg.get("version_info") or cfg.get("version") or "")
    if not version and interpreter_name:
        match = re.fullmatch(r"python(3\.\d+)", interpreter_name)
        version = match.group(1) if match else None
    sites = _site_dirs(prefix, version)
    if cfg.get("include-system-site-packages", "").lower() == "true" and cfg.get("home"):
        home = Path(cfg["home"])
        base = home.parent if home.name in ("bin", "Scripts") else home
        sites += [s for s in _site_dirs(base, version) if s not in sites]
    if not sites:
        return None
    search: list[Path] = []
    for site in sites:
        search.append(site)
        search.extend(p for p in _pth_dirs(site) if p not in search)
    return Environment(prefix, tuple(sites), tuple(search))


def _read_pyvenv_cfg(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip().lower()] = value.strip()
    return found


def _short_version(text: str) -> str | None:
    match = re.match(r"(\d+)\.(\d+)", text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _site_dirs(prefix: Path, version: str | None) -> list[Path]:
    candidates: list[Path] = []
    for lib in ("lib", "lib64"):
        if version:
            candidates.append(prefix / lib / f"python{version}" / "site-packages")
        else:
            found = sorted(
                (prefix / lib).glob("python3.*/site-packages"),
                key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)],
                reverse=True,
            )
            candidates.extend(found)
        if version:
            candidates.append(prefix / lib / f"python{version}" / "dist-packages")
        candidates.append(prefix / lib / "python3" / "dist-packages")
    candidates.append(prefix / "Lib" / "site-packages")
    result: list[Path] = []
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.is_dir():
            real = os.path.realpath(candidate)  # lib64 is often a link to lib
            if real not in seen:
                seen.add(real)
                result.append(candidate)
    return result


def _pth_dirs(site: Path) -> list[Path]:
    """Directories named by `.pth` files: read as text, lines that would run code are skipped."""
    found: list[Path] = []
    try:
        pth_files = sorted(site.glob("*.pth"))
    except OSError:
        return found
    for pth in pth_files:
        try:
            lines = pth.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#") or re.match(r"import[ \t]", line):
                continue
            directory = Path(line) if os.path.isabs(line) else site / line
            if directory.is_dir() and directory not in found:
                found.append(directory)
    return found


def read_distributions(site_packages: Iterable[Path]) -> dict[str, Distribution]:
    """Top-level import name -> distribution, from `*.dist-info` (`METADATA` Name/Version,
    `top_level.txt`, else the first path parts in `RECORD`) and `*.egg-info`; the first folder
    that names a top-level wins."""
    result: dict[str, Distribution] = {}
    for site in site_packages:
        try:
            entries = sorted(site.iterdir())
        except OSError:
            continue
        for meta in entries:
            if meta.suffix == ".dist-info":
                headers = _headers(meta / "METADATA")
            elif meta.suffix == ".egg-info" and meta.is_dir():
                headers = _headers(meta / "PKG-INFO")
            else:
                continue
            name, version = headers.get("name"), headers.get("version")
            if not name or not version:
                continue
            tops = _top_level(meta)
            dist = Distribution(name, version, tuple(tops))
            for top in tops:
                result.setdefault(top, dist)
    return result


def _headers(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the body (long description) starts
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("name", "version"):
            found.setdefault(key.strip().lower(), value.strip())
    return found


def _top_level(meta: Path) -> list[str]:
    try:
        text = (meta / "top_level.txt").read_text(encoding="utf-8", errors="replace")
        tops = [line.strip() for line in text.splitlines() if line.strip()]
        if tops:
            return [t.replace("/", ".").split(".")[0] for t in tops]
    except OSError:
        pass
    try:
        text = (meta / "RECORD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    tops: list[str] = []
    import csv  # imported here: the scanner imports this module on every run

    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0] or row[0].startswith(("..", "/")):
            continue
        first = row[0].split("/")[0]
        if first.endswith((".dist-info", ".data", ".pth")) or first in ("__pycache__", "bin"):
            continue
        if "/" not in row[0]:
            if not first.endswith(".py"):
                continue
            first = first[:-3]
        if first.isidentifier() and first not in tops:
            tops.append(first)
    return tops


# -- the catalogues ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Catalogue:
    """The blocking calls and exception map the audit uses, matched the same way
    (`config.match_call_pattern`, `config.types_for_call`)."""

    blocking: tuple[str, ...]  # patterns, most specific (latest) first
    calls: tuple[tuple[str, tuple[str, ...]], ...]  # exceptions: pattern -> types
    returns: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        extra_blocking: Sequence[str] = (),
        extra_db: Sequence[str] = (),
        extra_calls: Mapping[str, Sequence[str]] | None = None,
    ) -> Catalogue:
        """`rules/blocking.toml` ([blocking] and [db]) and `rules/exceptions.toml` [calls], plus
        the target's ASY `blocking-calls`/`db-calls` and EXC `calls` options."""
        blocking_data = load_rule_data("blocking")
        entries = [
            *blocking_data["blocking"]["calls"],
            *blocking_data.get("db", {}).get("calls", []),
            *extra_blocking,
            *extra_db,
        ]
        patterns = [str(e).partition("->")[0].strip() for e in entries if isinstance(e, str)]
        calls = [
            (str(p), tuple(t)) for p, t in load_rule_data("exceptions").get("calls", {}).items()
        ]
        calls += [(str(p), tuple(t)) for p, t in (extra_calls or {}).items()]
        returns = dict(blocking_data.get("returns", {}))
        return cls(tuple(reversed([p for p in patterns if p])), tuple(calls), returns)

    def blocking_match(self, name: str) -> str | None:
        index = match_call_pattern(name, self.blocking)
        return None if index is None else self.blocking[index]

    def raises(self, name: str) -> tuple[str, ...] | None:
        return types_for_call(name, self.calls)

    def key(self) -> str:
        blob = json.dumps([self.blocking, self.calls, sorted(self.returns.items())])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- parsed modules ------------------------------------------------------------------------------
@dataclass
class _Module:
    name: str
    package: str  # what relative imports start from
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]
    imports: dict[str, str]  # local name -> dotted target
    aliases: dict[str, ast.expr]  # NAME = expr at module level
    stars: list[str]
    pinned: bool = True  # read from a site-packages folder (not an editable or .pth checkout)


@dataclass(frozen=True, eq=False)
class _Class:
    module: _Module
    node: ast.ClassDef
    canonical: str  # where it is defined: dbkit.client.Client
    display: str  # how it was reached: dbkit.Client


_FuncNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, eq=False)
class _Func:
    module: _Module
    node: _FuncNode
    owner: _Class | None  # the class that defines it
    self_cls: _Class | None  # the class of `self` (a subclass reached through)
    display: str


class _Limit(Exception):
    """A per-query bound was reached."""


_COMPILED = "compiled"


def _module_facts(name: str, is_package: bool, tree: ast.Module) -> _Module:
    package = name if is_package else name.rpartition(".")[0]
    module = _Module(name, package, {}, {}, {}, [])
    _bind(module, tree.body, module.imports)
    return module


def _bind(module: _Module, body: Sequence[ast.stmt], imports: dict[str, str]) -> None:
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            module.defs.setdefault(stmt.name, stmt)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            _import(stmt, module.package, imports, module.stars)
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                module.aliases.setdefault(target.id, stmt.value)
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
            module.aliases.setdefault(stmt.target.id, stmt.value)
        elif isinstance(stmt, ast.If):
            _bind(module, stmt.body, imports)
            _bind(module, stmt.orelse, imports)
        elif isinstance(stmt, (ast.Try, ast.TryStar)):
            _bind(module, stmt.body, imports)
            for handler in stmt.handlers:
                _bind(module, handler.body, imports)
            _bind(module, stmt.orelse, imports)


def _import(
    stmt: ast.Import | ast.ImportFrom, package: str, imports: dict[str, str], stars: list[str]
) -> None:
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            if alias.asname:
                imports.setdefault(alias.asname, alias.name)
            else:
                top = alias.name.split(".")[0]
                imports.setdefault(top, top)
        return
    base = stmt.module or ""
    if stmt.level:
        parts = package.split(".") if package else []
        parts = parts[: len(parts) - (stmt.level - 1)] if stmt.level > 1 else parts
        base = ".".join([*parts, *([stmt.module] if stmt.module else [])])
    if not base:
        return
    for alias in stmt.names:
        if alias.name == "*":
            stars.append(base)
        else:
            imports.setdefault(alias.asname or alias.name, f"{base}.{alias.name}")


# -- the walk ------------------------------------------------------------------------------------
@dataclass
class _Summary:
    blocking: list[tuple[str, ...]] = field(default_factory=list)
    raises: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    def add_unknown(self, text: str) -> None:
        if text not in self.unknown and len(self.unknown) < _MAX_UNKNOWN:
            self.unknown.append(text)

    def add_blocking(self, chain: tuple[str, ...]) -> None:
        if chain not in self.blocking and len(self.blocking) < _MAX_CHAINS:
            self.blocking.append(chain)


@dataclass
class _Handler:
    types: tuple[str, ...] | None  # None: a bare `except:`
    reraises: bool


@dataclass(frozen=True)
class _Syntax:
    """What a function body binds, read once per function node (no name resolution)."""

    self_name: str | None
    annotations: dict[str, ast.expr]  # parameters and annotated locals
    local_exprs: dict[str, list[ast.expr]]
    local_imports: dict[str, str]
    nested: dict[str, _FuncNode]
    caught_names: frozenset[str]
    classmethod: bool


def _syntax(node: _FuncNode, is_method: bool, package: str) -> _Syntax:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    decorators = {_dotted(d) for d in node.decorator_list}
    self_name = None
    if is_method and positional and "staticmethod" not in decorators:
        self_name = positional[0].arg
    annotations = {
        a.arg: a.annotation
        for a in [*positional, *args.kwonlyargs]
        if a.annotation is not None and a.arg != self_name
    }
    local_exprs: dict[str, list[ast.expr]] = {}
    local_imports: dict[str, str] = {}
    nested: dict[str, _FuncNode] = {}
    caught: set[str] = set()
    for child in _own_nodes(node.body):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            _import(child, package, local_imports, [])
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested.setdefault(child.name, child)
        elif isinstance(child, ast.Assign):
            for target in child.targets:
                if isinstance(target, ast.Name):
                    local_exprs.setdefault(target.id, []).append(child.value)
        elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
            annotations.setdefault(child.target.id, child.annotation)
            if child.value is not None:
                local_exprs.setdefault(child.target.id, []).append(child.value)
        elif isinstance(child, ast.withitem) and isinstance(child.optional_vars, ast.Name):
            local_exprs.setdefault(child.optional_vars.id, []).append(child.context_expr)
        elif isinstance(child, ast.ExceptHandler) and child.name:
            caught.add(child.name)
    return _Syntax(
        self_name,
        annotations,
        local_exprs,
        local_imports,
        nested,
        frozenset(caught),
        "classmethod" in decorators,
    )


@dataclass
class _Scope:
    func: _Func
    syntax: _Syntax
    local_types: dict[str, str | None] = field(default_factory=dict)  # annotations, evaluated
    evaluating: set[str] = field(default_factory=set)

    @property
    def self_name(self) -> str | None:
        return self.syntax.self_name


class _Query:
    """One `describe()`: counters, bounds and what it read."""

    def __init__(self, source: LibrarySource) -> None:
        self.source = source
        self.files = 0
        self.steps = 0
        self.deps: dict[str, str] = {}
        self.unversioned = False
        self.memo: dict[tuple[int, str, int], _Summary] = {}
        self.active: set[tuple[int, str]] = set()
        self.attr_memo: dict[tuple[int, str], tuple[Any, ...] | None] = {}
        self.returns_memo: dict[tuple[int, str], tuple[Any, ...] | None] = {}
        self.alias_memo: dict[tuple[str, str], tuple[Any, ...] | None] = {}

    # -- modules --------------------------------------------------------------------------------
    def module(self, name: str) -> _Module | str | None:
        source = self.source
        top = name.split(".")[0]
        dist = source.distributions.get(top)
        if name not in source._modules:
            found = source._find_module(name)
            if isinstance(found, tuple):
                if self.files >= source.max_files:
                    raise _Limit(f"{name} (file limit {source.max_files} reached)")
                path, is_package = found
                if path is not None:
                    self.files += 1
                    source.files_parsed += 1
                try:
                    if path is None:  # a namespace package: no code
                        tree = ast.Module(body=[], type_ignores=[])
                    elif path.stat().st_size > MAX_FILE_SIZE:
                        raise _Limit(f"{name} (a module over {MAX_FILE_SIZE} bytes)")
                    else:
                        tree = ast.parse(path.read_bytes(), filename=str(path))
                except (OSError, SyntaxError, ValueError):
                    source._modules[name] = None
                    return None
                module_facts = _module_facts(name, is_package, tree)
                module_facts.pinned = path is None or source._pinned(path)
                source._modules[name] = module_facts
            else:
                source._modules[name] = found
        module = source._modules[name]
        if module is not None:
            if dist is not None:
                self.deps[dist.name] = dist.version
            if dist is None or (isinstance(module, _Module) and not module.pinned):
                self.unversioned = True  # its code can change under the same version: no cache
        return module

    # -- names ------------------------------------------------------------------------------------
    def resolve(self, dotted: str, hops: int = 0, shown: str | None = None) -> tuple[Any, ...]:
        """`("func", _Func)`, `("class", _Class)`, `("module", _Module)`, `("external", name)`
        (outside the environment's source), `("missing", name)` (in a library, not found)."""
        shown = shown or dotted
        if "()." in dotted and hops <= 12:  # `dbkit.connect().query`: a method of what it returns
            head, _, tail = dotted.partition("().")
            value = self.returns(("name", head))
            if value is not None and value[0] == "inst":
                return self.resolve(f"{value[1]}.{tail}", hops + 1, shown)
            return ("missing", dotted)
        parts = dotted.split(".")
        if hops > 12 or not parts[0] or parts[0] in STDLIB or not self.source.installed(dotted):
            return ("external", dotted)
        module: _Module | str | None = None
        index = 0
        for index in range(len(parts), 0, -1):
            module = self.module(".".join(parts[:index]))
            if module is not None:
                break
        if module is None:
            return ("missing", dotted)
        if isinstance(module, str):
            return ("external", dotted)  # a compiled extension: no source to read
        return self._in_module(module, parts[index:], hops, shown)

    def _in_module(
        self, module: _Module, attrs: list[str], hops: int, shown: str
    ) -> tuple[Any, ...]:
        if not attrs:
            return ("module", module)
        first, rest = attrs[0], attrs[1:]
        prefix = _shown_prefix(shown, len(rest))
        node = module.defs.get(first)
        if isinstance(node, ast.ClassDef):
            klass = _Class(module, node, f"{module.name}.{first}", prefix)
            return self._in_class(klass, rest)
        if node is not None:
            if rest:
                return ("missing", shown)
            return ("func", _Func(module, node, None, None, shown))
        if first in module.imports:
            return self.resolve(".".join([module.imports[first], *rest]), hops + 1, shown)
        if first in module.aliases:
            value = self.alias(module, first)
            if value is not None and value[0] in ("name", "inst"):
                return self.resolve(".".join([value[1], *rest]), hops + 1, shown)
            return ("missing", shown)
        for star in module.stars:
            found = self.resolve(".".join([star, *attrs]), hops + 1, shown)
            if found[0] not in ("missing", "external"):
                return found
        return ("missing", shown)

    def _in_class(self, klass: _Class, attrs: list[str]) -> tuple[Any, ...]:
        if not attrs:
            return ("class", klass)
        found = self.method(klass, attrs[0])
        if isinstance(found, tuple) and not attrs[1:]:
            owner, node = found
            return ("func", _Func(owner.module, node, owner, klass, f"{klass.display}.{attrs[0]}"))
        for stmt in klass.node.body:
            if isinstance(stmt, ast.ClassDef) and stmt.name == attrs[0]:
                inner = _Class(
                    klass.module,
                    stmt,
                    f"{klass.canonical}.{stmt.name}",
                    f"{klass.display}.{stmt.name}",
                )
                return self._in_class(inner, attrs[1:])
        return ("missing", f"{klass.display}.{'.'.join(attrs)}")

    def mro(self, klass: _Class) -> tuple[list[_Class], bool]:
        """The class and its library bases, depth first; and whether every base was resolved."""
        order: list[_Class] = []
        complete = True
        seen: set[str] = set()
        stack = [klass]
        while stack and len(order) < 50:
            current = stack.pop(0)
            if current.canonical in seen:
                continue
            seen.add(current.canonical)
            order.append(current)
            bases = []
            for base in current.node.bases:
                expr = base.value if isinstance(base, ast.Subscript) else base
                value = self.value(_module_scope(current.module), expr)
                if value is None or value[0] != "name":
                    complete = False
                    continue
                name = value[1]
                if name in _INERT_BASES or (name in dir(builtins) and "." not in name):
                    continue
                found = self.resolve(name)
                if found[0] == "class":
                    bases.append(
                        _Class(found[1].module, found[1].node, found[1].canonical, klass.display)
                    )
                else:
                    complete = False
            stack[0:0] = bases
        return order, complete

    def method(self, klass: _Class, name: str) -> tuple[_Class, _FuncNode] | bool:
        """`(defining class, node)`, or False (not found, every base known) or True (not found,
        a base unresolved: unknown)."""
        order, complete = self.mro(klass)
        for current in order:
            for stmt in current.node.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == name:
                    return current, stmt
        return not complete

    def base_names(self, type_name: str) -> set[str]:
        """A type and the classes above it that the source or builtins show."""
        found = {type_name}
        builtin = getattr(builtins, type_name, None) if "." not in type_name else None
        if isinstance(builtin, type):
            return found | {k.__name__ for k in builtin.__mro__}
        resolved = self.resolve(type_name)
        if resolved[0] == "class":
            order, _complete = self.mro(resolved[1])
            found |= {c.canonical for c in order}
            for current in order:
                for base in current.node.bases:
                    value = self.value(_module_scope(current.module), base)
                    if value is not None and value[0] == "name":
                        found.add(value[1])
                        builtin = getattr(builtins, value[1], None)
                        if isinstance(builtin, type):
                            found |= {k.__name__ for k in builtin.__mro__}
        return found

    # -- values ---------------------------------------------------------------------------------
    def value(self, scope: _Scope, node: ast.expr, depth: int = 0) -> tuple[Any, ...] | None:
        """What an expression is: `("name", dotted)`, `("inst", type)`, `("self", _Class)`,
        `("method", _Class, attr)`, `("super", _Func)`, `("nested", node)`; None: unknown."""
        if depth > 20:
            return None
        if isinstance(node, ast.Name):
            return self._name(scope, node.id, depth)
        if isinstance(node, ast.Attribute):
            base = self.value(scope, node.value, depth + 1)
            if base is None:
                return None
            kind = base[0]
            if kind == "name":
                return ("name", f"{base[1]}.{node.attr}")
            if kind == "inst":
                found = self.resolve(base[1])
                if found[0] == "class":
                    attr = self.attr_type(found[1], node.attr)
                    if attr is not None:
                        return attr
                return ("name", f"{base[1]}.{node.attr}")
            if kind == "self":
                klass = base[1]
                method = self.method(klass, node.attr)
                if isinstance(method, tuple):
                    return ("method", klass, node.attr)
                return self.attr_type(klass, node.attr)
            if kind == "super":
                return ("supermethod", base[1], node.attr)
            return None
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "super" and scope.func.owner:
                return ("super", scope.func)
            func = self.value(scope, node.func, depth + 1)
            return self.returns(func)
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes | int | float):
            return ("inst", type(node.value).__name__)
        if isinstance(node, ast.JoinedStr):
            return ("inst", "str")
        literal = _LITERALS.get(type(node))
        return ("inst", literal) if literal else None

    def _name(self, scope: _Scope, name: str, depth: int) -> tuple[Any, ...] | None:
        if name == scope.self_name and scope.func.self_cls is not None:
            return ("self", scope.func.self_cls)
        syntax = scope.syntax
        if name in syntax.annotations:
            if name not in scope.local_types:
                scope.local_types[name] = None  # a cycle guard
                value = self.value(_module_scope(scope.func.module), syntax.annotations[name])
                if value is not None and value[0] == "name" and value[1] != "None":
                    scope.local_types[name] = value[1]
            annotated = scope.local_types[name]
            if annotated is not None:
                return ("inst", annotated)
        if name in syntax.local_imports:
            return ("name", syntax.local_imports[name])
        if name in syntax.nested:
            return ("nested", syntax.nested[name])
        if name in syntax.local_exprs:
            if name in scope.evaluating:
                return None
            scope.evaluating.add(name)
            try:
                for expr in syntax.local_exprs[name]:
                    found = self.value(scope, expr, depth + 1)
                    if found is not None:
                        return found
            finally:
                scope.evaluating.discard(name)
            return None
        module = scope.func.module
        if name in module.defs:
            return ("name", f"{module.name}.{name}")
        if name in module.imports:
            return ("name", module.imports[name])
        if name in module.aliases:
            if isinstance(module.aliases[name], (ast.Name, ast.Attribute, ast.Call)):
                return self.alias(module, name)
            return ("name", f"{module.name}.{name}")
        if hasattr(builtins, name):
            return ("name", name)
        return None

    def alias(self, module: _Module, name: str) -> tuple[Any, ...] | None:
        """A module-level `name = expr`, evaluated once per query (`a = b()`, `b = a()` ends)."""
        key = (module.name, name)
        if key not in self.alias_memo:
            self.alias_memo[key] = None  # a cycle guard
            self.alias_memo[key] = self.value(_module_scope(module), module.aliases[name])
        return self.alias_memo[key]

    def returns(self, func: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        """What calling a value gives."""
        if func is None:
            return None
        if func[0] == "method":
            found = self.method(func[1], func[2])
            if not isinstance(found, tuple):
                return None
            owner, node = found
            return self.func_returns(_Func(owner.module, node, owner, func[1], ""))
        if func[0] != "name":
            return None
        name = func[1]
        catalogue = self.source.catalogue
        if name in catalogue.returns:
            return ("inst", catalogue.returns[name])
        if "." not in name and isinstance(getattr(builtins, name, None), type):
            return ("inst", name)
        found = self.resolve(name) if self.source.installed(name) else ("external", name)
        if found[0] == "class":
            return ("inst", found[1].canonical)
        if found[0] == "func":
            return self.func_returns(found[1])
        last = name.rpartition(".")[2]
        if last[:1].isupper() and not name.endswith(")"):
            return ("inst", name)
        return ("name", f"{name}()")

    def func_returns(self, func: _Func) -> tuple[Any, ...] | None:
        """An instance of the return annotation, else of what its `return` statements give."""
        key = (id(func.node), func.self_cls.canonical if func.self_cls else "")
        if key in self.returns_memo:
            return self.returns_memo[key]
        self.returns_memo[key] = None  # a cycle guard
        found = None
        annotation = func.node.returns
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                annotation = None
        if annotation is not None:
            value = self.value(_module_scope(func.module), annotation)
            if value is not None and value[0] == "name" and value[1] != "None":
                resolved = self.resolve(value[1])
                found = ("inst", resolved[1].canonical if resolved[0] == "class" else value[1])
        else:
            scope = self.scope(func)
            for node in _own_nodes(func.node.body):
                if isinstance(node, ast.Return) and node.value is not None:
                    value = self.value(scope, node.value)
                    if value is not None and value[0] == "inst":
                        found = value
                        break
        self.returns_memo[key] = found
        return found

    def attr_type(self, klass: _Class, attr: str) -> tuple[Any, ...] | None:
        """The instance `self.<attr>` holds: a class-body annotation, else an assignment to it in
        any method of the class or its bases."""
        key = (id(klass.node), attr)
        if key in self.attr_memo:
            return self.attr_memo[key]
        self.attr_memo[key] = None  # a cycle guard
        found = None
        order, _complete = self.mro(klass)
        for current in order:
            for kind, node, expr in self.source._self_assigns(current.node).get(attr, ()):
                if kind == "annotation":
                    value = self.value(_module_scope(current.module), expr)
                    value = ("inst", value[1]) if value and value[0] == "name" else None
                else:
                    scope = self.scope(_Func(current.module, node, current, klass, ""))
                    value = self.value(scope, expr)
                if value is not None and value[0] == "inst":
                    found = value
                    break
            if found is not None:
                break
        self.attr_memo[key] = found
        return found

    # -- functions ------------------------------------------------------------------------------
    def scope(self, func: _Func) -> _Scope:
        key = (id(func.node), func.owner is not None)
        syntax = self.source._syntax.get(key)
        if syntax is None:
            syntax = _syntax(func.node, func.owner is not None, func.module.package)
            self.source._syntax[key] = syntax
        return _Scope(func, syntax)

    def summary(self, func: _Func, depth: int) -> _Summary:
        who = func.self_cls.canonical if func.self_cls else ""
        key = (id(func.node), who, depth)
        if key in self.memo:
            return self.memo[key]
        if (id(func.node), who) in self.active:
            return _Summary()  # recursion: the outer walk of this function collects its facts
        if depth > self.source.max_depth:
            found = _Summary(unknown=[f"{func.display} (depth limit {self.source.max_depth})"])
            self.memo[key] = found
            return found
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _Limit(f"{func.display} (step limit {MAX_STEPS} reached)")
        self.active.add((id(func.node), who))
        try:
            found = _Summary()
            walker = _Walker(self, self.scope(func), depth, found)
            walker.stmts(func.node.body, ())
        finally:
            self.active.discard((id(func.node), who))
        self.memo[key] = found
        return found


class _Walker:
    """Walks one function body: its calls and raises, with the try statements around them."""

    def __init__(self, query: _Query, scope: _Scope, depth: int, out: _Summary) -> None:
        self.q = query
        self.scope = scope
        self.depth = depth
        self.out = out
        self.here = scope.func.display
        self.caught_names = scope.syntax.caught_names

    def stmts(self, body: Sequence[ast.stmt], catchers: tuple[list[_Handler], ...]) -> None:
        for stmt in body:
            self.stmt(stmt, catchers)

    def stmt(self, node: ast.AST, catchers: tuple[list[_Handler], ...]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return
        if isinstance(node, (ast.Try, ast.TryStar)):
            handlers = []
            for handler in node.handlers:
                try:
                    handlers.append(self.handler(handler))
                except _Limit as limit:  # its types unread: it is taken to catch nothing
                    self.out.add_unknown(str(limit))
            self.stmts(node.body, (*catchers, handlers))
            for handler in node.handlers:
                self.stmts(handler.body, catchers)
            self.stmts(node.orelse, catchers)
            self.stmts(node.finalbody, catchers)
            return
        try:
            if isinstance(node, ast.Raise):
                self.raise_(node, catchers)
            if isinstance(node, ast.Call):
                self.call(node, catchers)
        except _Limit as limit:
            self.out.add_unknown(str(limit))
        for child in ast.iter_child_nodes(node):
            self.stmt(child, catchers)

    def handler(self, node: ast.ExceptHandler) -> _Handler:
        reraises = any(
            isinstance(n, ast.Raise)
            and (
                n.exc is None
                or (isinstance(n.exc, ast.Name) and node.name is not None and n.exc.id == node.name)
            )
            for n in _own_nodes(node.body)
        )
        if node.type is None:
            return _Handler(None, reraises)
        exprs = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        types = []
        for expr in exprs:
            value = self.q.value(self.scope, expr)
            if value is not None and value[0] == "name":
                types.append(self.type_name(value[1]))
        return _Handler(tuple(types), reraises)

    def type_name(self, name: str) -> str:
        found = self.q.resolve(name) if self.q.source.installed(name) else ("external", name)
        return found[1].canonical if found[0] == "class" else name

    def caught(self, type_name: str, catchers: tuple[list[_Handler], ...]) -> bool:
        """Whether a visible handler surely catches `type_name` without re-raising it."""
        ancestors: set[str] | None = None
        for handlers in reversed(catchers):
            for handler in handlers:
                if handler.types is None:
                    matches = True
                else:
                    if ancestors is None:
                        ancestors = self.q.base_names(type_name)
                    # Nearly every library exception is an Exception; not one whose visible
                    # bases show it is a BaseException only.
                    below_exception = type_name not in _NOT_EXCEPTION and (
                        "Exception" in ancestors or "BaseException" not in ancestors
                    )
                    matches = any(
                        t in ancestors
                        or (t == "Exception" and below_exception)
                        or t == "BaseException"
                        for t in handler.types
                    )
                if handler.reraises:
                    if matches:
                        break  # it propagates to the enclosing try statements
                    continue
                if matches:
                    return True
        return False

    def add_raise(
        self, type_name: str, via: tuple[str, ...], catchers: tuple[list[_Handler], ...]
    ) -> None:
        if type_name not in self.out.raises and not self.caught(type_name, catchers):
            self.out.raises[type_name] = via

    def merge(self, inner: _Summary, catchers: tuple[list[_Handler], ...]) -> None:
        for chain in inner.blocking:
            self.out.add_blocking((self.here, *chain))
        for type_name, via in inner.raises.items():
            self.add_raise(type_name, (self.here, *via), catchers)
        for text in inner.unknown:
            self.out.add_unknown(text)

    def raise_(self, node: ast.Raise, catchers: tuple[list[_Handler], ...]) -> None:
        if node.exc is None:
            return  # a re-raise: the handler is marked as re-raising
        expr = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        value = self.q.value(self.scope, expr)
        if isinstance(node.exc, ast.Name) and node.exc.id in self.caught_names:
            return  # `raise exc` of a caught exception: counted as a re-raise by its handler
        if value is None or value[0] not in ("name", "inst"):
            self.out.add_unknown(f"raise {_short(node.exc)} (in {self.here})")
            return
        self.add_raise(self.type_name(value[1]), (self.here,), catchers)

    def call(self, node: ast.Call, catchers: tuple[list[_Handler], ...]) -> None:
        q = self.q
        if isinstance(node.func, ast.Name) and node.func.id == "super":
            return  # `super()` itself; `super().method(...)` is the call that counts
        value = q.value(self.scope, node.func)
        text = f"{_short(node.func)} (in {self.here})"
        if value is None:
            self.out.add_unknown(text)
            return
        kind = value[0]
        if kind == "nested":  # a plain function: its first parameter is no `self`
            inner = _Func(
                self.scope.func.module, value[1], None, None, f"{self.here}.{value[1].name}"
            )
            self.merge(q.summary(inner, self.depth + 1), catchers)
        elif kind == "method":
            klass, attr = value[1], value[2]
            found = q.method(klass, attr)
            if isinstance(found, tuple):
                owner, method = found
                inner = _Func(owner.module, method, owner, klass, f"{klass.display}.{attr}")
                self.merge(q.summary(inner, self.depth + 1), catchers)
            else:
                self.out.add_unknown(text)
        elif kind == "supermethod":
            self.super_call(value[1], value[2], text, catchers)
        elif kind == "inst":
            self.named(f"{value[1]}.__call__", text, catchers)
        elif kind == "self" and self.scope.syntax.classmethod:
            self.instantiate(value[1], text, catchers)  # `cls(...)`
        elif kind == "name":
            self.named(value[1], text, catchers)
        else:
            self.out.add_unknown(text)

    def instantiate(self, klass: _Class, text: str, catchers: tuple[list[_Handler], ...]) -> None:
        """A library class called: its `__init__` (none, with every base known: nothing)."""
        init = self.q.method(klass, "__init__")
        if isinstance(init, tuple):
            owner, method = init
            inner = _Func(owner.module, method, owner, klass, f"{klass.display}.__init__")
            self.merge(self.q.summary(inner, self.depth + 1), catchers)
        elif init:
            self.out.add_unknown(text)

    def super_call(
        self, func: _Func, attr: str, text: str, catchers: tuple[list[_Handler], ...]
    ) -> None:
        assert func.owner is not None
        order, complete = self.q.mro(func.owner)
        for current in order[1:]:
            for stmt in current.node.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == attr:
                    display = f"{current.canonical}.{attr}"
                    inner = _Func(current.module, stmt, current, func.self_cls, display)
                    self.merge(self.q.summary(inner, self.depth + 1), catchers)
                    return
        if not complete or attr not in ("__init__", "__init_subclass__", "__new__"):
            self.out.add_unknown(text)

    def named(self, name: str, text: str, catchers: tuple[list[_Handler], ...]) -> None:
        q = self.q
        catalogue = q.source.catalogue
        pattern = catalogue.blocking_match(name)
        types = catalogue.raises(name)
        if pattern is not None:
            self.out.add_blocking((self.here, name))
        if types is not None:
            for type_name in types:
                self.add_raise(type_name, (self.here, name), catchers)
        if pattern is not None or types is not None:
            if types is None:
                self.out.add_unknown(f"{name}: blocking, raises unmapped (in {self.here})")
            return
        found = q.resolve(name)
        kind = found[0]
        if kind == "func":
            self.merge(q.summary(found[1], self.depth + 1), catchers)
        elif kind == "class":
            self.instantiate(found[1], text, catchers)
        elif kind == "external" and name in _BUILTIN_EXCEPTIONS:
            return  # building an exception
        else:
            self.out.add_unknown(text)


_NO_FUNC = ast.FunctionDef(name="<module>", args=ast.arguments(), body=[], decorator_list=[])


_NO_SYNTAX = _Syntax(None, {}, {}, {}, {}, frozenset(), False)


def _module_scope(module: _Module) -> _Scope:
    return _Scope(_Func(module, _NO_FUNC, None, None, module.name), _NO_SYNTAX)


def _own_nodes(body: Sequence[ast.stmt]) -> Iterable[ast.AST]:
    """Every node of a body, not descending into nested functions, classes or lambdas (their
    definitions are yielded)."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _short(node: ast.expr) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:77] + "..."


def _shown_prefix(shown: str, drop: int) -> str:
    parts = shown.split(".")
    return ".".join(parts[: len(parts) - drop]) if drop else shown


# -- the public entry point -----------------------------------------------------------------------
class LibrarySource:
    """The target environment's installed packages, read as source on demand.

    `describe(name)` returns None fast for standard-library names and for names whose top-level
    package is not installed; `files_parsed` counts the module files parsed so far (a cached
    answer parses none).
    """

    def __init__(
        self,
        site_packages: Environment | Path | str | Sequence[Path | str],
        *,
        catalogue: Catalogue | None = None,
        cache_dir: Path | str | None = None,
        use_cache: bool = True,
        max_depth: int = MAX_DEPTH,
        max_files: int = MAX_FILES,
    ) -> None:
        if isinstance(site_packages, Environment):
            self.site_packages = site_packages.site_packages
            self.search_path = site_packages.search_path
        else:
            items = [site_packages] if isinstance(site_packages, (str, Path)) else site_packages
            self.site_packages = tuple(Path(p) for p in items)
            search = list(self.site_packages)
            for site in self.site_packages:
                search.extend(p for p in _pth_dirs(site) if p not in search)
            self.search_path = tuple(search)
        self.catalogue = catalogue or Catalogue.load()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.use_cache = use_cache
        self.max_depth = max_depth
        self.max_files = max_files
        self.files_parsed = 0
        self.distributions = read_distributions(self.site_packages)
        self._editable = self._editable_roots()
        self._tops = self._top_names()
        self._modules: dict[str, _Module | str | None] = {}
        # consolidate: ignore[MEM001] one entry per library call the audited project makes
        self._results: dict[str, LibraryFacts] = {}
        self._syntax: dict[tuple[int, bool], _Syntax] = {}
        # consolidate: ignore[MEM001] one entry per class of the environment that was read
        self._assigns: dict[int, dict[str, list[tuple[str, Any, ast.expr]]]] = {}

    def _self_assigns(self, node: ast.ClassDef) -> dict[str, list[tuple[str, Any, ast.expr]]]:
        """Per attribute: class-body annotations and `self.<attr> = ...` in its methods."""
        key = id(node)
        if key not in self._assigns:
            found: dict[str, list[tuple[str, Any, ast.expr]]] = {}
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    found.setdefault(stmt.target.id, []).append(
                        ("annotation", None, stmt.annotation)
                    )
                if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                positional = [*stmt.args.posonlyargs, *stmt.args.args]
                static = "staticmethod" in {_dotted(d) for d in stmt.decorator_list}
                self_name = positional[0].arg if positional and not static else None
                if self_name is None:
                    continue
                for child in _own_nodes(stmt.body):
                    if isinstance(child, ast.Assign):
                        targets, value = child.targets, child.value
                    elif isinstance(child, ast.AnnAssign) and child.value is not None:
                        targets, value = [child.target], child.value
                    else:
                        continue
                    for target in targets:
                        if (
                            isinstance(target, ast.Attribute)
                            and isinstance(target.value, ast.Name)
                            and target.value.id == self_name
                        ):
                            found.setdefault(target.attr, []).append(("assign", stmt, value))
            self._assigns[key] = found
        return self._assigns[key]

    def _editable_roots(self) -> dict[str, tuple[Path, ...]]:
        """Top-level name -> folders holding it, for setuptools editable installs: the `MAPPING`
        literal of `__editable___*_finder.py`, read with `ast.literal_eval` (never run)."""
        roots: dict[str, list[Path]] = {}
        for site in self.site_packages:
            for finder in sorted(site.glob("__editable___*_finder.py")):
                try:
                    tree = ast.parse(finder.read_bytes())
                except (OSError, SyntaxError, ValueError):
                    continue
                for stmt in tree.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Name)
                        and stmt.targets[0].id == "MAPPING"
                    ):
                        try:
                            mapping = ast.literal_eval(stmt.value)
                        except (ValueError, TypeError, SyntaxError, RecursionError):
                            continue
                        if not isinstance(mapping, dict):
                            continue
                        for top, where in mapping.items():
                            if (
                                isinstance(top, str)
                                and top.isidentifier()
                                and isinstance(where, str)
                            ):
                                parent = Path(where).parent
                                if Path(where).name == top and parent not in roots.get(top, []):
                                    roots.setdefault(top, []).append(parent)
        return {top: tuple(paths) for top, paths in roots.items()}

    def _top_names(self) -> frozenset[str]:
        names = set(self._editable)
        for root in self.search_path:
            try:
                entries = list(os.scandir(root))
            except OSError:
                continue
            for entry in entries:
                stem = entry.name.split(".")[0]
                if not stem.isidentifier() or stem == "__pycache__":
                    continue
                if entry.is_dir():
                    if "." not in entry.name:
                        names.add(stem)
                elif entry.name.endswith((".py", ".so", ".pyd")):
                    names.add(stem)
        return frozenset(names - STDLIB)

    def _pinned(self, path: Path) -> bool:
        """Whether a module file lies in one of the site-packages folders."""
        return any(path.is_relative_to(site) for site in self.site_packages)

    def installed(self, name: str) -> bool:
        """Whether the top-level package of a dotted name is in the environment (not stdlib)."""
        return name.split(".")[0] in self._tops

    def distribution(self, name: str) -> Distribution | None:
        return self.distributions.get(name.split(".")[0])

    def _find_module(self, name: str) -> tuple[Path | None, bool] | str | None:
        parts = name.split(".")
        if not all(p.isidentifier() for p in parts):
            return None
        namespace = False
        for root in (*self.search_path, *self._editable.get(parts[0], ())):
            base = root.joinpath(*parts)
            if (base / "__init__.py").is_file():
                return base / "__init__.py", True
            single = base.parent / f"{parts[-1]}.py"
            if single.is_file():
                return single, False
            if base.parent.is_dir() and any(base.parent.glob(f"{parts[-1]}.*.so")):
                return _COMPILED
            if base.is_dir():
                namespace = True
        return (None, True) if namespace else None

    def signature(self) -> str:
        """The installed distributions and versions, as text: part of the cache key of every
        result that reads this library source (an upgrade changes what the source says)."""
        installed = sorted({(d.name, d.version) for d in self.distributions.values()})
        return "libsource:" + ";".join(f"{name}={version}" for name, version in installed)

    def describe(self, name: str) -> LibraryFacts | None:
        """What calling `name` (a dotted path: `dbkit.Client.query`) does, from the source of the
        installed library; None for stdlib names and packages not installed."""
        if not name or name.split(".")[0] in STDLIB or not self.installed(name):
            return None
        if name in self._results:
            return self._results[name]
        dist = self.distribution(name)
        cached = self._load(name, dist)
        if cached is not None:
            self._results[name] = cached
            return cached
        query = _Query(self)
        facts = self._describe(query, name, dist)
        self._results[name] = facts
        if dist is not None and not query.unversioned:
            self._save(name, dist, query.deps, facts)
        return facts

    def _describe(self, query: _Query, name: str, dist: Distribution | None) -> LibraryFacts:
        def result(summary: _Summary, source: str = SOURCE) -> LibraryFacts:
            return LibraryFacts(
                name=name,
                blocking=tuple(summary.blocking),
                raises=dict(summary.raises),
                unknown=tuple(summary.unknown),
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
                source=source,
            )

        catalogue = self.catalogue
        pattern, types = catalogue.blocking_match(name), catalogue.raises(name)
        if pattern is not None or types is not None:
            summary = _Summary(blocking=[(name,)] if pattern is not None else [])
            summary.raises = {t: (name,) for t in types or ()}
            if types is None:
                summary.unknown.append(f"{name}: blocking, raises unmapped")
            return result(summary, CATALOGUE)
        summary = _Summary()
        try:
            found = query.resolve(name)
            if found[0] == "func":
                summary = query.summary(found[1], 0)
            elif found[0] == "class":
                init = query.method(found[1], "__init__")
                if isinstance(init, tuple):
                    owner, node = init
                    func = _Func(owner.module, node, owner, found[1], f"{name}.__init__")
                    summary = query.summary(func, 0)
                elif init:
                    summary.add_unknown(f"{name}.__init__ (a base class is not resolved)")
            elif found[0] == "external":
                summary.add_unknown(f"{name} (a compiled module: no source)")
            else:
                summary.add_unknown(f"{name} (not found in the library source)")
        except _Limit as limit:
            summary = _Summary(unknown=[str(limit)])
        except RecursionError:
            summary = _Summary(unknown=[f"{name} (too deeply nested to read)"])
        return result(summary)

    # -- the cache -------------------------------------------------------------------------------
    def _cache_root(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        from .seal import cache_folder

        return Path(cache_folder())

    def _cache_path(self, name: str, dist: Distribution) -> tuple[Path, str]:
        from .version import __version__

        key_data = [
            _CACHE_FORMAT,
            __version__,
            self.catalogue.key(),
            dist.name,
            dist.version,
            name,
            self.max_depth,
            self.max_files,
        ]
        key = hashlib.sha256(json.dumps(key_data).encode()).hexdigest()
        folder = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{dist.name}-{dist.version}")
        return self._cache_root() / "libsource" / folder / f"{key[:32]}.json", key

    def _load(self, name: str, dist: Distribution | None) -> LibraryFacts | None:
        if not self.use_cache or dist is None:
            return None
        path, key = self._cache_path(name, dist)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data["key"] != key:
                return None
            for dep_name, dep_version in data["deps"].items():
                current = next((d for d in self.distributions.values() if d.name == dep_name), None)
                if current is None or current.version != dep_version:
                    return None
            return LibraryFacts.from_json(data["facts"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing or corrupt: a miss

    def _save(
        self, name: str, dist: Distribution, deps: Mapping[str, str], facts: LibraryFacts
    ) -> None:
        if not self.use_cache:
            return
        path, key = self._cache_path(name, dist)
        payload = json.dumps(
            {"key": key, "deps": dict(deps), "facts": facts.to_json()}, sort_keys=True
        )
        try:
            os.makedirs(path.parent, mode=0o700, exist_ok=True)
            import tempfile

            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(payload)
                os.replace(temp, path)  # atomic: a reader sees the old entry or the new one
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)  # left only when the write failed
        except OSError:
            pass  # a cache that cannot be written is only slower


def library_source_for(config: Config) -> LibrarySource | None:
    """The target environment's library source for this configuration (`config.python`, set by
    `--python` or `$VIRTUAL_ENV`), memoised per run; None when no environment is set or found."""
    if not config.python:
        return None
    asy, exc = config.options_for("ASY"), config.options_for("EXC")
    extra_blocking = tuple(e for e in asy.get("blocking-calls") or () if isinstance(e, str))
    extra_db = tuple(e for e in asy.get("db-calls") or () if isinstance(e, str))
    calls = exc.get("calls") or {}
    extra_calls = {
        str(p): tuple(t)
        for p, t in (calls.items() if isinstance(calls, Mapping) else ())
        if isinstance(t, list) and all(isinstance(x, str) for x in t)
    }
    return _source_for(config.python, extra_blocking, extra_db, tuple(sorted(extra_calls.items())))


@functools.lru_cache(maxsize=8)
def _source_for(
    python: str,
    extra_blocking: tuple[str, ...],
    extra_db: tuple[str, ...],
    extra_calls: tuple[tuple[str, tuple[str, ...]], ...],
) -> LibrarySource | None:
    environment = find_environment(python)
    if environment is None:
        return None
    catalogue = Catalogue.load(extra_blocking, extra_db, dict(extra_calls))
    return LibrarySource(environment, catalogue=catalogue)
