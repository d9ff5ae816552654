"""The run cache: a finished audit, replayed when nothing it depends on has changed.

A warm audit whose files all hit the per-file cache (cache.py) still imports every check, loads
every file's results and redoes the project-wide bookkeeping. When no input of the run changed,
neither did its result: this cache keeps the last `AuditResult` of a project and configuration,
with every input it was computed from, and gives it back only when all of them are the same:

- the tool: its version and `cache.tool_digest()` (its own code and default rule data);
- the configuration, every field of it (select, ignore, excludes, tiers, options, overrides, the
  target environment) and the target's `requires-python` (how files parse);
- every file the audit read: its path, the digest of its content, or why it was not read;
- the target environment's installed distributions (`--python`, `$VIRTUAL_ENV`), when set;
- what the project checks read besides the files, the inputs they declare with `cache_inputs`
  (an allowlist, schema files): the files those calls open and the folders they list are
  recorded while they run, through an audit hook (PEP 578), before the audit itself; a lookup
  reads each such file again (size and digest) and lists each such folder again (every entry's
  name, type, size and modification time). So a hit imports no check module.

It is as safe as the per-file cache, whose `Sealed` entries it uses: in the user's cache folder,
authenticated with the user's key before anything is unpickled, written atomically, one entry
per project and configuration (overwritten by the next run). Nothing from the audited tree is run.
A run with internal errors is not kept. `cache_hits` of a replayed result is what the per-file
cache would have served: every file read and audited without a note.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import reads
from .cache import Sealed, pickle_fast, tool_digest
from .model import AuditResult, Status
from .version import __version__

if TYPE_CHECKING:
    from .config import Config
    from .project import SourceFile

__all__ = ["RunCache", "replayed_hits", "rule_catalogue"]

_FORMAT = 1
#: A file input larger than this is not digested: the entry is not kept (a miss every time).
_MAX_INPUT = 16_000_000


class RunCache:
    """The run entry of one audit: `lookup()` the finished result, or None; after a miss, `save()`
    the new result. On a miss, `lookup()` has recorded the project checks' other inputs already
    (before the audit reads them), so an input changed during the audit makes the entry stale,
    never wrong."""

    def __init__(self, config: Config, sources: Sequence[SourceFile]):
        self._config = config
        self._sources = sources
        settings = _config_text(config)
        name = hashlib.sha256(
            f"{__version__}|{_FORMAT}|{tool_digest()}|{settings}".encode()
        ).hexdigest()[:16]
        self._entry = Sealed(config, f"run-{name}.pickle")
        self._key = _run_key(config, sources, settings)
        # The cache's own folder changes with every save: it is no input (see `reads.listing`).
        self._skip = os.path.abspath(self._entry.folder)
        self._inputs: tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, str], ...]] | None = None

    def lookup(self) -> AuditResult | None:
        if self._entry.key is None:
            return None
        loaded = self._entry.load()
        if (
            isinstance(loaded, tuple)
            and len(loaded) == 3
            and loaded[0] == self._key
            and isinstance(loaded[2], AuditResult)
            and _unchanged(loaded[1], self._skip)
        ):
            return loaded[2]
        self._inputs = _record_inputs(self._config, self._sources, self._skip)
        return None

    def save(self, result: AuditResult) -> None:
        if self._entry.key is None or self._inputs is None or result.errors:
            return
        replay = dataclasses.replace(result, cache_hits=replayed_hits(result))
        self._entry.write(pickle_fast((self._key, self._inputs, replay)))


def replayed_hits(result: AuditResult) -> int:
    """The `cache_hits` of `result` as this cache replays it: every file read and audited
    without a note (a file that was not read has an outcome other than OK)."""
    return sum(1 for f in result.files if f.status is Status.OK and not f.reason)


def _config_text(config: Config) -> str:
    """Every field of the configuration, as text: what the audit was asked to do (`repr`, which
    tells a tuple from a list and an int from a float, as the checks may)."""
    return repr([(f.name, getattr(config, f.name)) for f in dataclasses.fields(config)])


def _run_key(config: Config, sources: Sequence[SourceFile], settings: str) -> str:
    from .parsing import requires_python

    digest = hashlib.sha256()
    digest.update(f"{settings}\0{requires_python(config.root, config.source)}\0".encode())
    if config.python:  # the environment's distributions, as the project checks' inputs say them
        from .libsource import library_source_for

        library = library_source_for(config)
        digest.update(b"none" if library is None else library.signature().encode())
    for source in sources:
        outcome = source.outcome
        note = "" if outcome is None else f"{outcome.status.value}:{outcome.reason}"
        digest.update(f"\0{source.relpath}\0{source.digest}\0{note}".encode())
    return digest.hexdigest()


def rule_catalogue(
    cache: bool = True,
) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """(every rule id, rule id -> option -> default) of the registry, to validate a configuration
    (`config.load_config`). Listing them imports every check; with `cache`, the catalogue of
    this very code (`tool_digest`) is kept in the user cache folder and read from there."""
    entry = Sealed(None, "catalogue.pickle") if cache else None
    digest = tool_digest() if cache else ""
    if entry is not None:
        loaded = entry.load()
        if isinstance(loaded, tuple) and len(loaded) == 3 and loaded[0] == digest:
            return loaded[1], loaded[2]
    from .audit import known_options, registry

    rules = tuple(c.id for c in registry())
    options = {rule: dict(defaults) for rule, defaults in known_options().items()}
    if entry is not None:
        entry.write(pickle_fast((digest, rules, options)))
    return rules, options


# -- the project checks' other inputs ----------------------------------------------------------
def _record_inputs(
    config: Config, sources: Sequence[SourceFile], skip: str
) -> tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, str], ...]] | None:
    """Run every project check's `cache_inputs` as the audit will, recording what they read:
    ((file, its state), ...), ((folder, its listing), ...). None when one of them fails (the
    audit reports that; such a run is not kept) or an input cannot be described."""
    from .audit import ProjectCheck, registry
    from .audit.base import ProjectContext

    library = None
    if config.python:
        from .libsource import library_source_for

        library = library_source_for(config)
    # As a warm audit orders them: the files it read first, then the rest.
    paths = [s.relpath for s in sources if s.outcome is None]
    paths += [s.relpath for s in sources if s.outcome is not None]
    tiers = {p: config.tier_for(p) for p in paths}
    overrides = {p: t for p in paths if (t := config.tier_override_for(p)) is not None}
    checks = [
        c
        for c in registry()
        if issubclass(c, ProjectCheck)
        and (config.rule_enabled(c.id) or any(o.select is not None for o in config.overrides))
    ]
    with reads.Recording() as seen:
        for check_cls in checks:
            project = ProjectContext(
                str(config.root), tiers, tier_overrides=overrides, library=library
            )
            try:
                check_cls(config.options_for(check_cls.id)).cache_inputs(project)
            except Exception:  # consolidate: ignore[EXC001] the audit reports the check's crash; the run is not kept
                return None
        opened, listed = sorted(seen.opened), sorted(seen.listed)
    files = tuple((path, _file_state(path)) for path in opened)
    if any(state is None for _, state in files):
        return None
    return files, tuple((path, reads.listing(path, skip)[0]) for path in listed)


def _unchanged(inputs: Any, skip: str) -> bool:
    if not (isinstance(inputs, tuple) and len(inputs) == 2):
        return False
    files, folders = inputs
    return all(_file_state(path) == state for path, state in files) and all(
        reads.listing(path, skip)[0] == digest for path, digest in folders
    )


def _file_state(path: str) -> tuple[str, int, str] | tuple[str, str] | None:
    """A regular file's size and digest; or why there is none (missing, not a file); None when it
    is too large to digest. Never blocks: a FIFO is opened without waiting and not read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return ("error", str(exc.errno))
    with os.fdopen(fd, "rb", buffering=0) as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return ("not a file", str(stat.S_IFMT(info.st_mode)))
        if info.st_size > _MAX_INPUT:
            return None
        data = fh.read(_MAX_INPUT + 1)
    return ("file", len(data), hashlib.blake2b(data, digest_size=16).hexdigest())
