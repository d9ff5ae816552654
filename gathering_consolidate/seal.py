"""The user cache folder, its key, and sealed (authenticated) payloads: the part of the cache
that a replayed command (replay.py) needs before anything else is loaded.

So this module imports nothing heavier than `hashlib` and `hmac`: no pathlib, typing, pickle or
regular expressions (each of them costs a repeated `audit` as much as the replay itself).
Paths are strings here; cache.py builds its `Sealed` entries (and `user_cache_dir()`, a Path)
on these functions.

- The folder: `$GATHERING_CONSOLIDATE_CACHE_DIR`, else `$XDG_CACHE_HOME/gathering-consolidate`,
  else `~/.cache/gathering-consolidate`.
- The key: 32 random bytes created once in that folder (mode 0600, `O_EXCL`, published with a
  hard link), never in an audited tree; a key file that is not a private regular file of this
  user is not trusted, and nothing is then read or written.
- A sealed payload: `MAGIC + HMAC-SHA256(key, label + payload) + payload`, the label naming
  what the payload is (its project and entry), so an entry copied over another is rejected.
  The MAC is checked before a payload is decoded.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat

#: Overrides the user cache folder (tests point it at a temporary directory).
ENV_VAR = "GATHERING_CONSOLIDATE_CACHE_DIR"
MAGIC = b"GCCACHE\x04"
MAC_SIZE = hashlib.sha256().digest_size
_KEY_NAME = "hmac.key"
_KEY_SIZE = 32
# consolidate: ignore[MEM001] one key per cache folder a process uses (one, or a few in tests)
_KEYS: dict[str, bytes | None] = {}


def cache_folder() -> str:
    """The user's cache folder for this tool, absolute; not created here."""
    override = os.environ.get(ENV_VAR)
    if override:
        return os.path.abspath(os.path.expanduser(override))
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gathering-consolidate")


def key_for(folder: str) -> bytes | None:
    """The HMAC key kept in `folder`, created on first use (memoised per folder); None when it
    cannot be created or is not trustworthy (not a regular file of ours, readable by others,
    wrong size): no cache then."""
    if folder not in _KEYS:
        _KEYS[folder] = _load_or_create_key(folder)
    return _KEYS[folder]


def forget_keys() -> None:
    """Drop the memoised keys (a test that replaces a key file)."""
    _KEYS.clear()


def _load_or_create_key(folder: str) -> bytes | None:
    path = os.path.join(folder, _KEY_NAME)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        for _ in range(3):
            key = _read_key(path)
            if key is not None:
                return key
            _create_key(path)
    except OSError:
        return None
    return None


def _read_key(path: str) -> bytes | None:
    """The key, or None when there is no key file yet; raises OSError on an untrusted one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.geteuid()
            or info.st_mode & 0o077
            or info.st_size != _KEY_SIZE
        ):
            raise OSError(f"{path}: not a private {_KEY_SIZE}-byte key file of this user")
        key = fh.read(_KEY_SIZE + 1)
    if len(key) != _KEY_SIZE:
        raise OSError(f"{path}: not a {_KEY_SIZE}-byte key")
    return key


def _create_key(path: str) -> None:
    """Write a new key to a fresh file (0600, `O_EXCL`) and publish it with a hard link, which
    fails if another process published one first: readers never see a half-written key."""
    tmp = f"{path}.{os.urandom(8).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(_KEY_SIZE))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return  # another audit created it first: use theirs
    finally:
        os.unlink(tmp)


def mac(key: bytes, label: bytes, payload: bytes | memoryview) -> bytes:
    digest = hmac.new(key, label, hashlib.sha256)
    digest.update(payload)
    return digest.digest()


def seal(key: bytes, label: bytes, payload: bytes) -> bytes:
    """The file content that holds `payload` under `label`."""
    return MAGIC + mac(key, label, payload) + payload


def read_sealed(path: str, key: bytes, label: bytes) -> memoryview | None:
    """The authenticated payload of the file at `path`, or None (missing, a symlink, not a
    regular file, not ours, sealed under another label, damaged)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            blob = fh.read()
    except OSError:  # missing, a symlink, unreadable: a miss
        return None
    header = len(MAGIC) + MAC_SIZE
    if len(blob) <= header or not blob.startswith(MAGIC):
        return None
    payload = memoryview(blob)[header:]
    if not hmac.compare_digest(blob[len(MAGIC) : header], mac(key, label, payload)):
        return None
    return payload


# -- this tool's own files ---------------------------------------------------------------------
def package_folder() -> str:
    return os.path.dirname(os.path.realpath(__file__))


def rules_folder() -> str:
    """The default rule data: `gathering_consolidate/rules` in a wheel, the repo's `rules/` in a
    source checkout or editable install."""
    packaged = os.path.join(os.path.dirname(__file__), "rules")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(package_folder()), "rules")


def tool_files() -> list[str]:
    """This tool's code and default rule data: what `tool_stamp` and `cache.tool_digest` read."""
    return _files(package_folder(), ".py") + _files(rules_folder(), ".toml")


def tool_stamp(files: list[str] | None = None) -> str:
    """A digest of the status of every tool file (path, size, inode, modification and change
    times), read without opening them: any write to one changes its change time, which no one
    can set back."""
    stamps = hashlib.sha256()
    for path in tool_files() if files is None else files:
        try:
            info = os.stat(path)
        except OSError:
            continue
        stamps.update(
            f"{path}\0{info.st_size}\0{info.st_ino}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\0".encode()
        )
    return stamps.hexdigest()


def _files(folder: str, suffix: str) -> list[str]:
    """Every file named `*suffix` under `folder`, sorted (neither symlinked folders nor
    `__pycache__`, which holds no source, are entered). Strings, not Paths: a cached run stats
    the ~300 files of the package, and building a Path for each was a third of that."""
    found = []
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if name != "__pycache__"]
        found += [os.path.join(parent, name) for name in names if name.endswith(suffix)]
    return sorted(found)
