"""Cross-check the static inventory with `pytest --collect-only -q`, run by the target's own
interpreter in a child process (in the rootdir, with a timeout). The only place the target's
code runs: pytest imports its test modules to collect them."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .inventory import Inventory


class CrossCheckError(RuntimeError):
    """pytest could not be run (no such interpreter, no pytest, a timeout)."""


@dataclass
class CrossCheck:
    static: int
    collected: int
    only_static: list[str] = field(default_factory=list)
    only_pytest: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # pytest's collection errors
    seconds: float = 0.0

    @property
    def equal(self) -> bool:
        return not self.only_static and not self.only_pytest and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "static": self.static,
            "collected": self.collected,
            "equal": self.equal,
            "only_static": self.only_static,
            "only_pytest": self.only_pytest,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
        }


def _interpreter(python: str) -> str:
    path = Path(python).absolute()  # not resolved: a venv's python is a symlink
    if path.is_dir():
        for candidate in (path / "bin" / "python", path / "Scripts" / "python.exe"):
            if candidate.exists():
                return str(candidate)
        raise CrossCheckError(f"--python {python}: no interpreter in that environment")
    if not path.exists():
        raise CrossCheckError(f"--python {python}: no such file or directory")
    return str(path)


def collect_with_pytest(
    found: Inventory, python: str, *, timeout: float = 300.0, env: dict[str, str] | None = None
) -> CrossCheck:
    """Run `python -m pytest --collect-only -q` where pytest would run and diff the node ids."""
    import time

    command = [
        _interpreter(python),
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    command += found.args
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            command,
            cwd=found.root,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CrossCheckError(f"pytest --collect-only took more than {timeout:.0f} s") from None
    except OSError as exc:
        raise CrossCheckError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    seconds = time.perf_counter() - started
    if "No module named pytest" in proc.stderr:
        raise CrossCheckError(f"{command[0]} has no pytest installed")
    collected = [
        line.strip()
        for line in proc.stdout.splitlines()
        if "::" in line and not line.startswith(("ERROR", "FAILED"))
    ]
    errors = [line.strip() for line in proc.stdout.splitlines() if line.startswith("ERROR ")]
    if proc.returncode not in (0, 5) and not errors:
        # pytest stopped before collecting (a conftest that does not import, a bad option)
        output = (proc.stdout + "\n" + proc.stderr).splitlines()
        reasons = [line.strip() for line in output if line.startswith(("E ", "ERROR:"))]
        errors = list(dict.fromkeys(reasons))[-5:] or [
            f"pytest exited with {proc.returncode}: {(output or ['no output'])[-1].strip()}"
        ]
    static_ids = [item.nodeid for item in found.items]
    static_set, pytest_set = set(static_ids), set(collected)
    return CrossCheck(
        static=len(static_ids),
        collected=len(collected),
        only_static=sorted(static_set - pytest_set),
        only_pytest=sorted(pytest_set - static_set),
        errors=errors,
        seconds=seconds,
    )
