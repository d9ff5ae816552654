"""The codemod engine: run a codemod over a target, check every output, diff, write atomically.

Rules it enforces for every codemod:
- an output that does not parse (libcst and `compile`) is never written: it becomes `Failed`;
- nothing is written unless asked (`apply`); the default is a unified diff;
- writing is all-or-nothing: every new file is written to a temporary file beside its target
  first, each target is checked to be unchanged since it was read, and only then are the
  temporary files renamed over the targets (a crash leaves the originals, never half a file);
- file modes are kept; files the codemod did not change are not touched.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib
import os
import pkgutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst

from ..config import Config, load_config
from ..model import Applicability
from ..project import decode, discover, read
from .base import Changed, Codemod, CodemodProject, Failed, Outcome, Refused, Unchanged


class CodemodError(Exception):
    """A usage problem: unknown codemod, an unsafe one without --unsafe-fixes, a bad option."""


def codemod_registry() -> dict[str, type[Codemod]]:
    """Every codemod class, by id: one module per codemod in this package."""
    from .. import codemods as package

    found: dict[str, type[Codemod]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in ("base", "engine") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Codemod)
                and value.id
                and value.__module__ == module.__name__
            ):
                found[value.id] = value
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class MigrationPlan:
    codemod: str
    root: Path
    outcomes: tuple[Outcome, ...]

    @property
    def changes(self) -> tuple[Changed, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, Changed))

    @property
    def refusals(self) -> tuple[Refused, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, Refused))

    @property
    def failures(self) -> tuple[Failed, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, Failed))


def load_project(target: Path, config: Config | None = None) -> tuple[CodemodProject, list[Failed]]:
    """Read every Python file of the target; unreadable ones are returned as failures."""
    from ..audit import known_options, registry

    if not target.exists():
        raise FileNotFoundError(f"{target}: no such file or directory")
    config = config or load_config(
        target, known_rules=[c.id for c in registry()], known_options=known_options()
    )
    files: dict[str, str] = {}
    failures: list[Failed] = []
    for rel, full in discover(target, config):
        source = read(rel, full, config.max_file_size)
        if source.outcome is not None or source.data is None:
            reason = source.outcome.reason if source.outcome else "unreadable"
            failures.append(Failed(rel, reason))
            continue
        try:
            text = decode(source.data)
        except (UnicodeDecodeError, LookupError):
            failures.append(Failed(rel, "not valid UTF-8"))
            continue
        try:
            ast.parse(text, filename=rel)
        except SyntaxError as exc:
            failures.append(Failed(rel, f"syntax error: {exc.msg} (line {exc.lineno}); left as is"))
            continue
        except (ValueError, RecursionError) as exc:
            failures.append(Failed(rel, f"cannot parse: {exc}; left as is"))
            continue
        files[rel] = text
    return CodemodProject(root=config.root, config=config, files=files), failures


def plan_migration(
    target: str | os.PathLike[str],
    codemod_id: str,
    options: Mapping[str, Any] | None = None,
    *,
    unsafe_fixes: bool = False,
    project: CodemodProject | None = None,
) -> MigrationPlan:
    """Run a codemod in memory and return what it would change. Writes nothing."""
    registry = codemod_registry()
    if codemod_id not in registry:
        raise CodemodError(f"unknown codemod `{codemod_id}` (known: {', '.join(registry)})")
    cls = registry[codemod_id]
    if cls.applicability is Applicability.UNSAFE and not unsafe_fixes:
        raise CodemodError(
            f"codemod `{codemod_id}` is an unsafe fix (it can change behaviour); review its diff"
            " and pass --unsafe-fixes to run it"
        )
    try:
        codemod = cls(options)
    except ValueError as exc:
        raise CodemodError(str(exc)) from None
    failures: list[Failed] = []
    if project is None:
        project, failures = load_project(Path(target))
    return run_codemod(codemod, project, failures)


def run_codemod(
    codemod: Codemod, project: CodemodProject, failures: Sequence[Failed] = ()
) -> MigrationPlan:
    outcomes: list[Outcome] = list(failures)
    try:
        produced = list(codemod.run(project))
    except Exception as exc:  # consolidate: ignore[EXC001] a codemod bug must not lose user files
        produced = [Failed("<project>", f"codemod {codemod.id} crashed: {exc!r}")]
    for outcome in produced:
        if isinstance(outcome, Changed):
            if outcome.before is not None and outcome.after == outcome.before:
                outcome = Unchanged(outcome.path)
            else:
                problem = syntax_problem(outcome.after, outcome.path)
                if problem:
                    outcome = Failed(outcome.path, f"output does not parse, not written: {problem}")
        outcomes.append(outcome)
    order = {Failed: 0, Refused: 1, Changed: 2, Unchanged: 3}
    outcomes.sort(key=lambda o: (o.path, order[type(o)]))
    return MigrationPlan(codemod.id, project.root, tuple(outcomes))


def syntax_problem(text: str, path: str = "<output>") -> str | None:
    """Why `text` is not valid Python (or, for a `.toml` path, valid TOML), or None."""
    if path.endswith(".toml"):
        import tomllib

        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            return str(exc).splitlines()[0]
        return None
    try:
        libcst.parse_module(text)
        compile(text, path, "exec", dont_inherit=True)
    except (libcst.ParserSyntaxError, SyntaxError, ValueError) as exc:
        return str(exc).splitlines()[0]
    return None


def render_diff(plan: MigrationPlan) -> str:
    """A unified diff of every change (`a/` and `b/` prefixes, as git), "" when nothing changes."""
    chunks = []
    for change in plan.changes:
        before = (change.before or "").splitlines(keepends=True)
        after = change.after.splitlines(keepends=True)
        source = "/dev/null" if change.before is None else f"a/{change.path}"
        lines = difflib.unified_diff(before, after, fromfile=source, tofile=f"b/{change.path}")
        chunks.append(
            "".join(
                line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                for line in lines
            )
        )
    return "".join(chunks)


def _digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


class WriteError(Exception):
    """Nothing was written: a target changed since it was read, or a file could not be written."""


def apply(plan: MigrationPlan) -> list[Path]:
    """Write every change atomically, all or nothing. Returns the written paths."""
    staged: list[tuple[Path, str]] = []
    try:
        for change in plan.changes:
            target = plan.root / change.path
            current = target.read_text(encoding="utf-8") if target.exists() else None
            if _digest(current) != _digest(change.before):
                raise WriteError(f"{change.path} changed since it was read; run the codemod again")
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(change.after)
                fh.flush()
                os.fsync(fh.fileno())
            mode = stat.S_IMODE(target.stat().st_mode) if current is not None else 0o644
            os.chmod(tmp, mode)
            staged.append((target, tmp))
    except (OSError, WriteError) as exc:
        for _, tmp in staged:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, WriteError):
            raise
        raise WriteError(f"nothing written: {exc}") from exc
    for target, tmp in staged:
        os.replace(tmp, target)
    return [target for target, _ in staged]
