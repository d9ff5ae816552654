"""`[tool.gathering-consolidate]` in the target's pyproject.toml, plus the default rule data.

Validated on load: an unknown key, a wrong type or an unknown rule id is a `ConfigError` with a
message that names the key and, where it can, suggests the right one.

```toml
[tool.gathering-consolidate]
select = ["DTZ", "EXC001"]        # families or single ids; default: every rule
ignore = ["ASY003"]
exclude = ["migrations/**"]       # extends the built-in excludes (.git, virtualenvs, build, ...)
max-file-size = 2000000           # bytes; larger files are skipped (generated code)
cache-dir = ".gathering_consolidate_cache"  # optional; default: the user cache folder

[tool.gathering-consolidate.tiers]  # overrides rules/tiers.toml, tier by tier
1 = ["app/auth/**", "app/db/**"]

[tool.gathering-consolidate.checks.EXC]   # options of a family or of one rule
some-option = "value"

[[tool.gathering-consolidate.overrides]]
path = "tests/**"
ignore = ["DTZ"]
```
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import fnmatch
import functools
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOOL_KEY = "gathering-consolidate"

DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "__pycache__",
    "build",
    "dist",
    "node_modules",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "site-packages",
    ".eggs",
    "*.egg-info",
    ".gathering_consolidate_cache",
)

DEFAULT_MAX_FILE_SIZE = 2_000_000
#: Check options that name a file of the project: they must stay inside it, as `cache-dir` and
#: `baseline` must.
PATH_OPTIONS = ("allowlist",)

_TOP_LEVEL_KEYS = {
    "select",
    "ignore",
    "exclude",
    "max-file-size",
    "cache-dir",
    "tiers",
    "checks",
    "overrides",
    "baseline",
}
_OVERRIDE_KEYS = {"path", "select", "ignore"}
_RULE_ID = re.compile(r"^[A-Z]{3}(\d{3})?$")


class ConfigError(ValueError):
    """The target's configuration is invalid; the message says where and why."""


def rules_dir() -> Path:
    """The default rule data: `gathering_consolidate/rules` in a wheel, the repo's `rules/` in a
    source checkout or editable install (`seal.rules_folder`)."""
    from .seal import rules_folder

    return Path(rules_folder())


@functools.cache
def load_rule_data(name: str) -> dict[str, Any]:
    """Read `rules/<name>.toml` from the default rule data."""
    path = rules_dir() / f"{name}.toml"
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"default rule data {path} is missing: the installation is broken"
        ) from None


@functools.lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob: `**` crosses directories, `*` and `?` stay inside one segment.
    A pattern without a slash matches a file or directory name at any depth (as .gitignore)."""
    return re.compile(_glob_source(pattern))


@functools.lru_cache(maxsize=512)
def _glob_source(pattern: str) -> str:
    """`glob_regex`'s expression, not compiled: `_any_glob` compiles one alternation of them
    (compiling each as well cost a cached audit ~20 compilations of the default excludes)."""
    if "/" not in pattern:
        pattern = "**/" + pattern
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out) + r"(?:/.*)?\Z"


@functools.lru_cache(maxsize=64)
def _any_glob(patterns: tuple[str, ...]) -> re.Pattern[str]:
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{_glob_source(p)})" for p in patterns))


def path_matches(path: str, patterns: Iterable[str]) -> bool:
    """Whether a project-relative POSIX path (or one of its parent directories) matches a glob."""
    return _any_glob(tuple(patterns)).match(path) is not None


# -- call-name patterns of the catalogues (rules/blocking.toml, rules/exceptions.toml) -------------
# Public so that layers which may not import audit/ (libsource.py) match exactly as the ASY and EXC
# families do: blocking patterns are fnmatch globs, first match wins; exception patterns use `*`
# only, an exact name wins, else the longest pattern.
@functools.lru_cache(maxsize=64)
def _call_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?P<p{i}>{fnmatch.translate(p)})" for i, p in enumerate(patterns)))


def match_call_pattern(name: str, patterns: tuple[str, ...]) -> int | None:
    """The index of the first blocking-style pattern (`*`, `?`, `[abc]`) that the qualified call
    name matches, or None."""
    regex = _call_regex(patterns)
    hit = regex.match(name) if regex is not None else None
    if hit is None or hit.lastgroup is None:
        return None
    return int(hit.lastgroup[1:])


@functools.lru_cache(maxsize=16)
def _types_table(
    calls: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[dict[str, tuple[str, ...]], tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]]:
    exact = {p: t for p, t in calls if "*" not in p}
    starred = sorted(
        ((p, t) for p, t in calls if "*" in p), key=lambda item: -len(item[0].replace("*", ""))
    )
    patterns = tuple(
        (re.compile(".*".join(re.escape(s) for s in p.split("*")) + r"\Z"), t) for p, t in starred
    )
    return exact, patterns


def types_for_call(
    name: str, calls: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[str, ...] | None:
    """What `rules/exceptions.toml`-style `calls` (pattern -> types, later entries win) say a call
    raises: the exact name, else the longest matching `*` pattern; None when no entry maps it."""
    exact, patterns = _types_table(calls)
    if name in exact:
        return exact[name]
    for regex, types in patterns:
        if regex.match(name):
            return types
    return None


@dataclass(frozen=True, slots=True)
class Override:
    path: str
    select: tuple[str, ...] | None
    ignore: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    """The resolved configuration for one target."""

    root: Path
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    cache_dir: str | None = None  # None: the user's cache folder (see cache.py)
    tiers: tuple[tuple[int, tuple[str, ...]], ...] = ()
    default_tier: int = 3
    #: The tiers the project itself sets by path (`[tool.gathering-consolidate.tiers]`): they
    #: override the tier a family derives from meaning (EXC).
    tier_overrides: tuple[tuple[int, tuple[str, ...]], ...] = ()
    check_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    baseline: str | None = None
    source: Path | None = None
    #: The target's environment (`--python PATH`: an interpreter or a virtual environment), read
    #: from disk by `libsource.py`, never run. Defaults to `$VIRTUAL_ENV` when set.
    python: str | None = None

    @property
    def excludes(self) -> tuple[str, ...]:
        return DEFAULT_EXCLUDES + self.exclude

    def is_excluded(self, relpath: str) -> bool:
        return path_matches(relpath, self.excludes)

    def rule_enabled(self, rule: str, relpath: str | None = None) -> bool:
        """Whether `rule` runs, globally (`relpath` None) or on one file after overrides."""
        enabled = _selected(rule, self.select, self.ignore)
        if relpath is not None:
            for override in self.overrides:
                if path_matches(relpath, (override.path,)):
                    if override.select is not None and _matches_any(rule, override.select):
                        enabled = True
                    if _matches_any(rule, override.ignore):
                        enabled = False
        return enabled

    def tier_override_for(self, relpath: str) -> int | None:
        """The tier the project's own configuration gives this path, if any."""
        for tier, patterns in self.tier_overrides:
            if path_matches(relpath, patterns):
                return tier
        return None

    def tier_for(self, relpath: str) -> int:
        for tier, patterns in self.tiers:
            if path_matches(relpath, patterns):
                return tier
        return self.default_tier

    def options_for(self, rule: str) -> dict[str, Any]:
        """Options set for a rule: its family's table, then the rule's own table on top."""
        merged: dict[str, Any] = dict(self.check_options.get(rule[:3], {}))
        merged.update(self.check_options.get(rule, {}))
        return merged

    def fingerprint(self) -> str:
        """A hash of everything that changes audit results, for the cache key."""
        data = {
            "select": self.select,
            "ignore": self.ignore,
            "max": self.max_file_size,
            "tiers": self.tiers,
            "default_tier": self.default_tier,
            "checks": self.check_options,
            "overrides": [(o.path, o.select, o.ignore) for o in self.overrides],
        }
        if self.python:  # library-source facts depend on the environment read
            data["python"] = self.python
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _matches_any(rule: str, selectors: Iterable[str]) -> bool:
    return any(rule == s or (len(s) == 3 and rule.startswith(s)) for s in selectors)


def _selected(rule: str, select: tuple[str, ...] | None, ignore: tuple[str, ...]) -> bool:
    if select is not None and not _matches_any(rule, select):
        return False
    return not _matches_any(rule, ignore)


#: `--python` of the running command, for configurations loaded inside `target_python(...)`.
_TARGET_PYTHON: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gathering_consolidate_target_python", default=None
)


@contextlib.contextmanager
def target_python(python: str | os.PathLike[str] | None) -> Iterator[None]:
    """Within the block, `load_config` without a `python` argument uses this target environment
    (the CLI's `--python`) before `$VIRTUAL_ENV`."""
    token = _TARGET_PYTHON.set(os.fspath(python) if python is not None else None)
    try:
        yield
    finally:
        _TARGET_PYTHON.reset(token)


def find_pyproject(path: Path) -> Path | None:
    """The nearest pyproject.toml at `path` (or its directory) and upwards."""
    *_, last = pyproject_candidates(path)
    return last if last.is_file() else None


def pyproject_candidates(path: Path) -> list[Path]:
    """The pyproject.toml files `find_pyproject` looks for, in order, up to the one it finds:
    what a configuration depends on besides the file it reads (a replayed command compares
    each one's status, none of them being opened when it does not exist)."""
    start = path if path.is_dir() else path.parent
    looked: list[Path] = []
    for directory in (start, *start.parents):
        looked.append(directory / "pyproject.toml")
        if looked[-1].is_file():
            break
    return looked


def load_config(
    path: Path,
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    known_rules: Iterable[str] | None = None,
    known_options: Mapping[str, Mapping[str, Any]] | None = None,
    python: str | os.PathLike[str] | None = None,
) -> Config:
    """Resolve the configuration for a target path.

    The project root is the directory of the nearest pyproject.toml (or `path` itself when there
    is none). `select`/`ignore` from the command line replace/extend the file's. `known_rules` and
    `known_options` (rule or family -> option -> default) validate ids and option tables.
    `python` (`--python`) names the target's interpreter or environment; default: the one set by
    `target_python(...)`, else `$VIRTUAL_ENV`.
    """
    path = path.resolve()
    pyproject = find_pyproject(path)
    root = pyproject.parent if pyproject else (path if path.is_dir() else path.parent)
    table: dict[str, Any] = {}
    if pyproject is not None:
        try:
            # utf-8-sig: a pyproject.toml saved with a BOM (some Windows editors) reads too.
            document = tomllib.loads(pyproject.read_bytes().decode("utf-8-sig"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{pyproject}: invalid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{pyproject}: not UTF-8") from None
        table = document.get("tool", {}).get(TOOL_KEY, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{pyproject}: [tool.{TOOL_KEY}] must be a table")
    where = f"{pyproject}: [tool.{TOOL_KEY}]" if pyproject else "configuration"
    config = _parse(
        table, root, pyproject, where, select, tuple(ignore), known_rules, known_options
    )
    if python is None:
        python = _TARGET_PYTHON.get() or os.environ.get("VIRTUAL_ENV") or None
    return dataclasses.replace(config, python=os.fspath(python)) if python else config


def _parse(
    table: dict[str, Any],
    root: Path,
    source: Path | None,
    where: str,
    cli_select: Iterable[str] | None,
    cli_ignore: tuple[str, ...],
    known_rules: Iterable[str] | None,
    known_options: Mapping[str, Mapping[str, Any]] | None,
) -> Config:
    _reject_unknown(table, _TOP_LEVEL_KEYS, where)
    rules = set(known_rules) if known_rules is not None else None

    def rule_list(key: str, value: Any, context: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{context}: `{key}` must be a list of rule ids or families")
        for selector in value:
            _check_selector(selector, rules, f"{context}: `{key}`")
        return tuple(value)

    select = rule_list("select", table["select"], where) if "select" in table else None
    if cli_select is not None:
        select = rule_list("--select", list(cli_select), "command line")
    ignore = rule_list("ignore", table.get("ignore", []), where)
    ignore += rule_list("--ignore", list(cli_ignore), "command line")
    exclude = table.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(v, str) for v in exclude):
        raise ConfigError(f"{where}: `exclude` must be a list of path globs")
    max_size = table.get("max-file-size", DEFAULT_MAX_FILE_SIZE)
    if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size <= 0:
        raise ConfigError(f"{where}: `max-file-size` must be a positive integer (bytes)")
    cache_dir = table.get("cache-dir")
    if cache_dir is not None:
        if not isinstance(cache_dir, str) or not cache_dir:
            raise ConfigError(f"{where}: `cache-dir` must be a path")
        _inside_project(cache_dir, root, f"{where}: `cache-dir`")
    baseline = table.get("baseline")
    if baseline is not None:
        if not isinstance(baseline, str) or not baseline:
            raise ConfigError(f"{where}: `baseline` must be a path")
        _inside_project(baseline, root, f"{where}: `baseline`")
    tiers, default_tier = _parse_tiers(table.get("tiers", {}), f"{where}.tiers")
    user_tiers = table.get("tiers", {})
    tier_overrides = tuple(
        sorted((int(k), tuple(v)) for k, v in user_tiers.items() if k in ("1", "2", "3"))
    )
    check_options = _parse_check_options(table.get("checks", {}), rules, known_options, where)
    for key, options in check_options.items():
        for name in PATH_OPTIONS:
            if isinstance(options.get(name), str):
                _inside_project(options[name], root, f"{where}.checks.{key}: `{name}`")
    overrides = _parse_overrides(table.get("overrides", []), rules, where)
    return Config(
        root=root,
        select=select,
        ignore=ignore,
        exclude=tuple(exclude),
        max_file_size=max_size,
        cache_dir=cache_dir,
        tiers=tiers,
        default_tier=default_tier,
        tier_overrides=tier_overrides,
        check_options=check_options,
        overrides=overrides,
        baseline=baseline,
        source=source,
    )


def _inside_project(value: str, root: Path, where: str) -> Path:
    """A path from the target's configuration, which must name something inside the project:
    relative, and inside the root once `..` and symlinks are resolved, so that a tree cannot
    send the toolkit's reads or writes elsewhere (a symlinked `rules/` pointing out included)."""
    if Path(value).is_absolute():
        raise ConfigError(
            f"{where} must be relative to the project root ({root}), not the absolute {value!r}"
        )
    real_root = root.resolve()
    try:
        resolved = (root / value).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ConfigError(f"{where}: cannot resolve {value!r}: {exc}") from None
    if resolved == real_root or not resolved.is_relative_to(real_root):
        raise ConfigError(
            f"{where}: {value!r} resolves to {resolved}, outside the project ({real_root});"
            " paths in the configuration must stay inside it (check for `..` or a symlink)"
        )
    return resolved


def _close_matches(word: str, candidates: list[str]) -> list[str]:
    """The closest candidate, for a "did you mean" hint (difflib only when a key is wrong)."""
    import difflib

    return difflib.get_close_matches(word, candidates, n=1)


def _reject_unknown(table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = sorted(allowed)
    for key in table:
        if key not in allowed:
            close = _close_matches(str(key), allowed)
            hint = (
                f" (did you mean `{close[0]}`?)" if close else f" (allowed: {', '.join(allowed)})"
            )
            raise ConfigError(f"{where}: unknown key `{key}`{hint}")


def _check_selector(selector: str, rules: set[str] | None, where: str) -> None:
    if not _RULE_ID.match(selector):
        raise ConfigError(f"{where}: `{selector}` is not a rule id (ABC123) or a family (ABC)")
    if rules is None:
        return
    if len(selector) == 3:
        if not any(r.startswith(selector) for r in rules):
            families = sorted({r[:3] for r in rules})
            raise ConfigError(
                f"{where}: unknown rule family `{selector}` (known: {', '.join(families)})"
            )
    elif selector not in rules:
        close = _close_matches(selector, sorted(rules))
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        raise ConfigError(f"{where}: unknown rule `{selector}`{hint}")


def _parse_tiers(table: Any, where: str) -> tuple[tuple[tuple[int, tuple[str, ...]], ...], int]:
    defaults = load_rule_data("tiers")
    merged: dict[int, tuple[str, ...]] = {
        int(k): tuple(v) for k, v in defaults.get("tiers", {}).items()
    }
    default_tier = int(defaults.get("default", 3))
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of tier number -> list of path globs")
    for key, value in table.items():
        if key == "default":
            if value not in (1, 2, 3):
                raise ConfigError(f"{where}: `default` must be 1, 2 or 3")
            default_tier = value
            continue
        if key not in ("1", "2", "3"):
            raise ConfigError(f"{where}: unknown tier `{key}` (tiers are 1, 2, 3 and `default`)")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: tier {key} must be a list of path globs")
        merged[int(key)] = tuple(value)
    return tuple(sorted(merged.items())), default_tier


def _parse_check_options(
    table: Any,
    rules: set[str] | None,
    known_options: Mapping[str, Mapping[str, Any]] | None,
    where: str,
) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}.checks must be a table of rule or family -> options")
    parsed: dict[str, dict[str, Any]] = {}
    for key, options in table.items():
        context = f"{where}.checks.{key}"
        _check_selector(key, rules, f"{where}.checks")
        if not isinstance(options, dict):
            raise ConfigError(f"{context} must be a table of options")
        if known_options is not None:
            declared = dict(known_options.get(key, {}))
            if len(key) == 3:  # a family table accepts the options of any of its rules
                for rule, opts in known_options.items():
                    if rule.startswith(key):
                        declared.update(opts)
            _reject_unknown(options, declared, context)
            for name, value in options.items():
                default = declared[name]
                if default is not None and not isinstance(value, type(default)):
                    raise ConfigError(
                        f"{context}: `{name}` must be {type(default).__name__},"
                        f" got {type(value).__name__}"
                    )
        parsed[key] = dict(options)
    return parsed


def _parse_overrides(value: Any, rules: set[str] | None, where: str) -> tuple[Override, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: `overrides` must be an array of tables ([[...overrides]])")
    result = []
    for index, item in enumerate(value):
        context = f"{where}.overrides[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{context} must be a table")
        _reject_unknown(item, _OVERRIDE_KEYS, context)
        if not isinstance(item.get("path"), str):
            raise ConfigError(f"{context}: `path` (a glob) is required")
        select = item.get("select")
        ignore = item.get("ignore", [])
        for key, selectors in (("select", select or []), ("ignore", ignore)):
            if not isinstance(selectors, list):
                raise ConfigError(f"{context}: `{key}` must be a list")
            for selector in selectors:
                _check_selector(selector, rules, f"{context}: `{key}`")
        result.append(
            Override(item["path"], tuple(select) if select is not None else None, tuple(ignore))
        )
    return tuple(result)
