"""The scanner: discover a target's Python files, read each once, parse in parallel, run the checks,
cache per-file results on disk keyed by content hash + tool version + configuration.

Bad input never crashes a run: an unreadable, non-UTF-8, unparsable, too large or looping file
becomes a `FileOutcome` with the reason, and the run goes on.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import hashlib
import io
import multiprocessing
import os
import pickle
import tokenize
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import suppress
from .audit import EngineCheck, FileCheck, FileContext, ProjectCheck, known_options, registry
from .audit.base import Check, ProjectContext
from .cache import AuditCache, pickle_fast
from .config import Config, load_config
from .model import AuditResult, FileOutcome, Finding, Status

#: Below this much work a process pool costs more than it saves.
_PARALLEL_MIN_BYTES = 400_000


@dataclass(frozen=True, slots=True)
class SourceFile:
    relpath: str
    data: bytes | None  # None when it could not be read or was skipped
    outcome: FileOutcome | None = None  # set when the file is skipped or failed before parsing

    @property
    def digest(self) -> str:
        return hashlib.blake2b(self.data or b"", digest_size=16).hexdigest()


@dataclass(slots=True)
class FileResult:
    outcome: FileOutcome
    findings: list[Finding] = field(default_factory=list)
    directives: tuple[suppress.Directive, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # In the cache the facts are kept pickled: a warm run whose project-wide results are cached
    # never needs them, and unpickling tens of thousands of small objects is most of its time.
    facts_blob: bytes | None = None

    def all_facts(self) -> dict[str, Any]:
        if self.facts_blob is not None and not self.facts:
            self.facts = pickle.loads(self.facts_blob)  # the blob stays: the cache stores it
        return self.facts

    def for_cache(self) -> FileResult:
        if not self.facts:
            return self
        if self.facts_blob is not None:
            return FileResult(self.outcome, self.findings, self.directives, {}, [], self.facts_blob)
        blob = pickle_fast(self.facts)
        return FileResult(self.outcome, self.findings, self.directives, {}, [], blob)


# -- discovery ---------------------------------------------------------------------------------
def discover(target: Path, config: Config) -> Iterator[tuple[str, Path]]:
    """Yield (project-relative POSIX path, absolute path) for every Python file under `target`,
    sorted, skipping excluded paths, virtual environments and symlinked directories."""
    root = config.root
    target = target.absolute()
    if target.is_file() or (target.is_symlink() and not target.is_dir()):
        yield _relative(target, root), target
        return
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(target, followlinks=False):
        directory = Path(dirpath)
        rel_dir = _relative(directory, root)
        keep = []
        for name in dirnames:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = directory / name
            if full.is_symlink() or config.is_excluded(rel) or (full / "pyvenv.cfg").exists():
                continue
            keep.append(name)
        dirnames[:] = sorted(keep)
        for name in filenames:
            if not name.endswith(".py"):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not config.is_excluded(rel):
                found.append((rel, directory / name))
    yield from sorted(found)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix().removeprefix(".").lstrip("/")
    except ValueError:
        return path.as_posix()


def read(relpath: str, path: Path, max_size: int) -> SourceFile:
    try:
        size = path.stat().st_size
        if size > max_size:
            reason = f"{size:,} bytes is over max-file-size ({max_size:,}); generated code?"
            return SourceFile(relpath, None, FileOutcome(relpath, Status.SKIPPED, reason))
        return SourceFile(relpath, path.read_bytes())
    except OSError as exc:
        reason = "symlink loop" if exc.errno == 40 else f"cannot read: {exc.strerror or exc}"
        return SourceFile(relpath, None, FileOutcome(relpath, Status.FAILED, reason))


def decode(data: bytes) -> str:
    """Decode as Python does: UTF-8 (with or without BOM) unless a coding cookie says otherwise.
    Raises UnicodeDecodeError / SyntaxError with the offset on bad input."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError:
            raise exc from None
        if encoding in ("utf-8", "utf-8-sig"):
            raise
        return data.decode(encoding)


# -- per-file analysis (runs in worker processes) ------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    config: Config
    file_checks: tuple[type[FileCheck], ...]
    collectors: Mapping[str, type[ProjectCheck]]  # collector key -> a check that collects it


def analyse(source: SourceFile, plan: _Plan) -> FileResult:
    relpath = source.relpath
    if source.outcome is not None:
        return FileResult(source.outcome)
    assert source.data is not None
    try:
        text = decode(source.data)
    except (UnicodeDecodeError, LookupError) as exc:
        where = f" at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
        return FileResult(FileOutcome(relpath, Status.FAILED, f"not valid UTF-8{where}"))
    try:
        tree = ast.parse(text, filename=relpath)
    except SyntaxError as exc:
        return FileResult(
            FileOutcome(relpath, Status.FAILED, f"syntax error: {exc.msg} (line {exc.lineno})")
        )
    except (ValueError, RecursionError, MemoryError) as exc:
        return FileResult(FileOutcome(relpath, Status.FAILED, f"cannot parse: {exc}"))
    config = plan.config
    ctx = FileContext(relpath, text, tree, tier=config.tier_for(relpath))
    result = FileResult(FileOutcome(relpath, Status.OK), directives=suppress.parse_directives(text))
    for check_cls in plan.file_checks:
        if not config.rule_enabled(check_cls.id, relpath):
            continue
        try:
            check = check_cls(config.options_for(check_cls.id))
            result.findings.extend(check.check(ctx))
        except Exception:  # consolidate: ignore[EXC001] a check's crash becomes an internal error with its traceback (exit 2)
            result.errors.append(_internal_error(check_cls.id, relpath))
    for key, check_cls in plan.collectors.items():
        try:
            result.facts[key] = check_cls.collect(ctx)
        except Exception:  # consolidate: ignore[EXC001] a check's crash becomes an internal error with its traceback (exit 2)
            result.errors.append(_internal_error(check_cls.id, relpath))
    return result


def _internal_error(rule: str, relpath: str) -> str:
    return f"internal error in {rule} on {relpath}:\n{traceback.format_exc(limit=6)}"


_WORKER_PLAN: _Plan | None = None


def _analyse_in_worker(source: SourceFile) -> FileResult:
    assert _WORKER_PLAN is not None
    # Facts travel back pickled by the fast pickler (see `cache.pickle_fast`): the default pickling of
    # slotted dataclasses costs more than the analysis that made them.
    return analyse(source, _WORKER_PLAN).for_cache()


def _run_parallel(
    sources: list[SourceFile], plan: _Plan, jobs: int, progress: Callable[[int], None] | None
) -> list[FileResult]:
    global _WORKER_PLAN
    _WORKER_PLAN = plan  # inherited by forked workers: nothing to pickle per task but the file
    chunk = max(1, len(sources) // (jobs * 8))
    context = multiprocessing.get_context("fork")
    results: list[FileResult] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        for result in pool.map(_analyse_in_worker, sources, chunksize=chunk):
            results.append(result)
            if progress:
                progress(1)
    return results


# -- the audit ---------------------------------------------------------------------------------
def audit(
    target: str | os.PathLike[str],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    config: Config | None = None,
    cache: bool = True,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> AuditResult:
    """Audit every Python file under `target`. Raises `ConfigError` on a bad configuration and
    `FileNotFoundError` when `target` does not exist; everything file-level is in the result."""
    target_path = Path(target)
    if not target_path.exists() and not target_path.is_symlink():
        raise FileNotFoundError(f"{target}: no such file or directory")
    checks = registry()
    if config is None:
        config = load_config(
            target_path,
            select=select,
            ignore=ignore,
            known_rules=[c.id for c in checks],
            known_options=known_options(),
        )
    sources = [read(rel, full, config.max_file_size) for rel, full in discover(target_path, config)]
    return audit_sources(
        sources, config, checks, cache=cache, jobs=jobs, progress=progress, on_total=on_total
    )


def audit_sources(
    sources: list[SourceFile],
    config: Config,
    checks: Iterable[type[Check]] | None = None,
    *,
    cache: bool = False,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> AuditResult:
    """Audit files already read (also used for in-memory examples in tests)."""
    with _cyclic_gc_paused():
        return _audit_sources(sources, config, checks, cache, jobs, progress, on_total)


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """An audit allocates millions of small acyclic objects (AST nodes, facts) and frees them by
    reference counting; the cyclic collector's passes over them cost about 30% of a cold run.
    Forked workers inherit the paused state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _audit_sources(
    sources: list[SourceFile],
    config: Config,
    checks: Iterable[type[Check]] | None,
    cache: bool,
    jobs: int | None,
    progress: Callable[[int], None] | None,
    on_total: Callable[[int], None] | None,
) -> AuditResult:
    checks = tuple(checks if checks is not None else registry())
    enabled = [c for c in checks if config.rule_enabled(c.id) or _enabled_somewhere(c.id, config)]
    file_checks = tuple(c for c in enabled if issubclass(c, FileCheck))
    project_checks = tuple(c for c in enabled if issubclass(c, ProjectCheck))
    collectors: dict[str, type[ProjectCheck]] = {}
    for check in project_checks:
        collectors.setdefault(check.collector_key(), check)
    plan = _Plan(config, file_checks, collectors)
    store = AuditCache(config, [c.id for c in enabled], cache)

    results: dict[str, FileResult] = {}
    misses: list[SourceFile] = []
    digests = {s.relpath: s.digest for s in sources}
    for source in sources:
        hit = store.files.get(source.relpath)
        if hit is not None and hit[0] == digests[source.relpath] and source.outcome is None:
            results[source.relpath] = hit[1]
        else:
            misses.append(source)
    if on_total:
        on_total(len(misses))
    workload = sum(len(s.data or b"") for s in misses)
    jobs = jobs if jobs is not None else min(os.cpu_count() or 1, 8)
    if jobs > 1 and workload >= _PARALLEL_MIN_BYTES and len(misses) > 1:
        fresh = _run_parallel(misses, plan, jobs, progress)
    else:
        fresh = []
        for source in misses:
            fresh.append(analyse(source, plan))
            if progress:
                progress(1)
    for source, result in zip(misses, fresh, strict=True):
        results[source.relpath] = result
        if store.enabled and source.outcome is None and not result.errors:
            store.files[source.relpath] = (digests[source.relpath], result.for_cache())
            store.dirty = True

    findings: list[Finding] = [f for r in results.values() for f in r.findings]
    errors = [e for r in results.values() for e in r.errors]
    tiers = {p: config.tier_for(p) for p in results}
    project = ProjectContext(root=str(config.root), tiers=tiers)
    tree_state = "".join(
        f"{p}:{digests.get(p, '')};"
        for p in sorted(results)
        if results[p].outcome.status is Status.OK
    )
    for check_cls in project_checks:
        key = check_cls.collector_key()
        try:
            check = check_cls(config.options_for(check_cls.id))
            extra = check.cache_inputs(project)
        except Exception:  # consolidate: ignore[EXC001] a check's crash becomes an internal error with its traceback (exit 2)
            errors.append(_internal_error(check_cls.id, "<project>"))
            continue
        state = hashlib.sha256((tree_state + extra).encode()).hexdigest()
        cached = store.project.get(check_cls.id)
        if cached is not None and cached[0] == state:
            produced = cached[1]
        else:
            facts = {p: f[key] for p, r in results.items() if key in (f := r.all_facts())}
            try:
                produced = list(check.finish(facts, project))
            except Exception:  # consolidate: ignore[EXC001] a check's crash becomes an internal error with its traceback (exit 2)
                errors.append(_internal_error(check_cls.id, "<project>"))
                continue
            store.project[check_cls.id] = (state, produced)
            store.dirty = True
        findings.extend(f for f in produced if config.rule_enabled(f.rule, f.location.path))
    store.save()

    ran = {c.id for c in enabled if not issubclass(c, EngineCheck)}
    sup_enabled = {c.id for c in enabled if issubclass(c, EngineCheck)}
    directives = {p: r.directives for p, r in results.items() if r.directives}
    kept, silenced = suppress.apply(findings, directives, ran, sup_enabled)
    kept.sort(key=Finding.sort_key)
    silenced.sort(key=lambda s: s.finding.sort_key())
    outcomes = tuple(sorted((r.outcome for r in results.values()), key=lambda o: o.path))
    return AuditResult(
        root=str(config.root),
        findings=tuple(kept),
        suppressed=tuple(silenced),
        files=outcomes,
        rules=tuple(sorted(c.id for c in enabled)),
        cache_hits=len(sources) - len(misses),
        errors=tuple(errors),
    )


def _enabled_somewhere(rule: str, config: Config) -> bool:
    """A rule off globally may be switched on for some paths by an override."""
    return any(
        o.select is not None and any(rule == s or rule.startswith(s) for s in o.select)
        for o in config.overrides
    )


def sources_from_mapping(files: Mapping[str, str]) -> list[SourceFile]:
    """In-memory files (relpath -> text), for examples and tests."""
    return [SourceFile(p, t.encode("utf-8")) for p, t in sorted(files.items())]
