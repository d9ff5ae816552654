"""The codemod API: what a codemod declares, what it is given, what it returns.

A codemod has an id (verb-first, kebab-case: `aware-datetimes`), a one-line `description`, an
`applicability` (SAFE or UNSAFE: unsafe ones run only with `--unsafe-fixes`), the rule ids it
`fixes`, `OPTIONS`, and `CASES` (before/after pairs, unchanged inputs, refusals) that are also its
tests. It returns outcomes as plain data; the engine (`engine.py`) validates, diffs and writes.

Per-file codemods implement `transform(source, path, project) -> str` (return the source unchanged
when there is nothing to do; raise `Refuse(reason)` to refuse the whole file). Project-wide ones
(writing a helper module, converting every caller) override `run(project)` and call
`project.step(...)` as they go, so the command line can show progress.

Texts are what Python reads: decoded as its tokenizer decodes (BOM, coding cookie) with LF
line ends; the engine writes them back in the file's own encoding and line ends.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..audit.base import Option, dedent
from ..config import Config
from ..model import Applicability, AuditResult, Status


class Refuse(Exception):
    """Raised by `transform` to leave a file alone, with the reason shown to the user."""

    def __init__(self, reason: str, line: int | None = None, category: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.category = category


class AnalysisError(Exception):
    """An analysis a codemod depends on ended in an internal error: the codemod must not go on as
    if it had found nothing (that would read as "0 files would change")."""

    def __init__(self, select: Sequence[str], errors: Sequence[str]):
        self.select = tuple(select)
        self.errors = tuple(errors)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(
            f"the analysis ({', '.join(self.select)}) ended in an internal error{more}:"
            f" {errors[0] if errors else '?'}"
        )


# -- outcomes ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Changed:
    """`before` is None for a file the codemod creates (a helper module written into the target)."""

    path: str
    before: str | None
    after: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unchanged:
    path: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The codemod would not touch this (part of the) file, and says why. `category` is a short
    label that groups refusals in the summary ("unresolved call (30)"); derived from the reason
    when not given."""

    path: str
    reason: str
    line: int | None = None
    category: str = ""

    def __post_init__(self) -> None:
        if not self.category:
            object.__setattr__(self, "category", refusal_category(self.reason))


@dataclass(frozen=True, slots=True)
class Failed:
    """The codemod could not run here, or produced output that does not parse (never written)."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that could not be read or parsed, so no codemod saw it: reported, not fatal."""

    path: str
    reason: str


Outcome = Changed | Unchanged | Refused | Failed | Skipped

# Words in a reason that name its category outright (first match wins).
_CATEGORY_WORDS = (
    ("unresolved", "unresolved call"),
    ("not resolved", "unresolved call"),
    ("cannot tell what", "unknown exceptions"),
    ("isolation", "isolation boundary"),
    ("test code", "test code"),
    ("cannot parse", "unparseable"),
)


def refusal_category(reason: str) -> str:
    """A short label for a refusal reason: a known keyword's category, else the reason's head
    (up to the first `:`, `;` or `(`, code in backticks and numbers blanked), at most eight words."""
    lowered = reason.lower()
    for word, category in _CATEGORY_WORDS:
        if word in lowered:
            return category
    head = re.split(r"[:;(]", re.sub(r"`[^`]*`", "…", reason), maxsplit=1)[0]
    head = re.sub(r"\d+", "N", head)
    words = head.split()
    return " ".join(words[:8]) + (" …" if len(words) > 8 else "") or "other"


# -- cases (examples that are tests) -----------------------------------------------------------
@dataclass(frozen=True)
class Rewrite:
    before: str
    after: str
    path: str = "app/module.py"
    options: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Keeps:
    """Input the codemod must leave byte-identical (LibCST's `assertCodemod(before, before)`)."""

    code: str
    path: str = "app/module.py"
    options: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Refuses:
    """Input the codemod must refuse, with `reason` in the refusal message."""

    code: str
    reason: str
    path: str = "app/module.py"
    options: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)


Case = Rewrite | Keeps | Refuses


# -- the project a codemod sees ------------------------------------------------------------------
@dataclass
class CodemodProject:
    """The target as a codemod sees it: project-relative POSIX paths -> text (every Python file the
    audit would read), the configuration, and the audit on demand."""

    root: Path
    config: Config
    files: dict[str, str]
    _audits: dict[tuple[str, ...], AuditResult] = field(default_factory=dict, repr=False)
    # How each file was read (encoding, line ends, digest of its bytes), for writing it back.
    formats: dict[str, Any] = field(default_factory=dict, repr=False)
    # The oldest Python the target supports (`requires-python`), when newer than the running
    # one: files in that Python's syntax are read (see `parsing`) and outputs checked with it.
    python_version: tuple[int, int] | None = field(default=None, repr=False)
    # progress(stage, advance, total): called as files are analysed and rewritten (None: quiet).
    progress: Callable[[str, int, int | None], None] | None = field(default=None, repr=False)

    def step(self, stage: str, advance: int = 1, total: int | None = None) -> None:
        """Report progress: `advance` more files done in `stage` (of `total`, when known)."""
        if self.progress is not None:
            self.progress(stage, advance, total)

    def audit(self, select: Sequence[str]) -> AuditResult:
        """The audit of these files (in memory, as they are now) restricted to `select`.

        Raises `AnalysisError` when the audit ended in internal errors: a codemod must not take a
        failed analysis for "nothing to do"."""
        key = tuple(sorted(select))
        if key not in self._audits:
            from ..audit import registry
            from ..project import audit_sources, sources_from_mapping

            # The project's own configuration (tiers and their overrides, options, python),
            # restricted to the rules the codemod reads.
            config = dataclasses.replace(self.config, select=key, ignore=())
            stage = f"analysing files ({', '.join(key)})"
            self._audits[key] = audit_sources(
                sources_from_mapping(self.files),
                config,
                registry(),
                progress=None if self.progress is None else lambda n: self.step(stage, n),
                on_total=None if self.progress is None else lambda n: self.step(stage, 0, n),
            )
        result = self._audits[key]
        if result.errors:
            raise AnalysisError(key, result.errors)
        return result

    def map_files(
        self, stage: str, work: Callable[[str], Any], paths: Sequence[str]
    ) -> Iterator[Any]:
        """`work(path)` for each of `paths`, in order, reporting progress in `stage`. With more
        than one path and more than one CPU, in forked worker processes (libcst's metadata costs
        up to a second on a large file): `work` then runs in a copy of this process, so it must
        return its result (picklable) and change nothing here. Workers ignore Ctrl-C, which
        stops them all with this generator."""
        import os

        jobs = min(os.cpu_count() or 1, 8, len(paths))
        if jobs < 2:
            for path in paths:
                result = work(path)
                self.step(stage, 1, len(paths))
                yield result
            return
        import multiprocessing

        global _WORK
        _WORK = work  # inherited by the forked workers: nothing is pickled but the path
        try:
            context = multiprocessing.get_context("fork")
            with context.Pool(jobs, initializer=_ignore_interrupts) as pool:
                for result in pool.imap(_run_work, paths):
                    self.step(stage, 1, len(paths))
                    yield result
        finally:
            _WORK = None

    def declined(self) -> list[Skipped]:
        """The files an audit run for this codemod could not analyse (each with its reason)."""
        found: dict[str, Skipped] = {}
        for result in self._audits.values():
            for outcome in result.files:
                if outcome.status is not Status.OK and outcome.path in self.files:
                    found.setdefault(outcome.path, Skipped(outcome.path, outcome.reason or ""))
        return [found[p] for p in sorted(found)]

    def packages(self) -> list[str]:
        """Top-level package directories (those with an `__init__.py`), shortest first."""
        found = {p.rsplit("/", 1)[0] for p in self.files if p.endswith("/__init__.py")}
        tops = [p for p in found if not any(p.startswith(q + "/") for q in found if q != p)]
        return sorted(tops, key=lambda p: (p.count("/"), p))


#: The work of `CodemodProject.map_files` while it runs (set before the workers fork).
_WORK: Callable[[str], Any] | None = None


def _run_work(path: str) -> Any:
    assert _WORK is not None
    return _WORK(path)


def _ignore_interrupts() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Codemod:
    """Base of every codemod."""

    id: ClassVar[str] = ""
    description: ClassVar[str] = ""
    applicability: ClassVar[Applicability] = Applicability.UNSAFE
    fixes: ClassVar[tuple[str, ...]] = ()
    OPTIONS: ClassVar[Mapping[str, Option]] = {}
    CASES: ClassVar[Sequence[Case]] = ()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        unknown = set(options or {}) - set(self.OPTIONS)
        if unknown:
            raise ValueError(
                f"codemod {self.id} has no option {', '.join(sorted(unknown))}"
                f" (options: {', '.join(sorted(self.OPTIONS)) or 'none'})"
            )
        self.options = {k: o.default for k, o in self.OPTIONS.items()}
        self.options.update(options or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.id:
            return
        import re

        if not re.fullmatch(r"[a-z]+(-[a-z0-9]+)+", cls.id):
            raise TypeError(f"{cls.__name__}: codemod id {cls.id!r} must be verb-first kebab-case")
        if not cls.description or not cls.__doc__:
            raise TypeError(f"{cls.__name__}: a codemod needs a description and a docstring")

    @classmethod
    def options_help(cls) -> list[str]:
        """One line per option, `-O KEY=DEFAULT  what it does`, as `migrate --list` shows them."""
        return [
            f"-O {key}={_shown(option.default)}  {option.doc}"
            for key, option in sorted(cls.OPTIONS.items())
        ]

    @classmethod
    def docs(cls) -> str:
        """The docstring, then its options (`-O KEY=VALUE` on the command line)."""
        import inspect

        text = inspect.cleandoc(cls.__doc__ or "")
        if cls.OPTIONS:
            text += "\n\n## Options\n" + "\n".join(
                f"- `-O {key}={_shown(option.default)}`: {option.doc}"
                for key, option in sorted(cls.OPTIONS.items())
            )
        return text

    def run(self, project: CodemodProject) -> Iterable[Outcome]:
        """Default: `transform` each file on its own."""
        total = len(project.files)
        for path, source in sorted(project.files.items()):
            project.step("rewriting files", 1, total)
            try:
                after = self.transform(source, path, project)
            except Refuse as refusal:
                yield Refused(path, refusal.reason, refusal.line, refusal.category)
                continue
            if after == source:
                yield Unchanged(path)
            else:
                yield Changed(path, source, after, tuple(self.warnings_for(path)))

    def transform(self, source: str, path: str, project: CodemodProject) -> str:
        raise NotImplementedError(f"{type(self).__name__} must implement transform() or run()")

    def warnings_for(self, path: str) -> list[str]:
        """Notes about a changed file (say, a trade-off the user must know); none by default."""
        return []


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return '""' if value == "" else str(value)


def case_sources(case: Case) -> dict[str, str]:
    code = case.before if isinstance(case, Rewrite) else case.code
    return {**{p: dedent(c) for p, c in case.files.items()}, case.path: dedent(code)}
