"""A PostgreSQL for any command: the URL the user passes, else an embedded server.

`postgres_server(url)` checks that a given server answers (a clear `DatabaseError` otherwise) and
yields it; without a URL it starts an embedded PostgreSQL (the `pgserver` wheel's binaries) in a
dedicated data folder, listening on a Unix socket only (no TCP port at all), and stops it and
deletes the folder on exit, on Ctrl-C and on SIGTERM. `disposable_database(server_url)` creates a
database for one run and drops it afterwards, whatever happens in between.

The data folders live under `$GATHERING_CONSOLIDATE_PG_DIR`, else
`$XDG_CACHE_HOME/gathering-consolidate/pg` (default `~/.cache/gathering-consolidate/pg`), one
`run-<hex>` folder per server, copied from `template-pgserver-<version>-1`, a folder initdb
prepared once (initdb takes seconds, the copy a fraction of one; the template is set up for a
disposable server: fsync off). PostgreSQL refuses to run as root, so under root pgserver runs it as
a system user `pgserver` (created if missing) and opens the folder's parents to that user (`o+rx`);
this module records the parents' modes first and puts them back when the last embedded server of
the machine stops. A folder left by a killed process (its owner pid is gone) is stopped and removed
by the next start.

URLs may hold passwords: everything shown to a user goes through `mask_url`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = [
    "DatabaseError",
    "Server",
    "disposable_database",
    "embedded_root",
    "ensure_reachable",
    "mask_url",
    "postgres_server",
    "with_database",
]

ENV_PG_DIR = "GATHERING_CONSOLIDATE_PG_DIR"
CONNECT_TIMEOUT_S = 5
_STOP_TIMEOUT_S = 15.0
_MODES_FILE = ".parent-modes.json"
_OWNER_FILE = "owner.json"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,39}")


class DatabaseError(RuntimeError):
    """A database cannot be used; the message is one line, says why and never holds a password."""


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server: its connection URL (maintenance database) and whether this process
    started it."""

    url: str
    embedded: bool

    def masked(self) -> str:
        return mask_url(self.url)


# -- URLs ----------------------------------------------------------------------------------------
_URL_PASSWORD = re.compile(r"^(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@]*:)(?P<pw>[^@/?#]*)(?=@)")
_PARAM_PASSWORD = re.compile(r"(?P<head>(?:^|[?&])password=)(?P<pw>[^&#]*)", re.IGNORECASE)
_KV_PASSWORD = re.compile(
    r"(?P<head>(?:^|\s)password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S*)", re.IGNORECASE
)


def mask_url(url: str) -> str:
    """`url` with any password replaced by `***`: the user-info of a URL, a `password=` query
    parameter and the `password=` key of a libpq key/value string. An empty password stays empty
    (there is nothing to hide)."""

    def star(match: re.Match[str]) -> str:
        return match["head"] + ("***" if match["pw"] not in ("", "''") else match["pw"])

    if "://" in url:
        scheme_end = url.index("://") + 3
        masked = _URL_PASSWORD.sub(star, url, count=1)
        query_at = masked.find("?", scheme_end)
        if query_at >= 0:
            masked = masked[:query_at] + _PARAM_PASSWORD.sub(star, masked[query_at:])
        return masked
    return _KV_PASSWORD.sub(star, url)


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials as `url`, database `dbname` (URL or key/value form)."""
    if "://" in url:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dbname"]
        return urlunsplit(
            (parts.scheme, parts.netloc, "/" + quote(dbname), urlencode(query, safe="/"), "")
        )
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def _database_of(url: str) -> str | None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        return conninfo_to_dict(url).get("dbname")
    except psycopg.ProgrammingError:
        return None


# -- reachability --------------------------------------------------------------------------------
def _explain(exc: BaseException, url: str) -> str:
    """One line for a failed connection: the cause in words, the masked URL, no password."""
    text = " ".join(str(exc).split())
    masked = mask_url(url)
    lowered = text.lower()
    user_match = re.search(r'for user "([^"]+)"', text)
    user = user_match.group(1) if user_match else "the given user"
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        return f"wrong password for {user} at {masked} (authentication failed)"
    if "no password supplied" in lowered or "password is required" in lowered:
        return f"{masked} asks a password for {user} and none was given"
    if "does not exist" in lowered and "database" in lowered:
        return f"database {_database_of(url) or '?'} does not exist on {masked}"
    if "role" in lowered and "does not exist" in lowered:
        return f"no such role at {masked}: {text}"
    if "connection refused" in lowered:
        return f"cannot connect to {masked}: connection refused (is PostgreSQL running there?)"
    if "timeout" in lowered or "timed out" in lowered:
        return f"cannot connect to {masked}: no answer within {CONNECT_TIMEOUT_S} s"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"cannot connect to {masked}: unknown host"
    if "no such file or directory" in lowered:
        return f"cannot connect to {masked}: no server socket there"
    # psycopg's message never holds the password, but a URL echoed back might
    return f"cannot connect to {masked}: {mask_url(text)}"


def ensure_reachable(url: str) -> None:
    """Connect to `url` and run `SELECT 1`, or raise `DatabaseError` saying why."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.ProgrammingError as exc:  # a malformed URL or conninfo string
        raise DatabaseError(f"invalid database URL {mask_url(url)}: {_first_line(exc)}") from None
    except psycopg.Error as exc:
        raise DatabaseError(_explain(exc, url)) from None


def _first_line(exc: BaseException) -> str:
    return mask_url(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


# -- the embedded server -------------------------------------------------------------------------
def embedded_root() -> Path:
    """Where the embedded servers' data folders go (created on demand)."""
    override = os.environ.get(ENV_PG_DIR)
    if override:
        return Path(override).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "gathering-consolidate" / "pg"


@contextlib.contextmanager
def postgres_server(url: str | None = None, *, data_dir: Path | None = None) -> Iterator[Server]:
    """The server to use: `url` after checking it answers, else an embedded one started now.

    With `url=None` an embedded PostgreSQL is started in `data_dir` (a new folder; default a
    `run-<hex>` folder under `embedded_root()`), and stopped, its folder deleted, when the block
    exits, by an exception, Ctrl-C or SIGTERM included. Raises `DatabaseError` when the server is
    unreachable or cannot be started."""
    if url is not None:
        ensure_reachable(url)
        yield Server(url=url, embedded=False)
        return
    with _sigterm_as_exit():
        pgdata = _new_data_dir(data_dir)
        server = None
        try:
            server = _start(pgdata)
            yield Server(url=server.get_uri(), embedded=True)
        finally:
            with _sigint_ignored():
                _stop_and_remove(pgdata, server)


def _new_data_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        pgdata = Path(data_dir).expanduser().absolute()
        if pgdata.exists() and any(pgdata.iterdir()):
            raise DatabaseError(f"data folder {pgdata} exists and is not empty")
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        root = pgdata.parent
    else:
        root = embedded_root()
        root.mkdir(parents=True, exist_ok=True)
        _sweep_stale(root)
        pgdata = root / f"run-{secrets.token_hex(6)}"
    with _modes_lock(root):  # a run ending now must not restore the modes under our feet
        _record_parent_modes(root, pgdata)
        pgdata.mkdir(exist_ok=data_dir is not None)
        (pgdata.parent / f".{pgdata.name}.{_OWNER_FILE}").write_text(
            json.dumps({"pid": os.getpid(), "pgdata": str(pgdata)})
        )
    return pgdata


def _modes_lock(root: Path):
    import fasteners

    return fasteners.InterProcessLock(str(root / ".modes.lock"))


def _template(root: Path) -> Path | None:
    """An initialised data folder to copy (initdb takes seconds, a copy a fraction of one):
    `template-<pgserver version>` under the root, built once under a file lock. None when it
    cannot be built (the server is then initialised in place, as pgserver does)."""
    import importlib.metadata

    import fasteners
    from pgserver import _commands

    version = importlib.metadata.version("pgserver")
    template = root / f"template-pgserver-{version}-1"  # -1: the settings below
    done = template / ".gathering-consolidate-template"
    if done.exists():
        return template
    with fasteners.InterProcessLock(str(root / ".template.lock")):
        if done.exists():
            return template
        build = root / f".template-build-{secrets.token_hex(4)}"
        build.mkdir(mode=0o700)
        user = _system_user()
        try:
            if user is not None:
                _open_for(build)
                shutil.chown(build, user, user)
            _commands.initdb(
                ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
                pgdata=build,
                user=user,
            )
        except (OSError, subprocess.SubprocessError):
            shutil.rmtree(build, ignore_errors=True)
            return None
        with (build / "postgresql.conf").open("a", encoding="utf-8") as conf:
            # A disposable server: its data is deleted when it stops, so durability buys
            # nothing and flushing to disk costs seconds per CREATE DATABASE on a busy machine.
            conf.write("\n# gathering-consolidate: disposable server\n")
            conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        (build / done.name).write_text("initdb done\n")
        if template.exists():
            shutil.rmtree(template, ignore_errors=True)
        build.rename(template)
    return template


def _open_for(pgdata: Path) -> None:
    """What pgserver does before initdb under root: let the `pgserver` user reach the folder
    and read the binaries (the parents' modes were recorded first, and are put back)."""
    import stat as st

    from pgserver import _commands
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    bin_path = _commands.POSTGRES_BIN_PATH
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(bin_path)
    read, execute = st.S_IRGRP | st.S_IROTH, st.S_IXGRP | st.S_IXOTH
    ensure_folder_permissions(bin_path, execute | read)
    ensure_folder_permissions(bin_path.parent / "lib", read)


def _system_user() -> str | None:
    """The user PostgreSQL runs as: pgserver's `pgserver` account under root (postgres refuses
    root), else ours."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _copy_template(template: Path, pgdata: Path) -> None:
    user = _system_user()
    shutil.copytree(template, pgdata, dirs_exist_ok=True, symlinks=True)
    (pgdata / ".gathering-consolidate-template").unlink(missing_ok=True)
    if user is not None:
        for folder, _dirs, files in os.walk(pgdata):
            shutil.chown(folder, user, user)
            for name in files:
                shutil.chown(os.path.join(folder, name), user, user)
    pgdata.chmod(0o700)


def _start(pgdata: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

    try:
        # The template lives in the default root; a data folder elsewhere gets its own initdb
        # (whose parents' modes were recorded beside it).
        if not (pgdata / "PG_VERSION").exists() and pgdata.parent == embedded_root():
            template = _template(pgdata.parent)
            if template is not None:
                _copy_template(template, pgdata)
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # consolidate: ignore[EXC002] pgserver raises anything (subprocess, OSError, assert); all mean "could not start"
        log = pgdata / "log"
        tail = ""
        if log.is_file():
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
            tail = f"; server log: {lines[-1]}" if lines else ""
        raise DatabaseError(
            f"cannot start the embedded PostgreSQL in {pgdata}: {_first_line(exc)}{tail}"
        ) from None
    import atexit

    # This module stops the server itself (below); pgserver's exit hook would only race it.
    atexit.unregister(server._cleanup)
    return server


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first)
    except (OSError, ValueError):
        return None


def _stop_and_remove(pgdata: Path, server) -> None:
    """Immediate shutdown (SIGQUIT to the postmaster: sessions end, no shutdown checkpoint, which
    nothing needs since the folder is deleted next), SIGKILL if it lingers; then the folder goes
    and the parents get their modes back."""
    import psutil

    pid = _postmaster_pid(pgdata)
    if pid is not None:
        try:
            proc = psutil.Process(pid)
            if str(pgdata) in " ".join(proc.cmdline()):
                for sig, wait in ((signal.SIGQUIT, _STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
                    proc.send_signal(sig)
                    try:
                        proc.wait(wait)
                        break
                    except psutil.TimeoutExpired:
                        continue
        except psutil.NoSuchProcess:
            pass
    if server is not None:
        type(server)._instances.pop(server.pgdata, None)  # pgserver's registry of handles
    shutil.rmtree(pgdata, ignore_errors=True)
    with _modes_lock(pgdata.parent):
        (pgdata.parent / f".{pgdata.name}.{_OWNER_FILE}").unlink(missing_ok=True)
        _restore_parent_modes(pgdata.parent)


def _sweep_stale(root: Path) -> None:
    """Stop and remove run folders whose owner process is gone (a SIGKILLed run)."""
    import psutil

    for owner_file in root.glob(f".run-*.{_OWNER_FILE}"):
        try:
            owner = json.loads(owner_file.read_text())
            pid, pgdata = int(owner["pid"]), Path(owner["pgdata"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if psutil.pid_exists(pid) or pgdata.parent != root:
            continue
        _stop_and_remove(pgdata, None)


def _parents(path: Path) -> list[Path]:
    return [p for p in path.parents]


def _record_parent_modes(root: Path, pgdata: Path) -> None:
    """Remember the parents' permission bits before pgserver opens them (only as root, and only
    the first time: a later run sees them already opened)."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    record = root / _MODES_FILE
    if record.exists():
        return
    modes = {str(p): stat.S_IMODE(p.stat().st_mode) for p in _parents(pgdata) if p.exists()}
    record.write_text(json.dumps(modes))


def _restore_parent_modes(root: Path) -> None:
    """Put the recorded modes back once no embedded server of this root is left."""
    record = root / _MODES_FILE
    if not record.exists() or any(root.glob(f".run-*.{_OWNER_FILE}")):
        return
    try:
        modes = json.loads(record.read_text())
    except (OSError, ValueError):
        return
    for name, mode in modes.items():
        with contextlib.suppress(OSError):
            path = Path(name)
            if stat.S_IMODE(path.stat().st_mode) != mode:
                path.chmod(mode)
    record.unlink(missing_ok=True)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like an exception (exit 143), so the `finally` stopping the server runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield  # somebody (the CLI) already handles it
        return

    def terminated(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """A second Ctrl-C must not cut the shutdown short and orphan the server."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# -- disposable databases -----------------------------------------------------------------------
@contextlib.contextmanager
def disposable_database(server_url: str, prefix: str = "gc") -> Iterator[str]:
    """CREATE DATABASE `<prefix>_<hex>` on the server, yield its URL, DROP it (WITH (FORCE):
    sessions left open are ended) on exit, always."""
    import psycopg
    from psycopg import sql

    if not _IDENTIFIER.fullmatch(prefix):
        raise ValueError(f"database prefix {prefix!r}: lower-case letters, digits and _ only")
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise DatabaseError(_explain(exc, server_url)) from None
    try:
        yield with_database(server_url, name)
    finally:
        with _sigint_ignored():
            _drop_database(server_url, name)


def _drop_database(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    deadline = time.monotonic() + 10
    while True:
        try:
            with psycopg.connect(
                server_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            ) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            return
        except psycopg.errors.ObjectInUse:  # a session reconnecting during the drop
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
