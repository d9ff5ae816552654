"""Replay: an `audit` command run again, with nothing it depends on changed, prints what it
printed the last time, without building the command line or loading the audit (as a repeated
`ruff check` answers from its cache).

A pre-commit hook or a CI step runs the same command on a tree that mostly did not change. The
run cache (runcache.py) spares it the audit; this spares it the start-up around the audit
(typer, click, the configuration loader and the reports cost several times a cached audit of a
small project). So this module imports only `hashlib`, `hmac` and `marshal` on its way to an
answer (see seal.py).

A command is replayed only when all of these are as they were when it was kept:
- the command: its arguments, the working folder, the environment (but for the variables that
  only describe the shell, `_OF_THE_SHELL`), the interpreter (`sys.executable`, `sys.version`,
  `sys.flags`), this tool's files (`seal.tool_stamp`) and the folders the interpreter imports
  from (`sys.path`), each by its status, so an installed or removed library shows;
- every file the command opened (or tried to: a missing file is an input too) and every folder
  it listed, recorded with an audit hook (reads.py) for the whole command, but the cache folder
  and what the interpreter imports from (covered by the command) unless it is in the audited
  project; and every `pyproject.toml` it looked for on the way up from each target (a `stat`,
  which raises no audit event). A file is compared by its status (type, size, inode,
  modification and change time), a folder by the status of every entry: the change time of a
  file cannot be set back, so any write shows, as in ruff's cache and git's index;
- standard output and error are not terminals: a terminal gets a progress bar, colours and its
  own width; a pipe or a file gets the same text every time.

A command is kept only when it only audits and prints: every option is one of `_OPTIONS` (not
`--output`, `--sarif-file`, `--github`, `--fix`, `--update-baseline`, `--no-cache`,
nor `--python`, whose folder the command only looks at, nor anything else); when its audit result is one the run cache replays (`replayed_hits`: what
it printed is what every later run on these inputs prints), with no internal error and exit
code 0 or 1; and when no input changed less than `_RACY_NS` before it started (as git treats a
"racily clean" file: a change made in the same clock tick as the recording could not be told
from none).

Where: one sealed entry per command in `replay/` of the user cache folder (at most
`_MAX_ENTRIES`, the oldest removed), authenticated before it is decoded, and decoded with
`marshal` (strings, numbers, tuples: nothing that runs). Nothing from the audited tree is run.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import time

from . import seal
from .reads import listing, status
from .version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .model import AuditResult

__all__ = ["Command", "offer"]

_FORMAT = 1
_FOLDER = "replay"
_MAX_ENTRIES = 64
_RACY_NS = 2_000_000_000
#: `audit` options that choose what is audited and how it is printed -> whether a value follows.
_OPTIONS = {
    "-q": False,
    "--quiet": False,
    "-f": True,
    "--format": True,
    "--select": True,
    "--ignore": True,
    "-j": True,
    "--jobs": True,
    "--baseline": True,
    "--changed": False,
}
#: Formats printed to standard output only (`github` also appends to $GITHUB_STEP_SUMMARY).
_FORMATS = ("text", "json", "sarif")
#: Environment variables that describe the shell, not what the command does.
_OF_THE_SHELL = frozenset(
    ("_", "OLDPWD", "PWD", "SHLVL", "PS1", "PS2", "PROMPT_COMMAND", "HISTFILE", "WINDOWID")
)


class Command:
    """One `audit` command line that may be replayed: `Command.of(argv)` is None when it is not
    (another command, an option that writes or changes something, a terminal)."""

    def __init__(self, key: str):
        self.key = key
        self.name = key[:32]

    @classmethod
    def of(cls, argv: list[str]) -> Command | None:
        if not argv or argv[0] != "audit" or not _plain(argv[1:]):
            return None
        if os.isatty(1) or os.isatty(2):
            return None
        try:
            cwd = os.getcwd()
        except OSError:
            return None
        environment = sorted(
            (name, value) for name, value in os.environ.items() if name not in _OF_THE_SHELL
        )
        imports = [(path, status(path)) for path in sys.path if path]
        described = repr(
            (
                __version__,
                _FORMAT,
                argv,
                cwd,
                environment,
                sys.executable,
                sys.version,
                tuple(sys.flags),
                imports,
                seal.tool_stamp(),
            )
        )
        return cls(hashlib.sha256(described.encode("utf-8", "surrogateescape")).hexdigest())

    def replay(self) -> int | None:
        """Print the kept output and return its exit code; None when there is nothing to replay
        (no entry, a changed input, an entry not ours)."""
        kept = self._load()
        if kept is None:
            return None
        _, inputs, out, err, code = kept
        if not _unchanged(inputs, seal.cache_folder()):
            return None
        sys.stdout.write(out)
        sys.stderr.write(err)
        sys.stdout.flush()
        sys.stderr.flush()
        return code

    def keeping(self) -> _Keeping:
        """A context for the command's run: records what it reads and prints, and keeps it for
        the next time when `offer` accepts its result and the run exits with 0 or 1."""
        return _Keeping(self)

    # -- the entry ---------------------------------------------------------------------------
    def _where(self) -> tuple[str, str, bytes, bytes] | None:
        """(folder, entry file, key, label), or None when the cache folder has no usable key."""
        folder = seal.cache_folder()
        key = seal.key_for(folder)
        if key is None:
            return None
        where = os.path.join(folder, _FOLDER)
        return where, os.path.join(where, self.name), key, f"replay\0{self.name}\0".encode()

    def _load(self) -> tuple | None:
        where = self._where()
        if where is None:
            return None
        _, path, key, label = where
        payload = seal.read_sealed(path, key, label)
        if payload is None:
            return None
        try:
            kept = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            return None
        if (
            isinstance(kept, tuple)
            and len(kept) == 5
            and kept[0] == self.key
            and isinstance(kept[1], tuple)
            and isinstance(kept[2], str)
            and isinstance(kept[3], str)
            and isinstance(kept[4], int)
        ):
            return kept
        return None

    def _save(self, inputs: tuple, out: str, err: str, code: int) -> None:
        where = self._where()
        if where is None:
            return
        folder, path, key, label = where
        from .safeio import write_atomic

        payload = marshal.dumps((self.key, inputs, out, err, code))
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            write_atomic(path, seal.seal(key, label, payload), root=folder, mode=0o600)
            _prune(folder)
        except OSError:
            return  # an unwritable cache folder: the next run is not replayed, nothing else


# -- keeping a run -----------------------------------------------------------------------------
class _Tee:
    """A text stream that passes everything on and keeps a copy."""

    def __init__(self, stream):
        self._stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self._stream.write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _Keeping:
    """See `Command.keeping`."""

    def __init__(self, command: Command):
        self.command = command
        self.result: AuditResult | None = None
        self.targets: tuple[str, ...] | None = None

    def __enter__(self) -> _Keeping:
        from .reads import Recording

        self._start = time.time_ns()
        self._recording = Recording()
        self._reads = self._recording.__enter__()
        self._out, self._err = _Tee(sys.stdout), _Tee(sys.stderr)
        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self._out, self._err  # type: ignore[assignment]
        _KEEPING.append(self)
        return self

    def __exit__(self, kind, value, traceback) -> None:
        _KEEPING.remove(self)
        sys.stdout, sys.stderr = self._saved
        self._recording.__exit__(kind, value, traceback)
        if kind is None:
            code = 0
        elif issubclass(kind, SystemExit):
            code = value.code if value.code is not None else 0  # a text: printed by Python
        else:
            return
        if code in (0, 1) and self.result is not None and self.targets is not None:
            inputs = self._inputs(self.result.root, self.targets)
            if inputs is not None:
                out, err = "".join(self._out.parts), "".join(self._err.parts)
                self.command._save(inputs, out, err, code)

    def _inputs(self, root: str, targets: tuple[str, ...]) -> tuple | None:
        """(kind, path, state) of every input, "f" a file's status, "d" a folder's listing;
        None when one of them changed too recently to be trusted."""
        from pathlib import Path

        from .config import pyproject_candidates

        cache = seal.cache_folder()
        outside = [cache, seal.package_folder(), seal.rules_folder()]
        outside += [os.path.abspath(p) for p in sys.path if p]
        outside += [sys.prefix, sys.base_prefix, sys.exec_prefix]

        def wanted(path: str) -> bool:
            if _inside(path, cache):
                return False
            return _inside(path, root) or not any(_inside(path, o) for o in outside)

        folders = sorted(p for p in self._reads.listed if wanted(p))
        listed = set(folders)
        looked: set[str] = set()
        for target in targets:  # as `load_config` and, for changed files, `group_by_project`
            for start in (Path(target).resolve(), Path(target).absolute().parent.resolve()):
                looked.update(str(p) for p in pyproject_candidates(start))
        files = sorted(p for p in self._reads.opened | looked if wanted(p))
        inputs: list[tuple[str, str, object]] = []
        limit = self._start - _RACY_NS
        for folder in folders:
            digest, newest = listing(folder, cache)
            if newest >= limit:
                return None
            inputs.append(("d", folder, digest))
        for path in files:
            if os.path.dirname(path) in listed and not os.path.islink(path):
                continue  # its status is in its folder's listing (or its absence is)
            state = status(path)
            if len(state) > 1 and max(state[3], state[4]) >= limit:
                return None
            inputs.append(("f", path, state))
        return tuple(inputs)


# consolidate: ignore[MEM001] the commands being kept now: one, removed when it ends
_KEEPING: list[_Keeping] = []


def offer(result: AuditResult, *targets: str | os.PathLike[str]) -> None:
    """The command line's audit of `targets` (the project or file named, or the changed files
    of `--changed`) ended with `result`: keep the command's output for a replay if the result is
    one the run cache replays (it printed then what any later run prints) and has no internal
    error. Nothing happens when no command is being kept."""
    if not _KEEPING or result.errors:
        return
    from .runcache import replayed_hits

    if result.cache_hits != replayed_hits(result):
        return
    keeping = _KEEPING[-1]
    if keeping.result is None:
        keeping.result, keeping.targets = result, tuple(os.fspath(t) for t in targets)
    else:  # two audits in one command (files of two projects): not one this module replays
        keeping.targets = None


# -- the inputs --------------------------------------------------------------------------------
def _plain(args: list[str]) -> bool:
    """Whether every argument is a path or an option of `_OPTIONS` (with its value)."""
    waiting: str | None = None
    for arg in args:
        if waiting is not None:
            if waiting in ("-f", "--format") and arg not in _FORMATS:
                return False
            waiting = None
            continue
        if not arg.startswith("-"):
            continue  # a path
        name, equals, value = arg.partition("=")
        if name not in _OPTIONS or (equals and not name.startswith("--")):
            return False
        if _OPTIONS[name] and not equals:
            waiting = name
        elif equals and (not _OPTIONS[name] or (name == "--format" and value not in _FORMATS)):
            return False
    return waiting is None


def _unchanged(inputs: tuple, cache: str) -> bool:
    for kind, path, state in inputs:
        if kind == "d":
            if listing(path, cache)[0] != state:
                return False
        elif status(path) != state:
            return False
    return True


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _prune(folder: str) -> None:
    """Keep the newest `_MAX_ENTRIES` entries of `folder`."""
    entries = []
    with os.scandir(folder) as found:
        for entry in found:
            if entry.is_file(follow_symlinks=False):
                entries.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.path))
    for _, path in sorted(entries, reverse=True)[_MAX_ENTRIES:]:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
