"""The codemod engine: run a codemod over a target, check every output, diff, write atomically.

Rules it enforces for every codemod:
- files are read as Python reads them (`tokenize.detect_encoding`: BOM, coding cookie); the
  codemod sees LF line ends; a changed file is written back in its own encoding, with its BOM
  and its line ends (CRLF stays CRLF, on added lines too);
- a file that cannot be read, decoded or parsed is reported (`Skipped`) and left alone; it stops
  nothing: exit 2 is for usage errors, internal errors and files the codemod had to change and
  could not (`Failed`);
- an analysis that ends in an internal error fails the codemod (`Failed("<project>")`): a failed
  analysis never reads as "nothing to change";
- an output that does not parse (libcst and `compile`), or that the file's encoding cannot hold,
  is never written: it becomes `Failed`;
- nothing is written unless asked (`apply`); the default is a unified diff, which needs no
  `--unsafe-fixes`; writing an unsafe codemod's changes does;
- writing is all-or-nothing (`safeio.write_many_atomic`): every target is checked first to be
  unchanged since it was read (a digest of its bytes), to be a regular, writable file and not a
  symlink; every new file is staged in a temporary file beside its target and only then renamed
  over it; on any failure nothing is replaced and no temporary file is left;
- file modes are kept; files the codemod did not change are not touched.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import importlib
import io
import os
import pkgutil
import stat
import tokenize
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst

from .. import parsing
from ..config import Config, load_config
from ..model import Applicability
from ..project import discover, read
from ..safeio import write_many_atomic
from .base import (
    AnalysisError,
    Changed,
    Codemod,
    CodemodProject,
    Failed,
    Outcome,
    Refused,
    Skipped,
    Unchanged,
)


class CodemodError(Exception):
    """A usage problem: unknown codemod, a bad option, writing an unsafe one without
    --unsafe-fixes."""


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
class TextFormat:
    """How a file was read, so it can be written back the same way: its encoding (`utf-8-sig`
    when it starts with a BOM), its line ends (CRLF, LF, or None when mixed: then the text is
    kept exactly as read) and the SHA-256 of its bytes (to tell whether it changed since)."""

    encoding: str = "utf-8"
    newline: str | None = "\n"
    digest: str | None = None

    def encode(self, text: str) -> bytes:
        """The file's bytes for `text`. Raises UnicodeEncodeError when the encoding lacks a
        character of `text`."""
        if self.newline == "\r\n":
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        return text.encode(self.encoding)


def decode_source(data: bytes, *, python: bool = True) -> tuple[str, TextFormat]:
    """Decode a file's bytes as the interpreter decodes a Python file (BOM, PEP 263 coding
    cookie, else UTF-8; `python=False`: UTF-8 with or without BOM, for TOML and the like), with
    LF line ends when the file uses one style throughout (CRLF files are written back as CRLF).
    Raises SyntaxError (a bad or unknown cookie), UnicodeDecodeError or LookupError."""
    if python:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    else:
        encoding = "utf-8"
    if encoding == "utf-8" and data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    text = data.decode(encoding)
    digest = hashlib.sha256(data).hexdigest()
    if "\r" not in text:
        return text, TextFormat(encoding, "\n", digest)
    crlf = text.count("\r\n")
    if crlf == text.count("\r") == text.count("\n"):
        return text.replace("\r\n", "\n"), TextFormat(encoding, "\r\n", digest)
    return text, TextFormat(encoding, None, digest)  # mixed line ends: kept exactly as read


def read_text_file(path: Path) -> tuple[str, TextFormat]:
    """A non-Python text file (say `pyproject.toml`) as a codemod should see it, with the format
    that writes it back as it was (see `decode_source`)."""
    return decode_source(path.read_bytes(), python=False)


@dataclass(frozen=True)
class MigrationPlan:
    codemod: str
    root: Path
    outcomes: tuple[Outcome, ...]
    applicability: Applicability = Applicability.UNSAFE
    # path -> how it was read (encoding, line ends, digest); files not in it are read again as
    # UTF-8 text (`read_text_file`) when written.
    formats: Mapping[str, TextFormat] = field(default_factory=dict)

    @property
    def changes(self) -> tuple[Changed, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, Changed))

    @property
    def refusals(self) -> tuple[Refused, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, Refused))

    @property
    def failures(self) -> tuple[Failed, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, Failed))

    @property
    def skipped(self) -> tuple[Skipped, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, Skipped))

    def refusals_by_category(self) -> list[tuple[str, int]]:
        """(category, count), most frequent first."""
        counts: dict[str, int] = {}
        for refusal in self.refusals:
            counts[refusal.category] = counts.get(refusal.category, 0) + 1
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def load_project(
    target: Path, config: Config | None = None
) -> tuple[CodemodProject, list[Skipped]]:
    """Read every Python file of the target as Python reads it. Files that cannot be read,
    decoded or parsed are returned as `Skipped` (reported; they stop nothing)."""
    from ..audit import known_options, registry

    if not target.exists():
        raise FileNotFoundError(f"{target}: no such file or directory")
    config = config or load_config(
        target, known_rules=[c.id for c in registry()], known_options=known_options()
    )
    files: dict[str, str] = {}
    formats: dict[str, TextFormat] = {}
    skipped: list[Skipped] = []
    version = parsing.minimum_version(parsing.requires_python(config.root, config.source))
    for rel, full in discover(target, config):
        source = read(rel, full, config.max_file_size, config.root)
        if source.outcome is not None or source.data is None:
            reason = source.outcome.reason if source.outcome else "unreadable"
            skipped.append(Skipped(rel, f"{reason}; left as is"))
            continue
        try:
            text, text_format = decode_source(source.data)
        except SyntaxError as exc:  # bad bytes in the first lines, a bad or contradicted cookie
            why = exc.msg
            if why.startswith("invalid or missing encoding declaration"):
                why = "not valid UTF-8, and no coding cookie says otherwise"
            skipped.append(Skipped(rel, f"cannot decode: {why}; left as is"))
            continue
        except UnicodeDecodeError as exc:
            encoding = "UTF-8" if exc.encoding.startswith("utf-8") else exc.encoding
            skipped.append(Skipped(rel, f"not valid {encoding} (byte {exc.start}); left as is"))
            continue
        except LookupError as exc:
            skipped.append(Skipped(rel, f"cannot decode: {exc}; left as is"))
            continue
        problem = _parse_problem(text, rel, version)
        if problem:
            skipped.append(Skipped(rel, f"{problem}; left as is"))
            continue
        files[rel] = text
        formats[rel] = text_format
    project = CodemodProject(
        root=config.root, config=config, files=files, formats=formats, python_version=version
    )
    return project, skipped


def _parse_problem(text: str, rel: str, target: tuple[int, int] | None) -> str | None:
    """Why the file cannot be parsed as the target's Python, or None. Syntax newer than the
    running interpreter (PEP 758 `except A, B:`) parses when the target requires that Python."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences: not our concern here
            parsing.parse(text, rel, target=target)
    except parsing.ParseError as exc:
        return exc.reason
    return None


def plan_migration(
    target: str | os.PathLike[str],
    codemod_id: str,
    options: Mapping[str, Any] | None = None,
    *,
    unsafe_fixes: bool = False,
    project: CodemodProject | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> MigrationPlan:
    """Run a codemod in memory and return what it would change. Writes nothing, so any codemod
    may be planned (`unsafe_fixes` is accepted for compatibility and not needed: `check_write`
    is what refuses to write an unsafe codemod's changes without it)."""
    del unsafe_fixes
    registry = codemod_registry()
    if codemod_id not in registry:
        raise CodemodError(f"unknown codemod `{codemod_id}` (known: {', '.join(registry)})")
    try:
        codemod = registry[codemod_id](options)
    except ValueError as exc:
        raise CodemodError(str(exc)) from None
    skipped: list[Skipped] = []
    if project is None:
        project, skipped = load_project(Path(target))
    project.progress = progress
    return run_codemod(codemod, project, skipped)


def check_write(codemod_id: str, *, unsafe_fixes: bool) -> None:
    """Raise CodemodError when writing this codemod's changes needs `--unsafe-fixes`."""
    registry = codemod_registry()
    if codemod_id not in registry:
        raise CodemodError(f"unknown codemod `{codemod_id}` (known: {', '.join(registry)})")
    if registry[codemod_id].applicability is Applicability.UNSAFE and not unsafe_fixes:
        raise CodemodError(
            f"codemod `{codemod_id}` is an unsafe fix (it can change behaviour): review its diff"
            " (run without --write) and pass --unsafe-fixes with --write to apply it"
        )


def run_codemod(
    codemod: Codemod, project: CodemodProject, skipped: Sequence[Skipped | Failed] = ()
) -> MigrationPlan:
    outcomes: list[Outcome] = list(skipped)
    try:
        produced = list(codemod.run(project))
    except AnalysisError as exc:
        produced = [Failed("<project>", f"{codemod.id} cannot run: {exc}")]
    except Exception as exc:  # consolidate: ignore[EXC001] a codemod bug must not lose user files
        produced = [Failed("<project>", f"codemod {codemod.id} crashed: {exc!r}")]
    formats: dict[str, TextFormat] = dict(project.formats)
    # A file the analysis declined (nested too deeply, ...) is reported, not passed by as
    # "unchanged".
    named = {o.path for o in [*outcomes, *produced] if not isinstance(o, Unchanged)}
    declined = {d.path: d for d in project.declined() if d.path not in named}
    produced = [o for o in produced if not (isinstance(o, Unchanged) and o.path in declined)]
    for path, item in sorted(declined.items()):
        outcomes.append(Skipped(path, f"not analysed: {item.reason}; left as is"))
    changed = [o for o in produced if isinstance(o, Changed)]
    for outcome in produced:
        if isinstance(outcome, Changed):
            project.step("checking output", 1, len(changed))
            outcome = _checked(outcome, formats.get(outcome.path), project.python_version)
        outcomes.append(outcome)
    order = {Failed: 0, Skipped: 1, Refused: 2, Changed: 3, Unchanged: 4}
    outcomes.sort(key=lambda o: (o.path, order[type(o)]))
    return MigrationPlan(codemod.id, project.root, tuple(outcomes), codemod.applicability, formats)


def _checked(
    change: Changed, text_format: TextFormat | None, target: tuple[int, int] | None = None
) -> Outcome:
    """The change, or why it cannot be written: unchanged, output that does not parse, or
    text the file's encoding cannot hold."""
    if change.before is not None and change.after == change.before:
        return Unchanged(change.path)
    problem = syntax_problem(change.after, change.path, target)
    if problem:
        return Failed(change.path, f"output does not parse, not written: {problem}")
    if text_format is not None:
        try:
            text_format.encode(change.after)
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end]
            line = exc.object.count("\n", 0, exc.start) + 1
            return Failed(
                change.path,
                f"the new text has {bad!r} (line {line}), which the file's encoding"
                f" ({text_format.encoding}) cannot hold; not written",
            )
    return change


def syntax_problem(
    text: str, path: str = "<output>", target: tuple[int, int] | None = None
) -> str | None:
    """Why `text` is not valid Python (or, for a `.toml` path, valid TOML), or None. `target`:
    the minimum Python the project requires (None: unknown); syntax of a newer Python than the
    running one (PEP 758, PEP 695) is valid unless the target requires an older one, as
    `parsing.parse` decides for the files read (libcst, then `ast` on the lowered text)."""
    if path.endswith((".ini", ".cfg")):  # pytest.ini, tox.ini, setup.cfg (tag-tests)
        import configparser

        try:
            configparser.RawConfigParser(strict=False).read_string(text)
        except configparser.Error as exc:
            return str(exc).splitlines()[0]
        return None
    if path.endswith(".toml"):
        import tomllib

        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            return str(exc).splitlines()[0]
        return None
    try:
        libcst.parse_module(text)
    except (libcst.ParserSyntaxError, ValueError, RecursionError) as exc:
        return str(exc).splitlines()[0]
    try:
        compile(text, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        problem = str(exc).splitlines()[0] or type(exc).__name__
        if not isinstance(exc, SyntaxError) or (target is not None and target <= parsing.RUNNING):
            return problem  # the target's own Python would reject it too
        try:
            parsing.parse(text, path, target=target)
        except parsing.ParseError:
            return problem
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


class WriteError(Exception):
    """Nothing was written: a target changed since it was read, or a file could not be written."""


def apply(plan: MigrationPlan) -> list[Path]:
    """Write every change atomically, all or nothing, each file in its own encoding and line
    ends. Returns the written paths. Raises WriteError (and writes nothing) when a target
    changed since it was read, is read-only, a symlink or not a regular file, or a write fails."""
    payloads: list[tuple[Path, bytes]] = []
    for change in plan.changes:
        target = plan.root / change.path
        text_format = _unchanged_since_read(target, change, plan.formats.get(change.path))
        try:
            payloads.append((target, text_format.encode(change.after)))
        except UnicodeEncodeError as exc:
            raise WriteError(
                f"nothing written: {change.path} cannot be written in {text_format.encoding}"
                f" ({exc.reason})"
            ) from None
    try:
        return write_many_atomic(payloads, root=plan.root)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise WriteError(f"nothing written: {where}{exc.strerror or exc}") from None


def _unchanged_since_read(target: Path, change: Changed, known: TextFormat | None) -> TextFormat:
    """The format to write `target` in; raises WriteError when it must not be written."""
    try:
        info = target.lstat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise WriteError(f"nothing written: cannot read {change.path}: {exc.strerror}") from None
    if info is None:
        if change.before is not None:
            raise WriteError(f"nothing written: {change.path} was removed since it was read")
        return known or TextFormat()
    if change.before is None:
        raise WriteError(
            f"nothing written: {change.path} exists now, the codemod meant to create it;"
            " run the codemod again"
        )
    if stat.S_ISLNK(info.st_mode):
        raise WriteError(f"nothing written: {change.path} is a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise WriteError(f"nothing written: {change.path} is not a regular file")
    if not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise WriteError(f"nothing written: {change.path} is read-only")
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise WriteError(f"nothing written: cannot read {change.path}: {exc.strerror}") from None
    if known is not None and known.digest is not None:
        if hashlib.sha256(data).hexdigest() != known.digest:
            raise WriteError(f"{change.path} changed since it was read; run the codemod again")
        return known
    # Read by the codemod itself (a non-Python file) or given in memory: compare the text.
    try:
        current, found = decode_source(data, python=change.path.endswith(".py"))
    except (SyntaxError, UnicodeDecodeError, LookupError):
        current, found = None, TextFormat()
    if current != change.before:
        raise WriteError(f"{change.path} changed since it was read; run the codemod again")
    return found
