"""What this process reads: the files it opens (or tries to) and the folders it lists, recorded
by an audit hook (PEP 578) while a `Recording` is on, in the thread that started it.

The run cache (runcache.py) records what the project checks read besides the audited files; a
replayed command (replay.py) what the whole command read. Recordings nest: each one sees every
read made while it is on. The hook cannot be removed: one is installed per process, on first
use, and returns at once while nothing records.

Only what Python raises an audit event for is seen: `open` (`open()`, `os.open`,
`io.open_code`; raised before the file is opened, so a file that does not exist is recorded
too), `os.listdir` and `os.scandir` (`os.walk`, `glob`, `Path.iterdir`). A `stat` is not an
event: a caller that decides on `exists()` alone must name what it looked at itself.

What was read is compared later by `status` (a path's) and `listing` (a folder's entries). This
module imports nothing heavy: a replayed command (replay.py) checks its inputs with it before
anything else is loaded.
"""

from __future__ import annotations

import hashlib
import os
import sys
from _thread import get_ident

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Reads", "Recording", "listing", "status"]


class Reads:
    """Absolute paths of the files opened and the folders listed during one recording."""

    __slots__ = ("listed", "opened", "thread")

    def __init__(self, thread: int):
        self.thread = thread
        self.opened: set[str] = set()
        self.listed: set[str] = set()


# consolidate: ignore[MEM001] the recordings on now: each removes itself in Recording.__exit__
_RECORDINGS: list[Reads] = []
_INSTALLED = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _RECORDINGS or event not in ("open", "os.scandir", "os.listdir"):
        return
    thread = get_ident()
    path = args[0] if args and args[0] is not None else "."
    if isinstance(path, int) or not isinstance(path, str | bytes | os.PathLike):
        return  # a file descriptor: its file was opened, and recorded, by path before
    full = os.path.abspath(os.fsdecode(path))
    for reads in _RECORDINGS:
        if reads.thread == thread:
            (reads.opened if event == "open" else reads.listed).add(full)


class Recording:
    """Record the reads of this thread until the block ends: `with Recording() as reads:`."""

    def __enter__(self) -> Reads:
        global _INSTALLED
        if not _INSTALLED:
            sys.addaudithook(_hook)
            _INSTALLED = True
        self._reads = Reads(get_ident())
        _RECORDINGS.append(self._reads)
        return self._reads

    def __exit__(self, *exc: object) -> None:
        _RECORDINGS.remove(self._reads)


# -- comparing what was read -------------------------------------------------------------------
def status(path: str) -> tuple[int, ...]:
    """A path's status (following symlinks): (type and mode, size, inode, modification and
    change time), or (errno,) when there is none."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return (exc.errno or 0,)
    return (info.st_mode, info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)


def listing(path: str, skip: str) -> tuple[str, int]:
    """(a digest of every entry's name and status, the newest time among them) of a folder,
    without following symlinks, so an added, removed, replaced, resized or touched entry shows.
    The cache folder `skip`, or a folder holding it, is left out: the audit itself writes
    there."""
    digest = hashlib.blake2b(digest_size=16)
    newest = 0
    try:
        with os.scandir(path) as found:
            entries = sorted(found, key=_name)
            for entry in entries:
                if skip == entry.path or skip.startswith(entry.path + os.sep):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    digest.update(f"{entry.name}\0error:{exc.errno}\0".encode(errors="replace"))
                    continue
                newest = max(newest, info.st_mtime_ns, info.st_ctime_ns)
                digest.update(
                    f"{entry.name}\0{info.st_mode}:{info.st_size}:{info.st_ino}:"
                    f"{info.st_mtime_ns}:{info.st_ctime_ns}\0".encode("utf-8", "surrogateescape")
                )
    except OSError as exc:
        return f"error:{exc.errno}", 0
    return digest.hexdigest(), newest


def _name(entry: os.DirEntry) -> str:
    return entry.name
