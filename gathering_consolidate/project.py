"""The scanner: discover a target's Python files, read each once, parse in parallel, run the checks,
cache per-file results on disk keyed by content hash + tool version + configuration.

Bad input never crashes a run: an unreadable, non-UTF-8, unparsable, too large or looping file
becomes a `FileOutcome` with the reason, and the run goes on.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import io
import os
import pickle
import signal
import stat
import tempfile
import threading
import time
import tokenize
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import parsing
from .cache import AuditCache, FastPickler
from .config import Config, load_config
from .model import AuditResult, FileOutcome, Finding, Status

if TYPE_CHECKING:
    from . import suppress
    from .audit import FileCheck, ProjectCheck
    from .audit.base import Check

# The check registry, suppressions, the library reader and multiprocessing are imported by the
# functions that use them: a run-cache hit (runcache.py) needs none of them (~15 ms of start-up).

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
    # In the cache (and from the workers) the facts are kept pickled, one blob per collector: a
    # warm run whose project-wide results are cached never needs them, and the project checks
    # unpickle one collector's facts at a time, so only those are in memory at once.
    facts_blob: dict[str, bytes] | None = None

    def facts_for(self, key: str, *, release: bool = False) -> Any:
        """The facts one collector gathered here (unpickled afresh, not kept), or None. With
        `release`, this file's copy of them is dropped: nothing will ask for them again."""
        if key in self.facts:
            return self.facts.pop(key) if release else self.facts[key]
        if self.facts_blob is not None and key in self.facts_blob:
            blob = self.facts_blob.pop(key) if release else self.facts_blob[key]
            return pickle.loads(blob)
        return None

    def for_cache(self) -> FileResult:
        """The same result with its facts pickled (what the cache stores and workers send)."""
        if not self.facts:
            return self
        blobs = {key: _pickle_shared(value) for key, value in self.facts.items()}
        return FileResult(self.outcome, self.findings, self.directives, {}, self.errors, blobs)


def _pickle_shared(facts: Any) -> bytes:
    """`cache.pickle_fast`, with equal plain values in the fields of the facts pickled once."""
    buffer = io.BytesIO()
    _SharingPickler(buffer).dump(facts)
    return buffer.getvalue()


class _SharingPickler(FastPickler):
    """A file's facts repeat the same values thousands of times (a name, a `("name", "int")`
    type, an empty set of names), each its own object: pickled once each and read back as one
    object each, they take about a third less memory (the call graph's facts of the standard
    library: 280 MB -> 194 MB) and pickle smaller. Shared are the strings in the fields of the
    facts' dataclasses, and their tuples and frozensets made of strings, integers, None and such
    tuples: equal ones are interchangeable (no two of those types have equal values, as `1` and
    `True` do), and no object the checks might tell apart by identity is merged. (Integers are
    not: pickle writes each by value.)"""

    def __init__(self, file: io.BytesIO):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared: dict[Any, Any] = {}

    def reducer_override(self, obj: object) -> Any:
        reduced = super().reducer_override(obj)
        if reduced is NotImplemented:
            return reduced
        rebuild, (cls, names, values) = reduced
        share = self._shared.setdefault
        shared = []
        for value in values:
            kind = type(value)
            if kind is str or (
                (kind is tuple or kind is frozenset) and (not value or _plain(value))
            ):
                value = share(value, value)
            shared.append(value)
        return rebuild, (cls, names, tuple(shared))


#: What a shared value may be made of: no two of these types have equal values.
_ATOMS = frozenset({str, int, type(None)})
#: A larger tuple is not shared: looking through it costs more than it could save.
_PLAIN_ITEMS = 256


def _plain(value: tuple | frozenset) -> bool:
    """Made of atoms and tuples of atoms only."""
    stack = [value]
    budget = _PLAIN_ITEMS  # a bound on the walk: tuples nest without cycles, but may share parts
    while stack:
        items = stack.pop()
        budget -= len(items)
        if budget < 0:
            return False
        for item in items:
            kind = type(item)
            if kind is tuple:
                stack.append(item)
            elif kind not in _ATOMS:
                return False
    return True


class _FactsFile:
    """The pickled facts of the files analysed, kept in an unnamed temporary file from the
    per-file phase until their family's project checks read them back, one file at a time. Held
    in memory they add up to the whole tree's facts (75 MB for the standard library) when a
    family's own facts and cross-file engine need the most; and freed one by one they leave holes
    the unpickled objects do not reuse. Where the file cannot be written (no temporary folder, a
    full disk) the facts stay in memory, as before."""

    def __init__(self) -> None:
        try:
            self._file: Any = tempfile.TemporaryFile(  # noqa: SIM115 closed by close()
                buffering=0, prefix="gathering-consolidate-facts-"
            )
        except OSError:
            self._file = None
        self._writing = self._file is not None
        self._end = 0
        self._where: dict[str, dict[str, tuple[int, int]]] = {}  # path -> key -> (offset, size)

    def take(self, result: FileResult) -> None:
        """Move `result`'s pickled facts to the file, if they can be written."""
        blobs = result.facts_blob
        if not blobs or not self._writing:
            return
        where = {}
        try:
            for key, blob in blobs.items():
                if self._file.write(blob) != len(blob):
                    raise OSError(errno.ENOSPC, "short write")
                where[key] = (self._end, len(blob))
                self._end += len(blob)
        except OSError:
            self._writing = False  # these facts and the next stay in memory
            return
        self._where[result.outcome.path] = where
        result.facts_blob = None

    def facts_for(self, result: FileResult, key: str, *, release: bool) -> Any:
        """`result.facts_for(key)`, from the file if they were moved there."""
        where = self._where.get(result.outcome.path)
        if where is None or key not in where:
            return result.facts_for(key, release=release)
        return pickle.loads(self._read(where[key]))

    def restore(self, result: FileResult) -> None:
        """Put `result`'s pickled facts back in memory (before the cache is written)."""
        where = self._where.pop(result.outcome.path, None)
        if where is not None:
            result.facts_blob = {key: self._read(at) for key, at in where.items()}

    def _read(self, at: tuple[int, int]) -> bytes:
        offset, size = at
        data = os.pread(self._file.fileno(), size, offset)
        if len(data) != size:
            raise OSError(errno.EIO, "the temporary file of the facts was cut short")
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._where.clear()


# -- discovery ---------------------------------------------------------------------------------
def discover(target: Path, config: Config) -> Iterator[tuple[str, Path]]:
    """Yield (project-relative POSIX path, absolute path) for every Python file under `target`,
    sorted, skipping excluded paths, virtual environments and symlinked directories inside the
    project. A directory that cannot be listed, or a symlinked directory that points out of the
    project, is yielded too: `read` reports it as not audited, so nothing is skipped silently."""
    root = config.root
    target = target.absolute()
    if not os.path.isdir(target):  # os.path: an unreadable parent is no error here
        yield _relative(target, root), target
        return
    # Strings, not pathlib, for the walk (a Path per folder and file was ~10 ms of a cached run
    # of 700 files); `_relative_text` is `_relative` for the normalised paths os.walk gives.
    found: list[tuple[str, str]] = []
    unlisted: list[str] = []
    root_text = str(root)
    real_root = os.path.realpath(root_text)
    join, exists, islink = os.path.join, os.path.exists, os.path.islink
    for dirpath, dirnames, filenames in os.walk(str(target), onerror=_collect(unlisted)):
        rel_dir = _relative_text(dirpath, root_text)
        keep = []
        for name in dirnames:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = join(dirpath, name)
            if config.is_excluded(rel):
                continue
            if islink(full):
                if not _inside(os.path.realpath(full), real_root):
                    found.append((rel, full))  # reported by `read`: outside the project
                continue
            if exists(join(full, "pyvenv.cfg")):
                continue
            keep.append(name)
        dirnames[:] = sorted(keep)
        for name in filenames:
            if not name.endswith(".py"):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not config.is_excluded(rel):
                found.append((rel, join(dirpath, name)))
    for path in unlisted:
        found.append((_relative(Path(path), root) or ".", str(Path(path))))
    for rel, full in sorted(found):
        yield rel, Path(full)


def _collect(into: list[str]) -> Callable[[OSError], None]:
    def onerror(exc: OSError) -> None:
        if exc.filename is not None:
            into.append(os.fsdecode(exc.filename))

    return onerror


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _relative_text(path: str, root: str) -> str:
    """`_relative(Path(path), Path(root))` for a normalised absolute `path` (no `.`, `..`, double
    or trailing slash: as os.walk joins them under a Path's text), without building Paths."""
    if path == root:
        return ""
    prefix = root if root.endswith("/") else root + "/"
    if not path.startswith(prefix):
        return _relative(Path(path), Path(root))
    return path[len(prefix) :]


def _relative(path: Path, root: Path) -> str:
    try:
        relative = path.relative_to(root).as_posix()
        return "" if relative == "." else relative  # `.github/x.py` keeps its dot
    except ValueError:
        return path.as_posix()


def read(relpath: str, path: Path, max_size: int, root: Path | None = None) -> SourceFile:
    """Read one file for the audit, or say why not. Only regular files inside the project are
    read (a symlink may point elsewhere in it): a FIFO, device, socket or a symlink out of the
    project is skipped, never opened for reading where that could block or never end; the size cap
    applies before reading and bounds the read. `root` defaults to the project root implied by
    `relpath`."""
    if root is None:
        root = _implied_root(relpath, path)
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            real = os.path.realpath(path, strict=True)
            if not _inside(real, os.path.realpath(root)):
                reason = f"symlink to {real}, outside the project; not followed"
                return SourceFile(relpath, None, FileOutcome(relpath, Status.SKIPPED, reason))
            info = os.stat(real)
            path = Path(real)
        if stat.S_ISDIR(info.st_mode):
            return SourceFile(relpath, None, _unlisted(relpath, path))
        if not stat.S_ISREG(info.st_mode):
            reason = f"not a regular file ({_kind(info.st_mode)}); not read"
            return SourceFile(relpath, None, FileOutcome(relpath, Status.SKIPPED, reason))
        if info.st_size > max_size:
            return SourceFile(relpath, None, _too_large(relpath, info.st_size, max_size))
        # O_NONBLOCK: a file swapped for a FIFO since the lstat cannot block the open.
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb", buffering=0) as fh:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):
                reason = f"not a regular file ({_kind(opened.st_mode)}); not read"
                return SourceFile(relpath, None, FileOutcome(relpath, Status.SKIPPED, reason))
            if opened.st_size > max_size:
                return SourceFile(relpath, None, _too_large(relpath, opened.st_size, max_size))
            os.set_blocking(fd, True)
            data = _read_at_most(fh, max_size + 1)
        if len(data) > max_size:
            return SourceFile(relpath, None, _too_large(relpath, len(data), max_size))
        return SourceFile(relpath, data)
    except OSError as exc:
        return SourceFile(relpath, None, FileOutcome(relpath, Status.FAILED, _os_reason(exc)))


def _implied_root(relpath: str, path: Path) -> Path:
    parts = Path(relpath).parts
    if not parts or Path(relpath).is_absolute() or path.parts[-len(parts) :] != parts:
        return path.parent
    return Path(*path.parts[: -len(parts)]) if len(path.parts) > len(parts) else Path("/")


def _read_at_most(fh: io.RawIOBase, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = fh.read(min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _too_large(relpath: str, size: int, max_size: int) -> FileOutcome:
    reason = f"{size:,} bytes is over max-file-size ({max_size:,}); generated code?"
    return FileOutcome(relpath, Status.SKIPPED, reason)


def _unlisted(relpath: str, path: Path) -> FileOutcome:
    """A directory `discover` yielded: it could not be listed, or it is a symlink out of the tree."""
    try:
        os.listdir(path)
    except OSError as exc:
        reason = f"directory not listed, its files not audited: {exc.strerror or exc}"
        return FileOutcome(relpath, Status.FAILED, reason)
    reason = "directory could not be listed during discovery; its files not audited"
    return FileOutcome(relpath, Status.FAILED, reason)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "cannot read: it no longer exists (removed during the audit, or a broken symlink)"
    return f"cannot read: {exc.strerror or exc}"


def decode(data: bytes, *, universal_newlines: bool = False) -> str:
    """Decode as Python does (`tokenize.detect_encoding`): a UTF-8 BOM, else a PEP 263 coding
    cookie on the first two lines (say latin-1), else UTF-8. With `universal_newlines`, `\\r\\n`
    and `\\r` become `\\n` as when Python reads a module; without, the text keeps its newlines (a
    codemod writes them back). Raises UnicodeDecodeError (with the offset) on bytes that do not
    decode, LookupError on an unknown or contradictory coding cookie."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        # No usable cookie: either the first lines are not UTF-8 (say the offset) or the cookie
        # names an unknown codec / contradicts the BOM.
        data.decode("utf-8")  # raises UnicodeDecodeError with the position, if that is the cause
        raise LookupError(str(exc.msg if hasattr(exc, "msg") else exc)) from None
    text = data.decode(encoding)  # "utf-8-sig" strips the BOM
    if universal_newlines and "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# -- per-file analysis (runs in worker processes) ------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    config: Config
    file_checks: tuple[type[FileCheck], ...]
    collectors: Mapping[str, type[ProjectCheck]]  # collector key -> a check that collects it
    python: tuple[int, int] | None = None  # the lowest Python the target supports, if known


def analyse(source: SourceFile, plan: _Plan) -> FileResult:
    from . import suppress
    from .audit import FileContext

    relpath = source.relpath
    if source.outcome is not None:
        return FileResult(source.outcome)
    assert source.data is not None
    try:
        text = decode(source.data, universal_newlines=True)
    except UnicodeDecodeError as exc:
        reason = f"cannot decode: not valid {_codec_name(exc.encoding)} at byte {exc.start}"
        return FileResult(FileOutcome(relpath, Status.FAILED, reason))
    except LookupError as exc:
        return FileResult(FileOutcome(relpath, Status.FAILED, f"cannot decode: {exc}"))
    try:
        parsed = parsing.parse(text, relpath, target=plan.python)
    except parsing.ParseError as exc:
        return FileResult(FileOutcome(relpath, Status.FAILED, exc.reason))
    config = plan.config
    text, tree = parsed.text, parsed.tree  # lowered newer syntax keeps every line number
    ctx = FileContext(relpath, text, tree, tier=config.tier_for(relpath))
    outcome = FileOutcome(relpath, Status.OK, _lowered_note(parsed.lowered))
    result = FileResult(outcome, directives=suppress.parse_directives(text))
    check_cls: type[Check] | None = None
    try:
        for check_cls in plan.file_checks:
            if not config.rule_enabled(check_cls.id, relpath):
                continue
            try:
                check = check_cls(config.options_for(check_cls.id))
                result.findings.extend(check.check(ctx))
            except RecursionError:
                raise
            except Exception:  # consolidate: ignore[EXC001] a check's crash becomes an internal error with its traceback (exit 2)
                result.errors.append(_internal_error(check_cls.id, relpath))
        for key, check_cls in plan.collectors.items():
            try:
                result.facts[key] = check_cls.collect(ctx)
            except RecursionError:
                raise
            except Exception:  # consolidate: ignore[EXC001] a check's crash becomes an internal error with its traceback (exit 2)
                result.errors.append(_internal_error(check_cls.id, relpath))
    except RecursionError:
        # Nesting deeper than the analyses can follow (generated code): the file is reported as
        # not audited, not as a crash of the tool, and none of its partial results are kept.
        rule = f" in {check_cls.id}" if check_cls is not None else ""
        reason = f"nested too deeply to analyse (RecursionError{rule}); not audited"
        return FileResult(FileOutcome(relpath, Status.FAILED, reason))
    finally:
        ctx.release()
    return result


def _codec_name(encoding: str) -> str:
    return "UTF-8" if encoding in ("utf-8", "utf-8-sig") else encoding


def _lowered_note(features: tuple[str, ...]) -> str:
    return f"parsed with libcst, newer syntax lowered: {', '.join(features)}" if features else ""


def _internal_error(rule: str, relpath: str) -> str:
    return f"internal error in {rule} on {relpath}:\n{traceback.format_exc(limit=6)}"


_WORKER_PLAN: _Plan | None = None


def _analyse_in_worker(source: SourceFile) -> FileResult:
    assert _WORKER_PLAN is not None
    # Facts travel back pickled by the fast pickler (see `cache.pickle_fast`): the default pickling of
    # slotted dataclasses costs more than the analysis that made them.
    return analyse(source, _WORKER_PLAN).for_cache()


def _run_parallel(
    sources: list[SourceFile],
    plan: _Plan,
    jobs: int,
    progress: Callable[[int], None] | None,
    received: Callable[[FileResult], None] = lambda result: None,
) -> list[FileResult]:
    """Analyse in forked workers, one pipe each, a chunk of files at a time; `received` sees each
    result as it comes back.

    No queue feeder threads and no executor manager thread: nothing the interpreter joins at exit
    can hang. Workers ignore SIGINT (a terminal sends it to the whole group); on Ctrl-C, SIGTERM,
    a dead worker or any error here the parent terminates every worker, kills the ones still
    alive, waits for them and re-raises, so no worker outlives the run."""
    import multiprocessing
    import multiprocessing.connection

    global _WORKER_PLAN
    _WORKER_PLAN = plan  # inherited by forked workers: nothing to pickle per task but the file
    places = _chunks(sources, jobs)
    chunks = [[sources[i] for i in chunk] for chunk in places]
    done: list[list[FileResult] | None] = [None] * len(chunks)
    context = multiprocessing.get_context("fork")
    workers: list[tuple[Any, Any]] = []  # (process, parent end of its pipe)
    try:
        for _ in range(min(jobs, len(chunks))):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_worker_main, args=(child_end,), daemon=True)
            process.start()
            child_end.close()
            workers.append((process, parent_end))
        pending = iter(range(len(chunks)))
        busy: dict[Any, int] = {}  # pipe -> index of the chunk it works on
        for _, conn in workers:
            _dispatch(conn, pending, chunks, busy)
        sentinels = {process.sentinel: (process, conn) for process, conn in workers}
        while busy:
            for ready in multiprocessing.connection.wait([*busy, *sentinels]):
                if ready in sentinels:
                    process, conn = sentinels[ready]
                    if conn in busy and conn.poll():
                        continue  # it sent its result, then ended: read the result first
                    if conn in busy:
                        raise RuntimeError(
                            f"a worker process died (exit code {process.exitcode}) while"
                            f" analysing {chunks[busy[conn]][0].relpath} and the files after it"
                        )
                    del sentinels[ready]
                    continue
                index = busy.pop(ready)
                try:
                    kind, payload = ready.recv()
                except EOFError:
                    raise RuntimeError(
                        f"a worker process died while analysing {chunks[index][0].relpath}"
                        " and the files after it"
                    ) from None
                if kind == "error":
                    raise RuntimeError(f"a worker failed on {chunks[index][0].relpath}:\n{payload}")
                for result in payload:
                    received(result)
                done[index] = payload
                if progress:
                    progress(len(payload))
                _dispatch(ready, pending, chunks, busy)
        for _, conn in workers:
            with contextlib.suppress(OSError):
                conn.send(None)  # done: the worker exits
        for process, _ in workers:
            process.join(5.0)
    finally:
        _stop_workers(workers)
    results: list[FileResult | None] = [None] * len(sources)
    for chunk, answers in zip(places, done, strict=True):
        for i, result in zip(chunk, answers or (), strict=True):
            results[i] = result
    return results  # type: ignore[return-value]  # every chunk answered, or this raised


def _chunks(sources: list[SourceFile], jobs: int) -> list[list[int]]:
    """The files' indexes in chunks for the workers: the largest files first and the chunks
    shrinking as the work left does (each about 1/(8 jobs) of the bytes left, at least one
    file), so no worker is left with a large last chunk while the others wait."""
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i].data or b""))
    left = sum(len(source.data or b"") for source in sources)
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i in order:
        current.append(i)
        size += len(sources[i].data or b"")
        if size * 8 * jobs >= left:
            chunks.append(current)
            left -= size
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks


#: Files analysed in one process between two collections of reference cycles.
_COLLECT_EVERY = 64


def _dispatch(conn: Any, pending: Iterator[int], chunks: list, busy: dict[Any, int]) -> None:
    index = next(pending, None)
    if index is not None:
        conn.send(chunks[index])
        busy[conn] = index


def _worker_main(conn: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            chunk = conn.recv()
        except EOFError:
            return
        if chunk is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", [_analyse_in_worker(source) for source in chunk])
        # consolidate: ignore[EXC001] sent to the parent, which raises it (exit 2)
        except Exception:
            reply = ("error", traceback.format_exc())
        conn.send(reply)
        del reply
        # The cyclic collector is paused for speed (see `_cyclic_gc_paused`); what a chunk left
        # in cycles is freed here, so a worker's memory stays bounded by one chunk's garbage.
        # What survives (memoised names, imported rules) is frozen: the next collection scans
        # only what the next chunk allocates.
        gc.collect()
        gc.freeze()


def _stop_workers(workers: list[tuple[Any, Any]]) -> None:
    """Terminate the workers still running, kill those that ignore it and reap them all. A second
    Ctrl-C while this runs is ignored, so it cannot leave workers behind."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        for process, conn in workers:
            conn.close()
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 2.0
        for process, _ in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


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
    `FileNotFoundError` when `target` does not exist; everything file-level is in the result.
    With `cache`, a run none of whose inputs changed is the last run's result (runcache.py),
    found without importing the checks."""
    target_path = Path(target)
    if not target_path.exists() and not target_path.is_symlink():
        raise FileNotFoundError(f"{target}: no such file or directory")
    if config is None:
        from .audit import known_options, registry

        config = load_config(
            target_path,
            select=select,
            ignore=ignore,
            known_rules=[c.id for c in registry()],
            known_options=known_options(),
        )
    sources = [
        read(rel, full, config.max_file_size, config.root)
        for rel, full in discover(target_path, config)
    ]
    run = None
    if cache:
        from .runcache import RunCache

        run = RunCache(config, sources)
        replay = run.lookup()
        if replay is not None:
            if on_total:
                on_total(0)
            return replay
    result = audit_sources(
        sources, config, cache=cache, jobs=jobs, progress=progress, on_total=on_total
    )
    if run is not None:
        run.save(result)
    return result


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
    with _cyclic_gc_paused(), contextlib.closing(_FactsFile()) as spill:
        return _audit_sources(sources, config, checks, cache, jobs, progress, on_total, spill)


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """An audit allocates millions of small acyclic objects (AST nodes, facts) and frees them by
    reference counting; the cyclic collector's passes over them cost about 30% of a cold run.
    It is paused, and the explicit collections at the audit's phase boundaries skip what existed
    before the audit (imported modules, the configuration: most of the heap of a small run), which
    is frozen for the time of the audit. Forked workers inherit both, and, their collections not
    writing to the frozen objects, share those pages with the parent instead of copying them."""
    was_enabled = gc.isenabled()
    freeze = gc.get_freeze_count() == 0  # a caller's own freeze is left as it is
    gc.disable()
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        if freeze:
            gc.unfreeze()
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
    spill: _FactsFile,
) -> AuditResult:
    from . import suppress
    from .audit import EngineCheck, FileCheck, ProjectCheck, registry
    from .audit.base import ProjectContext
    from .libsource import library_source_for

    checks = tuple(checks if checks is not None else registry())
    enabled = [c for c in checks if config.rule_enabled(c.id) or _enabled_somewhere(c.id, config)]
    file_checks = tuple(c for c in enabled if issubclass(c, FileCheck))
    project_checks = tuple(c for c in enabled if issubclass(c, ProjectCheck))
    collectors: dict[str, type[ProjectCheck]] = {}
    for check in project_checks:
        collectors.setdefault(check.collector_key(), check)
    requires_python = parsing.requires_python(config.root, config.source)
    plan = _Plan(config, file_checks, collectors, parsing.minimum_version(requires_python))
    store = AuditCache(config, [c.id for c in enabled], cache)

    results: dict[str, FileResult] = {}
    misses: list[SourceFile] = []
    digests = {s.relpath: s.digest for s in sources}
    for source in sources:
        hit = store.files.get(source.relpath)
        if (
            hit is not None
            and hit[0] == digests[source.relpath]
            and source.outcome is None
            and _cacheable(hit[1])
        ):
            results[source.relpath] = hit[1]
        else:
            misses.append(source)
    if on_total:
        on_total(len(misses))
    workload = sum(len(s.data or b"") for s in misses)
    jobs = jobs if jobs is not None else min(os.cpu_count() or 1, 8)
    if jobs > 1 and workload >= _PARALLEL_MIN_BYTES and len(misses) > 1:
        fresh = _run_parallel(misses, plan, jobs, progress, spill.take)
    else:
        fresh = []
        for count, source in enumerate(misses, 1):
            result = analyse(source, plan).for_cache()  # as from a worker: facts pickled
            spill.take(result)
            fresh.append(result)
            if progress:
                progress(1)
            if count % _COLLECT_EVERY == 0:
                gc.collect()  # bounded memory with the cyclic collector paused
    for source, result in zip(misses, fresh, strict=True):
        results[source.relpath] = result
        if store.enabled and source.outcome is None and _cacheable(result):
            store.files[source.relpath] = (digests[source.relpath], result.for_cache())
            store.dirty = True

    findings: list[Finding] = [f for r in results.values() for f in r.findings]
    errors = [e for r in results.values() for e in r.errors]
    tiers = {p: config.tier_for(p) for p in results}
    overrides = {p: t for p in results if (t := config.tier_override_for(p)) is not None}
    project = ProjectContext(
        root=str(config.root),
        tiers=tiers,
        tier_overrides=overrides,
        library=library_source_for(config),
    )
    tree_state = "".join(
        f"{p}:{digests.get(p, '')};"
        for p in sorted(results)
        if results[p].outcome.status is Status.OK
    )
    listings: dict[str, tuple[Any, ...]] = {}
    # The checks of one collector (a family) run together, on its facts unpickled once; before
    # the next family its facts and shared analyses (the memo) are dropped, and what they left in
    # cycles collected: memory holds one family's facts at a time, not every family's. Without a
    # cache to write, each file's pickled facts are dropped as they are unpickled.
    release = not store.enabled
    current: str | None = None
    facts: dict[str, Any] | None = None
    for check_cls in sorted(project_checks, key=lambda c: c.collector_key()):
        key = check_cls.collector_key()
        if key != current:
            current = key
            facts = None
            project.memo.clear()
        try:
            check = check_cls(config.options_for(check_cls.id))
            extra = check.cache_inputs(project)
        except Exception:  # consolidate: ignore[EXC001] a check's crash becomes an internal error with its traceback (exit 2)
            errors.append(_internal_error(check_cls.id, "<project>"))
            continue
        state = hashlib.sha256((tree_state + extra).encode()).hexdigest()
        cached = store.project.get(check_cls.id)
        wants_listing = bool(check.listing_key) and check.listing_key not in listings
        if cached is not None and cached[0] == state and (len(cached) > 2 or not wants_listing):
            produced = cached[1]
            listed = cached[2] if len(cached) > 2 else ()
        else:
            if facts is None:
                gc.collect()  # the cycles of the per-file phase, or of the previous family
                facts = {
                    p: f
                    for p, r in results.items()
                    if (f := spill.facts_for(r, key, release=release)) is not None
                }
            try:
                produced = list(check.finish(facts, project))
                listed = tuple(check.listing(facts, project)) if wants_listing else ()
            except Exception:  # consolidate: ignore[EXC001] a check's crash becomes an internal error with its traceback (exit 2)
                errors.append(_internal_error(check_cls.id, "<project>"))
                continue
            entry = (state, produced, listed) if wants_listing else (state, produced)
            store.project[check_cls.id] = entry  # type: ignore[assignment]
            store.dirty = True
        if wants_listing:
            listings[check.listing_key] = tuple(listed)
        findings.extend(f for f in produced if config.rule_enabled(f.rule, f.location.path))
    facts = None
    if store.enabled and store.dirty:
        for _, result in store.files.values():
            spill.restore(result)  # type: ignore[arg-type]
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
        requires_python=requires_python,
        listings=tuple(sorted(listings.items())),
    )


def _cacheable(result: FileResult) -> bool:
    """Only plain successes are cached: a failure is cheap to find again, and how a file with
    newer syntax parses depends on the target's `requires-python`, which is not in the cache key."""
    outcome = result.outcome
    return outcome.status is Status.OK and not outcome.reason and not result.errors


def _enabled_somewhere(rule: str, config: Config) -> bool:
    """A rule off globally may be switched on for some paths by an override."""
    return any(
        o.select is not None and any(rule == s or rule.startswith(s) for s in o.select)
        for o in config.overrides
    )


def sources_from_mapping(files: Mapping[str, str]) -> list[SourceFile]:
    """In-memory files (relpath -> text), for examples and tests."""
    return [SourceFile(p, t.encode("utf-8")) for p, t in sorted(files.items())]
