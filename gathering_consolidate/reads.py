"""What this process reads: the files it opens (or tries to) and the folders it lists, recorded
by an audit hook (PEP 578) while a `recording()` is on, in the thread that started it.

The run cache (runcache.py) records what the project checks read besides the audited files; a
replayed command (replay.py) what the whole command read. Recordings nest: each one sees every
read made while it is on. The hook cannot be removed: one is installed per process, on first
use, and returns at once while nothing records.

Only what Python raises an audit event for is seen: `open` (`open()`, `os.open`,
`io.open_code`; raised before the file is opened, so a file that does not exist is recorded
too), `os.listdir` and `os.scandir` (`os.walk`, `glob`, `Path.iterdir`). A `stat` is not an
event: a caller that decides on `exists()` alone must name what it looked at itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Reads", "recording"]


class Reads:
    """Absolute paths of the files opened and the folders listed during one recording."""

    __slots__ = ("listed", "opened", "thread")

    def __init__(self, thread: int):
        self.thread = thread
        self.opened: set[str] = set()
        self.listed: set[str] = set()


#: The recordings on now (each removes itself when it ends).
_RECORDINGS: list[Reads] = []
_INSTALLED = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _RECORDINGS or event not in ("open", "os.scandir", "os.listdir"):
        return
    thread = threading.get_ident()
    path = args[0] if args and args[0] is not None else "."
    if isinstance(path, int) or not isinstance(path, str | bytes | os.PathLike):
        return  # a file descriptor: its file was opened, and recorded, by path before
    full = os.path.abspath(os.fsdecode(path))
    for reads in _RECORDINGS:
        if reads.thread == thread:
            (reads.opened if event == "open" else reads.listed).add(full)


@contextlib.contextmanager
def recording() -> Iterator[Reads]:
    """Record the reads of this thread until the block ends."""
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True
    reads = Reads(threading.get_ident())
    _RECORDINGS.append(reads)
    try:
        yield reads
    finally:
        _RECORDINGS.remove(reads)
