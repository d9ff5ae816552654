"""Find CI configuration that hides test failures: GitHub and GitLab workflows, Makefiles,
tox and nox files, shell scripts.

What hides a failing test run (each only where the command runs tests: pytest, tox, nox,
`python -m unittest`, `coverage run`, `make test`):

* `|| true`, `|| :`, `|| exit 0`, `|| echo ...` after it, or `; exit 0` / `; true` after it;
* `continue-on-error: true` (GitHub) or `allow_failure: true` (GitLab) on the step or job;
* `set +e` earlier in the script, with no `$?` / `PIPESTATUS` check afterwards (a loop over test
  runs under `set +e` keeps only the last exit status);
* its output piped (`| tee`) without `set -o pipefail`: the pipe's status is the last command's;
* a Makefile or tox command prefixed with `-` (the tool ignores its exit status), tox's
  `ignore_outcome = true` / `ignore_errors = true`, nox's `success_codes` that accept failures.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_TEST_COMMAND = re.compile(
    r"(?:\bpy\.?test\b|\btox\b|\bnox\b|-m\s+(?:pytest|unittest)\b|\bcoverage\s+run\b|"
    r"\bmake\s+(?:\S+\s+)*test\w*\b|\bunittest\b)"
)
_OR_TRUE = re.compile(r"\|\|\s*(?:true\b|:|exit\s+0\b|echo\b)")
_THEN_EXIT0 = re.compile(r";\s*(?:exit\s+0|true)\s*$")
_PIPE = re.compile(r"(?<!\|)\|(?!\|)\s*(?:tee|grep|cat|less|head|tail)\b")
_SKIP_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", ".tox", ".nox", "__pycache__", "build", "dist"}
)


@dataclass(frozen=True)
class Hidden:
    """One place that hides test failures."""

    path: str
    line: int
    message: str


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], index: int) -> str:
    """The YAML mapping around line `index` (the step or job it belongs to), by indentation."""
    own = _indent(lines[index])
    start = index
    while start > 0:
        previous = lines[start - 1]
        if previous.strip() and _indent(previous) < own:
            start -= 1
            break
        start -= 1
    end = index + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) >= own):
        end += 1
    return "\n".join(lines[start:end])


def _shell(
    text: str, path: str, first_line: int = 1, *, pipefail: bool = False
) -> Iterator[Hidden]:
    """Shell lines (a script, a `run:` block, a Makefile recipe) that hide a test failure."""
    lines = text.splitlines()
    pipefail = pipefail or "pipefail" in text
    set_plus_e: int | None = None
    for offset, raw in enumerate(lines):
        line = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        number = first_line + offset
        stripped = line.strip()
        if re.search(r"\bset\s+\+e\b", stripped):
            set_plus_e = number
        elif re.search(r"\bset\s+-e\b|\bset\s+-o\s+errexit\b", stripped):
            set_plus_e = None
        if not _TEST_COMMAND.search(stripped):
            continue
        found = _OR_TRUE.search(stripped)
        if found:
            yield Hidden(
                path, number, f"`{found.group(0).strip()}` after the test command hides its failure"
            )
            continue
        if _THEN_EXIT0.search(stripped):
            yield Hidden(path, number, "`; exit 0` after the test command hides its failure")
            continue
        if _PIPE.search(stripped) and not pipefail:
            yield Hidden(
                path,
                number,
                "the test command's output is piped without `set -o pipefail`: the pipe's status"
                " is the last command's, a failure passes",
            )
            continue
        if set_plus_e is not None:
            rest = "\n".join(lines[offset + 1 :])
            if not re.search(
                r"\$\?|PIPESTATUS|\|\|\s*(?:exit\s+[1-9]|status=|rc=|fail)", rest + stripped
            ):
                yield Hidden(
                    path,
                    number,
                    f"`set +e` (line {set_plus_e}) and the test command's status is never checked:"
                    " a failure passes",
                )


def _workflow(text: str, path: str, flag: str) -> Iterator[Hidden]:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"^\s*-?\s*{flag}:\s*(?:true|True|yes)\s*(?:#.*)?$", line):
            block = _block(lines, index)
            if _TEST_COMMAND.search(block):
                yield Hidden(
                    path,
                    index + 1,
                    f"`{flag}: true` on a step or job that runs the tests: its failures pass",
                )
    yield from _shell(text, path)


def _makefile(text: str, path: str) -> Iterator[Hidden]:
    for index, line in enumerate(text.splitlines()):
        if line.startswith("\t"):
            command = line[1:].lstrip("@ ")
            if command.startswith("-") and _TEST_COMMAND.search(command):
                yield Hidden(
                    path, index + 1, "a `-` before the test command: make ignores its failure"
                )
    yield from _shell(text.replace("\t", " "), path)


def _tox(text: str, path: str) -> Iterator[Hidden]:
    in_commands = False
    for index, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if re.match(r"^(ignore_outcome|ignore_errors)\s*=\s*(true|True|1)\b", stripped):
            yield Hidden(path, index + 1, f"`{stripped}`: tox reports failing tests as passed")
        if re.match(r"^commands\s*=", stripped):
            in_commands = True
            stripped = stripped.split("=", 1)[1].strip()
        elif line and not line[0].isspace():
            in_commands = False
        if in_commands and stripped.startswith("-") and _TEST_COMMAND.search(stripped):
            yield Hidden(path, index + 1, "a `-` before the test command: tox ignores its failure")
    yield from _shell(text, path)


def _nox(text: str, path: str) -> Iterator[Hidden]:
    for index, line in enumerate(text.splitlines()):
        found = re.search(r"success_codes\s*=\s*[\[(]([^\])]*)", line)
        if (
            found
            and any(c.strip() not in ("0", "") for c in found.group(1).split(","))
            and (_TEST_COMMAND.search(line) or "session.run" in line)
        ):
            yield Hidden(
                path,
                index + 1,
                f"`success_codes=[{found.group(1)}]`: nox accepts a failing test run",
            )


def _files(root: Path) -> Iterator[tuple[Path, str]]:
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS or d == ".github")
        if Path(folder, "pyvenv.cfg").exists():
            dirs[:] = []
            continue
        rel_folder = Path(folder).relative_to(root).as_posix()
        for name in sorted(names):
            if rel_folder.endswith(".github/workflows") and name.endswith((".yml", ".yaml")):
                yield Path(folder, name), "github"
            elif name in (".gitlab-ci.yml", ".gitlab-ci.yaml") or (
                rel_folder.startswith(".gitlab") and name.endswith((".yml", ".yaml"))
            ):
                yield Path(folder, name), "gitlab"
            elif name in ("Makefile", "makefile", "GNUmakefile") or name.endswith(".mk"):
                yield Path(folder, name), "make"
            elif name == "tox.ini":
                yield Path(folder, name), "tox"
            elif name == "noxfile.py":
                yield Path(folder, name), "nox"
            elif name.endswith((".sh", ".bash")):
                yield Path(folder, name), "shell"


def _repository_files(repository: Path, project: Path) -> Iterator[tuple[Path, str]]:
    """The CI files at the top of the repository that run this project's tests: those that
    name its folder (a monorepo's workflow does `cd backend`)."""
    rel = project.relative_to(repository).as_posix()
    candidates = [
        *((p, "github") for p in sorted((repository / ".github" / "workflows").glob("*.y*ml"))),
        *((repository / n, "gitlab") for n in (".gitlab-ci.yml", ".gitlab-ci.yaml")),
        *((repository / n, "make") for n in ("Makefile", "GNUmakefile")),
        (repository / "tox.ini", "tox"),
        (repository / "noxfile.py", "nox"),
    ]
    for path, kind in candidates:
        try:
            if path.is_file() and rel in path.read_text(encoding="utf-8"):
                yield path, kind
        except (OSError, UnicodeDecodeError):
            continue


def hidden_failures(
    root: str | os.PathLike[str], *, repository: str | os.PathLike[str] | None = None
) -> list[Hidden]:
    """Every place under `root` where CI hides a failing test run; with `repository` (the
    repository `root` is a folder of), also its top-level CI files that name `root`."""
    base = Path(root).resolve()
    found: list[Hidden] = []
    files = list(_files(base))
    top = Path(repository).resolve() if repository else base
    if top != base and base.is_relative_to(top):
        files += list(_repository_files(top, base))
    for path, kind in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        rel = path.relative_to(top if not path.is_relative_to(base) else base).as_posix()
        if kind == "github":
            found += _workflow(text, rel, "continue-on-error")
        elif kind == "gitlab":
            found += _workflow(text, rel, "allow_failure")
        elif kind == "make":
            found += _makefile(text, rel)
        elif kind == "tox":
            found += _tox(text, rel)
        elif kind == "nox":
            found += _nox(text, rel)
        else:
            found += _shell(text, rel)
    unique = {(h.path, h.line, h.message): h for h in found}
    return sorted(unique.values(), key=lambda h: (h.path, h.line))
