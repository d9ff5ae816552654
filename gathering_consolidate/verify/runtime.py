"""Processes the verify stage owns: an app under uvicorn on 127.0.0.1, started, probed, restarted
and always stopped (also on failure), with a clear error for a busy port or an app that does not
come up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType


class RuntimeStartError(RuntimeError):
    """The app did not come up; the message carries the tail of its output."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class AppProcess:
    """`uvicorn APP` in `cwd`, listening on 127.0.0.1 only. Use as a context manager."""

    app: str  # "package.module:attribute"
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    port: int = 0
    health_path: str = "/health"
    startup_timeout: float = 30.0
    python: str = sys.executable
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: Path | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppProcess:
        if self.port == 0:
            self.port = free_port()
        elif port_in_use(self.port):
            raise RuntimeStartError(f"port {self.port} on 127.0.0.1 is busy; choose another")
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        fd, log_path = tempfile.mkstemp(prefix=f"uvicorn-{self.port}-", suffix=".log")
        self._log = Path(log_path)
        with os.fdopen(fd, "wb") as log:
            self._proc = subprocess.Popen(
                [self.python, "-m", "uvicorn", self.app, "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning"],
                cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeStartError(
                    f"{self.app} exited with {self._proc.returncode}:\n{self.output()}"
                )
            try:
                with urllib.request.urlopen(self.base_url + self.health_path, timeout=2) as resp:
                    if resp.status < 500:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeStartError(
            f"{self.app} did not answer {self.health_path} in time:\n{self.output()}"
        )

    def output(self, tail: int = 4000) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(errors="replace")[-tail:]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.unlink(missing_ok=True)

    def restart(self) -> AppProcess:
        self.stop()
        return self.start()

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
