"""The audit cache: per-file results and project-check findings of earlier runs, on disk.

The audited tree is untrusted, and a pickle runs code when it is loaded, so:
- the cache lives in the user's cache folder, not in the tree:
  `$GATHERING_CONSOLIDATE_CACHE_DIR`, else `$XDG_CACHE_HOME/gathering-consolidate`, else
  `~/.cache/gathering-consolidate`; one subfolder per (resolved project root, tool version), one
  entry per (configuration, rule set), beside it the run entry of runcache.py. A project may put
  them in a folder of its own tree instead (`cache-dir`, validated by config.py to stay inside
  the project). The user cache folder itself also keeps `tool_digest` and the rule catalogue;
- every entry (a `Sealed` file, on seal.py) is authenticated: `MAGIC + HMAC-SHA256(key, label + payload) + payload`, where the
  key is 32 random bytes created once (mode 0600, `O_EXCL`) in the user's cache folder, never in
  the tree, and the label names the project and entry. The MAC is checked before anything is
  unpickled; a missing, corrupt, truncated, foreign or unauthenticated entry is a miss, and the
  next save overwrites it;
- entries are written through `safeio.write_atomic` (random temporary file, `O_NOFOLLOW`, atomic
  rename), so two audits at once leave one whole entry and a planted symlink is never followed.

Speed: the payload is one pickle made by `FastPickler`, with per-file facts kept as pickled blobs
inside it (`pickle_fast`), so a warm run whose project-wide results are cached never unpickles them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import operator
import os
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import seal
from .safeio import write_atomic
from .seal import ENV_VAR
from .version import __version__

if TYPE_CHECKING:
    from .config import Config
    from .model import Finding

__all__ = ["ENV_VAR", "AuditCache", "FastPickler", "pickle_fast", "user_cache_dir"]


_FORMAT = 4


class Cacheable(Protocol):
    """A per-file result the cache can store (`project.FileResult`): it gives the form to keep."""

    def for_cache(self) -> Any: ...


@functools.cache
def tool_digest() -> str:
    """A digest of this tool's own code and default rule data: any change to either (a new
    check, a changed fact layout, an edited catalogue) starts a new cache entry, so a cached
    result is always one this very code would produce.

    Reading every file costs more than the rest of a cached run's bookkeeping, so the digest is
    kept (a `Sealed` entry of the user cache folder) with the files' status (`seal.tool_stamp`:
    path, size, inode, modification and change times); a file whose status differs in any way
    is read again."""
    sources = seal.tool_files()
    stamp = seal.tool_stamp(sources)
    memo = Sealed(None, "tool-digest.pickle")
    kept = memo.load()
    if isinstance(kept, tuple) and len(kept) == 2 and kept[0] == stamp:
        return str(kept[1])
    digest = hashlib.sha256()
    for path in sources:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        digest.update(os.path.basename(path).encode() + b"\0" + data + b"\0")
    result = digest.hexdigest()[:16]
    memo.write(pickle.dumps((stamp, result)))
    return result


_GITIGNORE = "# Created by gathering-consolidate\n*\n"


def user_cache_dir() -> Path:
    """The user's cache folder for this tool (`seal.cache_folder`); not created here."""
    return Path(seal.cache_folder())


# -- fast pickling -----------------------------------------------------------------------------
# Slotted dataclasses unpickle through `dataclasses._dataclass_setstate`, which calls `fields()` for
# every object: on a 60,000-line tree that is most of a warm run. Pickle them as
# (class, field names, values) instead; the names tuple is shared through pickle's memo.
# consolidate: ignore[MEM001] keyed by class: bounded by the classes that exist
_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[object], tuple[Any, ...]]] | None] = {}


def _slotted_fields(
    cls: type,
) -> tuple[tuple[str, ...], Callable[[object], tuple[Any, ...]]] | None:
    """(field names, a function giving an object's field values as a tuple) of a slotted
    dataclass with fields, None for any other class, kept in `_FIELDS`. The values are read by
    one `operator.attrgetter` (C) rather than a loop of `getattr` calls."""
    slotted = dataclasses.is_dataclass(cls) and "__slots__" in cls.__dict__
    names = tuple(f.name for f in dataclasses.fields(cls)) if slotted else ()
    plan = None
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        plan = names, lambda obj: (one(obj),)
    elif names:
        plan = names, operator.attrgetter(*names)
    _FIELDS[cls] = plan
    return plan


def _reduce_slotted_dataclass(obj: object) -> Any:
    cls = type(obj)
    plan = _FIELDS[cls] if cls in _FIELDS else _slotted_fields(cls)  # memoised by class
    if plan is None:
        return NotImplemented
    names, values = plan
    return _rebuild, (cls, names, values(obj))


class FastPickler(pickle.Pickler):
    """Slotted dataclasses as (class, names, values); the scanner's facts pickler extends it."""

    def reducer_override(self, obj: object) -> Any:
        return _reduce_slotted_dataclass(obj)


def pickle_fast(obj: object) -> bytes:
    """Pickle `obj` with slotted dataclasses as (class, names, values): what the cache stores
    and what workers send back (the default pickling of slotted dataclasses is slow)."""
    buffer = io.BytesIO()
    FastPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


# consolidate: ignore[MEM001] keyed by class: bounded by the classes that exist
_BUILDERS: dict[type, Callable[..., object]] = {}


def _rebuild(cls: type, names: tuple[str, ...], values: tuple[Any, ...]) -> object:
    """Unpickle one object: a per-class function with the field assignments unrolled (generated
    once per class), about twice as fast as a loop over the fields."""
    build = _BUILDERS.get(cls)
    if build is None:
        if not all(name.isidentifier() for name in names):
            raise pickle.UnpicklingError(f"bad field names for {cls!r}")
        params = ", ".join(f"a{i}" for i in range(len(names)))
        body = "".join(f"    _set(o, {name!r}, a{i})\n" for i, name in enumerate(names))
        namespace = {"_new": object.__new__, "_set": object.__setattr__, "cls": cls}
        exec(f"def build({params}):\n    o = _new(cls)\n{body}    return o\n", namespace)
        build = _BUILDERS[cls] = namespace["build"]
    return build(*values)


# -- sealed entries ----------------------------------------------------------------------------
class Sealed:
    """One authenticated cache file of a project: `MAGIC + HMAC(key, label + payload) + payload`.

    `name` is the entry's file name; the label binds the MAC to the resolved project root and
    that name, so an entry copied over another one (of this project or another) is a miss.
    The file is in the project's folder of the user cache, or in `config.cache_dir` (`folder`:
    the user cache folder or that one); without a `config`, in the user cache folder itself.
    `key` is None when no trustworthy key exists: nothing is then read or written."""

    def __init__(self, config: Config | None, name: str):
        base = user_cache_dir()
        self.key = seal.key_for(str(base))
        root = "" if config is None else str(config.root.resolve())
        self.in_tree = False
        if config is None:  # not a project's: in the user cache folder itself
            self.write_root = self.folder = base
            self.path = base / name
        elif config.cache_dir is None:
            project = hashlib.sha256(f"{root}|{__version__}".encode()).hexdigest()[:16]
            self.write_root = self.folder = base
            self.path = base / project / name
        else:  # the project's own folder (inside it: checked by config.py) or, from the API, any
            folder = Path(config.cache_dir)
            self.in_tree = not folder.is_absolute()
            self.write_root = config.root if self.in_tree else folder
            self.folder = config.root / folder
            self.path = self.folder / name
        self._label = f"{root}\0{name}\0".encode()

    def read(self) -> memoryview | None:
        """The authenticated payload, or None (missing, a symlink, not ours, damaged)."""
        if self.key is None:
            return None
        return seal.read_sealed(str(self.path), self.key, self._label)

    def load(self) -> Any:
        """The unpickled payload, or None: only an authenticated payload is ever unpickled."""
        payload = self.read()
        if payload is None:
            return None
        try:
            return pickle.loads(payload)
        # consolidate: ignore[EXC001] an authenticated entry of an older layout is a miss
        except Exception:
            return None

    def write(self, payload: bytes) -> None:
        """Write the entry atomically; never raises (an unwritable cache is only slower)."""
        if self.key is None:
            return
        try:
            if not self.in_tree:  # the user cache folder or a folder the API caller chose
                self.write_root.mkdir(mode=0o700, parents=True, exist_ok=True)
            ignore = self.path.parent / ".gitignore"
            if self.in_tree and not ignore.is_symlink() and not ignore.exists():
                write_atomic(ignore, _GITIGNORE, root=self.write_root)
            if self.path.is_symlink():  # planted: remove the link (never its target), then write
                self.path.unlink()
            write_atomic(
                self.path,
                seal.seal(self.key, self._label, payload),
                root=self.write_root,
                mode=0o600,
            )
        except OSError:
            pass  # a read-only or hostile cache folder: the audit still runs, just uncached


# -- the cache ---------------------------------------------------------------------------------
class AuditCache:
    """One authenticated entry per (project, tool version, configuration, rule set):
    `files` relpath -> (digest, FileResult), and `project` rule -> (state, findings), the
    project-check findings keyed by the digests of every file they read. Set `dirty` after a
    change; `save()` writes the entry if enabled and dirty. Never raises on I/O: a cache that
    cannot be read is empty, one that cannot be written is not written."""

    def __init__(self, config: Config, rules: Iterable[str], enabled: bool):
        self.enabled = enabled
        self.files: dict[str, tuple[str, Cacheable]] = {}
        self.project: dict[str, tuple[str, list[Finding]]] = {}
        self.dirty = False
        if not enabled:
            return
        entry = hashlib.sha256(
            f"{__version__}|{_FORMAT}|{tool_digest()}|{config.fingerprint()}|"
            f"{','.join(sorted(rules))}".encode()
        ).hexdigest()[:16]
        self._entry = Sealed(config, f"audit-{entry}.pickle")
        if self._entry.key is None:
            self.enabled = False
            return
        self.path = self._entry.path
        loaded = self._entry.load()
        if isinstance(loaded, tuple) and len(loaded) == 2:
            files, project = loaded
            if isinstance(files, dict) and isinstance(project, dict):
                self.files, self.project = files, project

    def save(self) -> None:
        if not (self.enabled and self.dirty):
            return
        files = {path: (d, r.for_cache()) for path, (d, r) in self.files.items()}
        self._entry.write(pickle_fast((files, self.project)))
