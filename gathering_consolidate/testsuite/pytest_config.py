"""The target's pytest configuration, read as pytest reads it, without running pytest.

pytest looks for its configuration from the collected paths upwards: `pytest.ini` /
`.pytest.ini` (always, even empty), `pyproject.toml` with `[tool.pytest.ini_options]` (or pytest
9's native `[tool.pytest]`), `tox.ini` with `[pytest]`, `setup.cfg` with `[tool:pytest]`. The
first directory that has one is the rootdir; without one, a `setup.py` or a `pyproject.toml`
further up makes the rootdir, else the collected folder itself. Node ids are relative to it.

Only the options that decide what is collected are read (`testpaths`, `python_files`,
`python_classes`, `python_functions`, `norecursedirs`, `addopts`, `markers`); what the
configuration asks that a static reading cannot honour (`-m`/`-k` in `addopts`, doctests, plugins
that generate tests) is listed in `limits`.
"""

from __future__ import annotations

import configparser
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_NORECURSE = (
    "*.egg",
    ".*",
    "_darcs",
    "build",
    "CVS",
    "dist",
    "node_modules",
    "venv",
    "{arch}",
)

#: (file name, section): the configuration files pytest reads, in its order of precedence.
INI_FILES = (
    ("pytest.ini", "pytest"),
    (".pytest.ini", "pytest"),
    ("pyproject.toml", "tool.pytest.ini_options"),
    ("tox.ini", "pytest"),
    ("setup.cfg", "tool:pytest"),
)


class PytestConfigError(ValueError):
    """The configuration file cannot be read (a TOML or INI syntax error)."""


@dataclass
class PytestConfig:
    """The collection options of one project; `inifile` is None when it has no configuration."""

    rootdir: Path
    inifile: Path | None = None
    section: str = ""
    testpaths: list[str] = field(default_factory=list)
    python_files: list[str] = field(default_factory=lambda: ["test_*.py", "*_test.py"])
    python_classes: list[str] = field(default_factory=lambda: ["Test"])
    python_functions: list[str] = field(default_factory=lambda: ["test"])
    norecursedirs: list[str] = field(default_factory=lambda: list(DEFAULT_NORECURSE))
    addopts: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)  # registered marker names
    ignore: list[str] = field(default_factory=list)  # --ignore (paths, rootdir-relative)
    ignore_glob: list[str] = field(default_factory=list)
    deselect: list[str] = field(default_factory=list)
    import_mode: str = "prepend"
    # pytest 9.2+: ids for str/bytes values over 100 characters (short: argname+index)
    long_str_strategy: str = "short"
    limits: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rootdir": str(self.rootdir),
            "inifile": self.inifile.name if self.inifile else None,
            "section": self.section,
            "testpaths": self.testpaths,
            "python_files": self.python_files,
            "python_classes": self.python_classes,
            "python_functions": self.python_functions,
            "norecursedirs": self.norecursedirs,
            "addopts": self.addopts,
            "markers": self.markers,
        }


def _has_section(path: Path, section: str) -> bool:
    if path.name == "pyproject.toml":
        data = _toml(path)
        tool = data.get("tool", {})
        pytest_table = tool.get("pytest") if isinstance(tool, dict) else None
        return isinstance(pytest_table, dict)
    if path.name in ("pytest.ini", ".pytest.ini"):
        return True
    parser = _ini(path)
    return parser.has_section(section)


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PytestConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PytestConfigError(f"{path}: not valid TOML: {exc}") from None


def _ini(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise PytestConfigError(f"{path}: cannot read: {exc}") from None
    except configparser.Error as exc:
        raise PytestConfigError(f"{path}: not valid INI: {exc}".splitlines()[0]) from None
    return parser


def find_inifile(start: Path) -> tuple[Path, str] | None:
    """The configuration file pytest would use for `start`, and its section, or None."""
    start = start.resolve()
    for folder in [start, *start.parents] if start.is_dir() else list(start.parents):
        for name, section in INI_FILES:
            candidate = folder / name
            if candidate.is_file() and _has_section(candidate, section):
                if name == "pyproject.toml":
                    data = _toml(candidate).get("tool", {})
                    if isinstance(data.get("pytest", {}).get("ini_options"), dict):
                        return candidate, "tool.pytest.ini_options"
                    return candidate, "tool.pytest"
                return candidate, section
    return None


def _rootdir_without_ini(start: Path) -> Path:
    start = start.resolve()
    folders = [start, *start.parents] if start.is_dir() else list(start.parents)
    # pytest 8.1+: a pyproject.toml without a pytest table still makes the rootdir, before the
    # setup.py search.
    for marker in ("pyproject.toml", "setup.py"):
        for folder in folders:
            if (folder / marker).is_file():
                return folder
    return folders[0]


def _split(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if value is None:
        return []
    try:
        return shlex.split(str(value))
    except ValueError:
        return str(value).split()


def _lines(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def load_pytest_config(start: Path) -> PytestConfig:
    """The collection configuration for a path (a project folder, a test folder or a file)."""
    found = find_inifile(start)
    if found is None:
        return PytestConfig(rootdir=_rootdir_without_ini(start))
    inifile, section = found
    values: dict[str, Any]
    if inifile.name == "pyproject.toml":
        tool = _toml(inifile).get("tool", {})
        table = tool.get("pytest", {})
        values = table.get("ini_options", {}) if section == "tool.pytest.ini_options" else table
        values = {k: v for k, v in values.items() if not isinstance(v, dict)}
    else:
        parser = _ini(inifile)
        values = dict(parser.items(section)) if parser.has_section(section) else {}
    config = PytestConfig(rootdir=inifile.parent, inifile=inifile, section=section)
    if "testpaths" in values:
        config.testpaths = _split(values["testpaths"])
    if "python_files" in values:
        config.python_files = _split(values["python_files"])
    if "python_classes" in values:
        config.python_classes = _split(values["python_classes"])
    if "python_functions" in values:
        config.python_functions = _split(values["python_functions"])
    if "norecursedirs" in values:
        config.norecursedirs = _split(values["norecursedirs"])
    config.addopts = _split(values.get("addopts"))
    if "parametrize_long_str_id_strategy" in values:
        config.long_str_strategy = str(values["parametrize_long_str_id_strategy"]).strip()
    config.markers = [line.split(":", 1)[0].strip() for line in _lines(values.get("markers"))]
    config.markers = [m.split("(", 1)[0] for m in config.markers if m]
    _read_addopts(config)
    return config


def _read_addopts(config: PytestConfig) -> None:
    args = config.addopts
    i = 0
    while i < len(args):
        arg = args[i]
        name, _, inline = arg.partition("=")
        takes = name in ("--ignore", "--ignore-glob", "--deselect", "--import-mode", "-m", "-k")
        value = inline if inline else (args[i + 1] if takes and i + 1 < len(args) else "")
        if takes and not inline:
            i += 1
        if name == "--ignore":
            config.ignore.append(value)
        elif name == "--ignore-glob":
            config.ignore_glob.append(value)
        elif name == "--deselect":
            config.deselect.append(value)
        elif name == "--import-mode":
            config.import_mode = value
        elif name in ("-m", "-k"):
            config.limits.append(
                f"addopts has `{name} {value}`: pytest deselects by it; the inventory lists every"
                " test"
            )
        elif name == "--doctest-modules" or name == "--doctest-glob":
            config.limits.append(f"addopts has `{name}`: doctests are not counted")
        elif (arg.startswith("-m") and len(arg) > 2) or (arg.startswith("-k") and len(arg) > 2):
            config.limits.append(f"addopts has `{arg}`: pytest deselects by it")
        i += 1


def matches_prefix_or_glob(name: str, options: list[str]) -> bool:
    """pytest's rule for `python_classes` / `python_functions`: a prefix, or a glob."""
    from fnmatch import fnmatch

    for option in options:
        if name.startswith(option):
            return True
        if any(c in option for c in "*?[") and fnmatch(name, option):
            return True
    return False
