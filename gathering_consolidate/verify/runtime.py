"""Processes the verify stage owns: an app under uvicorn on 127.0.0.1, started, probed, stopped,
killed (SIGKILL: a crash) and restarted, and always stopped (on success, failure, timeout, Ctrl-C),
with a clear error for a busy port or an app that does not come up.

Every child runs in its own process group (session), so a stop reaches whatever the app forked,
and on Linux it gets SIGKILL from the kernel if the verify process itself dies (PR_SET_PDEATHSIG),
so not even a SIGKILLed verify leaves an app behind. `ProcessGroup` tracks the children of one run
and stops them all on exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType


class RuntimeStartError(RuntimeError):
    """The app did not come up; the message says why and carries the tail of its output."""


class AppCrashed(RuntimeError):
    """The app process ended while a check needed it."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdout: int | object = subprocess.DEVNULL,
    stderr: int | object = subprocess.STDOUT,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session (its own process group) that dies with this process."""
    return subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL,
        stdout=stdout, stderr=stderr, start_new_session=True, preexec_fn=_die_with_parent,
    )  # fmt: skip


def stop_process(proc: subprocess.Popen[bytes] | None, *, timeout: float = 10.0) -> None:
    """SIGTERM to the process group, SIGKILL after `timeout`; waits for the process."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # whatever the group leader left behind in its group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL the process group now (a crash: no shutdown code runs) and reap it."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _http_status(url: str, timeout: float) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


@dataclass
class AppProcess:
    """`uvicorn APP` in `cwd`, listening on 127.0.0.1 only. Use as a context manager.

    `command` replaces the launcher (default `python -m uvicorn APP --host --port`); `{port}` and
    `{app}` in it are filled in. The app is healthy when `health_path` answers below 500."""

    app: str  # "package.module:attribute"
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    port: int = 0
    health_path: str = "/health"
    startup_timeout: float = 30.0
    python: str = sys.executable
    command: Sequence[str] | None = None
    inherit_env: bool = True
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: Path | None = field(default=None, init=False, repr=False)
    _fixed_port: bool = field(default=False, init=False, repr=False)
    starts: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._fixed_port = self.port != 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def argv(self) -> list[str]:
        if self.command is not None:
            return [part.format(port=self.port, app=self.app) for part in self.command]
        return [self.python, "-m", "uvicorn", self.app, "--host", "127.0.0.1",
                "--port", str(self.port), "--log-level", "warning", "--no-access-log"]  # fmt: skip

    def launch(self) -> None:
        """Start the process without waiting for health (`wait_healthy` does)."""
        if self.alive:
            raise RuntimeStartError(f"{self.app} is already running (pid {self.pid})")
        if not self._fixed_port:
            self.port = free_port()
        elif port_in_use(self.port):
            raise RuntimeStartError(f"port 127.0.0.1:{self.port} is busy; choose another")
        base = dict(os.environ) if self.inherit_env else {"PATH": os.environ.get("PATH", "")}
        env = {**base, **self.env, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        if self._log is None:
            fd, log_path = tempfile.mkstemp(prefix="gc-verify-app-", suffix=".log")
            os.close(fd)
            self._log = Path(log_path)
        with open(self._log, "ab") as log:
            log.write(f"--- start {self.starts + 1}: port {self.port}\n".encode())
            log.flush()
            self._proc = spawn(self.argv(), cwd=self.cwd, env=env, stdout=log)
        self.starts += 1

    def wait_healthy(self, timeout: float | None = None) -> None:
        proc = self._proc
        if proc is None:
            raise RuntimeStartError(f"{self.app} was not started")
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = self.output()
                busy = "address already in use" in tail.lower()
                reason = (
                    f"port 127.0.0.1:{self.port} is busy"
                    if busy
                    else f"{self.app} exited with code {proc.returncode} before it was healthy"
                )
                raise RuntimeStartError(f"{reason}:\n{_tail_lines(tail)}")
            status = _http_status(self.base_url + self.health_path, timeout=2)
            if status is not None and status < 500:
                return
            time.sleep(0.1)
        self.stop(keep_log=True)
        raise RuntimeStartError(
            f"{self.app} did not answer {self.health_path} below 500 within "
            f"{self.startup_timeout:.0f} s:\n{_tail_lines(self.output())}"
        )

    def start(self) -> AppProcess:
        """Start and wait until healthy; a port taken between choosing and binding it (another
        process won the race) is retried on a new free port, twice."""
        for attempt in range(3):
            self.launch()
            try:
                self.wait_healthy()
                return self
            except RuntimeStartError as exc:  # its message holds the output already
                self.stop()
                if self._fixed_port or "is busy" not in str(exc) or attempt == 2:
                    raise
        return self  # pragma: no cover

    def output(self, tail: int = 6000) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(errors="replace")[-tail:]

    def stop(self, *, keep_log: bool = False) -> None:
        """Graceful stop (SIGTERM to the group, SIGKILL after 10 s); the output log goes too
        unless `keep_log`."""
        proc, self._proc = self._proc, None
        stop_process(proc)
        if not keep_log:
            self.discard_log()

    def kill(self) -> None:
        """A crash: SIGKILL to the whole group, nothing of the app's shutdown runs."""
        proc, self._proc = self._proc, None
        kill_process(proc)

    def discard_log(self) -> None:
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def restart(self) -> AppProcess:
        self.stop()
        return self.start()

    def ensure_alive(self) -> None:
        """Raise `AppCrashed` (with the output's tail) if the app ended on its own."""
        proc = self._proc
        if proc is not None and proc.poll() is not None:
            code = proc.returncode
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            raise AppCrashed(f"the app process ended ({how}):\n{_tail_lines(self.output())}")

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(keep_log=False)


def _tail_lines(text: str, lines: int = 15) -> str:
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in kept)
