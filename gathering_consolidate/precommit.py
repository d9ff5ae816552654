"""The changed-files mode behind the pre-commit hooks (`audit --changed FILE...`, `--fix`).

pre-commit passes the staged Python files. The hook must judge those files as the whole-project
audit would, which needs the project-wide analyses (the call graph behind ASY, the exception flow
behind EXC's tiers, the SQL origins, ...): a blocking call added to a helper is reported at the
`async def` route that reaches it, often in another, unchanged file. So:

- the project holding the files (nearest `pyproject.toml`) is audited through the audit cache:
  unchanged files are cache hits, their facts come from the cache, only the changed files are
  parsed and analysed again, and the project checks run on the cached facts plus the fresh ones
  (`project.audit` does exactly this; a warm cache makes it a fraction of a full audit);
- what is reported (`restrict`): the findings located in the changed files, plus the cross-file
  findings located elsewhere whose evidence points into a changed file: a path of it in the
  evidence (`at app/db.py:12`, `"path": "app/db.py"`) or a qualified name defined in it
  (`app.db.Repo.save` in a call chain). A finding in an unchanged file that only its own file
  explains is not the committer's to fix and is not reported (the whole-repo `gate` hook sees
  everything);
- only the changed files' own outcomes count (a file elsewhere that fails to parse does not fail
  this commit); internal errors always count.

`fix_changed` runs the safe codemods that fix findings (`isolate-handlers` today; `lint-guard` is
safe too but marks handlers as debt, which is not a fix, so it is left out) and writes only their changes to the changed files, plus any helper module
a codemod creates for them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config
from .model import AuditResult, Finding, Status

_QUALIFIED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


@dataclass(frozen=True)
class ChangedFiles:
    """The files pre-commit passed, as one project sees them: `paths` project-relative POSIX
    paths of Python files inside it; `ignored` what was passed but is not one (outside the
    project, not `.py`, gone)."""

    root: Path
    paths: tuple[str, ...]
    ignored: tuple[str, ...] = ()


def group_by_project(files: Sequence[os.PathLike[str] | str]) -> dict[Path, list[Path]]:
    """The given files by project root (the folder of the nearest `pyproject.toml`, as
    `load_config` decides), in the order first seen."""
    from .config import find_pyproject

    groups: dict[Path, list[Path]] = {}
    for name in files:
        path = Path(name).absolute()
        pyproject = find_pyproject(path.parent.resolve())
        root = pyproject.parent if pyproject is not None else path.parent
        groups.setdefault(root.resolve(), []).append(path)
    return groups


def changed_files(files: Iterable[os.PathLike[str] | str], config: Config) -> ChangedFiles:
    root = config.root.resolve()
    paths: list[str] = []
    ignored: list[str] = []
    for name in files:
        path = Path(name).absolute()
        try:
            rel = path.parent.resolve().joinpath(path.name).relative_to(root).as_posix()
        except ValueError:
            ignored.append(str(name))
            continue
        if not rel.endswith(".py") or not os.path.lexists(path):
            ignored.append(str(name))
            continue
        if config.is_excluded(rel):
            ignored.append(str(name))
            continue
        paths.append(rel)
    return ChangedFiles(root, tuple(sorted(set(paths))), tuple(ignored))


def module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class _Modules:
    """Qualified name -> the project file that defines it: the longest module prefix among the
    project's files (tried from the project root and from each folder below it, for `src/` and
    `backend/` layouts)."""

    def __init__(self, paths: Iterable[str]):
        self.by_module: dict[str, str] = {}
        for path in paths:
            parts = module_name(path).split(".")
            for start in range(len(parts)):
                name = ".".join(parts[start:])
                if name:
                    self.by_module.setdefault(name, path)

    def file_of(self, qualified: str) -> str | None:
        parts = qualified.split(".")
        for end in range(len(parts), 0, -1):
            path = self.by_module.get(".".join(parts[:end]))
            if path is not None:
                return path
        return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _path_pattern(changed: Iterable[str]) -> re.Pattern[str]:
    """A changed path inside a text (`x() at app/db.py:12`), not part of a longer path."""
    alternatives = "|".join(re.escape(p) for p in sorted(changed, key=len, reverse=True))
    return re.compile(rf"(?<![\w/.])(?:{alternatives})(?![\w/])")


def points_into(
    finding: Finding,
    changed: set[str],
    modules: _Modules,
    pattern: re.Pattern[str] | None = None,
) -> bool:
    """Whether the finding's evidence names a changed file or something defined in one."""
    if not finding.evidence or not changed:
        return False
    pattern = pattern or _path_pattern(changed)
    for text in _strings(finding.evidence):
        if text in changed:
            return True
        if _QUALIFIED.match(text):
            if modules.file_of(text) in changed:
                return True
            continue
        if pattern.search(text):
            return True
    return False


def restrict(result: AuditResult, changed: Iterable[str]) -> AuditResult:
    """`result` as the hook reports it for the changed files (see the module docstring)."""
    wanted = set(changed)
    modules = _Modules(f.path for f in result.files if f.status is Status.OK)
    pattern = _path_pattern(wanted) if wanted else None

    def keep(finding: Finding) -> bool:
        return finding.location.path in wanted or points_into(finding, wanted, modules, pattern)

    return dataclasses.replace(
        result,
        findings=tuple(f for f in result.findings if keep(f)),
        suppressed=tuple(s for s in result.suppressed if keep(s.finding)),
        files=tuple(f for f in result.files if f.path in wanted),
    )


# -- fixing ----------------------------------------------------------------------------------
@dataclass
class FixReport:
    written: list[str] = field(default_factory=list)  # project-relative paths
    by_codemod: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


#: Safe codemods that are not fixes: `lint-guard` writes a ruff policy and marks today's broad
#: handlers as debt; run in a hook it would mark the very handlers the commit adds.
POLICY_CODEMODS = ("lint-guard",)


def fixing_codemods() -> list[str]:
    """Codemods the fix hook applies: the safe ones (they cannot change behaviour) that fix
    findings, that is every safe codemod but the policy ones."""
    from .codemods.engine import codemod_registry
    from .model import Applicability

    return [
        cid
        for cid, cls in codemod_registry().items()
        if cls.applicability is Applicability.SAFE and cid not in POLICY_CODEMODS
    ]


def fix_changed(target: Path, changed: set[str] | None) -> FixReport:
    """Apply the safe fixing codemods to the project at `target`, writing only the changes to
    `changed` (project-relative paths; None: every file) and files a codemod creates for them.
    Each codemod plans on the files as the previous one left them."""
    from .codemods.base import Changed, Failed
    from .codemods.engine import CodemodError, WriteError, apply, plan_migration

    report = FixReport()
    for cid in fixing_codemods():
        try:
            plan = plan_migration(target, cid)
        except (CodemodError, FileNotFoundError) as exc:
            report.failures.append(f"{cid}: {exc}")
            continue
        report.failures.extend(
            f"{cid}: {o.path}: {o.reason}"
            for o in plan.outcomes
            if isinstance(o, Failed) and (changed is None or o.path in changed)
        )
        ours = [
            o
            for o in plan.outcomes
            if isinstance(o, Changed) and (changed is None or o.path in changed)
        ]
        if not ours:
            continue
        created = [
            o
            for o in plan.outcomes
            if isinstance(o, Changed) and o.before is None and o not in ours
        ]
        narrowed = dataclasses.replace(plan, outcomes=tuple(ours + created))
        try:
            written = apply(narrowed)
        except WriteError as exc:
            report.failures.append(f"{cid}: {exc}")
            continue
        root = plan.root.resolve()
        paths = [Path(p).resolve().relative_to(root).as_posix() for p in written]
        report.by_codemod[cid] = paths
        report.written.extend(paths)
    return report
