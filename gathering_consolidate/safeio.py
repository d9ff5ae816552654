"""Safe writes: every file the toolkit writes goes through `write_atomic` or `write_many_atomic`.

The audited tree is untrusted (CI on pull requests from forks), so a write must never follow a
symbolic link planted in it, land outside the project, or leave half a file behind:

- the destination's folder is reached from `root` one component at a time, each opened with
  `O_NOFOLLOW | O_DIRECTORY` relative to the previous one, so a symlinked folder anywhere between
  `root` and the file is refused (`UnsafePathError`), even if it is swapped in while we walk;
  `root` itself is trusted (the caller chose it) and, without a `root`, so is the file's folder;
- a path that leaves `root` (absolute elsewhere, or `..`) is refused;
- the data goes to a temporary file with a random name in the destination's folder, created
  `O_CREAT | O_EXCL | O_NOFOLLOW` with mode 0600, written, given its final mode, fsynced and only
  then renamed over the destination (`os.replace`, which replaces a symlink rather than following
  it); on any failure the temporary file is removed and the destination is untouched;
- the destination itself must be a regular file or missing: a symlink or a FIFO there is refused;
- the mode of an existing destination is kept (otherwise 0666 minus the umask, as `open` does).

`write_many_atomic` is all or nothing over several files: every temporary file is staged first;
only when all are written are they renamed, and if a rename fails the files already replaced are
put back from hard-link backups taken just before (on a file system without hard links a replaced
file cannot be put back; new files are removed either way).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UnsafePathError", "write_atomic", "write_many_atomic"]

StrPath = str | os.PathLike[str]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePathError(OSError):
    """A write was refused: the path is a symlink, passes through one, leaves `root`, or is not
    a regular file. An `OSError` (its message is `str(exc)`; `errno` is None), so callers that
    report write failures report this one too."""


def write_atomic(
    path: StrPath,
    data: str | bytes,
    *,
    root: StrPath | None = None,
    mode: int | None = None,
    encoding: str = "utf-8",
    newline: str | None = None,
    make_parents: bool = True,
) -> Path:
    """Replace `path` with `data` atomically, refusing symlinks (see the module docstring).

    `root`: the folder the write must stay in; every folder between it and `path` is checked.
    `mode`: the file's permission bits (default: an existing file's, else 0666 minus the umask).
    `encoding`/`newline`: for `str` data, as `open()` (`newline=""` writes the text unchanged).
    `make_parents`: create missing folders between `root` (or the file's folder) and the file.
    Returns the absolute path written. Raises `UnsafePathError` or another `OSError`."""
    return write_many_atomic(
        [(path, data)],
        root=root,
        mode=mode,
        encoding=encoding,
        newline=newline,
        make_parents=make_parents,
    )[0]


def write_many_atomic(
    files: Mapping[StrPath, str | bytes] | Iterable[tuple[StrPath, str | bytes]],
    *,
    root: StrPath | None = None,
    mode: int | None = None,
    encoding: str = "utf-8",
    newline: str | None = None,
    make_parents: bool = True,
) -> list[Path]:
    """Write several files all or nothing, with the checks and options of `write_atomic` (`mode`
    applies to every file; by default each keeps its own). Every temporary file is written and
    fsynced before the first rename; if staging fails nothing is renamed and every temporary
    file is removed; if a rename fails, the files already replaced are restored (new ones
    removed) before the error is raised. Returns the absolute paths written, in order."""
    items = list(files.items()) if isinstance(files, Mapping) else list(files)
    seen: set[str] = set()
    staged: list[_Staged] = []
    try:
        for path, data in items:
            target = os.path.abspath(os.fspath(path))
            if target in seen:
                raise ValueError(f"{path} is listed twice")
            seen.add(target)
            payload = _encode(data, encoding, newline)
            staged.append(_stage(target, payload, root, mode, make_parents))
        _commit(staged)
    finally:
        for entry in staged:
            entry.close()
    return [Path(entry.target) for entry in staged]


@dataclass(slots=True)
class _Staged:
    target: str  # absolute path, for messages and the result
    dir_fd: int  # the destination's folder, reached without following symlinks
    name: str
    tmp: str | None  # the temporary file's name in that folder, until it is renamed
    existed: bool
    backup: str | None = None
    replaced: bool = False

    def discard(self) -> None:
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp, dir_fd=self.dir_fd)
            self.tmp = None

    def take_backup(self) -> None:
        if not self.existed:
            return
        name = _temp_name(self.name, "bak")
        try:
            os.link(
                self.name,
                name,
                src_dir_fd=self.dir_fd,
                dst_dir_fd=self.dir_fd,
                follow_symlinks=False,
            )
        except OSError:  # no hard links here: this file cannot be restored if a later rename fails
            return
        self.backup = name

    def replace(self) -> None:
        assert self.tmp is not None
        os.replace(self.tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        self.tmp = None
        self.replaced = True
        with contextlib.suppress(OSError):  # not every file system can sync a folder
            os.fsync(self.dir_fd)

    def restore(self) -> None:
        with contextlib.suppress(OSError):
            if self.backup is not None:
                os.replace(self.backup, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
                self.backup = None
            elif not self.existed:
                os.unlink(self.name, dir_fd=self.dir_fd)

    def drop_backup(self) -> None:
        if self.backup is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.backup, dir_fd=self.dir_fd)
            self.backup = None

    def close(self) -> None:
        self.discard()
        if not self.replaced:  # a replaced file whose restore failed keeps its backup
            self.drop_backup()
        with contextlib.suppress(OSError):
            os.close(self.dir_fd)


def _commit(staged: list[_Staged]) -> None:
    try:
        for entry in staged:
            entry.take_backup()
        for entry in staged:
            entry.replace()
    # consolidate: ignore[EXC002] undo on any exit (KeyboardInterrupt too), then re-raise
    except BaseException:
        for entry in reversed(staged):
            if entry.replaced:
                entry.restore()
        raise
    for entry in staged:
        entry.drop_backup()


def _stage(
    target: str, payload: bytes, root: StrPath | None, mode: int | None, make_parents: bool
) -> _Staged:
    base, folders, name = _split(target, root)
    dir_fd = _open_folder(base, folders, target, make_parents)
    try:
        existing = _lstat(name, dir_fd)
        if existing is not None:
            if stat.S_ISLNK(existing.st_mode):
                raise UnsafePathError(f"refusing to write {target}: it is a symbolic link")
            if not stat.S_ISREG(existing.st_mode):
                raise UnsafePathError(f"refusing to write {target}: not a regular file")
        if mode is not None:
            final_mode = mode
        elif existing is not None:
            final_mode = stat.S_IMODE(existing.st_mode)
        else:
            final_mode = 0o666 & ~_umask()
        entry = _Staged(target, dir_fd, name, None, existing is not None)
        tmp = _temp_name(name, "tmp")
        fd = os.open(tmp, _NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd)
        entry.tmp = tmp
        try:
            with os.fdopen(fd, "wb", closefd=True) as fh:
                fh.write(payload)
                fh.flush()
                os.fchmod(fh.fileno(), final_mode)
                os.fsync(fh.fileno())
        # consolidate: ignore[EXC002] undo on any exit (KeyboardInterrupt too), then re-raise
        except BaseException:
            entry.discard()
            raise
        return entry
    # consolidate: ignore[EXC002] undo on any exit (KeyboardInterrupt too), then re-raise
    except BaseException:
        os.close(dir_fd)
        raise


def _split(target: str, root: StrPath | None) -> tuple[str, tuple[str, ...], str]:
    """(trusted base folder, folders to walk below it, file name)."""
    if root is None:
        base, name = os.path.split(target)
        return base, (), name
    base = os.path.abspath(os.fspath(root))
    try:
        parts = Path(target).relative_to(base).parts
    except ValueError:
        raise UnsafePathError(f"refusing to write {target}: outside {base}") from None
    if not parts:
        raise UnsafePathError(f"refusing to write {target}: it is {base} itself")
    return base, parts[:-1], parts[-1]


def _open_folder(base: str, folders: tuple[str, ...], target: str, make: bool) -> int:
    fd = os.open(base, _DIR_FLAGS)
    walked = base
    try:
        for part in folders:
            walked = os.path.join(walked, part)
            try:
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not make:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
                child = _open_child(part, fd, walked, target)
            except OSError:
                child = _open_child(part, fd, walked, target)
            os.close(fd)
            fd = child
    # consolidate: ignore[EXC002] undo on any exit (KeyboardInterrupt too), then re-raise
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child(part: str, fd: int, walked: str, target: str) -> int:
    """Open a folder below `fd` without following a symlink; say which component was one."""
    try:
        return os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
    except OSError:
        found = _lstat(part, fd)
        if found is not None and stat.S_ISLNK(found.st_mode):
            raise UnsafePathError(
                f"refusing to write {target}: {walked} is a symbolic link"
            ) from None
        raise


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _temp_name(name: str, kind: str) -> str:
    return f".{name[:200]}.{secrets.token_hex(8)}.{kind}"


def _encode(data: str | bytes, encoding: str, newline: str | None) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if newline is None:
        newline = os.linesep
    if newline not in ("", "\n"):
        data = data.replace("\n", newline)
    return data.encode(encoding)


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current
